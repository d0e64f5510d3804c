import { coldStartStreamingHandler } from '../shared/lambda-handler';
import { environmentOrRefuse, logLevelVariable, variable } from '../../runtime/environment';
import { createLogger } from '../../runtime/logger';
import { createEmfMetrics, type AppMetrics } from '../shared/metrics';
import { cachedCurrentSecret } from '../../runtime/secret-keyring';
import { serviceKeyFromSecretString } from '../shared/service-secret';
import { fetchSecretReader, type SecretReader } from '../../runtime/secrets-manager';
import { createProxyApp } from './app';
import { bakedModelCatalogue } from './baked-catalogue';
import { secretsManagerClientKeySource } from './client-key-source';
import {
  creditsRequestTimeoutMilliseconds,
  proxyEnvironmentSettingsSchema,
  proxyModelCatalogueSchema,
  type ProxyConfig,
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

/** The function's environment (lib/stacks/api-stack.ts writes it): non-secret settings and the ARNs of its secrets. */
const proxyEnvironment = {
  AWS_REGION: variable.required(),
  PROXY_CONFIG: variable.json(proxyEnvironmentSettingsSchema, 'the proxy settings'),
  CLIENT_KEYS_SECRET_ARN: variable.required(),
  CREDITS_URL: variable.required(),
  CREDITS_KEY_SECRET_ARN: variable.required(),
  PROVIDER_SECRET_ARN: variable.required(),
  STAGE: variable.required(),
  /** The durable retry path of settlement (lib/constructs/settlement-retry.ts); optional. */
  SETTLEMENT_QUEUE_URL: variable.optional(),
  LOG_LEVEL: logLevelVariable(),
};
/** The model catalogue is not in the environment: it is baked into the bundle (baked-catalogue.ts). */
const bakedCatalogueName = 'PROXY_MODEL_CATALOGUE (baked into the bundle at synth)';
const bakedCatalogueVariable = variable.json(proxyModelCatalogueSchema, 'the model catalogue');

/** Provider credentials are read again this often, so a key the operator fills works within minutes. */
const providerCredentialsRefreshMilliseconds = 5 * 60 * 1000;

/**
 * The function's settings from its environment and its model catalogue (`bakedModelCatalogue()`
 * where deployed); refuses to start without either, or with either malformed (AUTH-08: every
 * invocation fails loudly until this is fixed).
 */
export function proxyLambdaSettings(
  environment: NodeJS.ProcessEnv,
  modelCatalogueJson: string | undefined,
) {
  // One reading, so a refusal lists everything missing at once; the catalogue is named for where it lives.
  const values = environmentOrRefuse(
    'proxy',
    { ...proxyEnvironment, [bakedCatalogueName]: bakedCatalogueVariable },
    { ...environment, [bakedCatalogueName]: modelCatalogueJson },
  );
  const catalogue = values[bakedCatalogueName];
  const config: ProxyConfig = { ...values.PROXY_CONFIG, ...catalogue };
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
