import { hashKey, type KeyEntry } from '../../runtime/keys';
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
