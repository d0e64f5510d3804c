import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { createKeyring, hashKey, presentedKeyLengthMax } from '../../runtime/keys';
import type { AppLogger } from '../../runtime/logger';
import { sdkSecretReader } from '../../runtime/sdk-secret-reader';
import {
  openRotatingKeyring,
  secretRefreshIntervalMillisecondsDefault,
  secretRefreshOnMissIntervalMillisecondsMin,
} from '../../runtime/secret-keyring';
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
/** Refresh and read limits: those of every rotating secret (runtime/secret-keyring.ts). */
export const tokenRefreshIntervalMilliseconds = secretRefreshIntervalMillisecondsDefault;
export const tokenRefreshOnMissIntervalMillisecondsMin = secretRefreshOnMissIntervalMillisecondsMin;

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

const secretArnPattern =
  /^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/;

/** Reads the token settings from the environment: the settings, or every problem found. */
export function tokenSettingsFromEnvironment(environment: NodeJS.ProcessEnv): {
  settings?: TokenSettings;
  problems: string[];
} {
  const secretArn = environment[tokenSecretArnVariable]?.trim() || undefined;
  const token = environment[tokenVariable] || undefined;
  if (secretArn !== undefined && token !== undefined) {
    return {
      problems: [
        `set either ${tokenSecretArnVariable} (AWS) or ${tokenVariable} (local), not both`,
      ],
    };
  }
  if (secretArn !== undefined) {
    const match = secretArnPattern.exec(secretArn);
    if (!match)
      return { problems: [`${tokenSecretArnVariable} is not a Secrets Manager secret ARN`] };
    return { settings: { kind: 'secrets-manager', secretArn, region: match[1] }, problems: [] };
  }
  if (token !== undefined) {
    const problem = tokenProblem(token, tokenVariable);
    return problem
      ? { problems: [problem] }
      : { settings: { kind: 'environment', token }, problems: [] };
  }
  return {
    problems: [
      `no gateway token: set ${tokenSecretArnVariable} (a Secrets Manager secret, in AWS) or ${tokenVariable} (locally); refusing to start without one (AUTH-08)`,
    ],
  };
}

/** What is wrong with a token, without quoting it; undefined if nothing. */
export function tokenProblem(token: string, source: string): string | undefined {
  if (token.length < gatewayTokenLengthMin)
    return `${source} is shorter than ${gatewayTokenLengthMin} characters (AUTH-08)`;
  if (token.length > gatewayTokenLengthMax)
    return `${source} is longer than ${gatewayTokenLengthMax} characters`;
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
export async function openTokenSource(
  settings: TokenSettings,
  dependencies: TokenSourceDependencies,
): Promise<GatewayTokenSource> {
  if (settings.kind === 'environment') return staticTokenSource(settings.token);
  const client =
    dependencies.secretsManager ?? new SecretsManagerClient({ region: settings.region });
  return secretsManagerTokenSource({ ...dependencies, client, secretArn: settings.secretArn });
}

/** One token that never changes (local runs and tests). */
export function staticTokenSource(token: string): GatewayTokenSource {
  const problem = tokenProblem(token, 'the gateway token');
  if (problem) throw new Error(problem);
  const keyring = createKeyring<GatewayTokenVersion>([
    { keyHash: hashKey(token), principal: 'current' },
  ]);
  return {
    description: `${tokenVariable} from the environment`,
    verify: (presented) => keyring.verify(presented),
    close: () => {},
  };
}

interface SecretsManagerSourceOptions extends TokenSourceDependencies {
  readonly client: SecretsManagerClient;
  readonly secretArn: string;
}

export async function secretsManagerTokenSource(
  options: SecretsManagerSourceOptions,
): Promise<GatewayTokenSource> {
  return openRotatingKeyring<GatewayTokenVersion>({
    secrets: sdkSecretReader(options.client),
    secretArn: options.secretArn,
    logger: options.logger,
    name: 'gateway token',
    principal: (version) => version,
    keyFromSecretString: (secretString, version) => {
      const token = tokenFromSecretString(secretString);
      const problem = tokenProblem(
        token,
        `the gateway token secret's ${version === 'current' ? 'AWSCURRENT' : 'AWSPREVIOUS'} version`,
      );
      if (problem) throw new Error(problem);
      return token;
    },
    rotationEvent: 'gateway_token_rotated',
    refreshIntervalMilliseconds:
      options.refreshIntervalMilliseconds ?? tokenRefreshIntervalMilliseconds,
    now: options.now,
  });
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
  if (typeof token !== 'string')
    throw new Error('the gateway token secret is JSON without a string "token" field');
  return token;
}
