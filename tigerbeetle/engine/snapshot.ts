import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { decodeAccount, encodeAccount, readU128, writeU128 } from './codec';
import { nanosecondsPerSecond, u64Max } from './constants';
import { fsyncDirectory } from './journal';
import { AccountRecord } from './records';
import { BalanceList, balanceBytes, balanceWords, SlotList } from './slot-list';
import type { LedgerState } from './state';

/**
 * A snapshot of the engine's whole state beside the journal, so that a start loads it and
 * replays only the journal written after it. It is an accelerator, never the source of truth:
 * the journal stays complete, and a snapshot that is missing, damaged or not of this journal is
 * ignored (the caller warns) and the whole journal replayed.
 *
 * The state is a few large typed buffers (transfer-store.ts), so a snapshot writes them as they
 * are and a start reads them back into place: no object per transfer is created either way.
 *
 * A snapshot names the journal position it covers: the journal's id (random, in its superblock),
 * its length then, and a CRC-32 of the bytes just before that length, so a snapshot of another
 * journal, or of one that was rewritten or restored, never matches. It is written to a temporary
 * file, fsync'd, renamed over the old one and the directory fsync'd, so it is whole or absent.
 *
 * Header (256 bytes, little-endian): magic u32 | version u32 | journal id u128 | journal bytes
 *   u64 | journal tail crc32 u32 | section count u32 | last timestamp u64 | accounts u64 |
 *   transfers u64 | orphaned ids u64 | balances u64 | id index buckets u64 | zeros |
 *   section table at byte 96 (per
 *   section: bytes u64, crc32 u32, 4 zero bytes) | zeros | header crc32 u32 at byte 252.
 * Sections, in this order, each starting on an 8-byte boundary (zero padding between):
 *   accounts       128 bytes each, TigerBeetle's Account layout with the current balances
 *   list lengths   per account: debit transfers u32, credit transfers u32
 *   transfers      128 bytes each, TigerBeetle's Transfer layout, in slot (timestamp) order
 *   statuses       the pending status of each transfer, u8
 *   account slots  per account: its debit transfer slots, then its credit ones, u32 each
 *   balances       per history account: the balances after each debit, then each credit
 *                  transfer, 64 bytes each (four u128)
 *   orphaned ids   ids bound to a transient failure, u128 each
 *   index slots    the id index's buckets (id-index.ts): slot + 1 or 0, u32 each
 *   index hashes   the id index's buckets: the id's hash, u32 each
 * Saving the id index costs 8 bytes per bucket but spares the start rebuilding it (hashing and
 * placing every id), which took most of a start from the snapshot.
 */
const snapshotMagic = 0x4e534254; // "TBSN" in little-endian bytes.
const snapshotVersion = 1;
const headerBytes = 256;
const sectionTableOffset = 96;
const sectionEntryBytes = 16;
const headerCrcOffset = headerBytes - 4;
const accountBytes = 128;
const transferBytes = 128;
const orphanedIdBytes = 16;
/** Small pieces (an account's list) are gathered into writes of this size. */
export const snapshotWriteBufferBytes = 1024 * 1024;

const Section = {
  accounts: 0,
  listLengths: 1,
  transfers: 2,
  statuses: 3,
  accountSlots: 4,
  balances: 5,
  orphanedIds: 6,
  indexSlots: 7,
  indexHashes: 8,
} as const;
const sectionCount = 9;
if (sectionTableOffset + sectionCount * sectionEntryBytes > headerCrcOffset)
  throw new Error('assertion failed: the snapshot section table must fit in its header');

/** Where a snapshot's state stands in its journal. */
export interface JournalPosition {
  readonly journalId: bigint;
  /** The journal's length when the snapshot was taken: replay resumes here. */
  readonly journalBytes: number;
  /** CRC-32 of the journal's `journalTailCrcBytes` before `journalBytes`. */
  readonly journalTailCrc: number;
}

export interface SnapshotHeader extends JournalPosition {
  readonly lastTimestamp: bigint;
  readonly accounts: number;
  readonly transfers: number;
  readonly orphanedIds: number;
  readonly balances: number;
  readonly indexBuckets: number;
  readonly sections: readonly { readonly bytes: number; readonly crc: number }[];
}

