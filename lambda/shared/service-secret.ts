import { presentedKeyLengthMax } from '../../runtime/keys';

/**
 * The formats a service-key secret may have, as its verifiers read them: the key itself
 * (read by serviceKeyFromSecretString below), JSON with a `key` field (credits keys) or JSON with a `token` field
 * (the gateway token, tigerbeetle/gateway/token-source.ts). A rotation keeps the format it finds,
 * so the verifiers never see a shape they do not read. No message here ever quotes a value.
 */

/** The verifiers' limits: shorter keys are refused (AUTH-08), longer ones could never be presented. */
export const serviceKeyLengthMin = 32;
export const serviceKeyLengthMax = presentedKeyLengthMax;

/** The JSON fields that may hold the key. */
const keyFields = ['key', 'token'] as const;
type KeyField = (typeof keyFields)[number];

export type ServiceSecretShape =
  | { readonly kind: 'plain' }
  /** The JSON document, whose key fields are replaced and other fields kept. */
  | {
      readonly kind: 'json';
      readonly document: Readonly<Record<string, unknown>>;
      readonly fields: readonly KeyField[];
    };

export interface ParsedServiceSecret {
  readonly shape: ServiceSecretShape;
  readonly key: string;
}

/** Reads a secret string; `what` names it in error messages ("the AWSCURRENT version"). */
export function parseServiceSecret(secretString: string, what: string): ParsedServiceSecret {
  const trimmed = secretString.trim();
  if (!trimmed.startsWith('{')) return { shape: { kind: 'plain' }, key: trimmed };
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    throw new Error(`${what} looks like JSON but does not parse`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error(`${what} is JSON but not an object`);
  const document = parsed as Record<string, unknown>;
  const fields = keyFields.filter((field) => typeof document[field] === 'string');
  if (fields.length === 0)
    throw new Error(`${what} is JSON without a string "key" or "token" field`);
  const key = document[fields[0]] as string;
  if (fields.some((field) => document[field] !== key))
    throw new Error(`${what} holds different "key" and "token" values`);
  return { shape: { kind: 'json', document, fields }, key };
}

/** What is wrong with a key, without quoting it; undefined if nothing. */
export function serviceKeyProblem(key: string, what: string): string | undefined {
  if (key.length < serviceKeyLengthMin)
    return `${what} holds a key shorter than ${serviceKeyLengthMin} characters`;
  if (key.length > serviceKeyLengthMax)
    return `${what} holds a key longer than ${serviceKeyLengthMax} characters`;
  if (/\s/.test(key)) return `${what} holds a key with whitespace`;
  return undefined;
}

/** A secret string holding `key` in the given shape. */
export function formatServiceSecret(shape: ServiceSecretShape, key: string): string {
  if (shape.kind === 'plain') return key;
  const document: Record<string, unknown> = { ...shape.document };
  for (const field of shape.fields) document[field] = key;
  return JSON.stringify(document);
}

/**
 * The key a service-key secret holds (the proxy's and the settle function's key for the credits
 * service, the credits service's own keys): the key itself, or JSON with a `key` (or `token`)
 * field, the formats the rotation function writes. Throws with a message that never quotes it.
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
