import { createKeyring, hashKey, type KeyEntry, type Keyring } from './keys';
import { audit, type AppLogger } from './logger';
import type { SecretReader } from './secrets-manager';

/**
 * A keyring fed by a Secrets Manager secret that rotates: it accepts the AWSCURRENT and the
 * AWSPREVIOUS versions, so a rotation never breaks a request in flight (AUTH-04). Only the keys'
 * SHA-256 hashes are kept (AUTH-06); no key ever reaches a log line (LOG-04). Used for every
 * service key: proxy -> credits, operators -> credits, credits -> gateway.
 */

export type SecretVersion = 'current' | 'previous';

/** Verifies a presented key; may read the secret again first, so it may be asynchronous. */
export interface KeyVerifier<Principal> {
  verify(presentedKey: string): Principal | undefined | Promise<Principal | undefined>;
}

export interface RotatingKeyring<Principal> extends KeyVerifier<Principal> {
  /** Where the keys come from, for start-up lines; never a key. */
  readonly description: string;
  close(): void;
}

/** How often the secret is read again, to pick up a rotation. */
export const secretRefreshIntervalMillisecondsDefault = 5 * 60 * 1000;
/**
 * An unknown key may be a freshly rotated one: the secret is read again at once, but at most this
 * often, so wrong keys cannot turn into a flood of Secrets Manager calls.
 */
export const secretRefreshOnMissIntervalMillisecondsMin = 10_000;
/** Deadline of one read of one version. */
export const secretReadTimeoutMilliseconds = 5_000;

export interface RotatingKeyringOptions<Principal> {
  readonly secrets: SecretReader;
  readonly secretArn: string;
  readonly logger: AppLogger;
  /** What the keys are, for log messages: "gateway token", "credits admin key". */
  readonly name: string;
  /** What each version authenticates as. */
  readonly principal: (version: SecretVersion) => Principal;
  /** The key held by a secret string; throws with a message that never quotes the value. */
  readonly keyFromSecretString: (secretString: string, version: SecretVersion) => string;
  /** Audit event written when the current version changes. */
  readonly rotationEvent: string;
  readonly refreshIntervalMilliseconds?: number;
  readonly now?: () => number;
}

interface KeyHashes {
  readonly current: Buffer;
  readonly previous?: Buffer;
}

export async function openRotatingKeyring<Principal>(
  options: RotatingKeyringOptions<Principal>,
): Promise<RotatingKeyring<Principal>> {
  const { logger } = options;
  const now = options.now ?? Date.now;
  let hashes = await readHashes(options);
  let keyring = keyringOf(hashes, options.principal);
  let lastAttempt = now();
  let inFlight: Promise<void> | undefined;

  async function refreshOnce(): Promise<void> {
    lastAttempt = now();
    try {
      const next = await readHashes(options);
      if (!next.current.equals(hashes.current))
        audit(logger, options.rotationEvent, { has_previous: next.previous !== undefined });
      hashes = next;
      keyring = keyringOf(next, options.principal);
    } catch (error) {
      // The last good set keeps serving: a Secrets Manager outage must not become an outage here.
      logger.error(`${options.name} refresh failed; keeping the last good keys`, {
        error_name: error instanceof Error ? error.name : typeof error,
        error_message: error instanceof Error ? error.message : String(error),
      });
    }
  }
  function refresh(): Promise<void> {
    inFlight ??= refreshOnce().finally(() => (inFlight = undefined));
    return inFlight;
  }

  const timer = setInterval(
    () => void refresh(),
    options.refreshIntervalMilliseconds ?? secretRefreshIntervalMillisecondsDefault,
  );
  timer.unref();
  return {
    description: `Secrets Manager secret ${options.secretArn} (AWSCURRENT and AWSPREVIOUS)`,
    async verify(presented) {
      const known = keyring.verify(presented);
      if (known !== undefined || now() - lastAttempt < secretRefreshOnMissIntervalMillisecondsMin)
        return known;
      await refresh();
      return keyring.verify(presented);
    },
    close: () => clearInterval(timer),
  };
}

function keyringOf<Principal>(
  hashes: KeyHashes,
  principal: (version: SecretVersion) => Principal,
): Keyring<Principal> {
  const entries: KeyEntry<Principal>[] = [
    { keyHash: hashes.current, principal: principal('current') },
  ];
  if (hashes.previous) entries.push({ keyHash: hashes.previous, principal: principal('previous') });
  return createKeyring(entries);
}

async function readHashes<Principal>(
  options: RotatingKeyringOptions<Principal>,
): Promise<KeyHashes> {
  const current = await readSecretVersion(options.secrets, options.secretArn, 'AWSCURRENT');
  if (current === undefined)
    throw new Error(`the secret ${options.secretArn} has no AWSCURRENT version`);
  const previous = await readSecretVersion(options.secrets, options.secretArn, 'AWSPREVIOUS');
  return {
    current: hashKey(options.keyFromSecretString(current, 'current')),
    previous:
      previous === undefined
        ? undefined
        : hashKey(options.keyFromSecretString(previous, 'previous')),
  };
}

/** The secret string of one version stage; undefined if that stage does not exist (AWSPREVIOUS before the first rotation). */
export function readSecretVersion(
  secrets: SecretReader,
  secretArn: string,
  stage: 'AWSCURRENT' | 'AWSPREVIOUS',
): Promise<string | undefined> {
  return secrets.readSecretString(secretArn, stage, secretReadTimeoutMilliseconds);
}

/** Asks every verifier (all of them, so timing does not tell which one matched); the first principal found wins. */
export function combineVerifiers<Principal>(
  ...verifiers: KeyVerifier<Principal>[]
): KeyVerifier<Principal> {
  return {
    async verify(presentedKey) {
      const principals = await Promise.all(
        verifiers.map((verifier) => verifier.verify(presentedKey)),
      );
      return principals.find((principal) => principal !== undefined);
    },
  };
}

/** How long a caller uses the AWSCURRENT value it read before reading it again (the receiver also accepts AWSPREVIOUS). */
export const currentSecretCacheMillisecondsDefault = 5 * 60 * 1000;

/**
 * The AWSCURRENT value of a secret, parsed, cached for `cacheMilliseconds`: how a service reads the
 * key it presents to another service. A failed re-read keeps using the last good value.
 */
export function cachedCurrentSecret<T>(
  secrets: SecretReader,
  secretArn: string,
  parse: (secretString: string) => T,
  cacheMilliseconds = currentSecretCacheMillisecondsDefault,
): () => Promise<T> {
  let cached: { value: T; readAt: number } | undefined;
  return async () => {
    if (cached && Date.now() - cached.readAt < cacheMilliseconds) return cached.value;
    try {
      const secretString = await readSecretVersion(secrets, secretArn, 'AWSCURRENT');
      if (secretString === undefined)
        throw new Error(`the secret ${secretArn} has no AWSCURRENT version`);
      cached = { value: parse(secretString), readAt: Date.now() };
    } catch (error) {
      if (!cached) throw error;
      cached = { value: cached.value, readAt: Date.now() };
    }
    return cached.value;
  };
}
