import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { createKeyring, hashKey, presentedKeyLengthMax, type KeyEntry, type Keyring } from '../../lambda/shared/keys';
import { audit, type AppLogger } from '../../lambda/shared/logger';
import type { GatewayTokenVerifier, GatewayTokenVersion } from './app';

/**
 * Where the gateway's bearer tokens come from. In AWS, a Secrets Manager secret (the current and
 * the previous version, so a rotation never breaks a request); locally, `GATEWAY_TOKEN`. Only the
 * tokens' SHA-256 hashes are kept (AUTH-06), and no token ever reaches a log line (LOG-04).
 */

/** 32 characters of base64url hold 192 bits; generated tokens are longer (AUTH-02, AUTH-08). */
export const gatewayTokenLengthMin = 32;
/** A longer token could never be presented: the keyring refuses longer keys before hashing. */
export const gatewayTokenLengthMax = presentedKeyLengthMax;
/** How often the secret is read again, to pick up a rotation. */
export const tokenRefreshIntervalMilliseconds = 5 * 60 * 1000;
/**
 * An unknown token may be a freshly rotated one: the secret is read again at once, but at most this
 * often, so wrong tokens cannot turn into a flood of Secrets Manager calls.
 */
export const tokenRefreshOnMissIntervalMillisecondsMin = 10_000;
/** Deadline of one read of the secret (both versions). */
export const tokenReadTimeoutMilliseconds = 5_000;

export const tokenSecretArnVariable = 'GATEWAY_TOKEN_SECRET_ARN';
export const tokenVariable = 'GATEWAY_TOKEN';

export type TokenSettings =
  | { readonly kind: 'environment'; readonly token: string }
  | { readonly kind: 'secrets-manager'; readonly secretArn: string; readonly region: string };

export interface GatewayTokenSource extends GatewayTokenVerifier {
  /** Where the tokens come from, for the start-up line; never a token. */
  readonly description: string;
  close(): void;
}

const secretArnPattern = /^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/;

/** Reads the token settings from the environment: the settings, or every problem found. */
export function tokenSettingsFromEnvironment(environment: NodeJS.ProcessEnv): { settings?: TokenSettings; problems: string[] } {
  const secretArn = environment[tokenSecretArnVariable]?.trim() || undefined;
  const token = environment[tokenVariable] || undefined;
  if (secretArn !== undefined && token !== undefined) {
    return { problems: [`set either ${tokenSecretArnVariable} (AWS) or ${tokenVariable} (local), not both`] };
  }
  if (secretArn !== undefined) {
    const match = secretArnPattern.exec(secretArn);
    if (!match) return { problems: [`${tokenSecretArnVariable} is not a Secrets Manager secret ARN`] };
    return { settings: { kind: 'secrets-manager', secretArn, region: match[1] }, problems: [] };
  }
  if (token !== undefined) {
    const problem = tokenProblem(token, tokenVariable);
    return problem ? { problems: [problem] } : { settings: { kind: 'environment', token }, problems: [] };
  }
  return {
    problems: [
      `no gateway token: set ${tokenSecretArnVariable} (a Secrets Manager secret, in AWS) or ${tokenVariable} (locally); refusing to start without one (AUTH-08)`,
    ],
  };
}

/** What is wrong with a token, without quoting it; undefined if nothing. */
export function tokenProblem(token: string, source: string): string | undefined {
  if (token.length < gatewayTokenLengthMin) return `${source} is shorter than ${gatewayTokenLengthMin} characters (AUTH-08)`;
  if (token.length > gatewayTokenLengthMax) return `${source} is longer than ${gatewayTokenLengthMax} characters`;
  if (/\s/.test(token)) return `${source} contains whitespace, which a bearer token cannot carry`;
  return undefined;
}

export interface TokenSourceDependencies {
  readonly logger: AppLogger;
  /** Injected in tests; by default a client for the secret's region. */
  readonly secretsManager?: SecretsManagerClient;
  readonly refreshIntervalMilliseconds?: number;
  readonly now?: () => number;
}

/** Opens the source the settings describe; a secret that cannot be read (or holds a bad token) fails start-up. */
export async function openTokenSource(settings: TokenSettings, dependencies: TokenSourceDependencies): Promise<GatewayTokenSource> {
  if (settings.kind === 'environment') return staticTokenSource(settings.token);
  const client = dependencies.secretsManager ?? new SecretsManagerClient({ region: settings.region });
  return secretsManagerTokenSource({ ...dependencies, client, secretArn: settings.secretArn });
}

/** One token that never changes (local runs and tests). */
export function staticTokenSource(token: string): GatewayTokenSource {
  const problem = tokenProblem(token, 'the gateway token');
  if (problem) throw new Error(problem);
  const keyring = createKeyring<GatewayTokenVersion>([{ keyHash: hashKey(token), principal: 'current' }]);
  return { description: `${tokenVariable} from the environment`, verify: (presented) => keyring.verify(presented), close: () => {} };
}

