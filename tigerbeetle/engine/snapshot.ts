import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from './checksum';
import { encodeTransfer, readU128, writeU128 } from './codec';
import { nanosecondsPerSecond } from './constants';
import { AccountRecord, PendingStatus, TransferRecord } from './records';
import type { LedgerState } from './state';

/**
 * A snapshot of the engine's whole state, so that a start loads it and replays only the journal
 * written after it, instead of every request since the ledger began. It is an accelerator, never
 * the source of truth: the journal stays complete, and a snapshot that is missing, damaged or not
 * of this journal is ignored and the whole journal replayed.
 *
 * A snapshot names the journal position it covers: the journal's id (random, in its superblock),
 * its byte length, and a CRC-32 of the bytes just before that length (`journalTailCrcBytes`), so a
 * snapshot of another or a rewritten journal never matches. It is written to a temporary file, fsync'd and renamed, so it is whole or absent.
 *
 * Header (80 bytes): magic u32 | version u32 | journal bytes u64 | journal tail crc32 u32 | 4 zero |
 *   last timestamp u64 | accounts u64 | transfers u64 | orphaned ids u64 | journal id u128 |
 *   4 zero | header crc32 u32
 * Then chunks: kind u32 | entries u32 | payload bytes u32 | payload crc32 u32 | payload
 *   accounts:  128 bytes each, TigerBeetle's Account layout with the current balances and flags
 *   transfers: TigerBeetle's Transfer layout, pending status u8, history sides u8, 6 zero bytes,
 *              then 64 bytes (4 x u128 balances) for each side that keeps history
 *   orphaned transfer ids: 16 bytes each
 */
export const snapshotChunkBytesMax = 4 * 1024 * 1024;
const snapshotMagic = 0x53534254; // "TBSS" in little-endian bytes.
const snapshotVersion = 1;
const headerBytes = 80;
const chunkHeaderBytes = 16;
const accountEntryBytes = 128;
const transferEntryBytes = 136;
const balanceBytes = 64;
const historyDebit = 1;
const historyCredit = 2;
const ChunkKind = { accounts: 1, transfers: 2, orphanedIds: 3 } as const;
type ChunkKind = (typeof ChunkKind)[keyof typeof ChunkKind];

export interface JournalPosition {
  readonly journalId: bigint;
  readonly journalBytes: number;
  readonly journalTailCrc: number;
}

export interface SnapshotHeader extends JournalPosition {
  readonly lastTimestamp: bigint;
  readonly accounts: number;
  readonly transfers: number;
  readonly orphanedIds: number;
}

export function snapshotPathOf(dataFile: string): string {
  return `${dataFile}.snapshot`;
}

/** Writes the state as of `position` atomically (temporary file, fsync, rename, directory fsync). */
export function writeSnapshot(snapshotPath: string, state: LedgerState, position: JournalPosition): void {
  const temporaryPath = `${snapshotPath}.tmp`;
  const fileDescriptor = fs.openSync(temporaryPath, 'w');
  try {
    const writer = new ChunkWriter(fileDescriptor, headerBytes);
    for (const account of state.accountsByTimestamp) writer.add(ChunkKind.accounts, accountEntryBytes, (buffer, offset) => encodeAccountRecord(buffer, offset, account));
    for (const transfer of state.transfersByTimestamp) writer.add(ChunkKind.transfers, transferBytes(transfer), (buffer, offset) => encodeTransferRecord(buffer, offset, transfer));
    for (const id of state.orphanedTransferIds) writer.add(ChunkKind.orphanedIds, 16, (buffer, offset) => writeU128(buffer, offset, id));
    writer.finish();
    const header: SnapshotHeader = {
      ...position,
      lastTimestamp: state.lastTimestamp,
      accounts: state.accountsByTimestamp.length,
      transfers: state.transfersByTimestamp.length,
      orphanedIds: state.orphanedTransferIds.size,
    };
    fs.writeSync(fileDescriptor, encodeHeader(header), 0, headerBytes, 0);
    fs.fsyncSync(fileDescriptor);
  } finally {
    fs.closeSync(fileDescriptor);
  }
  fs.renameSync(temporaryPath, snapshotPath);
  const directory = fs.openSync(path.dirname(snapshotPath), 'r');
  try {
    fs.fsyncSync(directory);
  } finally {
    fs.closeSync(directory);
  }
}

