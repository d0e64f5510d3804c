import { PendingStatus, type TransferRecord } from './records';

/**
 * Pending transfers with a timeout, ordered by expiry time (ties broken by the transfer's
 * timestamp, which is unique, so the order never depends on the heap's shape).
 * Entries whose transfer was posted, voided or rolled back stay in the heap and are skipped
 * lazily, so removal is never needed.
 */
export class ExpiryQueue {
  private readonly expiresAt: bigint[] = [];
  private readonly records: TransferRecord[] = [];

  get size(): number {
    return this.records.length;
  }

  push(expiresAtNanoseconds: bigint, record: TransferRecord): void {
    this.expiresAt.push(expiresAtNanoseconds);
    this.records.push(record);
    this.siftUp(this.records.length - 1);
  }

  /** The earliest expiry among transfers that are still pending, or null. */
  peekExpiresAt(): bigint | null {
    this.dropStale();
    return this.records.length === 0 ? null : this.expiresAt[0];
  }

  /** Removes and returns the earliest still-pending transfer if it expires at or before `now`. */
  popDue(nowNanoseconds: bigint): TransferRecord | null {
    this.dropStale();
    if (this.records.length === 0 || this.expiresAt[0] > nowNanoseconds) return null;
    const record = this.records[0];
    this.removeTop();
    return record;
  }

  private dropStale(): void {
    while (this.records.length > 0) {
      const top = this.records[0];
      if (!top.removed && top.pendingStatus === PendingStatus.pending) return;
      this.removeTop();
    }
  }

  private removeTop(): void {
    const lastIndex = this.records.length - 1;
    this.swap(0, lastIndex);
    this.records.pop();
    this.expiresAt.pop();
    if (this.records.length > 0) this.siftDown(0);
  }

  private less(left: number, right: number): boolean {
    const leftExpires = this.expiresAt[left];
    const rightExpires = this.expiresAt[right];
    if (leftExpires !== rightExpires) return leftExpires < rightExpires;
    return this.records[left].timestamp < this.records[right].timestamp;
  }

  private swap(left: number, right: number): void {
    const expires = this.expiresAt[left];
    this.expiresAt[left] = this.expiresAt[right];
    this.expiresAt[right] = expires;
    const record = this.records[left];
    this.records[left] = this.records[right];
    this.records[right] = record;
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
    const length = this.records.length;
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
