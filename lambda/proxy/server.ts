import { stageConfigFromEnvironment } from '../../lib/config';
import {
  environmentProblems,
  logLevelVariable,
  readEnvironment,
  variable,
} from '../../runtime/environment';
import { createLogger } from '../../runtime/logger';
import { MetricsRegistry } from '../shared/metrics';
import { startMetricsListener } from '../shared/metrics-listener';
import { shutDownOnSignals, startServer } from '../../runtime/node-server';
import { createProxyApp } from './app';
import { fileClientKeySource } from './client-key-source';
import {
  creditsRequestTimeoutMilliseconds,
  proxyConfigFromStage,
  type ProxyConfig,
} from './config';
import { createCreditsClient } from './credits-client';
import { createProviders } from './providers';
import { createEmbeddingProviders } from './providers/embeddings';
import { credentialsFromVariables, providerCredentialVariables } from './providers/credentials';
import { fileSettlementQueue } from './settlement-queue';

/**
 * The proxy as a local Node server: the dev stage's models and limits, client keys from the local
 * key file (`npm run keys`), the credits service over HTTP, provider keys from the environment
 * (GEMINI_API_KEY, OPENAI_COMPATIBLE_BASE_URL and OPENAI_COMPATIBLE_API_KEY, ANTHROPIC_API_KEY;
 * echo needs none; bedrock signs with the environment's AWS credentials, in AWS_REGION or the
 * stage's region).
 * Its counters are served on /metrics by a second listener on 127.0.0.1 (PROXY_METRICS_PORT), never
 * by the API itself.
 */

/** How often the local settlement file (the durable retry path of `npm run dev`) is drained; far below the hold timeout. */
const settlementDrainIntervalMilliseconds = 5_000;

const portNumberMax = 65_535;
/** The local server's environment (scripts/local-services.ts sets it for `npm run dev`). */
const proxyServerEnvironment = {
  PROXY_PORT: variable.integer(0, portNumberMax, 7100),
  PROXY_METRICS_PORT: variable.integer(0, portNumberMax, 7190),
  PROXY_HOST: variable.withDefault('127.0.0.1'),
  CREDITS_URL: variable.matching(
    /^https?:\/\/[^/]+$/,
    'must be the credits base URL, e.g. http://127.0.0.1:7200',
  ),
  CREDITS_PROXY_KEY: variable.matching(
    /^.{32,}$/,
    'must be the proxy role key of the credits service (32 characters or more)',
  ),
  CLIENT_KEYS_FILE: variable.required(),
  SETTLEMENT_FILE: variable.withDefault('.data/settlements.jsonl'),
  STAGE: variable.withDefault('dev'),
  LOG_LEVEL: logLevelVariable(),
  // Bedrock signs with the AWS credentials of the environment (AWS_ACCESS_KEY_ID, ...), if any.
  AWS_REGION: variable.optional(),
  AWS_DEFAULT_REGION: variable.optional(),
  ...providerCredentialVariables,
};

/** The proxy's settings: the stage's, with DEV_OVERRIDES merged in (lib/config). */
export function proxyServerConfig(environment: NodeJS.ProcessEnv): ProxyConfig {
  return proxyConfigFromStage(stageConfigFromEnvironment(environment));
}

async function main(): Promise<void> {
  const reading = readEnvironment(proxyServerEnvironment, process.env);
  if (reading.values === undefined) {
    const problems = environmentProblems(reading);
    console.error(
      `proxy: refusing to start:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`,
    );
    process.exit(1);
  }
  const environment = reading.values;
  const settings = {
    port: environment.PROXY_PORT,
    metricsPort: environment.PROXY_METRICS_PORT,
    hostname: environment.PROXY_HOST,
    creditsUrl: environment.CREDITS_URL,
    creditsKey: environment.CREDITS_PROXY_KEY,
    clientKeysFile: environment.CLIENT_KEYS_FILE,
    settlementFile: environment.SETTLEMENT_FILE,
    stage: environment.STAGE,
    logLevel: environment.LOG_LEVEL,
    bedrockRegion: environment.AWS_REGION ?? environment.AWS_DEFAULT_REGION,
  };
  const logger = createLogger('proxy', settings.logLevel);
  const credentials = credentialsFromVariables(environment);
  const metrics = new MetricsRegistry('proxy', settings.stage);
  const stageConfig = stageConfigFromEnvironment(process.env);
  const config = proxyConfigFromStage(stageConfig);
  const bedrockRegion = settings.bedrockRegion ?? stageConfig.region;
  const credits = createCreditsClient({
    baseUrl: settings.creditsUrl,
    key: () => settings.creditsKey,
    requestTimeoutMilliseconds: creditsRequestTimeoutMilliseconds,
  });
  const settlementQueue = fileSettlementQueue(settings.settlementFile);
  const drain = setInterval(() => {
    settlementQueue
      .drain(credits, logger, metrics, Date.now())
      .catch((error: unknown) =>
        logger.error('settlement file drain failed', { error_message: (error as Error).message }),
      );
  }, settlementDrainIntervalMilliseconds);
  drain.unref();
  const app = createProxyApp({
    keys: fileClientKeySource(settings.clientKeysFile, logger),
    credits,
    settlementQueue,
    providers: createProviders(async () => credentials, {
      echo: { chunkDelayMilliseconds: config.echoChunkDelayMilliseconds },
      bedrock: { region: bedrockRegion },
    }),
    embeddingProviders: createEmbeddingProviders(async () => credentials),
    config,
    logger,
    metrics,
  });
  const server = await startServer({
    fetch: app.fetch,
    hostname: settings.hostname,
    port: settings.port,
  });
  const metricsListener = await startMetricsListener(metrics, settings.metricsPort);
  shutDownOnSignals({
    server,
    logger,
    name: 'proxy',
    release: async () => void (await metricsListener.close()),
  });
  logger.info('proxy ready', {
    address: server.url,
    metrics: `${metricsListener.url}/metrics`,
    providers: {
      gemini: credentials.gemini ? 'configured' : 'no key',
      openai_compatible: credentials.openaiCompatible ? 'configured' : 'no key',
      anthropic: credentials.anthropic ? 'configured' : 'no key',
      echo: 'built in',
      bedrock: process.env.AWS_ACCESS_KEY_ID
        ? `AWS credentials of the environment, ${bedrockRegion}`
        : 'no AWS credentials',
    },
  });
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(`proxy: failed to start: ${(error as Error).message}`);
    process.exit(1);
  });
}
