/**
 * Failed authentications per source address, counted in this instance's memory over a sliding
 * minute (RATE-05). The proxy consults it only for a request that failed authentication: over the
 * limit, that failure is answered 429 instead of 401, whatever key it tried, while a valid key from
 * the same address is never refused (throttle what fails, not who succeeds). Deliberately not on the ledger: unauthenticated traffic must not write to it nor
 * be able to slow billing down. The WAF's per-address rules throttle the same traffic across all
 * instances at the edge. Bounded: at most `sourcesMax` addresses are tracked, the oldest dropped first.
 */

const windowMilliseconds = 60_000;
export const authFailureSourcesMax = 10_000;

export class AuthFailureThrottle {
  /** Source -> times of its failures within the window, oldest first. Map order is insertion order. */
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly failuresPerMinute: number,
    private readonly sourcesMax = authFailureSourcesMax,
  ) {
    if (!(failuresPerMinute >= 1)) throw new Error('failuresPerMinute must be at least 1');
  }

  /** Seconds until the source may try again, or undefined if it may try now. */
  retryAfterSeconds(source: string, nowMilliseconds: number): number | undefined {
    const recent = this.recent(source, nowMilliseconds);
    if (recent.length < this.failuresPerMinute) return undefined;
    return Math.max(1, Math.ceil((recent[0] + windowMilliseconds - nowMilliseconds) / 1000));
  }

  record(source: string, nowMilliseconds: number): void {
    const recent = this.recent(source, nowMilliseconds);
    recent.push(nowMilliseconds);
    this.failures.delete(source); // re-insert: most recently failed last
    this.failures.set(source, recent.slice(-this.failuresPerMinute));
    while (this.failures.size > this.sourcesMax) {
      const oldest = this.failures.keys().next().value as string;
      this.failures.delete(oldest);
    }
  }

  private recent(source: string, nowMilliseconds: number): number[] {
    return (this.failures.get(source) ?? []).filter(
      (time) => time > nowMilliseconds - windowMilliseconds,
    );
  }
}
