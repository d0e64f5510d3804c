import { serviceKeyFromSecretString } from '../credits/keys';
import { coldStartStreamingHandler } from '../shared/lambda-handler';
import { createLogger, type LogLevel } from '../shared/logger';
import { createEmfMetrics, type AppMetrics } from '../shared/metrics';
import { cachedCurrentSecret } from '../shared/secret-keyring';
import { fetchSecretReader, type SecretReader } from '../shared/secrets-manager';
import { createProxyApp } from './app';
import { secretsManagerClientKeySource } from './client-key-source';
import { creditsRequestTimeoutMilliseconds, type ProxyConfig } from './config';
import { createCreditsClient } from './credits-client';
import { createProviders } from './providers';
import { createEmbeddingProviders } from './providers/embeddings';
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

const required = [
  'AWS_REGION',
  'PROXY_CONFIG',
  'CLIENT_KEYS_SECRET_ARN',
  'CREDITS_URL',
  'CREDITS_KEY_SECRET_ARN',
  'PROVIDER_SECRET_ARN',
  'STAGE',
] as const;
/** Provider credentials are read again this often, so a key the operator fills works within minutes. */
const providerCredentialsRefreshMilliseconds = 5 * 60 * 1000;

export function proxyLambdaSettings(environment: NodeJS.ProcessEnv) {
  const missing = required.filter((name) => !environment[name]);
  // Refuse to start without keys (AUTH-08): every invocation fails loudly until this is fixed.
  if (missing.length > 0)
    throw new Error(`proxy: refusing to start, missing configuration: ${missing.join(', ')}`);
  let config: ProxyConfig;
  try {
    config = JSON.parse(environment.PROXY_CONFIG as string) as ProxyConfig;
  } catch {
    throw new Error('proxy: refusing to start, PROXY_CONFIG is not JSON');
  }
  return {
    region: environment.AWS_REGION as string,
    config,
    clientKeysSecretArn: environment.CLIENT_KEYS_SECRET_ARN as string,
    creditsUrl: environment.CREDITS_URL as string,
    creditsKeySecretArn: environment.CREDITS_KEY_SECRET_ARN as string,
    providerSecretArn: environment.PROVIDER_SECRET_ARN as string,
    /** The `stage` dimension of every metric. */
    stage: environment.STAGE as string,
    /** The durable retry path of settlement (lib/constructs/settlement-retry.ts); optional. */
    settlementQueueUrl: environment.SETTLEMENT_QUEUE_URL,
    logLevel: (environment.LOG_LEVEL ?? 'INFO').toUpperCase() as LogLevel,
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
  const providerCredentials = cachedCurrentSecret(
    secrets,
    settings.providerSecretArn,
    credentialsFromSecretString,
    providerCredentialsRefreshMilliseconds,
  );
  const providers = createProviders(providerCredentials, {
    echo: { chunkDelayMilliseconds: settings.config.echoChunkDelayMilliseconds },
    // The function's own region and IAM role; the stack scopes the role to the configured models.
    bedrock: { region: settings.region },
  });
  const settlementQueue = settings.settlementQueueUrl
    ? sqsSettlementQueue({ region: settings.region, queueUrl: settings.settlementQueueUrl })
    : undefined;
  return createProxyApp({
    keys,
    credits,
    providers,
    embeddingProviders: createEmbeddingProviders(providerCredentials),
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