/** The snapshot's header; null when there is no snapshot. Throws when it is damaged. */
export function readSnapshotHeader(snapshotPath: string): SnapshotHeader | null {
  if (!fs.existsSync(snapshotPath)) return null;
  const fileDescriptor = fs.openSync(snapshotPath, 'r');
  try {
    const bytes = Buffer.alloc(headerBytes);
    if (fs.readSync(fileDescriptor, bytes, 0, headerBytes, 0) !== headerBytes) throw new Error('the header is short');
    return decodeHeader(bytes);
  } finally {
    fs.closeSync(fileDescriptor);
  }
}

/** Loads a snapshot into an empty state, one chunk at a time. Throws on any damage; the caller then discards the state. */
export function loadSnapshot(snapshotPath: string, header: SnapshotHeader, state: LedgerState): void {
  if (state.accounts.size !== 0 || state.transfers.size !== 0) throw new Error('assertion failed: loading a snapshot into a used state');
  const fileDescriptor = fs.openSync(snapshotPath, 'r');
  try {
    const fileBytes = fs.fstatSync(fileDescriptor).size;
    const counts = { accounts: 0, transfers: 0, orphanedIds: 0 };
    const chunkHeader = Buffer.alloc(chunkHeaderBytes);
    for (let offset = headerBytes; offset < fileBytes; ) {
      if (fileBytes - offset < chunkHeaderBytes) throw new Error(`a short chunk header at byte ${offset}`);
      fs.readSync(fileDescriptor, chunkHeader, 0, chunkHeaderBytes, offset);
      const payloadBytes = chunkHeader.readUInt32LE(8);
      if (payloadBytes > snapshotChunkBytesMax || offset + chunkHeaderBytes + payloadBytes > fileBytes) throw new Error(`a short chunk at byte ${offset}`);
      const payload = Buffer.alloc(payloadBytes);
      if (fs.readSync(fileDescriptor, payload, 0, payloadBytes, offset + chunkHeaderBytes) !== payloadBytes) throw new Error(`a short read at byte ${offset}`);
      if (crc32(payload) !== chunkHeader.readUInt32LE(12)) throw new Error(`a checksum mismatch in the chunk at byte ${offset}`);
      loadChunk(state, chunkHeader.readUInt32LE(0) as ChunkKind, chunkHeader.readUInt32LE(4), payload, counts);
      offset += chunkHeaderBytes + payloadBytes;
    }
    if (counts.accounts !== header.accounts || counts.transfers !== header.transfers || counts.orphanedIds !== header.orphanedIds) {
      throw new Error('its entry counts do not match its header');
    }
  } finally {
    fs.closeSync(fileDescriptor);
  }
  state.lastTimestamp = header.lastTimestamp;
}

function loadChunk(state: LedgerState, kind: ChunkKind, entries: number, payload: Buffer, counts: { accounts: number; transfers: number; orphanedIds: number }): void {
  let offset = 0;
  for (let entry = 0; entry < entries; entry += 1) {
    switch (kind) {
      case ChunkKind.accounts:
        state.insertAccount(decodeAccountRecord(payload, offset));
        offset += accountEntryBytes;
        counts.accounts += 1;
        break;
      case ChunkKind.transfers:
        offset = loadTransfer(state, payload, offset);
        counts.transfers += 1;
        break;
      case ChunkKind.orphanedIds:
        state.orphanedTransferIds.add(readU128(payload, offset));
        offset += 16;
        counts.orphanedIds += 1;
        break;
      default:
        throw new Error(`an unknown chunk kind ${kind as number}`);
    }
  }
  if (offset !== payload.length) throw new Error('a chunk whose entries do not fill it');
}

