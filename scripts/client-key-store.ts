import { randomInt, randomUUID } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  clientKeyLifetimeDaysDefault,
  clientKeySetSchema,
  parseClientKeySet,
  type ClientKeyEntry,
  type ClientKeySet,
  emptyClientKeySet,
} from '../lambda/shared/client-keys';
import { generateApiKey, hashKey } from '../runtime/keys';

/**
 * Editing the proxy's client key set (the format of ./client-keys.ts): issue, revoke, rotate and
 * list keys, and read and write the set in a local file or a Secrets Manager secret. Used by the
 * key CLI (scripts/keys.ts). A new key leaves this module once, in the result of issue or rotate;
 * the set holds only its SHA-256 (AUTH-02, AUTH-03, AUTH-06).
 */

/** The local key set, relative to the repository root: git-ignored, read by `npm run dev`. */
export const localClientKeysFile = '.data/client-keys.json';
/** Longest lifetime a key may be issued with. */
export const clientKeyLifetimeDaysMax = 365;
/** How long a rotated key keeps working, so its client can switch to the new one. */
export const clientKeyGraceDaysDefault = 7;
export const clientKeyGraceDaysMax = 30;
/** Random base62 characters of a key id: `key_` + 16 characters (95 bits), public and loggable. */
export const clientKeyIdRandomCharacters = 16;
/** Deadline of one Secrets Manager call. */
export const clientKeyStoreCallTimeoutMilliseconds = 10_000;

const millisecondsPerDay = 24 * 60 * 60 * 1000;
const base62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A failure the operator can act on (unknown key id, a set that does not parse...). */
export class ClientKeyError extends Error {
  override readonly name = 'ClientKeyError';
}

export interface IssuedClientKey {
  /** The key itself: shown once, stored nowhere. */
  readonly key: string;
  readonly entry: ClientKeyEntry;
}

export type ClientKeyStatus = 'active' | 'expired' | 'disabled';

/** What `list` shows: never the hash. */
export interface ClientKeyRow {
  readonly id: string;
  readonly userId: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly status: ClientKeyStatus;
  readonly label?: string;
}

export function newClientKeyId(): string {
  let id = 'key_';
  // randomInt is uniform: no modulo bias.
  for (let index = 0; index < clientKeyIdRandomCharacters; index += 1)
    id += base62[randomInt(base62.length)];
  return id;
}

export interface IssueOptions {
  readonly userId: string;
  readonly lifetimeDays?: number;
  readonly label?: string;
  readonly now: Date;
}

export function issueClientKey(
  set: ClientKeySet,
  options: IssueOptions,
): { set: ClientKeySet; issued: IssuedClientKey } {
  const lifetimeDays = options.lifetimeDays ?? clientKeyLifetimeDaysDefault;
  if (
    !Number.isInteger(lifetimeDays) ||
    lifetimeDays < 1 ||
    lifetimeDays > clientKeyLifetimeDaysMax
  ) {
    throw new ClientKeyError(
      `a key lives 1 to ${clientKeyLifetimeDaysMax} days, not ${lifetimeDays}`,
    );
  }
  const ids = new Set(set.keys.map((entry) => entry.id));
  let id = newClientKeyId();
  while (ids.has(id)) id = newClientKeyId();
  const key = generateApiKey();
  const entry: ClientKeyEntry = {
    id,
    user_id: options.userId,
    sha256: hashKey(key).toString('hex'),
    created_at: options.now.toISOString(),
    expires_at: new Date(options.now.getTime() + lifetimeDays * millisecondsPerDay).toISOString(),
    disabled: false,
    ...(options.label === undefined ? {} : { label: options.label }),
  };
  return {
    set: checkedClientKeySet({ ...set, keys: [...set.keys, entry] }),
    issued: { key, entry },
  };
}

/** Disables a key; the entry stays in the set for audit. */
export function revokeClientKey(
  set: ClientKeySet,
  keyId: string,
): { set: ClientKeySet; entry: ClientKeyEntry; alreadyRevoked: boolean } {
  const old = findEntry(set, keyId);
  if (old.disabled) return { set, entry: old, alreadyRevoked: true };
  const entry = { ...old, disabled: true };
  return { set: replaceEntry(set, entry), entry, alreadyRevoked: false };
}

export interface RotateOptions {
  readonly graceDays?: number;
  readonly lifetimeDays?: number;
  readonly label?: string;
  readonly now: Date;
}

/** A new key for the key's user; the old key expires after the grace period (never later than it already did). */
export function rotateClientKey(
  set: ClientKeySet,
  keyId: string,
  options: RotateOptions,
): { set: ClientKeySet; issued: IssuedClientKey; old: ClientKeyEntry } {
  const graceDays = options.graceDays ?? clientKeyGraceDaysDefault;
  if (!Number.isInteger(graceDays) || graceDays < 0 || graceDays > clientKeyGraceDaysMax) {
    throw new ClientKeyError(
      `the grace period is 0 to ${clientKeyGraceDaysMax} days, not ${graceDays}`,
    );
  }
  const current = findEntry(set, keyId);
  if (current.disabled)
    throw new ClientKeyError(
      `key ${keyId} is revoked; issue a new key for its user instead of rotating it`,
    );
  const graceEnd = options.now.getTime() + graceDays * millisecondsPerDay;
  const old = {
    ...current,
    expires_at: new Date(Math.min(Date.parse(current.expires_at), graceEnd)).toISOString(),
  };
  const issued = issueClientKey(replaceEntry(set, old), {
    userId: current.user_id,
    lifetimeDays: options.lifetimeDays,
    label: options.label ?? current.label,
    now: options.now,
  });
  return { ...issued, old };
}

