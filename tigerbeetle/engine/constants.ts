/**
 * Limits and reserved values of the embedded ledger engine, taken from TigerBeetle 0.17.
 * Every limit carries its unit in its name.
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

export const nanosecondsPerSecond = 1_000_000_000n;

/** Flag bits that TigerBeetle 0.17 defines; any other bit is `reserved_flag`. */
export const accountFlagsKnownMask = 0x3f;
export const transferFlagsKnownMask = 0x1ff;
export const accountFilterFlagsKnownMask = 0x7;
export const queryFilterFlagsKnownMask = 0x1;

/** Size of one Account or Transfer in TigerBeetle's wire format, reused by the journal. */
export const eventSizeBytes = 128;
