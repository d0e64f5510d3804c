import { createGatewayClient } from '../../tigerbeetle/gateway/client';
import { tokenFromSecretString } from '../../tigerbeetle/gateway/token-source';
import { coldStartHandler } from '../shared/lambda-handler';
import { createLogger, type AppLogger, type LogLevel } from '../shared/logger';
import { createEmfMetrics, type AppMetrics } from '../shared/metrics';
import {
  cachedCurrentSecret,
  combineVerifiers,
  openRotatingKeyring,
} from '../shared/secret-keyring';
import { fetchSecretReader, type SecretReader } from '../shared/secrets-manager';
import { createCreditsApp, type CreditsPrincipal } from './app';
import { creditsConfigDefaults } from './config';
import { serviceKeyFromSecretString } from './keys';
import { acceptOperatorInvocations } from './operator-invoke';

/**
 * The credits service as a Lambda function behind the internal ALB. Secrets are read from Secrets
 * Manager at cold start and refreshed, never taken from the environment (CFG-02, AUTH-03): the
 * environment holds only their ARNs and the gateway's address. Metrics go to CloudWatch as EMF,
 * flushed after every invocation (MON-02).
 */

export interface CreditsLambdaSettings {
  readonly region: string;
  readonly adminKeySecretArn: string;
  readonly proxyKeySecretArn: string;
  readonly gatewayUrl: string;
  readonly gatewayTokenSecretArn: string;
  readonly logLevel: LogLevel;
  /** The `stage` dimension of every metric. */
  readonly stage: string;
  /** ISO 4217 code of the stage's currency (the stage config's `currency`). Default: USD. */
  readonly currency: string;
}

/** Deadline of one call to the gateway; the function's timeout is longer. */
const gatewayRequestTimeoutMilliseconds = 5_000;
export function creditsLambdaSettings(environment: NodeJS.ProcessEnv): CreditsLambdaSettings {
  const required = [
    'AWS_REGION',
    'CREDITS_ADMIN_KEY_SECRET_ARN',
    'CREDITS_PROXY_KEY_SECRET_ARN',
    'GATEWAY_URL',
    'GATEWAY_TOKEN_SECRET_ARN',
    'STAGE',
  ];
  const missing = required.filter((name) => !environment[name]);
  // Refuse to start without keys (AUTH-08): every invocation fails loudly until this is fixed.
  if (missing.length > 0)
    throw new Error(`credits: refusing to start, missing configuration: ${missing.join(', ')}`);
  const logLevel = (environment.LOG_LEVEL ?? 'INFO').toUpperCase() as LogLevel;
  const currency = environment.CREDITS_CURRENCY ?? creditsConfigDefaults.currency;
  if (!/^[A-Z]{3}$/.test(currency))
    throw new Error(
      `credits: refusing to start, CREDITS_CURRENCY must be an ISO 4217 code such as USD (got '${currency}')`,
    );
  return {
    region: environment.AWS_REGION as string,
    adminKeySecretArn: environment.CREDITS_ADMIN_KEY_SECRET_ARN as string,
    proxyKeySecretArn: environment.CREDITS_PROXY_KEY_SECRET_ARN as string,
    gatewayUrl: environment.GATEWAY_URL as string,
    gatewayTokenSecretArn: environment.GATEWAY_TOKEN_SECRET_ARN as string,
    logLevel,
    stage: environment.STAGE as string,
    currency,
  };
}

export async function createCreditsLambdaApp(
  settings: CreditsLambdaSettings,
  secrets: SecretReader,
  logger: AppLogger,
  metrics: AppMetrics,
) {
  const keyring = (role: CreditsPrincipal['role'], secretArn: string) =>
    openRotatingKeyring<CreditsPrincipal>({
      secrets,
      secretArn,
      logger,
      name: `credits ${role} key`,
      principal: (version) => ({ keyId: `${role}-${version}`, role }),
      keyFromSecretString: serviceKeyFromSecretString,
      rotationEvent: 'key_rotation',
    });
  const [admin, proxy] = await Promise.all([
    keyring('admin', settings.adminKeySecretArn),
    keyring('proxy', settings.proxyKeySecretArn),
  ]);
  const ledger = createGatewayClient({
    baseUrl: settings.gatewayUrl,
    token: cachedCurrentSecret(secrets, settings.gatewayTokenSecretArn, tokenFromSecretString),
    requestTimeoutMilliseconds: gatewayRequestTimeoutMilliseconds,
  });
  return createCreditsApp({
    ledger,
    keys: combineVerifiers(admin, proxy),
    logger,
    metrics,
    config: { currency: settings.currency },
  });
}

/** Built once per execution environment (cold start). */
const serveLoadBalancerEvents = coldStartHandler(async () => {
  const settings = creditsLambdaSettings(process.env);
  const logger = createLogger('credits', settings.logLevel);
  const metrics = createEmfMetrics('credits', settings.stage);
  return {
    app: await createCreditsLambdaApp(
      settings,
      fetchSecretReader({ region: settings.region }),
      logger,
      metrics,
    ),
    metrics,
  };
});

/** ALB events, and operators' direct invocations (npm run credits, operator-invoke.ts), served by the same app. */
export const handler = acceptOperatorInvocations(serveLoadBalancerEvents);
