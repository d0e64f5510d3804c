import { coldStartStreamingHandler } from '../shared/lambda-handler';
import { environmentOrRefuse, logLevelVariable, variable } from '../shared/environment';
import { createLogger } from '../shared/logger';
import { createEmfMetrics, type AppMetrics } from '../shared/metrics';
import { cachedCurrentSecret } from '../shared/secret-keyring';
import { serviceKeyFromSecretString } from '../shared/service-secret';
import { fetchSecretReader, type SecretReader } from '../shared/secrets-manager';
import { createProxyApp } from './app';
import { secretsManagerClientKeySource } from './client-key-source';
import { creditsRequestTimeoutMilliseconds, proxyConfigSchema, type ProxyConfig } from './config';
import { createCreditsClient } from './credits-client';
import { createProviders } from './providers';
import { credentialsFromSecretString } from './providers/credentials';
import { sqsSettlementQueue } from './settlement-queue';

/**
 * The proxy as a response-streaming Lambda function, invoked by the private REST API (Lambda proxy
 * integration in STREAM mode, events in format 1.0) behind the public ALB: completions stream to the
 * client as the provider produces them. The environment holds only non-secret
 * settings and the ARNs of its secrets (CFG-02, AUTH-03): the client key set, its own key for the
 * credits service, the provider credentials. Secrets are read at cold start and refreshed. Metrics
 * go to CloudWatch as EMF, flushed after every invocation (MON-02); there is no /metrics route.
 */

/** The function's environment (lib/stacks/api-stack.ts writes it): non-secret settings and the ARNs of its secrets. */
const proxyEnvironment = {
  AWS_REGION: variable.required(),
  PROXY_CONFIG: variable.json(proxyConfigSchema, 'the proxy configuration'),
  CLIENT_KEYS_SECRET_ARN: variable.required(),
  CREDITS_URL: variable.required(),
  CREDITS_KEY_SECRET_ARN: variable.required(),
  PROVIDER_SECRET_ARN: variable.required(),
  STAGE: variable.required(),
  /** The durable retry path of settlement (lib/constructs/settlement-retry.ts); optional. */
  SETTLEMENT_QUEUE_URL: variable.optional(),
  LOG_LEVEL: logLevelVariable(),
};
/** Provider credentials are read again this often, so a key the operator fills works within minutes. */
const providerCredentialsRefreshMilliseconds = 5 * 60 * 1000;

export function proxyLambdaSettings(environment: NodeJS.ProcessEnv) {
  // Refuse to start without keys (AUTH-08) or with a malformed configuration: every invocation
  // fails loudly until this is fixed.
  const values = environmentOrRefuse('proxy', proxyEnvironment, environment);
  const config: ProxyConfig = values.PROXY_CONFIG;
  return {
    region: values.AWS_REGION,
    config,
    clientKeysSecretArn: values.CLIENT_KEYS_SECRET_ARN,
    creditsUrl: values.CREDITS_URL,
    creditsKeySecretArn: values.CREDITS_KEY_SECRET_ARN,
    providerSecretArn: values.PROVIDER_SECRET_ARN,
    /** The `stage` dimension of every metric. */
    stage: values.STAGE,
    settlementQueueUrl: values.SETTLEMENT_QUEUE_URL,
    logLevel: values.LOG_LEVEL,
  };
}

export async function createProxyLambdaApp(
  settings: ReturnType<typeof proxyLambdaSettings>,
  secrets: SecretReader,
  metrics: AppMetrics,
) {
  const logger = createLogger('proxy', settings.logLevel);
  const keys = await secretsManagerClientKeySource({
    secrets,
    secretArn: settings.clientKeysSecretArn,
    logger,
  });
  const credits = createCreditsClient({
    baseUrl: settings.creditsUrl,
    key: cachedCurrentSecret(secrets, settings.creditsKeySecretArn, (secretString) =>
      serviceKeyFromSecretString(secretString, 'current'),
    ),
    requestTimeoutMilliseconds: creditsRequestTimeoutMilliseconds,
  });
  const providers = createProviders(
    cachedCurrentSecret(
      secrets,
      settings.providerSecretArn,
      credentialsFromSecretString,
      providerCredentialsRefreshMilliseconds,
    ),
    {
      echo: { chunkDelayMilliseconds: settings.config.echoChunkDelayMilliseconds },
    },
  );
  const settlementQueue = settings.settlementQueueUrl
    ? sqsSettlementQueue({ region: settings.region, queueUrl: settings.settlementQueueUrl })
    : undefined;
  return createProxyApp({
    keys,
    credits,
    providers,
    config: settings.config,
    logger,
    metrics,
    settlementQueue,
  });
}

/** Built once per execution environment (cold start); streams every response. */
export const handler = coldStartStreamingHandler(async () => {
  const settings = proxyLambdaSettings(process.env);
  const metrics = createEmfMetrics('proxy', settings.stage);
  return {
    app: await createProxyLambdaApp(
      settings,
      fetchSecretReader({ region: settings.region }),
      metrics,
    ),
    metrics,
  };
});
