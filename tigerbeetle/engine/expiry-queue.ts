import { PendingStatus } from './records';
import type { TransferStore } from './transfer-store';

/**
 * Pending transfers with a timeout, ordered by expiry time (ties broken by slot, which is
 * timestamp order, so the order never depends on the heap's shape). An entry names its transfer
 * by slot and timestamp.
 *
 * Entries whose transfer was posted, voided or rolled back stay in the heap and are skipped
 * lazily, so removal is never needed. A rolled-back transfer's slot can be taken by a later
 * transfer; its entry still never matches that one: a later transfer with a timeout has a later
 * timestamp (timestamps only grow), and an imported transfer, the only kind that may reuse a
 * rolled-back timestamp, has no timeout.
 */
export class ExpiryQueue {
  private readonly expiresAt: bigint[] = [];
  private readonly timestamps: bigint[] = [];
  private readonly slots: number[] = [];

  constructor(private readonly store: TransferStore) {}

  get size(): number {
    return this.slots.length;
  }

  push(expiresAtNanoseconds: bigint, slot: number): void {
    this.expiresAt.push(expiresAtNanoseconds);
    this.timestamps.push(this.store.timestamp(slot));
    this.slots.push(slot);
    this.siftUp(this.slots.length - 1);
  }

  /** The earliest expiry among transfers that are still pending, or null. */
  peekExpiresAt(): bigint | null {
    this.dropStale();
    return this.slots.length === 0 ? null : this.expiresAt[0];
  }

  /** Removes and returns the slot of the earliest still-pending transfer if it is due at `now`. */
  popDue(nowNanoseconds: bigint): number | null {
    this.dropStale();
    if (this.slots.length === 0 || this.expiresAt[0] > nowNanoseconds) return null;
    const slot = this.slots[0];
    this.removeTop();
    return slot;
  }

  private dropStale(): void {
    while (this.slots.length > 0) {
      if (this.live(this.slots[0], this.timestamps[0])) return;
      this.removeTop();
    }
  }

  private live(slot: number, timestamp: bigint): boolean {
    const store = this.store;
    return (
      slot < store.length &&
      store.timestamp(slot) === timestamp &&
      store.timeout(slot) !== 0 &&
      store.pendingStatus(slot) === PendingStatus.pending
    );
  }

  private removeTop(): void {
    const lastIndex = this.slots.length - 1;
    this.swap(0, lastIndex);
    this.slots.pop();
    this.timestamps.pop();
    this.expiresAt.pop();
    if (this.slots.length > 0) this.siftDown(0);
  }

  private less(left: number, right: number): boolean {
    const leftExpires = this.expiresAt[left];
    const rightExpires = this.expiresAt[right];
    if (leftExpires !== rightExpires) return leftExpires < rightExpires;
    return this.timestamps[left] < this.timestamps[right];
  }

  private swap(left: number, right: number): void {
    const expires = this.expiresAt[left];
    this.expiresAt[left] = this.expiresAt[right];
    this.expiresAt[right] = expires;
    const timestamp = this.timestamps[left];
    this.timestamps[left] = this.timestamps[right];
    this.timestamps[right] = timestamp;
    const slot = this.slots[left];
    this.slots[left] = this.slots[right];
    this.slots[right] = slot;
  }

  private siftUp(start: number): void {
    let index = start;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.less(index, parent)) return;
      this.swap(index, parent);
      index = parent;
    }
  }

  private siftDown(start: number): void {
    let index = start;
    const length = this.slots.length;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let smallest = index;
      if (left < length && this.less(left, smallest)) smallest = left;
      if (right < length && this.less(right, smallest)) smallest = right;
      if (smallest === index) return;
      this.swap(index, smallest);
      index = smallest;
    }
  }
}