/** Inserts one transfer with its indexes (account lists, expiry queue) as the state machine would. */
function loadTransfer(state: LedgerState, payload: Buffer, offset: number): number {
  const record = decodeTransferRecord(payload, offset);
  const debit = state.accounts.get(record.debit_account_id);
  const credit = state.accounts.get(record.credit_account_id);
  if (debit === undefined || credit === undefined) throw new Error(`transfer ${record.id} names an account the snapshot lacks`);
  state.insertTransfer(record, debit, credit);
  const history = payload.readUInt8(offset + 129);
  let next = offset + transferEntryBytes;
  if ((history & historyDebit) !== 0) {
    record.debitBalance = decodeBalance(payload, next, record.timestamp);
    next += balanceBytes;
  }
  if ((history & historyCredit) !== 0) {
    record.creditBalance = decodeBalance(payload, next, record.timestamp);
    next += balanceBytes;
  }
  if (record.pendingStatus === PendingStatus.pending && record.timeout > 0) {
    state.expiryQueue.push(record.timestamp + BigInt(record.timeout) * nanosecondsPerSecond, record);
  }
  return next;
}

function transferBytes(transfer: TransferRecord): number {
  return transferEntryBytes + (transfer.debitBalance ? balanceBytes : 0) + (transfer.creditBalance ? balanceBytes : 0);
}

function encodeTransferRecord(buffer: Buffer, offset: number, transfer: TransferRecord): void {
  encodeTransfer(buffer, offset, transfer);
  buffer.writeUInt8(transfer.pendingStatus, offset + 128);
  buffer.writeUInt8((transfer.debitBalance ? historyDebit : 0) | (transfer.creditBalance ? historyCredit : 0), offset + 129);
  let next = offset + transferEntryBytes;
  for (const balance of [transfer.debitBalance, transfer.creditBalance]) {
    if (balance === null) continue;
    writeU128(buffer, next, balance.debits_pending);
    writeU128(buffer, next + 16, balance.debits_posted);
    writeU128(buffer, next + 32, balance.credits_pending);
    writeU128(buffer, next + 48, balance.credits_posted);
    next += balanceBytes;
  }
}

function decodeTransferRecord(buffer: Buffer, offset: number): TransferRecord {
  const pendingStatus = buffer.readUInt8(offset + 128);
  if (pendingStatus > PendingStatus.expired) throw new Error(`an unknown pending status ${pendingStatus}`);
  return new TransferRecord(
    readU128(buffer, offset),
    readU128(buffer, offset + 16),
    readU128(buffer, offset + 32),
    readU128(buffer, offset + 48),
    readU128(buffer, offset + 64),
    readU128(buffer, offset + 80),
    buffer.readBigUInt64LE(offset + 96),
    buffer.readUInt32LE(offset + 104),
    buffer.readUInt32LE(offset + 108),
    buffer.readUInt32LE(offset + 112),
    buffer.readUInt16LE(offset + 116),
    buffer.readUInt16LE(offset + 118),
    buffer.readBigUInt64LE(offset + 120),
    pendingStatus as PendingStatus,
  );
}

function decodeBalance(buffer: Buffer, offset: number, timestamp: bigint) {
  return {
    debits_pending: readU128(buffer, offset),
    debits_posted: readU128(buffer, offset + 16),
    credits_pending: readU128(buffer, offset + 32),
    credits_posted: readU128(buffer, offset + 48),
    timestamp,
  };
}

function encodeAccountRecord(buffer: Buffer, offset: number, account: AccountRecord): void {
  writeU128(buffer, offset, account.id);
  writeU128(buffer, offset + 16, account.debits_pending);
  writeU128(buffer, offset + 32, account.debits_posted);
  writeU128(buffer, offset + 48, account.credits_pending);
  writeU128(buffer, offset + 64, account.credits_posted);
  writeU128(buffer, offset + 80, account.user_data_128);
  buffer.writeBigUInt64LE(account.user_data_64, offset + 96);
  buffer.writeUInt32LE(account.user_data_32, offset + 104);
  buffer.writeUInt32LE(account.ledger, offset + 112);
  buffer.writeUInt16LE(account.code, offset + 116);
  buffer.writeUInt16LE(account.flags, offset + 118);
  buffer.writeBigUInt64LE(account.timestamp, offset + 120);
}

