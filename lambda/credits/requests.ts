import type { z } from '../../runtime/zod-mini';
import { invalidParameter, invalidRequestFromSchema } from '../../runtime/http';
import { holdIdPattern, idempotencyKeyPattern } from './contract';
import type { CreditsConfig } from './config';
import type { CreditsContext } from './context';
import { ledgerAmountMax, parseAmount, type AmountRules } from './domain/amount';

/**
 * Reading a request against the contract (contract.ts): every refusal is a 400 naming the rule,
 * with `param` naming the field (runtime/http.ts), as the proxy's refusals do.
 */

/** The value as the schema reads it, or a 400 with the first problem and where it is. */
export function parseWith<S extends z.ZodMiniType>(schema: S, value: unknown): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw invalidRequestFromSchema(parsed.error.issues);
}

/** The Idempotency-Key header (or the body's own request id, for a hold). */
export function idempotencyKey(c: CreditsContext, fallback?: string): string {
  const key = c.req.header('idempotency-key') ?? fallback;
  if (key === undefined)
    throw invalidParameter(
      undefined,
      'Idempotency-Key header is required on this request',
      'idempotency_key_required',
    );
  if (!idempotencyKeyPattern.test(key))
    throw invalidParameter(
      undefined,
      'Idempotency-Key must be 8 to 128 characters: letters, digits and . _ : -',
      'invalid_idempotency_key',
    );
  return key;
}

/** The hold id of the path: a u128, never 0. */
export function holdIdParam(c: CreditsContext): bigint {
  const text = c.req.param('id') ?? '';
  const id = holdIdPattern.test(text) ? BigInt(text) : 0n;
  if (id === 0n || id > ledgerAmountMax)
    throw invalidParameter(
      'hold_id',
      'hold id must be the decimal id returned when the hold was placed',
      'invalid_hold_id',
    );
  return id;
}

/** The request's amount in micros under the operation's rules, or a 400 naming the rule. */
export function amountMicros(
  body: { amount?: unknown; amount_micros?: unknown },
  rules: AmountRules,
): bigint {
  const amount = parseAmount(body, rules);
  if (!amount.ok) {
    const param = body.amount_micros === undefined ? 'amount' : 'amount_micros';
    throw invalidParameter(param, amount.message, 'invalid_amount');
  }
  return amount.micros;
}

/** A hold's timeout, at most the service's maximum. */
export function holdTimeoutSeconds(timeoutSeconds: number, config: CreditsConfig): number {
  if (timeoutSeconds > config.holdTimeoutSecondsMax)
    throw invalidParameter(
      'timeout_seconds',
      `timeout_seconds must be at most ${config.holdTimeoutSecondsMax}`,
    );
  return timeoutSeconds;
}
