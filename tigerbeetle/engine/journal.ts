import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from './checksum';
import { u64Max } from './constants';
import { decodeRecords, type JournalRecord } from './codec';

/**
 * An append-only journal of committed requests, in one file:
 *
 *   bytes [0, journalDataStartBytes): two superblock copies, written alternately
 *   bytes [journalDataStartBytes, ...): frames, one or more per write
 *
 * Superblock: magic u32 | version u32 | sequence u64 | committed bytes u64 | last write start u64 |
 *             journal id u128 (random, set when the file is created) | 4 zero bytes |
 *             crc32 u32 (of the first 52 bytes). Version 2 had no id (crc32 at byte 36); such a
 *             file gets an id on its next open.
 * Frame:      magic u32 | payload bytes u32 | payload crc32 u32 | header crc32 u32 | payload
 *
 * Every flush appends its frames, then writes the next superblock copy (the file's new length, and
 * where this write began), then fsyncs once. A crash can only damage the last write, and the
 * superblock says where that write began: on open, a damaged frame at or after that offset is a
 * torn write and is cut away (and reported); anything missing or damaged before it was
 * acknowledged to a client, so opening fails rather than silently lose it. A torn superblock write
 * leaves the other copy, one write older, which only widens what counts as the last write.
 *
 * A snapshot of the state (snapshot.ts) may let the open skip the frames it covers: `open` asks
 * its loader, which names the journal position the snapshot covers, and replays only what follows.
 */
export const journalFrameBytesMax = 64 * 1024 * 1024;
/** Frames start here; the superblock copies live before it. */
export const journalDataStartBytes = 4096;
const frameHeaderBytes = 16;
const frameMagic = 0x4a454254; // "TBEJ" in little-endian bytes.
const superblockMagic = 0x53454254; // "TBES" in little-endian bytes.
const superblockVersion = 3;
const superblockBytes = 56;
/** Version 2: the same fields without the journal id. */
const superblockVersionWithoutId = 2;
const superblockBytesWithoutId = 40;
/** A snapshot names its journal position by the length and a CRC-32 of this many bytes before it. */
export const journalTailCrcBytes = 64;
/** The second copy starts on its own 2 KiB half, so one torn sector cannot damage both. */
const superblockCopyOffsets = [0, 2048] as const;
const zeroScanChunkBytes = 64 * 1024;

type FrameRead =
  { kind: 'frame'; payload: Buffer; nextOffset: number } | { kind: 'damaged'; reason: string };
export type DurableCallback = (error: Error | null) => void;

interface Superblock {
  readonly sequence: bigint;
  /** Names this journal, so a snapshot of another one is never loaded over it (null: version 2). */
  readonly journalId: bigint | null;
  /** The file's length after the last write. */
  readonly committedBytes: number;
  /** Where the last write began: everything before it was fsync'd by an earlier flush. */
  readonly lastWriteStartBytes: number;
}

/** This journal as a snapshot loader sees it, before anything is replayed. */
export interface JournalIdentity {
  readonly journalId: bigint;
  /** CRC-32 of the `journalTailCrcBytes` before `offset`; null when `offset` is not in the file. */
  tailCrcAt(offset: number): number | null;
}

/**
 * Called once the file is locked and its superblock read: loads a snapshot if it is of this
 * journal and returns the journal offset it covers, or null to replay from the start.
 */
export type SnapshotLoader = (journal: JournalIdentity) => number | null;

/** What opening found and did, for the operator: a cut is never silent. */
export interface JournalOpenReport {
  /** Bytes cut away at the end: a torn last write (0 if none). */
  readonly cutBytes: number;
  /** Where the cut began (the end of the last whole frame). */
  readonly cutAtByte: number;
  /** Why the first cut frame was unusable. */
  readonly cutReason: string | null;
  /** An old journal without a superblock was rewritten in the current format. */
  readonly upgradedFromVersion: number | null;
  /** Where replay began: the data start, or the offset a loaded snapshot covered. */
  readonly replayedFromBytes: number;
  /** Bytes of frames replayed on open. */
  readonly replayedBytes: number;
}

