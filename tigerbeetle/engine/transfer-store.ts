import type { Transfer } from 'tigerbeetle-node';
import { eventSizeBytes, u64Max } from './constants';
import { hashIdWords, IdIndex, type IdKeys } from './id-index';
import { PendingStatus } from './records';
import { readU128Words as readU128, writeU128Words as writeU128 } from './slot-list';

/**
 * Every stored transfer, as TigerBeetle's own 128-byte transfer layout (src/tigerbeetle.zig,
 * little-endian) in fixed-size chunks of typed memory, plus one pending-status byte per transfer.
 * A transfer is named by its slot: the order of insertion, which is timestamp order (every
 * transfer, imported ones included, is later than all before it), so this store is also the
 * timestamp index. Nothing here creates a JavaScript object per transfer: a transfer is decoded
 * only when a query returns it, and a snapshot saves and loads the chunks as they are.
 *
 * Chunks (rather than one buffer that doubles) keep growth cheap and bounded: no copy of the
 * whole store and no doubled peak of memory at a million transfers.
 */
export const transferStoreChunkTransfers = 1 << 15;
/** Bytes of one chunk of records: 4 MiB. */
export const transferStoreChunkBytes = transferStoreChunkTransfers * eventSizeBytes;
const chunkShift = 15;
const chunkMask = transferStoreChunkTransfers - 1;
if (1 << chunkShift !== transferStoreChunkTransfers)
  throw new Error('assertion failed: the chunk shift must match the chunk size');

// Word offsets inside a record (the byte offsets of src/tigerbeetle.zig's Transfer, divided).
const u64PerRecord = eventSizeBytes / 8;
const u32PerRecord = eventSizeBytes / 4;
const u16PerRecord = eventSizeBytes / 2;
const idWord = 0; // u128 at byte 0
const debitAccountIdWord = 2; // u128 at byte 16
const creditAccountIdWord = 4; // u128 at byte 32
const amountWord = 6; // u128 at byte 48
const pendingIdWord = 8; // u128 at byte 64
const userData128Word = 10; // u128 at byte 80
const userData64Word = 12; // u64 at byte 96
const userData32Index = 26; // u32 at byte 104
const timeoutIndex = 27; // u32 at byte 108
const ledgerIndex = 28; // u32 at byte 112
const codeIndex = 58; // u16 at byte 116
const flagsIndex = 59; // u16 at byte 118
const timestampWord = 15; // u64 at byte 120

/** After a load, one transfer in this many is looked up through the loaded index as a check. */
const loadCheckEvery = 997;

class Chunk {
  readonly bytes = new Uint8Array(transferStoreChunkBytes);
  readonly u64 = new BigUint64Array(this.bytes.buffer);
  readonly u32 = new Uint32Array(this.bytes.buffer);
  readonly u16 = new Uint16Array(this.bytes.buffer);
  readonly statuses = new Uint8Array(transferStoreChunkTransfers);
}

/** The four u32 words of an id, low first, written through a u64 view (no allocation per word). */
const idScratch64 = new BigUint64Array(2);
const idScratch32 = new Uint32Array(idScratch64.buffer);

export class TransferStore implements IdKeys {
  private readonly chunks: Chunk[] = [];
  private count = 0;
  private readonly index: IdIndex;

  constructor(indexBuckets?: number) {
    this.index = new IdIndex(this, indexBuckets);
  }

  /** How many transfers are stored; slots are 0 .. length - 1. */
  get length(): number {
    return this.count;
  }

  /** Buckets of the id index (for tests of its growth). */
  get indexBuckets(): number {
    return this.index.buckets;
  }

  /** The slot of the transfer with this id, or -1. */
  find(id: bigint): number {
    idScratch64[0] = id;
    idScratch64[1] = id > u64Max ? id >> 64n : 0n;
    const w0 = idScratch32[0];
    const w1 = idScratch32[1];
    const w2 = idScratch32[2];
    const w3 = idScratch32[3];
    return this.index.find(hashIdWords(w0, w1, w2, w3), w0, w1, w2, w3);
  }

