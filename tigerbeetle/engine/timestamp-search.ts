/** Binary searches over sequences kept in ascending timestamp order. */

/** Anything indexed 0 .. length - 1 in ascending timestamp order: a store, a list of slots. */
export interface TimestampSequence {
  readonly length: number;
  timestamp(index: number): bigint;
}

/** Accounts (objects in timestamp order) as a sequence. */
export function accountTimestamps(
  accounts: readonly { readonly timestamp: bigint }[],
): TimestampSequence {
  return { length: accounts.length, timestamp: (index) => accounts[index].timestamp };
}

/** Index of the first element whose timestamp is >= `timestamp` (the length if none). */
export function lowerBound(items: TimestampSequence, timestamp: bigint): number {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (items.timestamp(middle) < timestamp) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Index of the first element whose timestamp is > `timestamp` (the length if none). */
export function upperBound(items: TimestampSequence, timestamp: bigint): number {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (items.timestamp(middle) <= timestamp) low = middle + 1;
    else high = middle;
  }
  return low;
}

export function containsTimestamp(items: TimestampSequence, timestamp: bigint): boolean {
  const index = lowerBound(items, timestamp);
  return index < items.length && items.timestamp(index) === timestamp;
}