export class Journal {
  private pendingRecords: Buffer[] = [];
  private pendingRecordBytes = 0;
  private waiters: DurableCallback[] = [];
  private flushScheduled = false;
  private failure: Error | null = null;
  private closed = false;

  private constructor(
    private readonly fileDescriptor: number,
    private fileBytes: number,
    private superblockSequence: bigint,
    /** Names this journal (kept across cuts and upgrades). */
    readonly journalId: bigint,
    private readonly lockPath: string,
    readonly openReport: JournalOpenReport,
  ) {}

  /** Bytes of a torn last write that were cut away on open. */
  get truncatedBytes(): number {
    return this.openReport.cutBytes;
  }

  /** The file's length: everything flushed so far. */
  get committedBytes(): number {
    return this.fileBytes;
  }

  /** Bytes appended but not yet flushed. */
  get pendingBytes(): number {
    return this.pendingRecordBytes;
  }

  /** CRC-32 of the last bytes flushed, which a snapshot of the current state records. */
  tailCrc(): number {
    const crc = tailCrcAt(this.fileDescriptor, this.fileBytes, this.fileBytes);
    if (crc === null) throw new Error('assertion failed: the journal has no tail');
    return crc;
  }

  /**
   * Opens (or creates) the journal, calling `replay` for every committed record in order: all of
   * them, or only those after the position of the snapshot `loadSnapshot` loaded.
   */
  static open(
    filePath: string,
    replay: (record: JournalRecord) => void,
    loadSnapshot: SnapshotLoader = () => null,
  ): Journal {
    const lockPath = acquireLock(filePath);
    try {
      const upgradedFromVersion = upgradeLegacyJournal(filePath);
      const existed = fs.existsSync(filePath);
      const fileDescriptor = fs.openSync(filePath, existed ? 'r+' : 'w+');
      if (!existed) fsyncDirectory(path.dirname(filePath));
      const opened = openFile(fileDescriptor, filePath, replay, loadSnapshot);
      return new Journal(
        fileDescriptor,
        opened.validBytes,
        opened.sequence,
        opened.journalId,
        lockPath,
        { ...opened.report, upgradedFromVersion },
      );
    } catch (error) {
      fs.rmSync(lockPath, { force: true });
      throw error;
    }
  }
  append(record: Buffer): void {
    if (this.failure !== null) throw this.failure;
    if (this.closed) throw new Error('journal: append after close');
    if (record.length + frameHeaderBytes > journalFrameBytesMax)
      throw new Error('journal: record exceeds the frame limit');
    this.pendingRecords.push(record);
    this.pendingRecordBytes += record.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // Group commit: everything appended before the event loop turns shares one write and fsync.
      setImmediate(() => this.flushReportingFailure());
    }
  }

  /** Calls back once everything appended so far is on disk (fsync'd), or with the write error. */
  whenDurable(callback: DurableCallback): void {
    if (this.failure !== null) {
      const failure = this.failure;
      queueMicrotask(() => callback(failure));
    } else if (this.pendingRecords.length === 0) {
      queueMicrotask(() => callback(null));
    } else {
      this.waiters.push(callback);
    }
  }

  /**
   * Writes and fsyncs all pending records now. Throws on an I/O error (the journal is then
   * failed), and on every call after one: the records of a failed write are not on disk, so a
   * caller that flushes to make the journal cover the state (a snapshot) must not go on.
   */
  flush(): void {
    this.flushScheduled = false;
    if (this.failure !== null) throw this.failure;
    if (this.pendingRecords.length === 0) return;
    const records = this.pendingRecords;
    const waiters = this.waiters;
    this.pendingRecords = [];
    this.pendingRecordBytes = 0;
    this.waiters = [];
    try {
      const lastWriteStartBytes = this.fileBytes;
      for (const frame of buildFrames(records)) this.write(frame);
      this.superblockSequence += 1n;
      writeSuperblock(this.fileDescriptor, {
        sequence: this.superblockSequence,
        journalId: this.journalId,
        committedBytes: this.fileBytes,
        lastWriteStartBytes,
      });
      fs.fsyncSync(this.fileDescriptor);
    } catch (error) {
      this.failure = error instanceof Error ? error : new Error(String(error));
      for (const waiter of waiters) waiter(this.failure);
      throw this.failure;
    }
    for (const waiter of waiters) waiter(null);
  }

  close(): void {
    if (this.closed) return;
    try {
      if (this.failure === null) this.flush();
    } finally {
      this.closed = true;
      fs.closeSync(this.fileDescriptor);
      fs.rmSync(this.lockPath, { force: true });
    }
  }

  private flushReportingFailure(): void {
    if (this.closed) return;
    try {
      this.flush();
    } catch {
      // The waiters got the error; every later append and request fails with it too.
    }
  }

  private write(frame: Buffer): void {
    let written = 0;
    while (written < frame.length) {
      written += fs.writeSync(
        this.fileDescriptor,
        frame,
        written,
        frame.length - written,
        this.fileBytes + written,
      );
    }
    this.fileBytes += frame.length;
  }
}

