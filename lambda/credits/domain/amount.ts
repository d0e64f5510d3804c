import { u128Max } from '../../../tigerbeetle/limits';
import { amountFractionDigitsMax, formatMicros, microsPerUnit } from '../../shared/money';

/**
 * Money is an integer number of micro-units of the currency (1 unit = 1,000,000 micros), a bigint
 * end to end. Clients send either `amount`, a decimal string with at most 6 fractional digits
 * ("12.50"), or `amount_micros`, an integer ("12500000"). Floats, exponents, signs and anything
 * beyond the ledger's range are refused with a message that says which rule failed.
 */

/** TigerBeetle amounts are u128. */
export const ledgerAmountMax = u128Max;

export type AmountParse = { ok: true; micros: bigint } | { ok: false; message: string };

export interface AmountRules {
  /** Settling a hold for 0 is meaningful; a top-up or a hold of 0 is not. */
  readonly allowZero: boolean;
  /** The largest amount this operation accepts, in micros. */
  readonly microsMax: bigint;
}

const decimalPattern = /^(0|[1-9][0-9]*)(\.([0-9]+))?$/;
const integerPattern = /^(0|[1-9][0-9]*)$/;
/** Longest amount string considered at all (u128 has 39 digits). */
const amountTextLengthMax = 48;

function parseDecimal(value: unknown): AmountParse {
  if (typeof value === 'number') {
    return {
      ok: false,
      message:
        'amount must be a decimal string such as "12.50", not a JSON number (floats lose cents)',
    };
  }
  if (typeof value !== 'string')
    return { ok: false, message: 'amount must be a decimal string such as "12.50"' };
  if (value.length > amountTextLengthMax)
    return { ok: false, message: 'amount is beyond the ledger range' };
  const match = decimalPattern.exec(value);
  if (!match) {
    return {
      ok: false,
      message:
        'amount must be digits with an optional decimal point: no sign, exponent, spaces or separators',
    };
  }
  const fraction = match[3] ?? '';
  if (fraction.length > amountFractionDigitsMax) {
    return { ok: false, message: `amount has more than ${amountFractionDigitsMax} decimal places` };
  }
  const micros =
    BigInt(match[1]) * microsPerUnit + BigInt(fraction.padEnd(amountFractionDigitsMax, '0'));
  return { ok: true, micros };
}

function parseMicros(value: unknown): AmountParse {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value))
      return { ok: false, message: 'amount_micros must be an integer (a string for large values)' };
    if (value < 0) return { ok: false, message: 'amount_micros must not be negative' };
    return { ok: true, micros: BigInt(value) };
  }
  if (typeof value !== 'string')
    return { ok: false, message: 'amount_micros must be an integer or a string of digits' };
  if (value.length > amountTextLengthMax)
    return { ok: false, message: 'amount_micros is beyond the ledger range' };
  if (!integerPattern.test(value))
    return {
      ok: false,
      message: 'amount_micros must be digits only: no sign, decimal point or exponent',
    };
  return { ok: true, micros: BigInt(value) };
}

/** Reads the amount of a request body that carries `amount` or `amount_micros` (exactly one). */
export function parseAmount(
  body: { amount?: unknown; amount_micros?: unknown },
  rules: AmountRules,
): AmountParse {
  const hasDecimal = body.amount !== undefined;
  const hasMicros = body.amount_micros !== undefined;
  if (hasDecimal === hasMicros)
    return {
      ok: false,
      message: 'send exactly one of amount (decimal string) or amount_micros (integer)',
    };
  const parsed = hasDecimal ? parseDecimal(body.amount) : parseMicros(body.amount_micros);
  if (!parsed.ok) return parsed;
  if (parsed.micros === 0n && !rules.allowZero)
    return { ok: false, message: 'amount must be greater than zero' };
  if (parsed.micros > ledgerAmountMax)
    return { ok: false, message: 'amount is beyond the ledger range' };
  if (parsed.micros > rules.microsMax) {
    return {
      ok: false,
      message: `amount exceeds the maximum of ${formatMicros(rules.microsMax)} for this operation`,
    };
  }
  return parsed;
}
