import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from './checksum';
import { decodeRecords, type JournalRecord } from './codec';

/**
 * An append-only journal of committed requests. Records are grouped into frames, one frame per
 * write, each with its own checksums:
 *
 *   magic u32 | payload bytes u32 | payload crc32 u32 | header crc32 u32 (of the first 12 bytes)
 *
 * A crash can only damage the last write, so on open a damaged LAST frame (too short, failing its
 * checksum, or zeros where its header should be; zeros after it count as nothing written) is a
 * torn write and is cut away. A damaged frame with data after it is corruption: opening fails.
 */
export const journalFrameBytesMax = 64 * 1024 * 1024;
const frameHeaderBytes = 16;
const frameMagic = 0x4a454254; // "TBEJ" in little-endian bytes.
const zeroScanChunkBytes = 64 * 1024;

type FrameRead = { kind: 'frame'; payload: Buffer; nextOffset: number } | { kind: 'torn' };
export type DurableCallback = (error: Error | null) => void;

export class Journal {
  private pendingRecords: Buffer[] = [];
  private waiters: DurableCallback[] = [];
  private flushScheduled = false;
  private failure: Error | null = null;
  private closed = false;

  private constructor(
    private readonly fileDescriptor: number,
    private fileBytes: number,
    private readonly lockPath: string,
    /** Bytes of a torn last write that were cut away on open. */
    readonly truncatedBytes: number,
  ) {}

  /** Opens (or creates) the journal, calling `replay` for every committed record in order. */
  static open(filePath: string, replay: (record: JournalRecord) => void): Journal {
    const lockPath = acquireLock(filePath);
    try {
      const existed = fs.existsSync(filePath);
      const fileDescriptor = fs.openSync(filePath, existed ? 'r+' : 'w+');
      if (!existed) fsyncDirectory(path.dirname(filePath));
      const fileBytes = fs.fstatSync(fileDescriptor).size;
      const validBytes = readFrames(fileDescriptor, fileBytes, filePath, replay);
      if (validBytes < fileBytes) {
        fs.ftruncateSync(fileDescriptor, validBytes);
        fs.fsyncSync(fileDescriptor);
      }
      return new Journal(fileDescriptor, validBytes, lockPath, fileBytes - validBytes);
    } catch (error) {
      fs.rmSync(lockPath, { force: true });
      throw error;
    }
  }

  append(record: Buffer): void {
    if (this.failure !== null) throw this.failure;
    if (this.closed) throw new Error('journal: append after close');
    if (record.length + frameHeaderBytes > journalFrameBytesMax) throw new Error('journal: record exceeds the frame limit');
    this.pendingRecords.push(record);
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

  /** Writes and fsyncs all pending records now. Throws on an I/O error (the journal is then failed). */
  flush(): void {
    this.flushScheduled = false;
    if (this.pendingRecords.length === 0) return;
    const records = this.pendingRecords;
    const waiters = this.waiters;
    this.pendingRecords = [];
    this.waiters = [];
    try {
      for (const frame of buildFrames(records)) this.write(frame);
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
      written += fs.writeSync(this.fileDescriptor, frame, written, frame.length - written, this.fileBytes + written);
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

/** Replays every valid frame and returns the byte length of the valid prefix. */
function readFrames(fileDescriptor: number, fileBytes: number, filePath: string, replay: (record: JournalRecord) => void): number {
  let offset = 0;
  while (offset < fileBytes) {
    const frame = readFrameAt(fileDescriptor, offset, fileBytes, filePath);
    if (frame.kind === 'torn') return offset;
    for (const record of decodeRecords(frame.payload)) replay(record);
    offset = frame.nextOffset;
  }
  return offset;
}

function readFrameAt(fileDescriptor: number, offset: number, fileBytes: number, filePath: string): FrameRead {
  if (fileBytes - offset < frameHeaderBytes) return { kind: 'torn' };
  const header = readExactly(fileDescriptor, offset, frameHeaderBytes);
  const payloadBytes = header.readUInt32LE(4);
  const headerValid =
    header.readUInt32LE(0) === frameMagic &&
    header.readUInt32LE(12) === crc32(header.subarray(0, 12)) &&
    payloadBytes + frameHeaderBytes <= journalFrameBytesMax;
  if (!headerValid) {
    if (zeroToEnd(fileDescriptor, offset, fileBytes)) return { kind: 'torn' };
    throw new Error(`journal ${filePath}: corrupt frame header at byte ${offset} with data after it`);
  }
  const frameEnd = offset + frameHeaderBytes + payloadBytes;
  if (frameEnd > fileBytes) return { kind: 'torn' };
  const payload = readExactly(fileDescriptor, offset + frameHeaderBytes, payloadBytes);
  if (crc32(payload) !== header.readUInt32LE(8)) {
    if (frameEnd === fileBytes || zeroToEnd(fileDescriptor, frameEnd, fileBytes)) return { kind: 'torn' };
    throw new Error(`journal ${filePath}: checksum mismatch in the frame at byte ${offset}, which is not the last`);
  }
  return { kind: 'frame', payload, nextOffset: frameEnd };
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
    const chunk = readExactly(fileDescriptor, position, Math.min(zeroScanChunkBytes, fileBytes - position));
    if (chunk.some((byte) => byte !== 0)) return false;
  }
  return true;
}

function fsyncDirectory(directory: string): void {
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
    throw new Error(`data file ${filePath} is already open in process ${owner} (lock file ${lockPath})`);
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
