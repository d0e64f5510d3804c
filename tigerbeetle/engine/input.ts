import {
  ErrorCodes,
  RequestError,
  type Account,
  type AccountFilter,
  type QueryFilter,
  type Transfer,
} from 'tigerbeetle-node';
import { batchEventsMax, u128Max, u16Max, u64Max } from './constants';

/**
 * The checks the native client makes while it serializes a request (src/clients/node), with the
 * same messages, so callers see the same errors from the embedded engine as from a cluster.
 * Numbers are converted like N-API's `napi_get_value_uint32` (ToUint32); when an event holds a
 * number that conversion changes, the engine works on a converted copy of that event.
 */

type Fields = Record<string, unknown>;

function checkU128(value: unknown, name: string): void {
  if (typeof value !== 'bigint') throw new Error(`${name} must be a BigInt`);
  if (value < 0n) throw new Error(`${name} must be positive`);
  if (value > u128Max) throw new Error(`${name} must fit in 128 bits`);
}

function checkU64(value: unknown, name: string): void {
  if (typeof value !== 'bigint') throw new Error(`${name} must be an unsigned 64-bit BigInt`);
  if (value < 0n || value > u64Max) throw new Error(`${name} conversion was lossy`);
}

/** Returns the value as the native client would read it (ToUint32). */
function toU32(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new Error(`${name} must be a number`);
  return value >>> 0;
}

function toU16(value: unknown, name: string): number {
  const converted = toU32(value, name);
  if (converted > u16Max) throw new Error(`${name} must be a u16.`);
  return converted;
}

function requireObject(event: unknown, firstField: string): Fields {
  if (typeof event !== 'object' || event === null) throw new Error(`${firstField} must be defined`);
  return event as Fields;
}

function requireBatch(batch: unknown): unknown[] {
  if (!Array.isArray(batch)) throw new Error('Batch must be an Array.');
  if (batch.length > batchEventsMax) throw new RequestError(ErrorCodes.ERR_TOO_MUCH_DATA);
  return batch;
}

/**
 * Checks every event of a batch; the batch itself is returned unless some event needed a number
 * field converted, in which case a copy holds the converted events.
 */
function checkEvents<Event>(batch: unknown, checkEvent: (event: unknown) => Event | null): Event[] {
  const events = requireBatch(batch);
  let converted: unknown[] | null = null;
  for (let index = 0; index < events.length; index += 1) {
    const event = checkEvent(events[index]);
    if (event !== null) {
      converted ??= events.slice();
      converted[index] = event;
    }
  }
  return (converted ?? events) as Event[];
}

export function checkAccounts(batch: unknown): Account[] {
  return checkEvents(batch, checkAccount);
}

/** Returns a converted copy if a number field needed conversion, otherwise null. */
function checkAccount(event: unknown): Account | null {
  const a = requireObject(event, 'id');
  checkU128(a.id, 'id');
  checkU128(a.debits_pending, 'debits_pending');
  checkU128(a.debits_posted, 'debits_posted');
  checkU128(a.credits_pending, 'credits_pending');
  checkU128(a.credits_posted, 'credits_posted');
  checkU128(a.user_data_128, 'user_data_128');
  checkU64(a.user_data_64, 'user_data_64');
  const userData32 = toU32(a.user_data_32, 'user_data_32');
  const reserved = toU32(a.reserved, 'reserved');
  const ledger = toU32(a.ledger, 'ledger');
  const code = toU16(a.code, 'code');
  const flags = toU16(a.flags, 'flags');
  checkU64(a.timestamp, 'timestamp');
  const exact =
    userData32 === a.user_data_32 &&
    reserved === a.reserved &&
    ledger === a.ledger &&
    code === a.code &&
    flags === a.flags;
  if (exact) return null;
  return { ...(a as Account), user_data_32: userData32, reserved, ledger, code, flags };
}

export function checkTransfers(batch: unknown): Transfer[] {
  return checkEvents(batch, checkTransfer);
}

function checkTransfer(event: unknown): Transfer | null {
  const t = requireObject(event, 'id');
  checkU128(t.id, 'id');
  checkU128(t.debit_account_id, 'debit_account_id');
  checkU128(t.credit_account_id, 'credit_account_id');
  checkU128(t.amount, 'amount');
  checkU128(t.pending_id, 'pending_id');
  checkU128(t.user_data_128, 'user_data_128');
  checkU64(t.user_data_64, 'user_data_64');
  const userData32 = toU32(t.user_data_32, 'user_data_32');
  const timeout = toU32(t.timeout, 'timeout');
  const ledger = toU32(t.ledger, 'ledger');
  const code = toU16(t.code, 'code');
  const flags = toU16(t.flags, 'flags');
  checkU64(t.timestamp, 'timestamp');
  const exact =
    userData32 === t.user_data_32 &&
    timeout === t.timeout &&
    ledger === t.ledger &&
    code === t.code &&
    flags === t.flags;
  if (exact) return null;
  return { ...(t as Transfer), user_data_32: userData32, timeout, ledger, code, flags };
}

export function checkIds(batch: unknown): bigint[] {
  const ids = requireBatch(batch);
  for (const id of ids) checkU128(id, 'lookup');
  return ids as bigint[];
}

/** Filters are copied: the engine keeps nothing the caller can change afterwards. */
export function checkAccountFilter(filter: unknown): AccountFilter {
  const f = requireObject(filter, 'account_id');
  checkU128(f.account_id, 'account_id');
  checkU128(f.user_data_128, 'user_data_128');
  checkU64(f.user_data_64, 'user_data_64');
  const checked: AccountFilter = {
    account_id: f.account_id as bigint,
    user_data_128: f.user_data_128 as bigint,
    user_data_64: f.user_data_64 as bigint,
    user_data_32: toU32(f.user_data_32, 'user_data_32'),
    code: toU16(f.code, 'code'),
    timestamp_min: checkedU64(f.timestamp_min, 'timestamp_min'),
    timestamp_max: checkedU64(f.timestamp_max, 'timestamp_max'),
    limit: toU32(f.limit, 'limit'),
    flags: toU32(f.flags, 'flags'),
  };
  // The reply must fit in one message: at most one batch of results.
  if (checked.limit > batchEventsMax) throw new RequestError(ErrorCodes.ERR_TOO_MUCH_DATA);
  return checked;
}

export function checkQueryFilter(filter: unknown): QueryFilter {
  const f = requireObject(filter, 'user_data_128');
  checkU128(f.user_data_128, 'user_data_128');
  checkU64(f.user_data_64, 'user_data_64');
  const checked: QueryFilter = {
    user_data_128: f.user_data_128 as bigint,
    user_data_64: f.user_data_64 as bigint,
    user_data_32: toU32(f.user_data_32, 'user_data_32'),
    ledger: toU32(f.ledger, 'ledger'),
    code: toU16(f.code, 'code'),
    timestamp_min: checkedU64(f.timestamp_min, 'timestamp_min'),
    timestamp_max: checkedU64(f.timestamp_max, 'timestamp_max'),
    limit: toU32(f.limit, 'limit'),
    flags: toU32(f.flags, 'flags'),
  };
  if (checked.limit > batchEventsMax) throw new RequestError(ErrorCodes.ERR_TOO_MUCH_DATA);
  return checked;
}

function checkedU64(value: unknown, name: string): bigint {
  checkU64(value, name);
  return value as bigint;
}
