import {
  AccountFilterFlags,
  AccountFlags,
  QueryFilterFlags,
  type Account,
  type AccountBalance,
  type AccountFilter,
  type QueryFilter,
  type Transfer,
} from 'tigerbeetle-node';
import {
  accountFilterFlagsKnownMask,
  batchEventsMax,
  queryFilterFlagsKnownMask,
  u128Max,
  timestampMaxNanoseconds,
  u64Max,
} from './constants';
import type { AccountRecord } from './records';
import type { SlotList } from './slot-list';
import type { LedgerState } from './state';
import {
  accountTimestamps,
  lowerBound,
  upperBound,
  type TimestampSequence,
} from './timestamp-search';
import type { TransferStore } from './transfer-store';

export function lookupAccounts(state: LedgerState, ids: readonly bigint[]): Account[] {
  const results: Account[] = [];
  for (const id of ids) {
    const record = state.accounts.get(id);
    if (record !== undefined) results.push(record.toAccount());
  }
  return results;
}

export function lookupTransfers(state: LedgerState, ids: readonly bigint[]): Transfer[] {
  const results: Transfer[] = [];
  for (const id of ids) {
    const slot = state.transfers.find(id);
    if (slot >= 0) results.push(state.transfers.read(slot));
  }
  return results;
}

/** An invalid filter returns no results, as in TigerBeetle (src/state_machine.zig). */
function accountFilterValid(filter: AccountFilter): boolean {
  return (
    filter.account_id !== 0n &&
    filter.account_id !== u128Max &&
    timestampRangeValid(filter.timestamp_min, filter.timestamp_max) &&
    filter.limit !== 0 &&
    (filter.flags & (AccountFilterFlags.debits | AccountFilterFlags.credits)) !== 0 &&
    (filter.flags & ~accountFilterFlagsKnownMask) === 0
  );
}

function queryFilterValid(filter: QueryFilter): boolean {
  return (
    timestampRangeValid(filter.timestamp_min, filter.timestamp_max) &&
    filter.limit !== 0 &&
    (filter.flags & ~queryFilterFlagsKnownMask) === 0
  );
}

/** TigerBeetle's filter check: each bound is 0 (none) or a valid u63 timestamp, and min ≤ max. */
function timestampRangeValid(minimum: bigint, maximum: bigint): boolean {
  const boundValid = (bound: bigint) => bound === 0n || bound <= timestampMaxNanoseconds;
  return boundValid(minimum) && boundValid(maximum) && (maximum === 0n || minimum <= maximum);
}

export function getAccountTransfers(state: LedgerState, filter: AccountFilter): Transfer[] {
  if (!accountFilterValid(filter)) return [];
  const account = state.accounts.get(filter.account_id);
  if (account === undefined) return [];
  return scanAccountTransfers(state.transfers, account, filter).map((found) =>
    state.transfers.read(found.slot),
  );
}

/** Balances right after each matching transfer; only for accounts with `flags.history`. */
export function getAccountBalances(state: LedgerState, filter: AccountFilter): AccountBalance[] {
  if (!accountFilterValid(filter)) return [];
  const account = state.accounts.get(filter.account_id);
  if (account === undefined || (account.flags & AccountFlags.history) === 0) return [];
  return scanAccountTransfers(state.transfers, account, filter).map((found) => {
    const balances = found.list === 0 ? account.debitBalances : account.creditBalances;
    if (balances === null || found.index >= balances.length)
      throw new Error('assertion failed: history account without a balance snapshot');
    return { ...balances.at(found.index), timestamp: state.transfers.timestamp(found.slot) };
  });
}

export function queryAccounts(state: LedgerState, filter: QueryFilter): Account[] {
  if (!queryFilterValid(filter)) return [];
  const accounts = state.accountsByTimestamp;
  const matches = (index: number): boolean => {
    const record = accounts[index];
    return (
      matchesQuery(
        filter,
        record.user_data_128,
        record.user_data_64,
        record.user_data_32,
        record.code,
      ) &&
      (filter.ledger === 0 || record.ledger === filter.ledger)
    );
  };
  const found = scanSorted([accountTimestamps(accounts)], filter, queryReversed(filter), matches);
  return found.map(({ index }) => accounts[index].toAccount());
}

export function queryTransfers(state: LedgerState, filter: QueryFilter): Transfer[] {
  if (!queryFilterValid(filter)) return [];
  const store = state.transfers;
  const matches = (slot: number): boolean =>
    storedTransferMatches(store, slot, filter) &&
    (filter.ledger === 0 || store.ledger(slot) === filter.ledger);
  const found = scanSorted([store], filter, queryReversed(filter), matches);
  return found.map(({ index }) => store.read(index));
}