function buildFrames(records: readonly Buffer[]): Buffer[] {
  const frames: Buffer[] = [];
  let batch: Buffer[] = [];
  let batchBytes = 0;
  for (const record of records) {
    if (batch.length > 0 && frameHeaderBytes + batchBytes + record.length > journalFrameBytesMax) {
      frames.push(frameOf(batch, batchBytes));
      batch = [];
      batchBytes = 0;
    }
    batch.push(record);
    batchBytes += record.length;
  }
  if (batch.length > 0) frames.push(frameOf(batch, batchBytes));
  return frames;
}

function frameOf(records: readonly Buffer[], payloadBytes: number): Buffer {
  const header = Buffer.alloc(frameHeaderBytes);
  const payload = records.length === 1 ? records[0] : Buffer.concat(records, payloadBytes);
  header.writeUInt32LE(frameMagic, 0);
  header.writeUInt32LE(payloadBytes, 4);
  header.writeUInt32LE(crc32(payload), 8);
  header.writeUInt32LE(crc32(header.subarray(0, 12)), 12);
  return Buffer.concat([header, payload], frameHeaderBytes + payloadBytes);
}

/**
 * Why a journal will not open, and what the person starting it can do: the file is never changed
 * by a refusal, so a backup can be restored over it, or it can be kept aside for inspection.
 */
function refusal(filePath: string, problem: string): Error {
  return new Error(
    `journal ${filePath}: ${problem}; refusing to open. Restore ${filePath} from a backup, or move it aside to start an empty ledger (every account and transfer in it would be missing).`,
  );
}

/** Reads the superblock and replays every frame; cuts a torn last write; refuses lost data. */
function openFile(
  fileDescriptor: number,
  filePath: string,
  replay: (record: JournalRecord) => void,
  loadSnapshot: SnapshotLoader,
): {
  validBytes: number;
  sequence: bigint;
  journalId: bigint;
  report: Omit<JournalOpenReport, 'upgradedFromVersion'>;
} {
  const fileBytes = fs.fstatSync(fileDescriptor).size;
  const superblock = identifiedSuperblock(
    fileDescriptor,
    readSuperblock(fileDescriptor, fileBytes, filePath),
  );
  const journalId = superblock.journalId;
  const scannedBytes = Math.max(fileBytes, journalDataStartBytes);
  const start =
    loadSnapshot({
      journalId,
      tailCrcAt: (offset) => tailCrcAt(fileDescriptor, offset, scannedBytes),
    }) ?? journalDataStartBytes;
  const scan = replayFrames(fileDescriptor, start, scannedBytes, replay);
  const report = {
    cutBytes: 0,
    cutAtByte: scan.validBytes,
    cutReason: null as string | null,
    replayedFromBytes: start,
    replayedBytes: scan.validBytes - start,
  };
  if (scan.damage !== null) {
    if (scan.validBytes < superblock.lastWriteStartBytes) {
      throw refusal(
        filePath,
        `${scan.damage.reason} at byte ${scan.validBytes}, before the last write (which began at byte ${superblock.lastWriteStartBytes}): acknowledged requests are damaged`,
      );
    }
    report.cutBytes = fileBytes - scan.validBytes;
    report.cutReason = scan.damage.reason;
  }
  if (scan.validBytes < superblock.lastWriteStartBytes) {
    throw refusal(
      filePath,
      `the file ends at byte ${scan.validBytes}, before its last write began (at byte ${superblock.lastWriteStartBytes}; the superblock records ${superblock.committedBytes} bytes written): acknowledged requests are missing (it was truncated)`,
    );
  }
  if (scan.damage === null && scan.validBytes < superblock.committedBytes) {
    // The last write's frames never landed (or were cut off at exactly their start): a torn last
    // write like any other, reported, never silent.
    report.cutBytes = superblock.committedBytes - scan.validBytes;
    report.cutReason = 'its frames are missing: the file ends where that write began';
  }
  const sequence = superblock.sequence + 1n;
  if (report.cutBytes > 0) fs.ftruncateSync(fileDescriptor, scan.validBytes);
  // Everything kept is now served to clients: record it as committed before the first new write.
  writeSuperblock(fileDescriptor, {
    sequence,
    journalId,
    committedBytes: scan.validBytes,
    lastWriteStartBytes: scan.validBytes,
  });
  fs.fsyncSync(fileDescriptor);
  return { validBytes: scan.validBytes, sequence, journalId, report };
}

