/**
 * An open-addressing hash table from a 128-bit id to a slot, in two typed arrays: per bucket the
 * slot + 1 (0 = empty) and the id's 32-bit hash (compared first, so a probe rarely reads the
 * record). Linear probing, grown by doubling and rehashing from the stored hashes; removal (only
 * ever of the newest entry, when a linked chain is rolled back) shifts later entries back, so no
 * tombstones are needed.
 */

/** Buckets of a new, empty index (a power of two). */
export const idIndexBucketsInitial = 1 << 10;
/** The index grows before more than this share of its buckets is used (keeps probes short). */
export const idIndexLoadMax = 0.7;

/** Compares the id stored in a slot with an id given as four u32 words, low word first. */
export interface IdKeys {
  idEquals(slot: number, w0: number, w1: number, w2: number, w3: number): boolean;
}

export class IdIndex {
  private slots: Uint32Array;
  private hashes: Uint32Array;
  private mask: number;
  private used = 0;

  constructor(
    private readonly keys: IdKeys,
    buckets: number = idIndexBucketsInitial,
  ) {
    if (!Number.isInteger(Math.log2(buckets)))
      throw new Error('assertion failed: index buckets must be a power of two');
    this.slots = new Uint32Array(buckets);
    this.hashes = new Uint32Array(buckets);
    this.mask = buckets - 1;
  }

  get size(): number {
    return this.used;
  }

  get buckets(): number {
    return this.slots.length;
  }

  /** The slot of the id, or -1. */
  find(hash: number, w0: number, w1: number, w2: number, w3: number): number {
    const slots = this.slots;
    const hashes = this.hashes;
    for (let bucket = hash & this.mask; ; bucket = (bucket + 1) & this.mask) {
      const entry = slots[bucket];
      if (entry === 0) return -1;
      if (hashes[bucket] === hash && this.keys.idEquals(entry - 1, w0, w1, w2, w3))
        return entry - 1;
    }
  }

  /** Adds a slot whose id is not in the index (the caller looked it up first). */
  insert(hash: number, slot: number): void {
    if ((this.used + 1) / this.slots.length > idIndexLoadMax) this.grow();
    this.place(hash, slot);
    this.used += 1;
  }

  /** Removes the entry of `slot` (whose id hashes to `hash`). */
  remove(hash: number, slot: number): void {
    const slots = this.slots;
    const hashes = this.hashes;
    const mask = this.mask;
    let bucket = hash & mask;
    while (slots[bucket] !== slot + 1) {
      if (slots[bucket] === 0) throw new Error('assertion failed: removing a slot not indexed');
      bucket = (bucket + 1) & mask;
    }
    // Backward-shift deletion: move each later entry of the run into the hole if its home
    // bucket is at or before the hole (cyclically), so every lookup still finds it.
    let hole = bucket;
    for (let next = (hole + 1) & mask; slots[next] !== 0; next = (next + 1) & mask) {
      const home = hashes[next] & mask;
      if (((next - home) & mask) >= ((next - hole) & mask)) {
        slots[hole] = slots[next];
        hashes[hole] = hashes[next];
        hole = next;
      }
    }
    slots[hole] = 0;
    hashes[hole] = 0;
    this.used -= 1;
  }

  /** The bucket arrays as they are (for a snapshot; no copy). */
  views(): { slots: Uint32Array; hashes: Uint32Array } {
    return { slots: this.slots, hashes: this.hashes };
  }

  /**
   * Replaces the buckets with `buckets` empty ones to be filled by a bulk load (from a
   * snapshot); `finishLoad` then checks them.
   */
  beginLoad(buckets: number): { slots: Uint32Array; hashes: Uint32Array } {
    if (this.used !== 0) throw new Error('assertion failed: loading into a used index');
    if (!Number.isInteger(Math.log2(buckets)) || buckets < idIndexBucketsInitial)
      throw new Error('its id index size is not a power of two');
    this.slots = new Uint32Array(buckets);
    this.hashes = new Uint32Array(buckets);
    this.mask = buckets - 1;
    return { slots: this.slots, hashes: this.hashes };
  }

  /**
   * Checks loaded buckets hold each of `count` slots exactly once, within the load limit; the
   * caller checks that ids hash and look up as stored.
   */
  finishLoad(count: number): void {
    if (count / this.slots.length > idIndexLoadMax) throw new Error('its id index is overfull');
    const seen = new Uint8Array(count);
    let used = 0;
    for (let bucket = 0; bucket < this.slots.length; bucket += 1) {
      const entry = this.slots[bucket];
      if (entry === 0) continue;
      if (entry > count || seen[entry - 1] !== 0)
        throw new Error('its id index names a slot twice or out of range');
      seen[entry - 1] = 1;
      used += 1;
    }
    if (used !== count) throw new Error('its id index misses transfers');
    this.used = used;
  }

  /** The hash stored for the entry of `slot` (-1 if absent), to check a loaded index. */
  storedHash(hash: number, slot: number): number {
    for (let bucket = hash & this.mask; ; bucket = (bucket + 1) & this.mask) {
      const entry = this.slots[bucket];
      if (entry === 0) return -1;
      if (entry === slot + 1) return this.hashes[bucket];
    }
  }

  private place(hash: number, slot: number): void {
    let bucket = hash & this.mask;
    while (this.slots[bucket] !== 0) bucket = (bucket + 1) & this.mask;
    this.slots[bucket] = slot + 1;
    this.hashes[bucket] = hash;
  }

  private grow(): void {
    const oldSlots = this.slots;
    const oldHashes = this.hashes;
    this.slots = new Uint32Array(oldSlots.length * 2);
    this.hashes = new Uint32Array(oldSlots.length * 2);
    this.mask = this.slots.length - 1;
    for (let bucket = 0; bucket < oldSlots.length; bucket += 1) {
      if (oldSlots[bucket] !== 0) this.place(oldHashes[bucket], oldSlots[bucket] - 1);
    }
  }
}

/** A 32-bit hash of a 128-bit id given as four u32 words (murmur3's mixing steps). */
export function hashIdWords(w0: number, w1: number, w2: number, w3: number): number {
  let hash = Math.imul(w0 ^ 0x9e3779b9, 0xcc9e2d51);
  hash = Math.imul(hash ^ (hash >>> 15) ^ w1, 0x1b873593);
  hash = Math.imul(hash ^ (hash >>> 13) ^ w2, 0xcc9e2d51);
  hash = Math.imul(hash ^ (hash >>> 16) ^ w3, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  return (hash ^ (hash >>> 16)) >>> 0;
}