interface SecretsManagerSourceOptions extends TokenSourceDependencies {
  readonly client: SecretsManagerClient;
  readonly secretArn: string;
}

export async function secretsManagerTokenSource(options: SecretsManagerSourceOptions): Promise<GatewayTokenSource> {
  const { logger } = options;
  const now = options.now ?? Date.now;
  const refreshIntervalMilliseconds = options.refreshIntervalMilliseconds ?? tokenRefreshIntervalMilliseconds;
  let tokens = await readTokens(options.client, options.secretArn);
  let keyring = keyringOf(tokens);
  let lastAttempt = now();
  let inFlight: Promise<void> | undefined;

  async function refreshOnce(): Promise<void> {
    lastAttempt = now();
    try {
      const next = await readTokens(options.client, options.secretArn);
      if (!next.current.equals(tokens.current)) audit(logger, 'gateway_token_rotated', { has_previous: next.previous !== undefined });
      tokens = next;
      keyring = keyringOf(next);
    } catch (error) {
      // The last good set keeps serving: a Secrets Manager outage must not become a gateway outage.
      logger.error('gateway token refresh failed; keeping the last good tokens', {
        error_name: error instanceof Error ? error.name : typeof error,
        error_message: error instanceof Error ? error.message : String(error),
      });
    }
  }
  function refresh(): Promise<void> {
    inFlight ??= refreshOnce().finally(() => (inFlight = undefined));
    return inFlight;
  }

  const timer = setInterval(() => void refresh(), refreshIntervalMilliseconds);
  timer.unref();
  return {
    description: `Secrets Manager secret ${options.secretArn} (AWSCURRENT and AWSPREVIOUS)`,
    async verify(presented) {
      const known = keyring.verify(presented);
      if (known !== undefined || now() - lastAttempt < tokenRefreshOnMissIntervalMillisecondsMin) return known;
      await refresh();
      return keyring.verify(presented);
    },
    close: () => clearInterval(timer),
  };
}

/** Hashes only: the tokens themselves are dropped as soon as they are read. */
interface TokenHashes {
  readonly current: Buffer;
  readonly previous?: Buffer;
}

function keyringOf(tokens: TokenHashes): Keyring<GatewayTokenVersion> {
  const entries: KeyEntry<GatewayTokenVersion>[] = [{ keyHash: tokens.current, principal: 'current' }];
  if (tokens.previous) entries.push({ keyHash: tokens.previous, principal: 'previous' });
  return createKeyring<GatewayTokenVersion>(entries);
}

async function readTokens(client: SecretsManagerClient, secretArn: string): Promise<TokenHashes> {
  const current = await readVersion(client, secretArn, 'AWSCURRENT');
  if (current === undefined) throw new Error('the gateway token secret has no AWSCURRENT version');
  const previous = await readVersion(client, secretArn, 'AWSPREVIOUS');
  return { current: hashKey(current), previous: previous === undefined ? undefined : hashKey(previous) };
}

/** The token of one version stage; undefined if that stage does not exist (AWSPREVIOUS before the first rotation). */
async function readVersion(client: SecretsManagerClient, secretArn: string, stage: 'AWSCURRENT' | 'AWSPREVIOUS'): Promise<string | undefined> {
  let secretString: string | undefined;
  try {
    const answer = await client.send(new GetSecretValueCommand({ SecretId: secretArn, VersionStage: stage }), {
      abortSignal: AbortSignal.timeout(tokenReadTimeoutMilliseconds),
    });
    secretString = answer.SecretString;
  } catch (error) {
    if (error instanceof Error && error.name === 'ResourceNotFoundException') return undefined;
    throw error;
  }
  if (secretString === undefined) throw new Error(`the gateway token secret's ${stage} version holds no SecretString`);
  const token = tokenFromSecretString(secretString);
  const problem = tokenProblem(token, `the gateway token secret's ${stage} version`);
  if (problem) throw new Error(problem);
  return token;
}

/**
 * The secret holds the token itself, or JSON with a `token` field (what Secrets Manager's
 * generated secrets with a template produce).
 */
export function tokenFromSecretString(secretString: string): string {
  if (!secretString.trimStart().startsWith('{')) return secretString.trim();
  let parsed: unknown;
  try {
    parsed = JSON.parse(secretString);
  } catch {
    throw new Error('the gateway token secret looks like JSON but does not parse');
  }
  const token = (parsed as { token?: unknown }).token;
  if (typeof token !== 'string') throw new Error('the gateway token secret is JSON without a string "token" field');
  return token;
}