/**
 * The superblock with a journal id: a new file (or one whose creation crashed before anything
 * was committed to it) gets both copies written; a version 2 file gets its id now, in both
 * copies, so a torn write later cannot fall back to a copy without it.
 */
function identifiedSuperblock(
  fileDescriptor: number,
  read: Superblock | null,
): Superblock & { journalId: bigint } {
  if (read !== null && read.journalId !== null) return { ...read, journalId: read.journalId };
  const superblock = {
    sequence: read?.sequence ?? 1n,
    journalId: newJournalId(),
    committedBytes: read?.committedBytes ?? journalDataStartBytes,
    lastWriteStartBytes: read?.lastWriteStartBytes ?? journalDataStartBytes,
  };
  for (const offset of superblockCopyOffsets) writeSuperblockAt(fileDescriptor, offset, superblock);
  fs.fsyncSync(fileDescriptor);
  return superblock;
}

function newJournalId(): bigint {
  const id = randomBytes(16);
  return id.readBigUInt64LE(0) | (id.readBigUInt64LE(8) << 64n);
}

/** CRC-32 of the frame bytes just before `offset`; null when `offset` is not inside the frames. */
function tailCrcAt(fileDescriptor: number, offset: number, fileBytes: number): number | null {
  if (!Number.isSafeInteger(offset) || offset < journalDataStartBytes || offset > fileBytes)
    return null;
  const tailStart = Math.max(journalDataStartBytes, offset - journalTailCrcBytes);
  return crc32(readExactly(fileDescriptor, tailStart, offset - tailStart));
}

/** Replays frames from `start` until the end or the first damaged frame. */
function replayFrames(
  fileDescriptor: number,
  start: number,
  fileBytes: number,
  replay: (record: JournalRecord) => void,
): { validBytes: number; damage: { reason: string } | null } {
  let offset = start;
  while (offset < fileBytes) {
    const frame = readFrameAt(fileDescriptor, offset, fileBytes);
    if (frame.kind === 'damaged') {
      // Zeros to the end: the file was extended by a write whose data never landed.
      const reason = zeroToEnd(fileDescriptor, offset, fileBytes)
        ? 'zeros where a frame should be'
        : frame.reason;
      return { validBytes: offset, damage: { reason } };
    }
    for (const record of decodeRecords(frame.payload)) replay(record);
    offset = frame.nextOffset;
  }
  return { validBytes: offset, damage: null };
}

function readFrameAt(fileDescriptor: number, offset: number, fileBytes: number): FrameRead {
  if (fileBytes - offset < frameHeaderBytes)
    return { kind: 'damaged', reason: 'a short frame header' };
  const header = readExactly(fileDescriptor, offset, frameHeaderBytes);
  const payloadBytes = header.readUInt32LE(4);
  const headerValid =
    header.readUInt32LE(0) === frameMagic &&
    header.readUInt32LE(12) === crc32(header.subarray(0, 12)) &&
    payloadBytes + frameHeaderBytes <= journalFrameBytesMax;
  if (!headerValid) return { kind: 'damaged', reason: 'a damaged frame header' };
  const frameEnd = offset + frameHeaderBytes + payloadBytes;
  if (frameEnd > fileBytes) return { kind: 'damaged', reason: 'a short frame' };
  const payload = readExactly(fileDescriptor, offset + frameHeaderBytes, payloadBytes);
  if (crc32(payload) !== header.readUInt32LE(8))
    return { kind: 'damaged', reason: 'a checksum mismatch' };
  return { kind: 'frame', payload, nextOffset: frameEnd };
}

