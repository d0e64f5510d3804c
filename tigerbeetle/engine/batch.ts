import {
  AccountFlags,
  CreateAccountStatus,
  CreateTransferStatus,
  TransferFlags,
  type Account,
  type CreateAccountResult,
  type CreateTransferResult,
  type Transfer,
} from 'tigerbeetle-node';
import { createAccount } from './accounts';
import { timestampMaxNanoseconds, timestampMinNanoseconds } from './constants';
import type { LedgerState } from './state';
import { createTransfer, isTransientTransferStatus } from './transfers';

/** The statuses both create operations share, by name (their numeric values differ). */
interface BatchStatuses {
  readonly created: number;
  readonly exists: number;
  readonly linked_event_failed: number;
  readonly linked_event_chain_open: number;
  readonly imported_event_expected: number;
  readonly imported_event_not_expected: number;
  readonly timestamp_must_be_zero: number;
  readonly imported_event_timestamp_out_of_range: number;
  readonly imported_event_timestamp_must_not_advance: number;
}

interface CreateOperation<Event> {
  readonly statuses: BatchStatuses;
  readonly linkedFlag: number;
  readonly importedFlag: number;
  create(state: LedgerState, event: Event, timestamp: bigint): number;
  existingTimestamp(state: LedgerState, event: Event): bigint;
  /** Called for every failed event; binds the id of a transient failure (transfers only). */
  failed(state: LedgerState, event: Event, status: number): void;
}

/** What TigerBeetle 0.17's client returns per event: struct order, `reserved` included. */
interface CreateResult {
  timestamp: bigint;
  status: number;
  reserved: number;
}

const accountOperation: CreateOperation<Account> = {
  statuses: CreateAccountStatus,
  linkedFlag: AccountFlags.linked,
  importedFlag: AccountFlags.imported,
  create: createAccount,
  existingTimestamp: (state, event) => existingOrThrow(state.accounts.get(event.id)),
  failed: () => undefined, // account statuses never depend on transient state
};

const transferOperation: CreateOperation<Transfer> = {
  statuses: CreateTransferStatus,
  linkedFlag: TransferFlags.linked,
  importedFlag: TransferFlags.imported,
  create: createTransfer,
  existingTimestamp: (state, event) => {
    const slot = state.transfers.find(event.id);
    if (slot < 0) throw new Error('assertion failed: `exists` without a stored transfer');
    return state.transfers.timestamp(slot);
  },
  failed: (state, event, status) => {
    if (isTransientTransferStatus(status)) state.orphanedTransferIds.add(event.id);
  },
};

function existingOrThrow(record: { timestamp: bigint } | undefined): bigint {
  if (record === undefined) throw new Error('assertion failed: `exists` without a stored object');
  return record.timestamp;
}

export function executeCreateAccounts(
  state: LedgerState,
  events: readonly Account[],
  nowNanoseconds: bigint,
): CreateAccountResult[] {
  return executeCreate(state, events, nowNanoseconds, accountOperation) as CreateAccountResult[];
}

export function executeCreateTransfers(
  state: LedgerState,
  events: readonly Transfer[],
  nowNanoseconds: bigint,
): CreateTransferResult[] {
  return executeCreate(state, events, nowNanoseconds, transferOperation) as CreateTransferResult[];
}

/**
 * Runs one create batch like src/state_machine.zig `execute_create`: assigns each event the
 * timestamp `batch - count + index + 1`, applies linked chains all-or-nothing and reports a
 * status for every event.
 */
