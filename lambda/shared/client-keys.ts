import * as z from '../../runtime/zod-mini';
import { createKeyring, type Keyring } from '../../runtime/keys';

/**
 * The proxy's client keys: a key set (one JSON document in a Secrets Manager secret in AWS, in a
 * git-ignored file locally). Each entry names the user it bills and holds only the SHA-256 of the
 * key: the key itself is printed once when issued and stored nowhere (AUTH-02, AUTH-03, AUTH-06).
 */

export const clientKeySetVersion = 1;
/** Keys live 90 days unless issued otherwise (AUTH-04). */
export const clientKeyLifetimeDaysDefault = 90;
/** Largest key set the proxy accepts (it is re-read every minute). */
export const clientKeysMax = 10_000;

const isoTimestamp = z.iso.datetime({ offset: true });

export const clientKeyEntrySchema = z.strictObject({
  /** Public identifier of the key (safe to log and to show the client). */
  id: z.string().check(z.regex(/^key_[A-Za-z0-9]{8,32}$/)),
  /** The user whose credits the key spends. */
  user_id: z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/)),
  sha256: z.string().check(z.regex(/^[0-9a-f]{64}$/)),
  created_at: isoTimestamp,
  expires_at: isoTimestamp,
  disabled: z.boolean(),
  /** Free text for operators (who, what for); never a secret. */
  label: z.optional(z.string().check(z.maxLength(200))),
});
export type ClientKeyEntry = z.infer<typeof clientKeyEntrySchema>;

export const clientKeySetSchema = z
  .strictObject({
    version: z.literal(clientKeySetVersion),
    keys: z.array(clientKeyEntrySchema).check(z.maxLength(clientKeysMax)),
  })
  .check(
    z.superRefine((set, context) => {
      const ids = new Set<string>();
      const hashes = new Set<string>();
      for (const entry of set.keys) {
        if (ids.has(entry.id))
          context.addIssue({ code: 'custom', message: `key id ${entry.id} appears twice` });
        if (hashes.has(entry.sha256))
          context.addIssue({
            code: 'custom',
            message: `key ${entry.id} has the hash of another key`,
          });
        ids.add(entry.id);
        hashes.add(entry.sha256);
      }
    }),
  );
export type ClientKeySet = z.infer<typeof clientKeySetSchema>;

export function emptyClientKeySet(): ClientKeySet {
  return { version: clientKeySetVersion, keys: [] };
}

/** Parses a key set; the error lists what is wrong without quoting any value. */
export function parseClientKeySet(text: string): ClientKeySet {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error('the client key set is not valid JSON');
  }
  const parsed = clientKeySetSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .slice(0, 5)
      .map((issue) => `${issue.path.join('.') || '(set)'}: ${issue.message}`);
    throw new Error(`the client key set is invalid: ${problems.join('; ')}`);
  }
  return parsed.data;
}

export type ClientKeyVerdict =
  | { readonly status: 'valid'; readonly keyId: string; readonly userId: string }
  | { readonly status: 'expired' | 'disabled'; readonly keyId: string }
  | { readonly status: 'unknown' };

export interface ClientKeyVerifier {
  verify(presentedKey: string, nowMilliseconds: number): ClientKeyVerdict;
  /** The ids of every key of a user, revoked and expired ones included (receipts name them). */
  keyIdsOf?(userId: string): readonly string[];
  readonly size: number;
}

/** A verifier over one key set: a lookup by the key's SHA-256 (runtime/keys.ts), then revocation and expiry. */
export function clientKeyVerifier(set: ClientKeySet): ClientKeyVerifier {
  if (set.keys.length === 0) {
    return { size: 0, verify: () => ({ status: 'unknown' }), keyIdsOf: () => [] };
  }
  // Expiry parsed once per key set, not once per request.
  const keyring: Keyring<{ entry: ClientKeyEntry; expiresAtMilliseconds: number }> = createKeyring(
    set.keys.map((entry) => ({
      keyHash: Buffer.from(entry.sha256, 'hex'),
      principal: { entry, expiresAtMilliseconds: Date.parse(entry.expires_at) },
    })),
  );
  const keyIdsByUser = new Map<string, string[]>();
  for (const entry of set.keys)
    keyIdsByUser.set(entry.user_id, [...(keyIdsByUser.get(entry.user_id) ?? []), entry.id]);
  return {
    size: set.keys.length,
    keyIdsOf: (userId) => keyIdsByUser.get(userId) ?? [],
    verify(presentedKey, nowMilliseconds) {
      const found = keyring.verify(presentedKey);
      if (found === undefined) return { status: 'unknown' };
      const { entry, expiresAtMilliseconds } = found;
      if (entry.disabled) return { status: 'disabled', keyId: entry.id };
      if (expiresAtMilliseconds <= nowMilliseconds) return { status: 'expired', keyId: entry.id };
      return { status: 'valid', keyId: entry.id, userId: entry.user_id };
    },
  };
}