function decodeAccountRecord(buffer: Buffer, offset: number): AccountRecord {
  const record = new AccountRecord(
    readU128(buffer, offset),
    readU128(buffer, offset + 80),
    buffer.readBigUInt64LE(offset + 96),
    buffer.readUInt32LE(offset + 104),
    buffer.readUInt32LE(offset + 112),
    buffer.readUInt16LE(offset + 116),
    buffer.readUInt16LE(offset + 118),
    buffer.readBigUInt64LE(offset + 120),
  );
  record.debits_pending = readU128(buffer, offset + 16);
  record.debits_posted = readU128(buffer, offset + 32);
  record.credits_pending = readU128(buffer, offset + 48);
  record.credits_posted = readU128(buffer, offset + 64);
  return record;
}

function encodeHeader(header: SnapshotHeader): Buffer {
  const bytes = Buffer.alloc(headerBytes);
  bytes.writeUInt32LE(snapshotMagic, 0);
  bytes.writeUInt32LE(snapshotVersion, 4);
  bytes.writeBigUInt64LE(BigInt(header.journalBytes), 8);
  bytes.writeUInt32LE(header.journalTailCrc, 16);
  bytes.writeBigUInt64LE(header.lastTimestamp, 24);
  bytes.writeBigUInt64LE(BigInt(header.accounts), 32);
  bytes.writeBigUInt64LE(BigInt(header.transfers), 40);
  bytes.writeBigUInt64LE(BigInt(header.orphanedIds), 48);
  writeU128(bytes, 56, header.journalId);
  bytes.writeUInt32LE(crc32(bytes.subarray(0, 76)), 76);
  return bytes;
}

function decodeHeader(bytes: Buffer): SnapshotHeader {
  if (bytes.readUInt32LE(0) !== snapshotMagic) throw new Error('it is not a snapshot (bad magic)');
  if (bytes.readUInt32LE(76) !== crc32(bytes.subarray(0, 76))) throw new Error('its header checksum does not match');
  if (bytes.readUInt32LE(4) !== snapshotVersion) throw new Error(`it has format ${bytes.readUInt32LE(4)}, not ${snapshotVersion}`);
  return {
    journalBytes: Number(bytes.readBigUInt64LE(8)),
    journalTailCrc: bytes.readUInt32LE(16),
    lastTimestamp: bytes.readBigUInt64LE(24),
    accounts: Number(bytes.readBigUInt64LE(32)),
    transfers: Number(bytes.readBigUInt64LE(40)),
    orphanedIds: Number(bytes.readBigUInt64LE(48)),
    journalId: readU128(bytes, 56),
  };
}

/** Groups entries of one kind into checksummed chunks of at most `snapshotChunkBytesMax`. */
class ChunkWriter {
  private buffer = Buffer.alloc(snapshotChunkBytesMax);
  private kind: ChunkKind | null = null;
  private entries = 0;
  private used = chunkHeaderBytes;

  constructor(
    private readonly fileDescriptor: number,
    private position: number,
  ) {}

  add(kind: ChunkKind, entryBytes: number, encode: (buffer: Buffer, offset: number) => void): void {
    if (this.kind !== kind || this.used + entryBytes > this.buffer.length) this.flush();
    this.kind = kind;
    encode(this.buffer, this.used);
    this.used += entryBytes;
    this.entries += 1;
  }

  finish(): void {
    this.flush();
  }

  private flush(): void {
    if (this.kind === null || this.entries === 0) return;
    const payloadBytes = this.used - chunkHeaderBytes;
    this.buffer.writeUInt32LE(this.kind, 0);
    this.buffer.writeUInt32LE(this.entries, 4);
    this.buffer.writeUInt32LE(payloadBytes, 8);
    this.buffer.writeUInt32LE(crc32(this.buffer.subarray(chunkHeaderBytes, this.used)), 12);
    let written = 0;
    while (written < this.used) written += fs.writeSync(this.fileDescriptor, this.buffer, written, this.used - written, this.position + written);
    this.position += this.used;
    this.buffer.fill(0, 0, this.used);
    this.used = chunkHeaderBytes;
    this.entries = 0;
  }
}
