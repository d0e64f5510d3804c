/** Binary searches over arrays kept in ascending timestamp order. */

export interface Timestamped {
  readonly timestamp: bigint;
}

/** Index of the first element whose timestamp is >= `timestamp` (array length if none). */
export function lowerBound(items: readonly Timestamped[], timestamp: bigint): number {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (items[middle].timestamp < timestamp) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Index of the first element whose timestamp is > `timestamp` (array length if none). */
export function upperBound(items: readonly Timestamped[], timestamp: bigint): number {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (items[middle].timestamp <= timestamp) low = middle + 1;
    else high = middle;
  }
  return low;
}

export function containsTimestamp(items: readonly Timestamped[], timestamp: bigint): boolean {
  const index = lowerBound(items, timestamp);
  return index < items.length && items[index].timestamp === timestamp;
}
