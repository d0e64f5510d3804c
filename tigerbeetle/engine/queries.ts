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
import type { AccountRecord, TransferRecord } from './records';
import type { LedgerState } from './state';
import { lowerBound, upperBound, type Timestamped } from './timestamp-search';

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
    const record = state.transfers.get(id);
    if (record !== undefined) results.push(record.toTransfer());
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
  return scanAccountTransfers(account, filter).map((record) => record.toTransfer());
}

/** Balances right after each matching transfer; only for accounts with `flags.history`. */
export function getAccountBalances(state: LedgerState, filter: AccountFilter): AccountBalance[] {
  if (!accountFilterValid(filter)) return [];
  const account = state.accounts.get(filter.account_id);
  if (account === undefined || (account.flags & AccountFlags.history) === 0) return [];
  return scanAccountTransfers(account, filter).map((record) => {
    const balance =
      record.debit_account_id === account.id ? record.debitBalance : record.creditBalance;
    if (balance === null)
      throw new Error('assertion failed: history account without a balance snapshot');
    return { ...balance };
  });
}

export function queryAccounts(state: LedgerState, filter: QueryFilter): Account[] {
  if (!queryFilterValid(filter)) return [];
  const matches = (record: AccountRecord): boolean =>
    matchesQuery(
      filter,
      record.user_data_128,
      record.user_data_64,
      record.user_data_32,
      record.code,
    ) &&
    (filter.ledger === 0 || record.ledger === filter.ledger);
  const found = scanSorted([state.accountsByTimestamp], filter, queryReversed(filter), matches);
  return found.map((record) => record.toAccount());
}

export function queryTransfers(state: LedgerState, filter: QueryFilter): Transfer[] {
  if (!queryFilterValid(filter)) return [];
  const matches = (record: TransferRecord): boolean =>
    matchesQuery(
      filter,
      record.user_data_128,
      record.user_data_64,
      record.user_data_32,
      record.code,
    ) &&
    (filter.ledger === 0 || record.ledger === filter.ledger);
  const found = scanSorted([state.transfersByTimestamp], filter, queryReversed(filter), matches);
  return found.map((record) => record.toTransfer());
}

function queryReversed(filter: QueryFilter): boolean {
  return (filter.flags & QueryFilterFlags.reversed) !== 0;
}

/** Zero in a filter field means "any value", as in TigerBeetle's index scans. */
function matchesQuery(
  filter: { user_data_128: bigint; user_data_64: bigint; user_data_32: number; code: number },
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

function scanAccountTransfers(account: AccountRecord, filter: AccountFilter): TransferRecord[] {
  const lists: TransferRecord[][] = [];
  if ((filter.flags & AccountFilterFlags.debits) !== 0) lists.push(account.debitTransfers);
  if ((filter.flags & AccountFilterFlags.credits) !== 0) lists.push(account.creditTransfers);
  const reversed = (filter.flags & AccountFilterFlags.reversed) !== 0;
  const matches = (record: TransferRecord): boolean =>
    matchesQuery(
      filter,
      record.user_data_128,
      record.user_data_64,
      record.user_data_32,
      record.code,
    );
  return scanSorted(lists, filter, reversed, matches);
}

/**
 * Walks one or two timestamp-ordered lists as one merged list (an account's debits and credits
 * never share a transfer), within [timestamp_min, timestamp_max], up to the filter's limit.
 */
function scanSorted<Item extends Timestamped>(
  lists: readonly (readonly Item[])[],
  filter: { timestamp_min: bigint; timestamp_max: bigint; limit: number },
  reversed: boolean,
  matches: (item: Item) => boolean,
): Item[] {
  if (lists.length < 1 || lists.length > 2)
    throw new Error('assertion failed: scan of 1 or 2 lists');
  const minimum = filter.timestamp_min;
  const maximum = filter.timestamp_max === 0n ? u64Max : filter.timestamp_max;
  const limit = Math.min(filter.limit, batchEventsMax);
  const cursors = lists.map((list) =>
    reversed ? upperBound(list, maximum) - 1 : lowerBound(list, minimum),
  );
  const results: Item[] = [];
  while (results.length < limit) {
    const which = nextList(lists, cursors, reversed);
    if (which < 0) break;
    const item = lists[which][cursors[which]];
    if (reversed ? item.timestamp < minimum : item.timestamp > maximum) break;
    cursors[which] += reversed ? -1 : 1;
    if (matches(item)) results.push(item);
  }
  return results;
}

/** The list whose cursor holds the next item in scan order, or -1 when all are exhausted. */
function nextList<Item extends Timestamped>(
  lists: readonly (readonly Item[])[],
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
    const candidate = lists[which][cursor].timestamp;
    const current = lists[chosen][cursors[chosen]].timestamp;
    if (reversed ? candidate > current : candidate < current) chosen = which;
  }
  return chosen;
}
