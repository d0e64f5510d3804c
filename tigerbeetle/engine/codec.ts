import type { Account, Transfer } from 'tigerbeetle-node';
import { batchEventsMax, eventSizeBytes } from './constants';
import { u64Max } from '../limits';

/**
 * Binary form of the journal's records. Accounts and transfers use TigerBeetle's own 128-byte
 * little-endian layout (src/tigerbeetle.zig), so a record is as compact as a request.
 *
 * Record: operation u8, 7 zero bytes, now u64 (ns), event count u32, 4 zero bytes, then events.
 */
export const RecordOperation = {
  createAccounts: 1,
  createTransfers: 2,
  pulse: 3,
} as const;
export type RecordOperation = (typeof RecordOperation)[keyof typeof RecordOperation];

export const recordHeaderBytes = 24;

export type JournalRecord =
  | { operation: typeof RecordOperation.createAccounts; nowNanoseconds: bigint; events: Account[] }
  | {
      operation: typeof RecordOperation.createTransfers;
      nowNanoseconds: bigint;
      events: Transfer[];
    }
  | { operation: typeof RecordOperation.pulse; nowNanoseconds: bigint; events: [] };

const low64Mask = u64Max;

export function writeU128(buffer: Buffer, offset: number, value: bigint): void {
  buffer.writeBigUInt64LE(value & low64Mask, offset);
  buffer.writeBigUInt64LE(value >> 64n, offset + 8);
}

export function readU128(buffer: Buffer, offset: number): bigint {
  const low = buffer.readBigUInt64LE(offset);
  // Most values fit in 64 bits: skip the shift and the or (two allocations fewer on a hot path).
  if (buffer.readUInt32LE(offset + 8) === 0 && buffer.readUInt32LE(offset + 12) === 0) return low;
  return low | (buffer.readBigUInt64LE(offset + 8) << 64n);
}

export function encodeRecord(
  operation: RecordOperation,
  nowNanoseconds: bigint,
  events: readonly (Account | Transfer)[],
): Buffer {
  if (events.length > batchEventsMax)
    throw new Error('assertion failed: record exceeds the batch limit');
  const buffer = Buffer.alloc(recordHeaderBytes + events.length * eventSizeBytes);
  buffer.writeUInt8(operation, 0);
  buffer.writeBigUInt64LE(nowNanoseconds, 8);
  buffer.writeUInt32LE(events.length, 16);
  let offset = recordHeaderBytes;
  for (const event of events) {
    if (operation === RecordOperation.createAccounts)
      encodeAccount(buffer, offset, event as Account);
    else encodeTransfer(buffer, offset, event as Transfer);
    offset += eventSizeBytes;
  }
  return buffer;
}

/** An account's fields; `reserved` is absent from a stored account (it is always 0 there). */
export type AccountFields = Omit<Account, 'reserved'> & { readonly reserved?: number };

/** TigerBeetle's 128-byte account layout: the journal's events and the snapshot's accounts. */
export function encodeAccount(buffer: Buffer, offset: number, account: AccountFields): void {
  writeU128(buffer, offset, account.id);
  writeU128(buffer, offset + 16, account.debits_pending);
  writeU128(buffer, offset + 32, account.debits_posted);
  writeU128(buffer, offset + 48, account.credits_pending);
  writeU128(buffer, offset + 64, account.credits_posted);
  writeU128(buffer, offset + 80, account.user_data_128);
  buffer.writeBigUInt64LE(account.user_data_64, offset + 96);
  buffer.writeUInt32LE(account.user_data_32, offset + 104);
  buffer.writeUInt32LE(account.reserved ?? 0, offset + 108);
  buffer.writeUInt32LE(account.ledger, offset + 112);
  buffer.writeUInt16LE(account.code, offset + 116);
  buffer.writeUInt16LE(account.flags, offset + 118);
  buffer.writeBigUInt64LE(account.timestamp, offset + 120);
}

