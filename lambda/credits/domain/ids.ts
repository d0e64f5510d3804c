import { createHash, randomBytes } from 'node:crypto';
import { u128Max } from '../../../tigerbeetle/limits';

/**
 * Ledger ids are derived, never stored: an account id from the user id, a transfer id from the
 * caller's role, the operation and its idempotency key. A retried request derives the same id, and
 * TigerBeetle's exactly-once semantics do the rest. Derivation: the first 128 bits of SHA-256 over
 * a versioned namespace and the parts, separated by NUL (which no part may contain).
 */

const namespace = 'ai-proxy/credits/v1';

export function deriveId(...parts: string[]): bigint {
  for (const part of parts) {
    if (part.includes('\0')) throw new Error('id parts must not contain NUL');
  }
  const digest = createHash('sha256')
    .update([namespace, ...parts].join('\0'), 'utf8')
    .digest();
  const id = BigInt(`0x${digest.subarray(0, 16).toString('hex')}`);
  // TigerBeetle reserves 0 and 2^128-1; a SHA-256 prefix hitting either is a 2^-127 event.
  if (id === 0n || id === u128Max) throw new Error('derived id is reserved; change the namespace');
  return id;
}

export type Role = 'proxy' | 'admin';
export type OperatorAccount = 'funding' | 'revenue';

export const accountIdForUser = (userId: string): bigint => deriveId('account', 'user', userId);
export const operatorAccountId = (account: OperatorAccount): bigint =>
  deriveId('account', 'operator', account);
export const transferIdFor = (
  role: Role,
  operation: 'topup' | 'adjustment',
  idempotencyKey: string,
): bigint => deriveId('transfer', role, operation, idempotencyKey);
/** A hold's id is scoped to its user: one user's key can never land on (or block) another user's hold. */
export const holdTransferId = (userId: string, idempotencyKey: string): bigint =>
  deriveId('transfer', 'proxy', 'hold', userId, idempotencyKey);
/** One settle and one release per hold: retries of either land on the same id. */
export const settleTransferId = (holdId: bigint): bigint =>
  deriveId('transfer', 'settle', holdId.toString());
export const releaseTransferId = (holdId: bigint): bigint =>
  deriveId('transfer', 'release', holdId.toString());

/** A random 128-bit id, for transfers that are never retried (rate-limit consumption). */
export function randomId(): bigint {
  for (;;) {
    const id = BigInt(`0x${randomBytes(16).toString('hex')}`);
    if (id !== 0n && id !== u128Max) return id;
  }
}