  /** Appends a transfer whose id is not stored yet; returns its slot. */
  append(transfer: Transfer, status: PendingStatus): number {
    const slot = this.count;
    if ((slot & chunkMask) === 0 && slot >>> chunkShift === this.chunks.length)
      this.chunks.push(new Chunk());
    const chunk = this.chunks[slot >>> chunkShift];
    const within = slot & chunkMask;
    const words = within * u64PerRecord;
    const u64 = chunk.u64;
    writeU128(u64, words + idWord, transfer.id);
    writeU128(u64, words + debitAccountIdWord, transfer.debit_account_id);
    writeU128(u64, words + creditAccountIdWord, transfer.credit_account_id);
    writeU128(u64, words + amountWord, transfer.amount);
    writeU128(u64, words + pendingIdWord, transfer.pending_id);
    writeU128(u64, words + userData128Word, transfer.user_data_128);
    u64[words + userData64Word] = transfer.user_data_64;
    u64[words + timestampWord] = transfer.timestamp;
    const u32 = within * u32PerRecord;
    chunk.u32[u32 + userData32Index] = transfer.user_data_32;
    chunk.u32[u32 + timeoutIndex] = transfer.timeout;
    chunk.u32[u32 + ledgerIndex] = transfer.ledger;
    const u16 = within * u16PerRecord;
    chunk.u16[u16 + codeIndex] = transfer.code;
    chunk.u16[u16 + flagsIndex] = transfer.flags;
    chunk.statuses[within] = status;
    this.index.insert(this.hashOf(slot), slot);
    this.count += 1;
    return slot;
  }

  /** Removes the newest transfer (a linked chain rolled back). */
  removeLast(): void {
    if (this.count === 0) throw new Error('assertion failed: removing from an empty store');
    const slot = this.count - 1;
    this.index.remove(this.hashOf(slot), slot);
    const chunk = this.chunks[slot >>> chunkShift];
    const within = slot & chunkMask;
    chunk.bytes.fill(0, within * eventSizeBytes, (within + 1) * eventSizeBytes);
    chunk.statuses[within] = 0;
    this.count = slot;
  }

  /** The transfer in a slot, as the client returns it. */
  read(slot: number): Transfer {
    this.checkSlot(slot);
    const chunk = this.chunks[slot >>> chunkShift];
    const within = slot & chunkMask;
    const words = within * u64PerRecord;
    const u32 = within * u32PerRecord;
    const u16 = within * u16PerRecord;
    return {
      id: readU128(chunk.u64, words + idWord),
      debit_account_id: readU128(chunk.u64, words + debitAccountIdWord),
      credit_account_id: readU128(chunk.u64, words + creditAccountIdWord),
      amount: readU128(chunk.u64, words + amountWord),
      pending_id: readU128(chunk.u64, words + pendingIdWord),
      user_data_128: readU128(chunk.u64, words + userData128Word),
      user_data_64: chunk.u64[words + userData64Word],
      user_data_32: chunk.u32[u32 + userData32Index],
      timeout: chunk.u32[u32 + timeoutIndex],
      ledger: chunk.u32[u32 + ledgerIndex],
      code: chunk.u16[u16 + codeIndex],
      flags: chunk.u16[u16 + flagsIndex],
      timestamp: chunk.u64[words + timestampWord],
    };
  }

  timestamp(slot: number): bigint {
    this.checkSlot(slot);
    return this.chunks[slot >>> chunkShift].u64[(slot & chunkMask) * u64PerRecord + timestampWord];
  }

  flags(slot: number): number {
    this.checkSlot(slot);
    return this.chunks[slot >>> chunkShift].u16[(slot & chunkMask) * u16PerRecord + flagsIndex];
  }

  timeout(slot: number): number {
    this.checkSlot(slot);
    return this.chunks[slot >>> chunkShift].u32[(slot & chunkMask) * u32PerRecord + timeoutIndex];
  }

  ledger(slot: number): number {
    this.checkSlot(slot);
    return this.chunks[slot >>> chunkShift].u32[(slot & chunkMask) * u32PerRecord + ledgerIndex];
  }

  code(slot: number): number {
    this.checkSlot(slot);
    return this.chunks[slot >>> chunkShift].u16[(slot & chunkMask) * u16PerRecord + codeIndex];
  }

  userData32(slot: number): number {
    this.checkSlot(slot);
    return this.chunks[slot >>> chunkShift].u32[
      (slot & chunkMask) * u32PerRecord + userData32Index
    ];
  }

  userData64(slot: number): bigint {
    this.checkSlot(slot);
    return this.chunks[slot >>> chunkShift].u64[(slot & chunkMask) * u64PerRecord + userData64Word];
  }

  userData128(slot: number): bigint {
    this.checkSlot(slot);
    const chunk = this.chunks[slot >>> chunkShift];
    return readU128(chunk.u64, (slot & chunkMask) * u64PerRecord + userData128Word);
  }

