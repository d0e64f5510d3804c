/**
 * Limits and reserved values of the embedded ledger engine, taken from TigerBeetle 0.17. The
 * limits every side shares are defined in tigerbeetle/limits.ts; the engine's own values follow.
 */
export {
  batchEventsMax,
  nanosecondsPerSecond,
  timestampMaxNanoseconds,
  timestampMinNanoseconds,
  u128Max,
  u16Max,
  u32Max,
  u64Max,
} from '../limits';

/** Flag bits that TigerBeetle 0.17 defines; any other bit is `reserved_flag`. */
export const accountFlagsKnownMask = 0x3f;
export const transferFlagsKnownMask = 0x1ff;
export const accountFilterFlagsKnownMask = 0x7;
export const queryFilterFlagsKnownMask = 0x1;

/** Size of one Account or Transfer in TigerBeetle's wire format, reused by the journal. */
export const eventSizeBytes = 128;
