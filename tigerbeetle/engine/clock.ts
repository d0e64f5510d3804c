/**
 * Time source for the ledger. TigerBeetle assigns nanosecond timestamps on the server and expires
 * pending transfers against the cluster's clock; the engine asks a `Clock` instead, so tests can
 * move time forward without sleeping.
 */
export interface Clock {
  /** Wall-clock time in nanoseconds since the Unix epoch. */
  nowNanoseconds(): bigint;
}

import { nanosecondsPerMillisecond, nanosecondsPerSecond } from '../limits';

/**
 * The system clock: anchored on `Date.now()` once, then advanced with the monotonic
 * high-resolution timer, so it never goes backwards when the wall clock is adjusted.
 */
export function createSystemClock(): Clock {
  const epochAtStartNanoseconds = BigInt(Date.now()) * nanosecondsPerMillisecond;
  const monotonicAtStartNanoseconds = process.hrtime.bigint();
  return {
    nowNanoseconds(): bigint {
      return epochAtStartNanoseconds + (process.hrtime.bigint() - monotonicAtStartNanoseconds);
    },
  };
}

/** A clock that only moves when told to; for tests. */
export class ManualClock implements Clock {
  private currentNanoseconds: bigint;

  constructor(startNanoseconds: bigint = 1_700_000_000n * nanosecondsPerSecond) {
    if (startNanoseconds <= 0n) throw new Error('ManualClock: start must be positive');
    this.currentNanoseconds = startNanoseconds;
  }

  nowNanoseconds(): bigint {
    return this.currentNanoseconds;
  }

  advanceNanoseconds(nanoseconds: bigint): void {
    if (nanoseconds < 0n) throw new Error('ManualClock: time only moves forward');
    this.currentNanoseconds += nanoseconds;
  }

  advanceSeconds(seconds: number): void {
    if (!Number.isInteger(seconds) || seconds < 0) {
      throw new Error('ManualClock: seconds must be a non-negative integer');
    }
    this.advanceNanoseconds(BigInt(seconds) * nanosecondsPerSecond);
  }
}
