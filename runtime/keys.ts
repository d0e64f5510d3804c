import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { apiKeyPrefix, apiKeyRandomBytes } from './api-key-format';

/**
 * API keys are compared by their SHA-256 hashes only: the keyring never holds a key (AUTH-06). A
 * presented key is hashed and looked up by its hash in a Map, so verification costs the same with
 * ten keys or ten thousand; what the lookup's timing could reveal is about the hash of the key the
 * caller already holds, never about a stored key (SHA-256 is preimage resistant). The match is
 * confirmed with a constant-time comparison.
 */

export interface KeyEntry<Principal> {
  /** SHA-256 of the key, 32 bytes. */
  readonly keyHash: Buffer;
  /** What the key authenticates as (a role, a client id...). */
  readonly principal: Principal;
}

export interface Keyring<Principal> {
  /** The principal of a presented key, or undefined. */
  verify(presentedKey: string): Principal | undefined;
  readonly size: number;
}

/** Longest key accepted from a request header; longer values are refused before hashing. */
export const presentedKeyLengthMax = 256;

export function hashKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** A new key: the prefix and 256 bits of randomness, base64url (AUTH-02). */
export function generateApiKey(): string {
  return apiKeyPrefix + randomBytes(apiKeyRandomBytes).toString('base64url');
}

export function createKeyring<Principal>(
  entries: readonly KeyEntry<Principal>[],
): Keyring<Principal> {
  if (entries.length === 0)
    throw new Error('a keyring needs at least one key; refusing to start without keys (AUTH-08)');
  for (const entry of entries) {
    if (entry.keyHash.length !== 32) throw new Error('a key hash must be 32 bytes (SHA-256)');
  }
  const byHash = new Map<string, { keyHash: Buffer; principal: Principal }>();
  for (const entry of entries) {
    const hex = entry.keyHash.toString('hex');
    // The first entry of a hash wins (a current key equal to the previous one is the current one).
    if (!byHash.has(hex))
      byHash.set(hex, { keyHash: Buffer.from(entry.keyHash), principal: entry.principal });
  }
  return {
    size: entries.length,
    verify(presentedKey: string): Principal | undefined {
      if (presentedKey.length === 0 || presentedKey.length > presentedKeyLengthMax)
        return undefined;
      const presentedHash = hashKey(presentedKey);
      const found = byHash.get(presentedHash.toString('hex'));
      return found && timingSafeEqual(found.keyHash, presentedHash) ? found.principal : undefined;
    },
  };
}

/** The key from `Authorization: Bearer <key>` or `X-API-Key: <key>`; undefined if neither. */
export function presentedKey(
  authorization: string | undefined,
  xApiKey: string | undefined,
): string | undefined {
  if (authorization !== undefined) {
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
    return match ? match[1] : undefined;
  }
  const trimmed = xApiKey?.trim();
  return trimmed === undefined || trimmed === '' ? undefined : trimmed;
}
