/**
 * TigerBeetle's own limits (0.17), defined once: the embedded engine enforces them, the gateway's
 * wire format checks them, the credits service and the scripts size their requests by them. Pure
 * values, so a Lambda bundle that imports them carries no engine. Every limit carries its unit.
 */

/** Events per request: TigerBeetle's 1 MiB message body divided by the 128-byte event size. */
export const batchEventsMax = 8189;

export const u128Max = (1n << 128n) - 1n;
export const u64Max = (1n << 64n) - 1n;
export const u32Max = 0xffff_ffff;
export const u16Max = 0xffff;

/** TigerBeetle keeps the top bit of a u64 timestamp as a tombstone, so timestamps are u63. */
export const timestampMinNanoseconds = 1n;
export const timestampMaxNanoseconds = (1n << 63n) - 1n;

/** Ledger time is nanoseconds; timeouts are seconds. */
export const nanosecondsPerSecond = 1_000_000_000n;
export const nanosecondsPerMillisecond = 1_000_000n;
