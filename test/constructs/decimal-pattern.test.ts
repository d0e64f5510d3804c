import fc from 'fast-check';
import { decimalGreaterThanPattern } from '../../lib/constructs/decimal-pattern';

describe('decimalGreaterThanPattern (the WAF body size rule, NET-12)', () => {
  test('matches exactly the decimal integers above the limit', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 50_000_000 }),
        fc.nat({ max: 100_000_000 }),
        fc.nat({ max: 3 }),
        (limit, value, zeros) => {
          const pattern = new RegExp(decimalGreaterThanPattern(limit));
          const text = '0'.repeat(zeros) + String(value);
          expect(pattern.test(text)).toBe(value > limit);
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('the boundaries of a 1 MiB limit', () => {
    const pattern = new RegExp(decimalGreaterThanPattern(1_048_576));
    expect(pattern.test('1048576')).toBe(false);
    expect(pattern.test('1048577')).toBe(true);
    expect(pattern.test('999999')).toBe(false);
    expect(pattern.test('10000000')).toBe(true);
    expect(pattern.test('')).toBe(false);
    expect(pattern.test('1048577x')).toBe(false);
    expect(pattern.test('-5')).toBe(false);
  });

  test('stays within the WAF regex length limit for any limit the config allows', () => {
    expect(decimalGreaterThanPattern(6 * 1024 * 1024).length).toBeLessThanOrEqual(512);
  });

  test('refuses a limit that is not a non-negative integer', () => {
    expect(() => decimalGreaterThanPattern(-1)).toThrow(/non-negative safe integer/);
    expect(() => decimalGreaterThanPattern(1.5)).toThrow(/non-negative safe integer/);
  });
});