function executeCreate<Event extends { id: bigint; flags: number; timestamp: bigint }>(
  state: LedgerState,
  events: readonly Event[],
  nowNanoseconds: bigint,
  operation: CreateOperation<Event>,
): CreateResult[] {
  const count = events.length;
  const results: CreateResult[] = new Array<CreateResult>(count);
  if (count === 0) return results;
  const batchTimestamp = nextBatchTimestamp(state, nowNanoseconds, count);
  const firstTimestamp = batchTimestamp - BigInt(count) + 1n;
  const statuses = operation.statuses;
  const importedBatch = (events[0].flags & operation.importedFlag) !== 0;
  let chainStart = -1;
  let chainBroken = false;

  for (let index = 0; index < count; index += 1) {
    const event = events[index];
    const eventTimestamp = firstTimestamp + BigInt(index);
    const linked = (event.flags & operation.linkedFlag) !== 0;
    if (linked && chainStart < 0) {
      chainStart = index;
      state.openChain();
    }
    let status: number;
    if (linked && index === count - 1) status = statuses.linked_event_chain_open;
    else if (chainBroken) status = statuses.linked_event_failed;
    else
      status = createWithTimestamp(
        state,
        event,
        operation,
        importedBatch,
        eventTimestamp,
        batchTimestamp,
      );

    results[index] = {
      timestamp: resultTimestamp(state, event, operation, status, eventTimestamp),
      status,
      reserved: 0,
    };
    if (status !== statuses.created) {
      if (chainStart >= 0 && !chainBroken) {
        chainBroken = true;
        state.discardChain();
        // Only the status changes: each result keeps the timestamp it had (an imported event's own).
        for (let chained = chainStart; chained < index; chained += 1) {
          results[chained] = { ...results[chained], status: statuses.linked_event_failed };
        }
      }
      operation.failed(state, event, status);
    }
    if (chainStart >= 0 && (!linked || status === statuses.linked_event_chain_open)) {
      if (!chainBroken) state.persistChain();
      chainStart = -1;
      chainBroken = false;
    }
  }
  if (state.chainOpen) throw new Error('assertion failed: a linked chain was left open');
  return results;
}

/** TigerBeetle's prepare timestamp: the cluster clock, but always past every earlier timestamp. */
export function nextBatchTimestamp(
  state: LedgerState,
  nowNanoseconds: bigint,
  count: number,
): bigint {
  const sequential = state.lastTimestamp + BigInt(count);
  const batchTimestamp = nowNanoseconds > sequential ? nowNanoseconds : sequential;
  if (batchTimestamp > timestampMaxNanoseconds)
    throw new Error('assertion failed: timestamps exhausted');
  state.lastTimestamp = batchTimestamp;
  return batchTimestamp;
}

function createWithTimestamp<Event extends { flags: number; timestamp: bigint }>(
  state: LedgerState,
  event: Event,
  operation: CreateOperation<Event>,
  importedBatch: boolean,
  eventTimestamp: bigint,
  batchTimestamp: bigint,
): number {
  const statuses = operation.statuses;
  const imported = (event.flags & operation.importedFlag) !== 0;
  // The first event decides whether the whole batch imports past timestamps.
  if (imported !== importedBatch) {
    return imported ? statuses.imported_event_not_expected : statuses.imported_event_expected;
  }
  if (!imported) {
    if (event.timestamp !== 0n) return statuses.timestamp_must_be_zero;
    return operation.create(state, event, eventTimestamp);
  }
  if (event.timestamp < timestampMinNanoseconds || event.timestamp > timestampMaxNanoseconds) {
    return statuses.imported_event_timestamp_out_of_range;
  }
  if (event.timestamp >= batchTimestamp) return statuses.imported_event_timestamp_must_not_advance;
  return operation.create(state, event, event.timestamp);
}

/** Created: the object's timestamp; exists: the original's; otherwise when validation ran. */
function resultTimestamp<Event extends { flags: number; timestamp: bigint }>(
  state: LedgerState,
  event: Event,
  operation: CreateOperation<Event>,
  status: number,
  eventTimestamp: bigint,
): bigint {
  if (status === operation.statuses.exists) return operation.existingTimestamp(state, event);
  if (status === operation.statuses.created && (event.flags & operation.importedFlag) !== 0)
    return event.timestamp;
  return eventTimestamp;
}