function queryReversed(filter: QueryFilter): boolean {
  return (filter.flags & QueryFilterFlags.reversed) !== 0;
}

/** Zero in a filter field means "any value", as in TigerBeetle's index scans. */
function matchesQuery(
  filter: QueryFields,
  userData128: bigint,
  userData64: bigint,
  userData32: number,
  code: number,
): boolean {
  return (
    (filter.user_data_128 === 0n || userData128 === filter.user_data_128) &&
    (filter.user_data_64 === 0n || userData64 === filter.user_data_64) &&
    (filter.user_data_32 === 0 || userData32 === filter.user_data_32) &&
    (filter.code === 0 || code === filter.code)
  );
}

interface QueryFields {
  user_data_128: bigint;
  user_data_64: bigint;
  user_data_32: number;
  code: number;
}

/** `matchesQuery` on a stored transfer, reading only the fields the filter names. */
function storedTransferMatches(store: TransferStore, slot: number, filter: QueryFields): boolean {
  return (
    (filter.user_data_128 === 0n || store.userData128(slot) === filter.user_data_128) &&
    (filter.user_data_64 === 0n || store.userData64(slot) === filter.user_data_64) &&
    (filter.user_data_32 === 0 || store.userData32(slot) === filter.user_data_32) &&
    (filter.code === 0 || store.code(slot) === filter.code)
  );
}

/** An account's debit and credit transfer lists (slots) as timestamp sequences. */
function slotTimestamps(store: TransferStore, slots: SlotList): TimestampSequence {
  return { length: slots.length, timestamp: (index) => store.timestamp(slots.at(index)) };
}

interface AccountTransferFound {
  /** 0: the debit list, 1: the credit list. */
  readonly list: number;
  readonly index: number;
  readonly slot: number;
}

function scanAccountTransfers(
  store: TransferStore,
  account: AccountRecord,
  filter: AccountFilter,
): AccountTransferFound[] {
  const lists: SlotList[] = [];
  const kinds: number[] = [];
  if ((filter.flags & AccountFilterFlags.debits) !== 0) {
    lists.push(account.debitTransfers);
    kinds.push(0);
  }
  if ((filter.flags & AccountFilterFlags.credits) !== 0) {
    lists.push(account.creditTransfers);
    kinds.push(1);
  }
  const reversed = (filter.flags & AccountFilterFlags.reversed) !== 0;
  const sequences = lists.map((slots) => slotTimestamps(store, slots));
  const found = scanSorted(sequences, filter, reversed, (index, which) =>
    storedTransferMatches(store, lists[which].at(index), filter),
  );
  return found.map(({ which, index }) => ({
    list: kinds[which],
    index,
    slot: lists[which].at(index),
  }));
}

/**
 * Walks one or two timestamp-ordered sequences as one merged sequence (an account's debits and
 * credits never share a transfer), within [timestamp_min, timestamp_max], up to the filter's
 * limit. Returns which sequence and which index each match is.
 */
function scanSorted(
  lists: readonly TimestampSequence[],
  filter: { timestamp_min: bigint; timestamp_max: bigint; limit: number },
  reversed: boolean,
  matches: (index: number, which: number) => boolean,
): { which: number; index: number }[] {
  if (lists.length < 1 || lists.length > 2)
    throw new Error('assertion failed: scan of 1 or 2 lists');
  const minimum = filter.timestamp_min;
  const maximum = filter.timestamp_max === 0n ? u64Max : filter.timestamp_max;
  const limit = Math.min(filter.limit, batchEventsMax);
  const cursors = lists.map((list) =>
    reversed ? upperBound(list, maximum) - 1 : lowerBound(list, minimum),
  );
  const results: { which: number; index: number }[] = [];
  while (results.length < limit) {
    const which = nextList(lists, cursors, reversed);
    if (which < 0) break;
    const index = cursors[which];
    const timestamp = lists[which].timestamp(index);
    if (reversed ? timestamp < minimum : timestamp > maximum) break;
    cursors[which] += reversed ? -1 : 1;
    if (matches(index, which)) results.push({ which, index });
  }
  return results;
}

/** The list whose cursor holds the next item in scan order, or -1 when all are exhausted. */
function nextList(
  lists: readonly TimestampSequence[],
  cursors: readonly number[],
  reversed: boolean,
): number {
  let chosen = -1;
  for (let which = 0; which < lists.length; which += 1) {
    const cursor = cursors[which];
    if (cursor < 0 || cursor >= lists[which].length) continue;
    if (chosen < 0) {
      chosen = which;
      continue;
    }
    const candidate = lists[which].timestamp(cursor);
    const current = lists[chosen].timestamp(cursors[chosen]);
    if (reversed ? candidate > current : candidate < current) chosen = which;
  }
  return chosen;
}
