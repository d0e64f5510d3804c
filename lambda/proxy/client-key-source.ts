import { readFileSync, statSync } from 'node:fs';
import {
  clientKeyVerifier,
  emptyClientKeySet,
  parseClientKeySet,
  type ClientKeySet,
  type ClientKeyVerifier,
} from '../shared/client-keys';
import type { AppLogger } from '../../runtime/logger';
import { readSecretVersion } from '../../runtime/secret-keyring';
import type { SecretReader } from '../../runtime/secrets-manager';

/**
 * Where the proxy reads its client key set: a Secrets Manager secret (AWS) or a git-ignored file
 * (local), re-read regularly so an issued or revoked key applies within a minute without a deploy.
 * A failed re-read keeps the last good set (a Secrets Manager hiccup must not lock everyone out).
 */

export interface ClientKeySource {
  verifier(): Promise<ClientKeyVerifier>;
  readonly description: string;
}

/** How often the key set is read again. */
export const clientKeysRefreshMillisecondsDefault = 60_000;

export function staticClientKeySource(set: ClientKeySet): ClientKeySource {
  const verifier = clientKeyVerifier(set);
  return { description: 'a fixed key set', verifier: async () => verifier };
}

/** Re-reads the file when it changed (checked at most every `checkMilliseconds`); a missing file is an empty set. */
export function fileClientKeySource(
  path: string,
  logger: AppLogger,
  checkMilliseconds = 2_000,
): ClientKeySource {
  let verifier = clientKeyVerifier(emptyClientKeySet());
  let seenModifiedMilliseconds = -1;
  let checkedAt = 0;
  return {
    description: `the key file ${path}`,
    async verifier() {
      const now = Date.now();
      if (now - checkedAt < checkMilliseconds) return verifier;
      checkedAt = now;
      let modified: number;
      try {
        modified = statSync(path).mtimeMs;
      } catch {
        return verifier; // no file yet: no keys issued
      }
      if (modified === seenModifiedMilliseconds) return verifier;
      try {
        verifier = clientKeyVerifier(parseClientKeySet(readFileSync(path, 'utf8')));
        seenModifiedMilliseconds = modified;
      } catch (error) {
        logger.error('client key file unreadable; keeping the last good set', {
          error_message: (error as Error).message,
        });
      }
      return verifier;
    },
  };
}

export async function secretsManagerClientKeySource(options: {
  secrets: SecretReader;
  secretArn: string;
  logger: AppLogger;
  refreshMilliseconds?: number;
}): Promise<ClientKeySource> {
  const refreshMilliseconds = options.refreshMilliseconds ?? clientKeysRefreshMillisecondsDefault;
  const read = async () => {
    const secretString = await readSecretVersion(options.secrets, options.secretArn, 'AWSCURRENT');
    if (secretString === undefined)
      throw new Error('the client key secret has no AWSCURRENT version');
    return clientKeyVerifier(parseClientKeySet(secretString));
  };
  let verifier = await read(); // at cold start: refuse to start on a broken key set (AUTH-08)
  let readAt = Date.now();
  let inFlight: Promise<void> | undefined;
  return {
    description: `Secrets Manager secret ${options.secretArn}`,
    async verifier() {
      if (Date.now() - readAt >= refreshMilliseconds) {
        inFlight ??= read()
          .then((next) => {
            verifier = next;
          })
          .catch((error: unknown) =>
            options.logger.error('client key set refresh failed; keeping the last good set', {
              error_message: (error as Error).message,
            }),
          )
          .finally(() => {
            readAt = Date.now();
            inFlight = undefined;
          });
        await inFlight;
      }
      return verifier;
    },
  };
}