export function snapshotPathOf(dataFile: string): string {
  return `${dataFile}.snapshot`;
}

function temporaryPathOf(snapshotPath: string): string {
  return `${snapshotPath}.tmp`;
}

/** Removes what a snapshot write that crashed may have left (call with the data file locked). */
export function removeStaleSnapshotWrite(snapshotPath: string): void {
  fs.rmSync(temporaryPathOf(snapshotPath), { force: true });
}

function checkLittleEndian(): void {
  // The store's typed arrays use the platform's byte order; the file's layout is little-endian.
  if (os.endianness() !== 'LE') throw new Error('snapshots need a little-endian platform');
}

/** Bytes of every section, from the counts (what a reader expects). */
function sectionBytesOf(header: Omit<SnapshotHeader, 'sections'>): number[] {
  const { accounts, transfers, balances, orphanedIds, indexBuckets } = header;
  const bytes = new Array<number>(sectionCount);
  bytes[Section.accounts] = accounts * accountBytes;
  bytes[Section.listLengths] = accounts * 8;
  bytes[Section.transfers] = transfers * transferBytes;
  bytes[Section.statuses] = transfers;
  bytes[Section.accountSlots] = transfers * 2 * 4; // every transfer is in two accounts' lists
  bytes[Section.balances] = balances * balanceBytes;
  bytes[Section.orphanedIds] = orphanedIds * orphanedIdBytes;
  bytes[Section.indexSlots] = indexBuckets * 4;
  bytes[Section.indexHashes] = indexBuckets * 4;
  return bytes;
}

function padded(bytes: number): number {
  return Math.ceil(bytes / 8) * 8;
}

/** Writes the state as of `position` atomically (temporary file, fsync, rename, directory fsync). */
export function writeSnapshot(
  snapshotPath: string,
  state: LedgerState,
  position: JournalPosition,
): void {
  checkLittleEndian();
  if (state.chainOpen) throw new Error('assertion failed: a snapshot inside a linked chain');
  const temporaryPath = temporaryPathOf(snapshotPath);
  const fileDescriptor = fs.openSync(temporaryPath, 'w');
  try {
    const writer = new SectionWriter(fileDescriptor, headerBytes);
    const sections = sectionParts(state).map((parts) => writer.section(parts));
    writer.finish();
    const header: SnapshotHeader = {
      ...position,
      lastTimestamp: state.lastTimestamp,
      accounts: state.accountsByTimestamp.length,
      transfers: state.transfers.length,
      orphanedIds: state.orphanedTransferIds.size,
      balances: sections[Section.balances].bytes / balanceBytes,
      indexBuckets: sections[Section.indexSlots].bytes / 4,
      sections,
    };
    writeExactly(fileDescriptor, encodeHeader(header), 0);
    fs.fsyncSync(fileDescriptor);
  } catch (error) {
    fs.closeSync(fileDescriptor);
    fs.rmSync(temporaryPath, { force: true });
    throw error;
  }
  fs.closeSync(fileDescriptor);
  fs.renameSync(temporaryPath, snapshotPath);
  fsyncDirectory(path.dirname(snapshotPath));
}