/** The newest valid superblock copy; null for a file with no superblock and no data yet. */
function readSuperblock(
  fileDescriptor: number,
  fileBytes: number,
  filePath: string,
): Superblock | null {
  const copies: Superblock[] = [];
  for (const offset of superblockCopyOffsets) {
    if (fileBytes < offset + superblockBytes) continue;
    const copy = decodeSuperblock(
      readExactly(fileDescriptor, offset, Math.min(superblockBytes, fileBytes - offset)),
    );
    if (copy !== null) copies.push(copy);
  }
  if (copies.length > 0)
    return copies.reduce((newest, copy) => (copy.sequence > newest.sequence ? copy : newest));
  if (fileBytes <= journalDataStartBytes && zeroToEnd(fileDescriptor, 0, fileBytes)) return null;
  throw refusal(filePath, 'both superblock copies are damaged');
}

function decodeSuperblock(bytes: Buffer): Superblock | null {
  if (bytes.readUInt32LE(0) !== superblockMagic) return null;
  const version = bytes.readUInt32LE(4);
  const checkedBytes =
    version === superblockVersion
      ? superblockBytes - 4
      : version === superblockVersionWithoutId
        ? superblockBytesWithoutId - 4
        : null;
  if (checkedBytes === null || bytes.length < checkedBytes + 4) return null;
  if (bytes.readUInt32LE(checkedBytes) !== crc32(bytes.subarray(0, checkedBytes))) return null;
  return {
    sequence: bytes.readBigUInt64LE(8),
    journalId:
      version === superblockVersion
        ? bytes.readBigUInt64LE(32) | (bytes.readBigUInt64LE(40) << 64n)
        : null,
    committedBytes: Number(bytes.readBigUInt64LE(16)),
    lastWriteStartBytes: Number(bytes.readBigUInt64LE(24)),
  };
}

/** Writes the copy that the sequence number selects, so the other copy stays intact. */
function writeSuperblock(
  fileDescriptor: number,
  superblock: Superblock & { journalId: bigint },
): void {
  writeSuperblockAt(
    fileDescriptor,
    superblockCopyOffsets[Number(superblock.sequence % 2n)],
    superblock,
  );
}

function writeSuperblockAt(
  fileDescriptor: number,
  offset: number,
  superblock: Superblock & { journalId: bigint },
): void {
  const bytes = Buffer.alloc(superblockBytes);
  bytes.writeUInt32LE(superblockMagic, 0);
  bytes.writeUInt32LE(superblockVersion, 4);
  bytes.writeBigUInt64LE(superblock.sequence, 8);
  bytes.writeBigUInt64LE(BigInt(superblock.committedBytes), 16);
  bytes.writeBigUInt64LE(BigInt(superblock.lastWriteStartBytes), 24);
  bytes.writeBigUInt64LE(superblock.journalId & u64Max, 32);
  bytes.writeBigUInt64LE(superblock.journalId >> 64n, 40);
  bytes.writeUInt32LE(crc32(bytes.subarray(0, superblockBytes - 4)), superblockBytes - 4);
  fs.writeSync(fileDescriptor, bytes, 0, superblockBytes, offset);
}

/**
 * A journal written before the superblock existed (frames from byte 0) is rewritten in the current
 * format: its frames are copied after a new superblock whose last write is the old file's last
 * frame, into a new file renamed over the old one. The normal open that follows cuts that frame if
 * it is torn; damage before it is refused, as the old format did.
 */
