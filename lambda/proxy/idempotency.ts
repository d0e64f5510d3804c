import { createHash } from 'node:crypto';
import type { Context } from 'hono';
import { ApiError } from '../../runtime/http';
import type { ProxyEnv, ProxyPrincipal } from './context';

/**
 * A client's `Idempotency-Key` on a billable request (chat completions, embeddings). The hold's
 * transfer id is derived from the key and the caller (the API key's id), so a retry with the same
 * key finds the first request's hold on the ledger instead of placing a second one: it is never
 * charged twice, and the ledger is the only store. Such a retry, while the first is in flight or
 * after it finished, gets 409. Without the header every request gets a hold key of its own.
 *
 * TigerBeetle binds an id even to a failed transfer when the failure was transient
 * (`exceeds_credits`): a key refused with 402 stays refused, so a retry after a top-up needs a new key.
 */

/** Longest Idempotency-Key accepted (the SDKs send about 60 characters: `stainless-node-retry-<uuid>`). */
export const idempotencyKeyLengthMax = 128;
const idempotencyKeyPattern = new RegExp(`^[A-Za-z0-9._:-]{1,${idempotencyKeyLengthMax}}$`);

export const idempotencyKeyHeader = 'idempotency-key';

/** The request's Idempotency-Key, if any; 400 when it is empty, too long or has other characters. */
export function clientIdempotencyKey(c: Context<ProxyEnv>): string | undefined {
  const key = c.req.header(idempotencyKeyHeader);
  if (key === undefined) return undefined;
  if (!idempotencyKeyPattern.test(key))
    throw new ApiError(
      400,
      'invalid_request_error',
      'invalid_idempotency_key',
      `Idempotency-Key must be 1 to ${idempotencyKeyLengthMax} characters: letters, digits and . _ : -`,
    );
  return key;
}

/**
 * The credits service's hold key of a client's Idempotency-Key: scoped to the API key that sent it
 * (another key, even the same user's, never collides), hashed so any accepted key fits the credits
 * service's key format.
 */
export function idempotentHoldKey(principal: ProxyPrincipal, clientKey: string): string {
  const digest = createHash('sha256').update(clientKey, 'utf8').digest('hex');
  return `idem:${principal.keyId}:${digest}`;
}