/** Every section's bytes as views of the state (copies only for the small account parts). */
function sectionParts(state: LedgerState): Uint8Array[][] {
  const accounts = state.accountsByTimestamp;
  const encodedAccounts = Buffer.alloc(accounts.length * accountBytes);
  const listLengths = new Uint32Array(accounts.length * 2);
  const slots: Uint8Array[] = [];
  const balances: Uint8Array[] = [];
  accounts.forEach((account, index) => {
    encodeAccount(encodedAccounts, index * accountBytes, account);
    listLengths[index * 2] = account.debitTransfers.length;
    listLengths[index * 2 + 1] = account.creditTransfers.length;
    slots.push(bytesOf(account.debitTransfers.view()), bytesOf(account.creditTransfers.view()));
    if (account.debitBalances !== null && account.creditBalances !== null) {
      balances.push(bytesOf(account.debitBalances.view()), bytesOf(account.creditBalances.view()));
    }
  });
  const orphaned = Buffer.alloc(state.orphanedTransferIds.size * orphanedIdBytes);
  let offset = 0;
  for (const id of state.orphanedTransferIds) {
    orphaned.writeBigUInt64LE(id & u64Max, offset);
    orphaned.writeBigUInt64LE(id >> 64n, offset + 8);
    offset += orphanedIdBytes;
  }
  const parts = new Array<Uint8Array[]>(sectionCount);
  parts[Section.accounts] = [encodedAccounts];
  parts[Section.listLengths] = [bytesOf(listLengths)];
  parts[Section.transfers] = state.transfers.recordViews();
  parts[Section.statuses] = state.transfers.statusViews();
  parts[Section.accountSlots] = slots;
  parts[Section.balances] = balances;
  parts[Section.orphanedIds] = [orphaned];
  const index = state.transfers.indexViews();
  parts[Section.indexSlots] = [bytesOf(index.slots)];
  parts[Section.indexHashes] = [bytesOf(index.hashes)];
  return parts;
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** The snapshot's header; null when there is no snapshot. Throws when it is damaged. */
export function readSnapshotHeader(snapshotPath: string): SnapshotHeader | null {
  if (!fs.existsSync(snapshotPath)) return null;
  checkLittleEndian();
  const fileDescriptor = fs.openSync(snapshotPath, 'r');
  try {
    const bytes = Buffer.alloc(headerBytes);
    if (fs.readSync(fileDescriptor, bytes, 0, headerBytes, 0) !== headerBytes)
      throw new Error('its header is short');
    const header = decodeHeader(bytes);
    const expected = sectionBytesOf(header);
    let end = headerBytes;
    header.sections.forEach((section, index) => {
      if (section.bytes !== expected[index])
        throw new Error(`its section ${index} does not match the counts in its header`);
      end += padded(section.bytes);
    });
    if (fs.fstatSync(fileDescriptor).size !== end)
      throw new Error(`it is ${fs.fstatSync(fileDescriptor).size} bytes, not ${end}`);
    return header;
  } finally {
    fs.closeSync(fileDescriptor);
  }
}

/**
 * Loads a snapshot into an empty state, every section checked against its CRC-32 before use.
 * Throws on any damage; the caller then discards the state.
 */
export function loadSnapshot(
  snapshotPath: string,
  header: SnapshotHeader,
  state: LedgerState,
): void {
  if (state.accounts.size !== 0 || state.transfers.length !== 0)
    throw new Error('assertion failed: loading a snapshot into a used state');
  const fileDescriptor = fs.openSync(snapshotPath, 'r');
  try {
    const reader = new SectionReader(fileDescriptor, header);
    const accounts = reader.read(
      Section.accounts,
      Buffer.alloc(header.sections[Section.accounts].bytes),
    );
    const listLengths = reader.read(Section.listLengths, new Uint32Array(header.accounts * 2));
    const loading = state.transfers.beginLoad(header.transfers, header.indexBuckets);
    reader.readInto(Section.transfers, loading.records);
    reader.readInto(Section.statuses, loading.statuses);
    reader.read(Section.indexSlots, loading.indexSlots);
    reader.read(Section.indexHashes, loading.indexHashes);
    const slots = reader.read(Section.accountSlots, new Uint32Array(header.transfers * 2));
    const balances = reader.read(
      Section.balances,
      new BigUint64Array(header.balances * balanceWords),
    );
    const orphaned = reader.read(
      Section.orphanedIds,
      Buffer.alloc(header.orphanedIds * orphanedIdBytes),
    );
    state.transfers.finishLoad();
    loadAccounts(state, accounts, listLengths, slots, balances);
    for (let offset = 0; offset < orphaned.length; offset += orphanedIdBytes) {
      state.orphanedTransferIds.add(
        orphaned.readBigUInt64LE(offset) | (orphaned.readBigUInt64LE(offset + 8) << 64n),
      );
    }
  } finally {
    fs.closeSync(fileDescriptor);
  }
  queuePendingExpiries(state);
  state.lastTimestamp = header.lastTimestamp;
}

function loadAccounts(
  state: LedgerState,
  accounts: Buffer,
  listLengths: Uint32Array,
  slots: Uint32Array,
  balances: BigUint64Array,
): void {
  let slotAt = 0;
  let balanceAt = 0;
  const takeSlots = (count: number): SlotList => {
    if (slotAt + count > slots.length)
      throw new Error('its account lists are longer than its transfers');
    checkAscending(slots, slotAt, count, state.transfers.length);
    slotAt += count;
    return new SlotList(slots, slotAt - count, count);
  };
  const takeBalances = (count: number): BalanceList => {
    if (balanceAt + count * balanceWords > balances.length)
      throw new Error('its balances are fewer than its history accounts need');
    balanceAt += count * balanceWords;
    return new BalanceList(balances, balanceAt - count * balanceWords, count);
  };
  for (let index = 0; index < listLengths.length / 2; index += 1) {
    const account = AccountRecord.fromAccount(decodeAccount(accounts, index * accountBytes));
    if (state.accounts.has(account.id)) throw new Error(`it repeats account ${account.id}`);
    account.debitTransfers = takeSlots(listLengths[index * 2]);
    account.creditTransfers = takeSlots(listLengths[index * 2 + 1]);
    if (account.debitBalances !== null) {
      account.debitBalances = takeBalances(account.debitTransfers.length);
      account.creditBalances = takeBalances(account.creditTransfers.length);
    }
    state.insertAccount(account);
  }
  if (slotAt !== slots.length || balanceAt !== balances.length)
    throw new Error('its account lists do not add up to its transfers and balances');
}

/** An account's transfer slots must be in timestamp order, which is slot order. */
function checkAscending(
  slots: Uint32Array,
  start: number,
  count: number,
  transferCount: number,
): void {
  let previous = -1;
  for (let index = start; index < start + count; index += 1) {
    const slot = slots[index];
    if (slot <= previous || slot >= transferCount)
      throw new Error('an account lists a transfer out of order or out of range');
    previous = slot;
  }
}

/** The expiry queue is not saved: it is every pending transfer with a timeout. */
function queuePendingExpiries(state: LedgerState): void {
  const store = state.transfers;
  for (const slot of store.pendingSlots()) {
    const timeout = store.timeout(slot);
    if (timeout === 0) continue;
    state.expiryQueue.push(store.timestamp(slot) + BigInt(timeout) * nanosecondsPerSecond, slot);
  }
}

function encodeHeader(header: SnapshotHeader): Buffer {
  const bytes = Buffer.alloc(headerBytes);
  bytes.writeUInt32LE(snapshotMagic, 0);
  bytes.writeUInt32LE(snapshotVersion, 4);
  writeU128(bytes, 8, header.journalId);
  bytes.writeBigUInt64LE(BigInt(header.journalBytes), 24);
  bytes.writeUInt32LE(header.journalTailCrc, 32);
  bytes.writeUInt32LE(sectionCount, 36);
  bytes.writeBigUInt64LE(header.lastTimestamp, 40);
  bytes.writeBigUInt64LE(BigInt(header.accounts), 48);
  bytes.writeBigUInt64LE(BigInt(header.transfers), 56);
  bytes.writeBigUInt64LE(BigInt(header.orphanedIds), 64);
  bytes.writeBigUInt64LE(BigInt(header.balances), 72);
  bytes.writeBigUInt64LE(BigInt(header.indexBuckets), 80);
  header.sections.forEach((section, index) => {
    const entry = sectionTableOffset + index * sectionEntryBytes;
    bytes.writeBigUInt64LE(BigInt(section.bytes), entry);
    bytes.writeUInt32LE(section.crc, entry + 8);
  });
  bytes.writeUInt32LE(crc32(bytes.subarray(0, headerCrcOffset)), headerCrcOffset);
  return bytes;
}

function decodeHeader(bytes: Buffer): SnapshotHeader {
  if (bytes.readUInt32LE(0) !== snapshotMagic) throw new Error('it is not a snapshot (bad magic)');
  if (bytes.readUInt32LE(headerCrcOffset) !== crc32(bytes.subarray(0, headerCrcOffset)))
    throw new Error('its header checksum does not match');
  const version = bytes.readUInt32LE(4);
  if (version !== snapshotVersion)
    throw new Error(`it has format ${version}, not ${snapshotVersion}`);
  if (bytes.readUInt32LE(36) !== sectionCount)
    throw new Error(`it has ${bytes.readUInt32LE(36)} sections, not ${sectionCount}`);
  const count = (offset: number): number => {
    const value = bytes.readBigUInt64LE(offset);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('a count out of range');
    return Number(value);
  };
  return {
    journalId: readU128(bytes, 8),
    journalBytes: count(24),
    journalTailCrc: bytes.readUInt32LE(32),
    lastTimestamp: bytes.readBigUInt64LE(40),
    accounts: count(48),
    transfers: count(56),
    orphanedIds: count(64),
    balances: count(72),
    indexBuckets: count(80),
    sections: Array.from({ length: sectionCount }, (_, index) => {
      const entry = sectionTableOffset + index * sectionEntryBytes;
      return { bytes: count(entry), crc: bytes.readUInt32LE(entry + 8) };
    }),
  };
}

/** Writes sections one after another, each 8-byte aligned, gathering small parts into one write. */
class SectionWriter {
  private readonly buffer = Buffer.alloc(snapshotWriteBufferBytes);
  private buffered = 0;

  constructor(
    private readonly fileDescriptor: number,
    private position: number,
  ) {}

  section(parts: readonly Uint8Array[]): { bytes: number; crc: number } {
    let crc = 0;
    let bytes = 0;
    for (const part of parts) {
      crc = crc32Continued(part, crc);
      bytes += part.length;
      this.write(part);
    }
    this.write(new Uint8Array(padded(bytes) - bytes));
    return { bytes, crc };
  }

  finish(): void {
    this.flush();
  }

  private write(part: Uint8Array): void {
    if (part.length > this.buffer.length - this.buffered) this.flush();
    if (part.length >= this.buffer.length) {
      writeExactly(this.fileDescriptor, part, this.position);
      this.position += part.length;
      return;
    }
    this.buffer.set(part, this.buffered);
    this.buffered += part.length;
  }

  private flush(): void {
    if (this.buffered === 0) return;
    writeExactly(this.fileDescriptor, this.buffer.subarray(0, this.buffered), this.position);
    this.position += this.buffered;
    this.buffered = 0;
  }
}

/** Reads sections straight into their destination buffers, checking each one's CRC-32. */
class SectionReader {
  private readonly offsets: number[] = [];

  constructor(
    private readonly fileDescriptor: number,
    private readonly header: SnapshotHeader,
  ) {
    let offset = headerBytes;
    for (const section of header.sections) {
      this.offsets.push(offset);
      offset += padded(section.bytes);
    }
  }

  read<View extends ArrayBufferView>(section: number, destination: View): View {
    this.readInto(section, [bytesOf(destination)]);
    return destination;
  }

  readInto(section: number, destinations: readonly Uint8Array[]): void {
    const expected = this.header.sections[section];
    let position = this.offsets[section];
    let crc = 0;
    let bytes = 0;
    for (const destination of destinations) {
      readExactly(this.fileDescriptor, destination, position);
      crc = crc32Continued(destination, crc);
      position += destination.length;
      bytes += destination.length;
    }
    if (bytes !== expected.bytes)
      throw new Error(`assertion failed: section ${section} read ${bytes} bytes`);
    if (crc !== expected.crc) throw new Error(`its section ${section} checksum does not match`);
  }
}

/**
 * The CRC-32 of `previous`'s bytes followed by `bytes`. Skips empty views: Node 20's zlib.crc32
 * answers 0 for an empty view of a zero-length buffer whatever the starting value.
 */
function crc32Continued(bytes: Uint8Array, previous: number): number {
  return bytes.length === 0 ? previous : crc32(bytes, previous);
}

function writeExactly(fileDescriptor: number, bytes: Uint8Array, position: number): void {
  let written = 0;
  while (written < bytes.length)
    written += fs.writeSync(
      fileDescriptor,
      bytes,
      written,
      bytes.length - written,
      position + written,
    );
}

function readExactly(fileDescriptor: number, destination: Uint8Array, position: number): void {
  let read = 0;
  while (read < destination.length) {
    const count = fs.readSync(
      fileDescriptor,
      destination,
      read,
      destination.length - read,
      position + read,
    );
    if (count === 0) throw new Error('it ends early');
    read += count;
  }
}