function encodeTransfer(buffer: Buffer, offset: number, transfer: Transfer): void {
  writeU128(buffer, offset, transfer.id);
  writeU128(buffer, offset + 16, transfer.debit_account_id);
  writeU128(buffer, offset + 32, transfer.credit_account_id);
  writeU128(buffer, offset + 48, transfer.amount);
  writeU128(buffer, offset + 64, transfer.pending_id);
  writeU128(buffer, offset + 80, transfer.user_data_128);
  buffer.writeBigUInt64LE(transfer.user_data_64, offset + 96);
  buffer.writeUInt32LE(transfer.user_data_32, offset + 104);
  buffer.writeUInt32LE(transfer.timeout, offset + 108);
  buffer.writeUInt32LE(transfer.ledger, offset + 112);
  buffer.writeUInt16LE(transfer.code, offset + 116);
  buffer.writeUInt16LE(transfer.flags, offset + 118);
  buffer.writeBigUInt64LE(transfer.timestamp, offset + 120);
}

export function decodeAccount(buffer: Buffer, offset: number): Account {
  return {
    id: readU128(buffer, offset),
    debits_pending: readU128(buffer, offset + 16),
    debits_posted: readU128(buffer, offset + 32),
    credits_pending: readU128(buffer, offset + 48),
    credits_posted: readU128(buffer, offset + 64),
    user_data_128: readU128(buffer, offset + 80),
    user_data_64: buffer.readBigUInt64LE(offset + 96),
    user_data_32: buffer.readUInt32LE(offset + 104),
    reserved: buffer.readUInt32LE(offset + 108),
    ledger: buffer.readUInt32LE(offset + 112),
    code: buffer.readUInt16LE(offset + 116),
    flags: buffer.readUInt16LE(offset + 118),
    timestamp: buffer.readBigUInt64LE(offset + 120),
  };
}

function decodeTransfer(buffer: Buffer, offset: number): Transfer {
  return {
    id: readU128(buffer, offset),
    debit_account_id: readU128(buffer, offset + 16),
    credit_account_id: readU128(buffer, offset + 32),
    amount: readU128(buffer, offset + 48),
    pending_id: readU128(buffer, offset + 64),
    user_data_128: readU128(buffer, offset + 80),
    user_data_64: buffer.readBigUInt64LE(offset + 96),
    user_data_32: buffer.readUInt32LE(offset + 104),
    timeout: buffer.readUInt32LE(offset + 108),
    ledger: buffer.readUInt32LE(offset + 112),
    code: buffer.readUInt16LE(offset + 116),
    flags: buffer.readUInt16LE(offset + 118),
    timestamp: buffer.readBigUInt64LE(offset + 120),
  };
}

/** Splits a checksummed frame payload into records; any inconsistency is corruption. */
export function decodeRecords(payload: Buffer): JournalRecord[] {
  const records: JournalRecord[] = [];
  let offset = 0;
  while (offset < payload.length) {
    if (payload.length - offset < recordHeaderBytes)
      throw new Error('journal: truncated record header');
    const operation = payload.readUInt8(offset);
    const nowNanoseconds = payload.readBigUInt64LE(offset + 8);
    const count = payload.readUInt32LE(offset + 16);
    const end = offset + recordHeaderBytes + count * eventSizeBytes;
    if (count > batchEventsMax || end > payload.length)
      throw new Error('journal: record exceeds its frame');
    const first = offset + recordHeaderBytes;
    records.push(decodeRecord(payload, operation, nowNanoseconds, count, first));
    offset = end;
  }
  return records;
}

function decodeRecord(
  payload: Buffer,
  operation: number,
  nowNanoseconds: bigint,
  count: number,
  first: number,
): JournalRecord {
  switch (operation) {
    case RecordOperation.createAccounts: {
      const events: Account[] = [];
      for (let index = 0; index < count; index += 1)
        events.push(decodeAccount(payload, first + index * eventSizeBytes));
      return { operation, nowNanoseconds, events };
    }
    case RecordOperation.createTransfers: {
      const events: Transfer[] = [];
      for (let index = 0; index < count; index += 1)
        events.push(decodeTransfer(payload, first + index * eventSizeBytes));
      return { operation, nowNanoseconds, events };
    }
    case RecordOperation.pulse:
      if (count !== 0) throw new Error('journal: a pulse record carries events');
      return { operation, nowNanoseconds, events: [] };
    default:
      throw new Error(`journal: unknown record operation ${operation}`);
  }
}
