/**
 * A regular expression source that matches a decimal integer (leading zeros allowed) strictly
 * greater than `limit`. The WAF has no numeric comparison on header values, so the body size rule
 * matches the Content-Length header with this pattern instead.
 *
 * A number is greater than `limit` when it has more significant digits, or the same number of digits
 * and, at the first position where they differ, a larger digit.
 */
export function decimalGreaterThanPattern(limit: number): string {
  if (!Number.isSafeInteger(limit) || limit < 0)
    throw new Error(`limit must be a non-negative safe integer, got ${limit}`);
  const digits = String(limit);
  const length = digits.length;
  const alternatives = [`[1-9][0-9]{${length},}`];
  for (let position = 0; position < length; position += 1) {
    const digit = Number(digits[position]);
    if (digit === 9) continue;
    const prefix = digits.slice(0, position);
    const rest = length - position - 1;
    // A limit with more than one digit never starts with zero, so the prefix is significant.
    const larger = digit === 8 ? '9' : `[${digit + 1}-9]`;
    alternatives.push(`${prefix}${larger}${anyDigits(rest)}`);
  }
  return `^0*(?:${alternatives.join('|')})$`;
}

function anyDigits(count: number): string {
  if (count === 0) return '';
  return count === 1 ? '[0-9]' : `[0-9]{${count}}`;
}
