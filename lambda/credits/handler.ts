import { createGatewayClient } from '../../tigerbeetle/gateway/client';
import { tokenFromSecretString } from '../../tigerbeetle/gateway/token-source';
import { coldStartHandler } from '../shared/lambda-handler';
import { environmentOrRefuse, logLevelVariable, variable } from '../../runtime/environment';
import { createLogger, type AppLogger, type LogLevel } from '../../runtime/logger';
import * as z from '../../runtime/zod-mini';
import { createEmfMetrics, type AppMetrics } from '../shared/metrics';
import {
  cachedCurrentSecret,
  combineVerifiers,
  openRotatingKeyring,
} from '../../runtime/secret-keyring';
import { fetchSecretReader, type SecretReader } from '../../runtime/secrets-manager';
import { serviceKeyFromSecretString } from '../shared/service-secret';
import { createCreditsApp, type CreditsPrincipal } from './app';
import { creditsConfigDefaults } from './config';
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
/** The function's environment (lib/stacks/api-stack.ts writes it): the ARNs of its secrets and the gateway's address. */
const creditsEnvironment = {
  AWS_REGION: variable.required(),
  CREDITS_ADMIN_KEY_SECRET_ARN: variable.required(),
  CREDITS_PROXY_KEY_SECRET_ARN: variable.required(),
  GATEWAY_URL: variable.required(),
  GATEWAY_TOKEN_SECRET_ARN: variable.required(),
  STAGE: variable.required(),
  LOG_LEVEL: logLevelVariable(),
  CREDITS_CURRENCY: z.pipe(
    variable.withDefault(creditsConfigDefaults.currency),
    z.string().check(
      z.regex(/^[A-Z]{3}$/, {
        error: (issue) => `must be an ISO 4217 code such as USD (got '${String(issue.input)}')`,
      }),
    ),
  ),
};

export function creditsLambdaSettings(environment: NodeJS.ProcessEnv): CreditsLambdaSettings {
  // Refuse to start without keys (AUTH-08): every invocation fails loudly until this is fixed.
  const values = environmentOrRefuse('credits', creditsEnvironment, environment);
  return {
    region: values.AWS_REGION,
    adminKeySecretArn: values.CREDITS_ADMIN_KEY_SECRET_ARN,
    proxyKeySecretArn: values.CREDITS_PROXY_KEY_SECRET_ARN,
    gatewayUrl: values.GATEWAY_URL,
    gatewayTokenSecretArn: values.GATEWAY_TOKEN_SECRET_ARN,
    logLevel: values.LOG_LEVEL,
    stage: values.STAGE,
    currency: values.CREDITS_CURRENCY,
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
