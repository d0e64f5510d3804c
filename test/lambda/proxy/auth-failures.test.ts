import { AuthFailureThrottle } from '../../../lambda/proxy/auth-failures';

describe('RATE-05: the per-source authentication failure throttle', () => {
  test('refuses a source after the limit within a sliding minute, and lets it back when the oldest failure ages out', () => {
    const throttle = new AuthFailureThrottle(3);
    for (const time of [0, 10_000, 20_000]) {
      expect(throttle.retryAfterSeconds('203.0.113.9', time)).toBeUndefined();
      throttle.record('203.0.113.9', time);
    }
    expect(throttle.retryAfterSeconds('203.0.113.9', 30_000)).toBe(30);
    expect(throttle.retryAfterSeconds('198.51.100.4', 30_000)).toBeUndefined();
    expect(throttle.retryAfterSeconds('203.0.113.9', 60_001)).toBeUndefined();
  });

  test('tracks a bounded number of sources, dropping the least recently failed', () => {
    const throttle = new AuthFailureThrottle(1, 2);
    throttle.record('a', 0);
    throttle.record('b', 0);
    throttle.record('c', 0);
    expect(throttle.retryAfterSeconds('a', 1)).toBeUndefined(); // dropped
    expect(throttle.retryAfterSeconds('b', 1)).toBe(60);
    expect(throttle.retryAfterSeconds('c', 1)).toBe(60);
  });
});