  pendingStatus(slot: number): PendingStatus {
    this.checkSlot(slot);
    return this.chunks[slot >>> chunkShift].statuses[slot & chunkMask] as PendingStatus;
  }

  setPendingStatus(slot: number, status: PendingStatus): void {
    this.checkSlot(slot);
    this.chunks[slot >>> chunkShift].statuses[slot & chunkMask] = status;
  }

  /** The used bytes of every chunk's records, in slot order (for a snapshot; no copy). */
  recordViews(): Uint8Array[] {
    return this.chunks.map((chunk, which) =>
      chunk.bytes.subarray(0, this.usedInChunk(which) * eventSizeBytes),
    );
  }

  /** The used bytes of every chunk's pending statuses, in slot order (for a snapshot; no copy). */
  statusViews(): Uint8Array[] {
    return this.chunks.map((chunk, which) => chunk.statuses.subarray(0, this.usedInChunk(which)));
  }

  /** The id index's bucket arrays as they are (for a snapshot; no copy). */
  indexViews(): { slots: Uint32Array; hashes: Uint32Array } {
    return this.index.views();
  }

  /**
   * Bulk load into an empty store: makes room for `count` transfers and an id index of
   * `indexBuckets`, and returns the views to fill (records and statuses in slot order);
   * `finishLoad` then checks them.
   */
  beginLoad(
    count: number,
    indexBuckets: number,
  ): {
    records: Uint8Array[];
    statuses: Uint8Array[];
    indexSlots: Uint32Array;
    indexHashes: Uint32Array;
  } {
    if (this.count !== 0 || this.chunks.length !== 0)
      throw new Error('assertion failed: loading into a used store');
    const index = this.index.beginLoad(indexBuckets);
    while (this.chunks.length * transferStoreChunkTransfers < count) this.chunks.push(new Chunk());
    this.count = count;
    return {
      records: this.recordViews(),
      statuses: this.statusViews(),
      indexSlots: index.slots,
      indexHashes: index.hashes,
    };
  }

  /**
   * Checks what a load filled in: every status known, the index holding every slot once, and,
   * for one transfer in `loadCheckEvery` (and the last), that its id hashes as the index says
   * and finds its slot, so an index of another layout or hash is never trusted.
   */
  finishLoad(): void {
    for (const statuses of this.statusViews()) {
      for (let within = 0; within < statuses.length; within += 1)
        if (statuses[within] > PendingStatus.expired)
          throw new Error('a transfer has an unknown pending status');
    }
    this.index.finishLoad(this.count);
    for (let slot = 0; slot < this.count; slot += loadCheckEvery) this.checkIndexed(slot);
    if (this.count > 0) this.checkIndexed(this.count - 1);
  }

  private checkIndexed(slot: number): void {
    const hash = this.hashOf(slot);
    if (this.index.storedHash(hash, slot) !== hash || this.find(this.read(slot).id) !== slot)
      throw new Error(`its id index does not find transfer slot ${slot}`);
  }

  /** Slots of the transfers still pending, in slot order. */
  pendingSlots(): number[] {
    const slots: number[] = [];
    this.statusViews().forEach((statuses, which) => {
      for (let within = 0; within < statuses.length; within += 1)
        if (statuses[within] === PendingStatus.pending)
          slots.push(which * transferStoreChunkTransfers + within);
    });
    return slots;
  }

  idEquals(slot: number, w0: number, w1: number, w2: number, w3: number): boolean {
    const u32 = this.chunks[slot >>> chunkShift].u32;
    const first = (slot & chunkMask) * u32PerRecord;
    return (
      u32[first] === w0 && u32[first + 1] === w1 && u32[first + 2] === w2 && u32[first + 3] === w3
    );
  }

  private hashOf(slot: number): number {
    const u32 = this.chunks[slot >>> chunkShift].u32;
    const first = (slot & chunkMask) * u32PerRecord;
    return hashIdWords(u32[first], u32[first + 1], u32[first + 2], u32[first + 3]);
  }

  /**
   * Transfers in chunk `which`: 0 for a chunk kept allocated after a linked chain that crossed
   * into it was rolled back (a negative count would make `subarray` count from the end).
   */
  private usedInChunk(which: number): number {
    const after = this.count - which * transferStoreChunkTransfers;
    return Math.max(0, Math.min(transferStoreChunkTransfers, after));
  }

  private checkSlot(slot: number): void {
    if (!(slot >= 0 && slot < this.count))
      throw new Error(`assertion failed: slot ${slot} out of range`);
  }
}