export function clientKeyStatus(entry: ClientKeyEntry, nowMilliseconds: number): ClientKeyStatus {
  if (entry.disabled) return 'disabled';
  return Date.parse(entry.expires_at) <= nowMilliseconds ? 'expired' : 'active';
}

export function listClientKeys(
  set: ClientKeySet,
  options: { userId?: string; now: Date },
): ClientKeyRow[] {
  return set.keys
    .filter((entry) => options.userId === undefined || entry.user_id === options.userId)
    .map((entry) => ({
      id: entry.id,
      userId: entry.user_id,
      createdAt: entry.created_at,
      expiresAt: entry.expires_at,
      status: clientKeyStatus(entry, options.now.getTime()),
      ...(entry.label === undefined ? {} : { label: entry.label }),
    }));
}

/** The set if it passes the schema; otherwise an error naming what is wrong (never a value). */
export function checkedClientKeySet(set: ClientKeySet): ClientKeySet {
  if (clientKeySetSchema.safeParse(set).success) return set;
  try {
    parseClientKeySet(JSON.stringify(set));
  } catch (error) {
    throw new ClientKeyError(`refusing to write: ${(error as Error).message}`);
  }
  throw new ClientKeyError('refusing to write: the client key set is invalid');
}

function findEntry(set: ClientKeySet, keyId: string): ClientKeyEntry {
  const entry = set.keys.find((candidate) => candidate.id === keyId);
  if (entry === undefined) throw new ClientKeyError(`no key with id ${keyId} in the key set`);
  return entry;
}

function replaceEntry(set: ClientKeySet, entry: ClientKeyEntry): ClientKeySet {
  return checkedClientKeySet({
    ...set,
    keys: set.keys.map((candidate) => (candidate.id === entry.id ? entry : candidate)),
  });
}

/** Where a key set lives. `write` refuses a set that fails the schema. */
export interface ClientKeyStore {
  /** For messages: the file or the secret; never a value. */
  readonly description: string;
  read(): Promise<ClientKeySet>;
  write(set: ClientKeySet): Promise<void>;
}

function serialize(set: ClientKeySet): string {
  return `${JSON.stringify(checkedClientKeySet(set), null, 2)}\n`;
}

function parseIn(text: string, where: string): ClientKeySet {
  try {
    return parseClientKeySet(text);
  } catch (error) {
    throw new ClientKeyError(`${where}: ${(error as Error).message}`);
  }
}

/** A local file, readable by its owner only (0600); a missing file is an empty set; writes replace it atomically. */
export function fileClientKeyStore(path: string): ClientKeyStore {
  return {
    description: `file ${path}`,
    async read() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return emptyClientKeySet();
        throw error;
      }
      return parseIn(text, `file ${path}`);
    },
    async write(set) {
      const text = serialize(set);
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      // Temp file in the same directory, then rename: a reader sees the old set or the new one, never half.
      const temporary = `${path}.${process.pid}.${randomUUID()}.tmp`;
      try {
        const handle = await open(temporary, 'wx', 0o600);
        try {
          await handle.chmod(0o600);
          await handle.writeFile(text, 'utf8');
          await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(temporary, path);
      } catch (error) {
        await rm(temporary, { force: true });
        throw error;
      }
      await chmod(path, 0o600);
    },
  };
}

/**
 * A Secrets Manager secret: reads AWSCURRENT, writes a new version (which becomes AWSCURRENT).
 * A write refuses if another version became current since the read, so two operators cannot
 * silently undo each other's change (a lost revocation would be a security hole).
 */
export function secretsManagerClientKeyStore(options: {
  client: SecretsManagerClient;
  secretId: string;
}): ClientKeyStore {
  const { client, secretId } = options;
  const where = `secret ${secretId}`;
  let readVersionId: string | undefined;

  async function readCurrent(): Promise<{ text: string; versionId: string | undefined }> {
    try {
      const answer = await client.send(
        new GetSecretValueCommand({ SecretId: secretId, VersionStage: 'AWSCURRENT' }),
        callOptions(),
      );
      if (answer.SecretString === undefined)
        throw new ClientKeyError(`${where} holds no SecretString`);
      return { text: answer.SecretString, versionId: answer.VersionId };
    } catch (error) {
      if (error instanceof Error && error.name === 'ResourceNotFoundException')
        throw new ClientKeyError(`${where} does not exist or has no AWSCURRENT version`);
      throw error;
    }
  }

  return {
    description: where,
    async read() {
      const current = await readCurrent();
      readVersionId = current.versionId;
      return parseIn(current.text, where);
    },
    async write(set) {
      const text = serialize(set);
      if (readVersionId === undefined)
        throw new ClientKeyError(`${where}: read the key set before writing it`);
      const current = await readCurrent();
      if (current.versionId !== readVersionId)
        throw new ClientKeyError(
          `${where} changed while this command ran; nothing written, run the command again`,
        );
      await client.send(
        new PutSecretValueCommand({
          SecretId: secretId,
          SecretString: text,
          ClientRequestToken: randomUUID(),
        }),
        callOptions(),
      );
    },
  };
}

function callOptions(): { abortSignal: AbortSignal } {
  return { abortSignal: AbortSignal.timeout(clientKeyStoreCallTimeoutMilliseconds) };
}
