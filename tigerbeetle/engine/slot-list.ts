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

/** A growable list of u32 values: the slots of an account's transfers, in timestamp order. */
export class SlotList {
  private data: Uint32Array;
  private count: number;

  /** Empty, or (loaded from a snapshot) a full view of a loaded buffer, copied on first growth. */
  constructor(initial: Uint32Array | null = null) {
    this.data = initial ?? emptySlots;
    this.count = initial === null ? 0 : initial.length;
  }

  get length(): number {
    return this.count;
  }

  at(index: number): number {
    return this.data[index];
  }

  last(): number {
    if (this.count === 0) throw new Error('assertion failed: last of an empty list');
    return this.data[this.count - 1];
  }

  push(value: number): void {
    if (this.count === this.data.length) this.data = grown(this.data, this.count);
    this.data[this.count] = value;
    this.count += 1;
  }

  pop(): number {
    if (this.count === 0) throw new Error('assertion failed: pop of an empty list');
    this.count -= 1;
    return this.data[this.count];
  }

  /** The used part, without copying (valid until the next push). */
  view(): Uint32Array {
    return this.data.subarray(0, this.count);
  }
}

function grown(data: Uint32Array, count: number): Uint32Array {
  const larger = new Uint32Array(Math.max(listCapacityInitial, data.length * 2));
  larger.set(data.subarray(0, count));
  return larger;
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

/** A growable list of balances: a history account's balances right after each of its transfers. */
export class BalanceList {
  private words: BigUint64Array;
  private count: number;

  constructor(initial: BigUint64Array | null = null) {
    this.words = initial ?? emptyWords;
    this.count = initial === null ? 0 : initial.length / balanceWords;
    if (!Number.isInteger(this.count)) throw new Error('assertion failed: a partial balance entry');
  }

  get length(): number {
    return this.count;
  }

  push(balances: Balances): void {
    if ((this.count + 1) * balanceWords > this.words.length) {
      const larger = new BigUint64Array(
        Math.max(listCapacityInitial * balanceWords, this.words.length * 2),
      );
      larger.set(this.words.subarray(0, this.count * balanceWords));
      this.words = larger;
    }
    const first = this.count * balanceWords;
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
    const first = index * balanceWords;
    return {
      debits_pending: readU128Words(this.words, first),
      debits_posted: readU128Words(this.words, first + 2),
      credits_pending: readU128Words(this.words, first + 4),
      credits_posted: readU128Words(this.words, first + 6),
    };
  }

  /** The used part, without copying (valid until the next push). */
  view(): BigUint64Array {
    return this.words.subarray(0, this.count * balanceWords);
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
