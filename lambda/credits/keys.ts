import { hashKey, type KeyEntry } from '../shared/keys';
import { parseServiceSecret, serviceKeyProblem } from '../shared/service-secret';
import type { CreditsPrincipal } from './context';

/**
 * The credits service's keys (AUTH-05: not the proxy's client keys). Each role has the current key
 * and, during a rotation, the previous one; both verify (AUTH-04). Only hashes are kept (AUTH-06).
 */
export function creditsKeyEntries(keys: {
  admin: readonly string[];
  proxy: readonly string[];
}): KeyEntry<CreditsPrincipal>[] {
  const entries = (role: CreditsPrincipal['role'], raw: readonly string[]) =>
    raw.map((key, index): KeyEntry<CreditsPrincipal> => ({
      keyHash: hashKey(key),
      principal: { keyId: `${role}-${index === 0 ? 'current' : 'previous'}`, role },
    }));
  return [...entries('admin', keys.admin), ...entries('proxy', keys.proxy)];
}

/**
 * The key a service-key secret holds: the key itself, or JSON with a `key` (or `token`) field, the
 * formats the rotation function writes (lambda/shared/service-secret.ts). Throws with a message that
 * never quotes the value.
 */
export function serviceKeyFromSecretString(
  secretString: string,
  version: 'current' | 'previous',
): string {
  const what = `the ${version} key secret`;
  const { key } = parseServiceSecret(secretString, what);
  const problem = serviceKeyProblem(key, what);
  if (problem) throw new Error(problem);
  return key;
}
