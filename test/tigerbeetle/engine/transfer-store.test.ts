import fc from 'fast-check';
import type { Transfer } from 'tigerbeetle-node';
import { u128Max, u64Max } from '../../../tigerbeetle/engine/constants';
import { hashIdWords, IdIndex, type IdKeys } from '../../../tigerbeetle/engine/id-index';
import { PendingStatus } from '../../../tigerbeetle/engine/records';
import {
  TransferStore,
  transferStoreChunkTransfers,
} from '../../../tigerbeetle/engine/transfer-store';
import { transfer } from './fixtures';

/**
 * The compact transfer store: fixed 128-byte records in chunks, looked up by id through an
 * open-addressing index in typed arrays. What goes in comes out, every id is found after the
 * index grows and after the newest transfers are taken back out (a linked chain rolled back).
 */
function stored(id: bigint, fields: Partial<Transfer> = {}): Transfer {
  return transfer(id, { timestamp: 1_000n + id, ...fields });
}

describe('transfer store', () => {
  it('returns every field as stored, u128 extremes included', () => {
    const store = new TransferStore();
    const extreme = stored(u128Max - 1n, {
      debit_account_id: u128Max - 2n,
      credit_account_id: 1n << 64n,
      amount: u128Max,
      pending_id: u64Max,
      user_data_128: (1n << 127n) + 5n,
      user_data_64: u64Max,
      user_data_32: 0xffff_ffff,
      timeout: 0xffff_ffff,
      ledger: 0xffff_ffff,
      code: 0xffff,
      flags: 0x1ff,
      timestamp: (1n << 63n) - 1n,
    });
    const plain = stored(7n);
    expect(store.append(extreme, PendingStatus.pending)).toBe(0);
    expect(store.append(plain, PendingStatus.none)).toBe(1);
    expect(store.read(0)).toEqual(extreme);
    expect(store.read(1)).toEqual(plain);
    expect(store.find(u128Max - 1n)).toBe(0);
    expect(store.find(7n)).toBe(1);
    expect(store.pendingStatus(0)).toBe(PendingStatus.pending);
    expect([store.timestamp(0), store.flags(0), store.timeout(0), store.code(0)]).toEqual([
      (1n << 63n) - 1n,
      0x1ff,
      0xffff_ffff,
      0xffff,
    ]);
    store.setPendingStatus(0, PendingStatus.posted);
    expect(store.pendingStatus(0)).toBe(PendingStatus.posted);
  });

  it('tells apart ids that share their low or their high 64 bits', () => {
    const store = new TransferStore();
    const ids = [1n, 1n << 64n, (1n << 64n) + 1n, 2n << 64n, u64Max, 1n << 127n];
    ids.forEach((id, index) => store.append(stored(id, { timestamp: BigInt(index + 1) }), 0));
    ids.forEach((id, index) => expect(store.find(id)).toBe(index));
    expect(store.find(3n << 64n)).toBe(-1);
    expect(store.find(2n)).toBe(-1);
  });

  it('grows its id index and its chunks; every id is found across a chunk boundary', () => {
    const store = new TransferStore(1024);
    const count = transferStoreChunkTransfers + 100;
    for (let index = 0; index < count; index += 1) {
      // Ids spread over both halves, as ULIDs or hashes would be.
      const id = (BigInt(index) << 64n) | BigInt((index * 2654435761) >>> 0);
      store.append(stored(id + 1n, { timestamp: BigInt(index + 1) }), 0);
    }
    expect(store.length).toBe(count);
    expect(store.indexBuckets).toBeGreaterThanOrEqual(count / 0.7);
    const misplaced: number[] = [];
    for (let index = 0; index < count; index += 1) {
      const id = ((BigInt(index) << 64n) | BigInt((index * 2654435761) >>> 0)) + 1n;
      if (store.find(id) !== index) misplaced.push(index);
    }
    expect(misplaced).toEqual([]);
    const boundary = transferStoreChunkTransfers;
    expect(store.read(boundary - 1).timestamp).toBe(BigInt(boundary));
    expect(store.read(boundary).timestamp).toBe(BigInt(boundary + 1));
    expect(store.recordViews().map((view) => view.length)).toEqual([
      transferStoreChunkTransfers * 128,
      100 * 128,
    ]);
  });

  it('a roll-back across a chunk boundary leaves views of exactly the stored transfers', () => {
    // A linked chain that began just before a chunk boundary and failed after it: the next
    // chunk stays allocated, with no transfer in it.
    const store = new TransferStore();
    const boundary = transferStoreChunkTransfers;
    for (let index = 0; index < boundary + 2; index += 1)
      store.append(stored(BigInt(index + 1)), PendingStatus.none);
    for (let index = 0; index < 5; index += 1) store.removeLast();
    expect(store.length).toBe(boundary - 3);
    const viewBytes = (views: Uint8Array[]) => views.reduce((sum, view) => sum + view.length, 0);
    expect(viewBytes(store.recordViews())).toBe((boundary - 3) * 128);
    expect(viewBytes(store.statusViews())).toBe(boundary - 3);
    // Appending again refills the old chunk, then the one kept allocated.
    for (let index = 0; index < 4; index += 1)
      store.append(stored(BigInt(boundary + 100 + index)), PendingStatus.pending);
    expect(store.pendingSlots()).toEqual([boundary - 3, boundary - 2, boundary - 1, boundary]);
    expect(store.find(BigInt(boundary + 103))).toBe(boundary);
    expect(viewBytes(store.recordViews())).toBe((boundary + 1) * 128);
  });

  it('takes the newest transfers back out; the others are still found, the removed are not', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.bigInt({ min: 1n, max: u128Max - 1n }), { minLength: 1, maxLength: 900 }),
        fc.nat(),
        (ids, removeSeed) => {
          const store = new TransferStore(1024); // fills to the load limit: long probe runs
          ids.forEach((id, index) => store.append(stored(id, { timestamp: BigInt(index + 1) }), 0));
          const removed = 1 + (removeSeed % ids.length);
          for (let index = 0; index < removed; index += 1) store.removeLast();
          const kept = ids.length - removed;
          expect(store.length).toBe(kept);
          expect(ids.map((id) => store.find(id))).toEqual(
            ids.map((_, index) => (index < kept ? index : -1)),
          );
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('id index', () => {
  /** Keys that are the slot numbers themselves, so a test chooses every hash. */
  const slotKeys: IdKeys = { idEquals: (slot, w0) => slot === w0 };

  it('removal keeps colliding runs findable, across the end of the table too', () => {
    const index = new IdIndex(slotKeys, 1024);
    const hashes = [1023, 1023, 0, 1023, 0, 1, 5, 1022];
    hashes.forEach((hash, slot) => index.insert(hash, slot));
    for (let slot = hashes.length - 1; slot >= 0; slot -= 1) {
      index.remove(hashes[slot], slot);
      hashes.forEach((hash, other) =>
        expect(index.find(hash, other, 0, 0, 0)).toBe(other < slot ? other : -1),
      );
    }
    expect(index.size).toBe(0);
  });

  it('doubles before it passes its load limit, and still finds everything', () => {
    const index = new IdIndex(slotKeys, 1024);
    for (let slot = 0; slot < 5000; slot += 1) index.insert(hashIdWords(slot, 0, 0, 0), slot);
    expect(index.buckets).toBe(8192);
    const misplaced: number[] = [];
    for (let slot = 0; slot < 5000; slot += 1)
      if (index.find(hashIdWords(slot, 0, 0, 0), slot, 0, 0, 0) !== slot) misplaced.push(slot);
    expect(misplaced).toEqual([]);
    expect(index.find(hashIdWords(5000, 0, 0, 0), 5000, 0, 0, 0)).toBe(-1);
  });
});
