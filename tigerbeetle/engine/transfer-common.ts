import { AccountFlags, CreateTransferStatus } from 'tigerbeetle-node';
import type { AccountRecord, TransferRecord } from './records';
import type { LedgerState } from './state';
import { containsTimestamp } from './timestamp-search';

/**
 * An imported transfer keeps the user's timestamp, so it must not regress: it must be later than
 * every transfer and must not equal any account's timestamp (timestamps are unique across both).
 */
export function importedTimestampRegressStatus(
  state: LedgerState,
  timestamp: bigint,
): CreateTransferStatus | null {
  const last = state.transfersByTimestamp[state.transfersByTimestamp.length - 1];
  if (last !== undefined && timestamp <= last.timestamp) {
    return CreateTransferStatus.imported_event_timestamp_must_not_regress;
  }
  if (containsTimestamp(state.accountsByTimestamp, timestamp)) {
    return CreateTransferStatus.imported_event_timestamp_must_not_regress;
  }
  return null;
}

/** Keeps the balances right after the transfer for accounts with `flags.history`. */
export function recordHistory(
  record: TransferRecord,
  debit: AccountRecord,
  credit: AccountRecord,
): void {
  if ((debit.flags & AccountFlags.history) !== 0)
    record.debitBalance = debit.balanceAt(record.timestamp);
  if ((credit.flags & AccountFlags.history) !== 0)
    record.creditBalance = credit.balanceAt(record.timestamp);
}
