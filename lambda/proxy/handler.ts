import { serviceKeyFromSecretString } from '../credits/keys';
import { coldStartStreamingHandler } from '../shared/lambda-handler';
import { createLogger, type LogLevel } from '../shared/logger';
import { createEmfMetrics, type AppMetrics } from '../shared/metrics';
import { cachedCurrentSecret } from '../shared/secret-keyring';
import { fetchSecretReader, type SecretReader } from '../shared/secrets-manager';
import { createProxyApp } from './app';
import { bakedModelCatalogue } from './baked-catalogue';
import { secretsManagerClientKeySource } from './client-key-source';
import {
  creditsRequestTimeoutMilliseconds,
  type ProxyConfig,
  type ProxyEnvironmentSettings,
  type ProxyModelCatalogue,
} from './config';
import { createCreditsClient } from './credits-client';
import { createProviders } from './providers';
import { createEmbeddingProviders } from './providers/embeddings';
import { credentialsFromSecretString } from './providers/credentials';
import { sqsSettlementQueue } from './settlement-queue';

/**
 * The proxy as a response-streaming Lambda function, invoked by the private REST API (Lambda proxy
 * integration in STREAM mode, events in format 1.0) behind the public ALB: completions stream to the
 * client as the provider produces them. The environment holds only small non-secret settings and
 * the ARNs of its secrets (CFG-02, AUTH-03): the client key set, its own key for the credits
 * service, the provider credentials. The model catalogue is baked into the code at synth
 * (`bakedModelCatalogue`), so it can grow without meeting Lambda's 4 KB environment limit. Secrets
 * are read at cold start and refreshed. Metrics go to CloudWatch as EMF, flushed after every
 * invocation (MON-02); there is no /metrics route.
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

function parsedJson(text: string, name: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Error(`proxy: refusing to start, ${name} is not JSON`);
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The settings (environment) and the catalogue (bundle) as one config; either malformed refuses to start. */
function proxyConfigFrom(settingsJson: string, catalogueJson: string): ProxyConfig {
  const settings = parsedJson(settingsJson, 'PROXY_CONFIG');
  if (!isObject(settings))
    throw new Error('proxy: refusing to start, PROXY_CONFIG is not a JSON object');
  const catalogue = parsedJson(catalogueJson, 'PROXY_MODEL_CATALOGUE');
  if (
    !isObject(catalogue) ||
    !Array.isArray(catalogue.models) ||
    catalogue.models.length === 0 ||
    !Array.isArray(catalogue.embeddingModels)
  ) {
    throw new Error(
      'proxy: refusing to start, PROXY_MODEL_CATALOGUE must be an object with a non-empty "models" array and an "embeddingModels" array',
    );
  }
  return {
    ...(settings as unknown as ProxyEnvironmentSettings),
    ...(catalogue as unknown as ProxyModelCatalogue),
  };
}

/**
 * The function's settings from its environment and its model catalogue (`bakedModelCatalogue()`
 * where deployed); refuses to start without either, or with either malformed.
 */
export function proxyLambdaSettings(
  environment: NodeJS.ProcessEnv,
  modelCatalogueJson: string | undefined,
) {
  const missing: string[] = required.filter((name) => !environment[name]);
  if (!modelCatalogueJson) missing.push('PROXY_MODEL_CATALOGUE (baked into the bundle at synth)');
  // Refuse to start without keys (AUTH-08): every invocation fails loudly until this is fixed.
  if (missing.length > 0)
    throw new Error(`proxy: refusing to start, missing configuration: ${missing.join(', ')}`);
  const config = proxyConfigFrom(environment.PROXY_CONFIG as string, modelCatalogueJson as string);
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
  const settings = proxyLambdaSettings(process.env, bakedModelCatalogue());
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
