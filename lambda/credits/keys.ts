import { hashKey, type KeyEntry } from '../shared/keys';
import type { CreditsPrincipal } from './app';

/**
 * The credits service's keys (AUTH-05: not the proxy's client keys). Each role has the current key
 * and, during a rotation, the previous one; both verify (AUTH-04). Only hashes are kept (AUTH-06).
 */
export function creditsKeyEntries(keys: { admin: readonly string[]; proxy: readonly string[] }): KeyEntry<CreditsPrincipal>[] {
  const entries = (role: CreditsPrincipal['role'], raw: readonly string[]) =>
    raw.map((key, index): KeyEntry<CreditsPrincipal> => ({ keyHash: hashKey(key), principal: { keyId: `${role}-${index === 0 ? 'current' : 'previous'}`, role } }));
  return [...entries('admin', keys.admin), ...entries('proxy', keys.proxy)];
}

/** Longest key accepted from a secret; generated keys are 46 characters. */
const serviceKeyLengthMax = 256;
const serviceKeyLengthMin = 32;

/**
 * The key a service-key secret holds: the key itself, or JSON with a `key` field. Throws with a
 * message that never quotes the value.
 */
export function serviceKeyFromSecretString(secretString: string, version: 'current' | 'previous'): string {
  let key = secretString.trim();
  if (key.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(key);
    } catch {
      throw new Error(`the ${version} key secret looks like JSON but does not parse`);
    }
    const field = (parsed as { key?: unknown }).key;
    if (typeof field !== 'string') throw new Error(`the ${version} key secret is JSON without a string "key" field`);
    key = field;
  }
  if (key.length < serviceKeyLengthMin || key.length > serviceKeyLengthMax || /\s/.test(key)) {
    throw new Error(`the ${version} key secret must hold ${serviceKeyLengthMin} to ${serviceKeyLengthMax} characters without spaces`);
  }
  return key;
}
