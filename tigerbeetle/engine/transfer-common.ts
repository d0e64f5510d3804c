import { CreateTransferStatus } from 'tigerbeetle-node';
import type { LedgerState } from './state';
import { accountTimestamps, containsTimestamp } from './timestamp-search';

/**
 * An imported transfer keeps the user's timestamp, so it must not regress: it must be later than
 * every transfer and must not equal any account's timestamp (timestamps are unique across both).
 */
export function importedTimestampRegressStatus(
  state: LedgerState,
  timestamp: bigint,
): CreateTransferStatus | null {
  const transfers = state.transfers;
  if (transfers.length > 0 && timestamp <= transfers.timestamp(transfers.length - 1)) {
    return CreateTransferStatus.imported_event_timestamp_must_not_regress;
  }
  if (containsTimestamp(accountTimestamps(state.accountsByTimestamp), timestamp)) {
    return CreateTransferStatus.imported_event_timestamp_must_not_regress;
  }
  return null;
}