function upgradeLegacyJournal(filePath: string): number | null {
  if (!fs.existsSync(filePath)) return null;
  const magic = Buffer.alloc(4);
  const fileDescriptor = fs.openSync(filePath, 'r');
  try {
    if (fs.readSync(fileDescriptor, magic, 0, 4, 0) < 4 || magic.readUInt32LE(0) !== frameMagic)
      return null;
  } finally {
    fs.closeSync(fileDescriptor);
  }
  const legacy = fs.readFileSync(filePath);
  const lastFrameStart = legacyLastFrameStart(legacy, filePath);
  const upgradedPath = `${filePath}.upgrade`;
  const upgraded = fs.openSync(upgradedPath, 'w');
  try {
    const start = journalDataStartBytes + lastFrameStart;
    const superblock = {
      sequence: 1n,
      journalId: newJournalId(),
      committedBytes: journalDataStartBytes + legacy.length,
      lastWriteStartBytes: start,
    };
    for (const offset of superblockCopyOffsets) writeSuperblockAt(upgraded, offset, superblock);
    fs.writeSync(upgraded, legacy, 0, legacy.length, journalDataStartBytes);
    fs.fsyncSync(upgraded);
  } finally {
    fs.closeSync(upgraded);
  }
  fs.renameSync(upgradedPath, filePath);
  fsyncDirectory(path.dirname(filePath));
  return 1;
}

/** Where the old file's last frame starts; damage with data after it is refused. */
function legacyLastFrameStart(legacy: Buffer, filePath: string): number {
  let offset = 0;
  let lastStart = 0;
  while (offset + frameHeaderBytes <= legacy.length) {
    const header = legacy.subarray(offset, offset + frameHeaderBytes);
    const frameEnd = offset + frameHeaderBytes + header.readUInt32LE(4);
    const headerValid =
      header.readUInt32LE(0) === frameMagic &&
      header.readUInt32LE(12) === crc32(header.subarray(0, 12));
    const tail = legacy.subarray(
      headerValid ? Math.min(frameEnd, legacy.length) : offset + frameHeaderBytes,
    );
    const damaged =
      !headerValid ||
      frameEnd > legacy.length ||
      crc32(legacy.subarray(offset + frameHeaderBytes, frameEnd)) !== header.readUInt32LE(8);
    if (damaged) {
      if (tail.some((byte) => byte !== 0) && !(headerValid && frameEnd >= legacy.length)) {
        throw refusal(filePath, `a damaged frame at byte ${offset} with data after it`);
      }
      return offset;
    }
    lastStart = offset;
    offset = frameEnd;
  }
  return offset < legacy.length ? offset : lastStart;
}

function readExactly(fileDescriptor: number, position: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  let read = 0;
  while (read < length) {
    const bytes = fs.readSync(fileDescriptor, buffer, read, length - read, position + read);
    if (bytes === 0) throw new Error('journal: unexpected end of file');
    read += bytes;
  }
  return buffer;
}

/** A torn write can leave zeros where the file was extended but the data never landed. */
function zeroToEnd(fileDescriptor: number, offset: number, fileBytes: number): boolean {
  for (let position = offset; position < fileBytes; position += zeroScanChunkBytes) {
    const chunk = readExactly(
      fileDescriptor,
      position,
      Math.min(zeroScanChunkBytes, fileBytes - position),
    );
    if (chunk.some((byte) => byte !== 0)) return false;
  }
  return true;
}

/** Makes a file's creation or rename durable (the directory entry), as the journal and snapshot need. */
export function fsyncDirectory(directory: string): void {
  const directoryDescriptor = fs.openSync(directory, 'r');
  try {
    fs.fsyncSync(directoryDescriptor);
  } finally {
    fs.closeSync(directoryDescriptor);
  }
}

/** One process per data file, like one replica per TigerBeetle data file. Stale locks are taken over. */
function acquireLock(filePath: string): string {
  const lockPath = `${filePath}.lock`;
  try {
    fs.writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
    return lockPath;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const owner = Number(fs.readFileSync(lockPath, 'utf8').trim());
  if (Number.isInteger(owner) && owner > 0 && processAlive(owner)) {
    throw new Error(
      `data file ${filePath} is already open in process ${owner} (lock file ${lockPath})`,
    );
  }
  fs.writeFileSync(lockPath, String(process.pid));
  return lockPath;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
