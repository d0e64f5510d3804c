import { u64Max } from './constants';

/**
 * Growable lists of numbers and of balances in typed arrays, so an index over millions of
 * transfers is a few buffers (saved and loaded as they are), not millions of JavaScript values.
 */

/** Capacity of a list's first buffer, allocated on its first push; it doubles when full. */
const listCapacityInitial = 4;
/** Shared by every empty list (never written: the first push allocates). */
const emptySlots = new Uint32Array(0);
const emptyWords = new BigUint64Array(0);

/**
 * A growable list of u32 values: the slots of an account's transfers, in timestamp order. A list
 * loaded from a snapshot is a range of one buffer shared by all accounts (no view per list is
 * created, so a start with many accounts stays fast); its first growth copies it out.
 */
export class SlotList {
  private data: Uint32Array;
  private start: number;
  private count: number;
  private capacity: number;

  /** Empty, or the `count` values of `shared` from `start` on (loaded from a snapshot). */
  constructor(shared: Uint32Array = emptySlots, start = 0, count = 0) {
    if (start + count > shared.length) throw new Error('assertion failed: list out of its buffer');
    this.data = shared;
    this.start = start;
    this.count = count;
    this.capacity = count;
  }

  get length(): number {
    return this.count;
  }

  at(index: number): number {
    return this.data[this.start + index];
  }

  push(value: number): void {
    if (this.count === this.capacity) this.grow();
    this.data[this.start + this.count] = value;
    this.count += 1;
  }

  pop(): number {
    if (this.count === 0) throw new Error('assertion failed: pop of an empty list');
    this.count -= 1;
    return this.data[this.start + this.count];
  }

  /** The used part, without copying (valid until the next push). */
  view(): Uint32Array {
    return this.data.subarray(this.start, this.start + this.count);
  }

  private grow(): void {
    const larger = new Uint32Array(Math.max(listCapacityInitial, this.capacity * 2));
    larger.set(this.view());
    this.data = larger;
    this.start = 0;
    this.capacity = larger.length;
  }
}

/**
 * The four balances of an account (debits pending and posted, credits pending and posted), each a
 * u128 as two u64 words, low word first: 64 bytes per entry.
 */
export const balanceWords = 8;
export const balanceBytes = balanceWords * 8;

export interface Balances {
  readonly debits_pending: bigint;
  readonly debits_posted: bigint;
  readonly credits_pending: bigint;
  readonly credits_posted: bigint;
}

/**
 * A growable list of balances: a history account's balances right after each of its transfers.
 * Like `SlotList`, a loaded list is a range of one shared buffer until its first growth.
 */
export class BalanceList {
  private words: BigUint64Array;
  /** The first word of entry 0. */
  private start: number;
  private count: number;
  private capacity: number;

  /** Empty, or the `count` entries of `shared` from word `start` on (loaded from a snapshot). */
  constructor(shared: BigUint64Array = emptyWords, start = 0, count = 0) {
    if (start + count * balanceWords > shared.length)
      throw new Error('assertion failed: balances out of their buffer');
    this.words = shared;
    this.start = start;
    this.count = count;
    this.capacity = count;
  }

  get length(): number {
    return this.count;
  }

  push(balances: Balances): void {
    if (this.count === this.capacity) this.grow();
    const first = this.start + this.count * balanceWords;
    writeU128Words(this.words, first, balances.debits_pending);
    writeU128Words(this.words, first + 2, balances.debits_posted);
    writeU128Words(this.words, first + 4, balances.credits_pending);
    writeU128Words(this.words, first + 6, balances.credits_posted);
    this.count += 1;
  }

  pop(): void {
    if (this.count === 0) throw new Error('assertion failed: pop of an empty balance list');
    this.count -= 1;
  }

  at(index: number): Balances {
    const first = this.start + index * balanceWords;
    return {
      debits_pending: readU128Words(this.words, first),
      debits_posted: readU128Words(this.words, first + 2),
      credits_pending: readU128Words(this.words, first + 4),
      credits_posted: readU128Words(this.words, first + 6),
    };
  }

  /** The used part, without copying (valid until the next push). */
  view(): BigUint64Array {
    return this.words.subarray(this.start, this.start + this.count * balanceWords);
  }

  private grow(): void {
    const entries = Math.max(listCapacityInitial, this.capacity * 2);
    const larger = new BigUint64Array(entries * balanceWords);
    larger.set(this.view());
    this.words = larger;
    this.start = 0;
    this.capacity = entries;
  }
}

/** Writes a u128 as two u64 words, low first (the typed array keeps the low 64 bits on its own). */
export function writeU128Words(words: BigUint64Array, index: number, value: bigint): void {
  words[index] = value;
  words[index + 1] = value > u64Max ? value >> 64n : 0n;
}

export function readU128Words(words: BigUint64Array, index: number): bigint {
  const high = words[index + 1];
  // Most values fit in 64 bits: skip the shift and the or.
  return high === 0n ? words[index] : words[index] | (high << 64n);
}
