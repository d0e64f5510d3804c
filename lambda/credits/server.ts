import { stageConfigFromEnvironment } from '../../lib/config';
import { createGatewayClient } from '../../tigerbeetle/gateway/client';
import { createKeyring } from '../../runtime/keys';
import {
  environmentProblems,
  logLevelVariable,
  readEnvironment,
  variable,
} from '../../runtime/environment';
import { createLogger, type LogLevel } from '../../runtime/logger';
import { MetricsRegistry } from '../shared/metrics';
import { startMetricsListener } from '../shared/metrics-listener';
import { shutDownOnSignals, startServer } from '../../runtime/node-server';
import * as z from '../../runtime/zod-mini';
import { createCreditsApp, type CreditsPrincipal } from './app';
import { creditsKeyEntries } from './keys';

/**
 * The credits service as a local Node server, in front of the ledger gateway, the same topology as
 * in AWS. Configuration comes from the environment, checked at start: every problem is listed and
 * the process refuses to start (AUTH-08). Its counters are served on /metrics by a second listener
 * on 127.0.0.1 (CREDITS_METRICS_PORT), never by the service itself.
 */

interface CreditsServerSettings {
  readonly hostname: string;
  readonly port: number;
  readonly metricsPort: number;
  /** The `stage` label of the metrics. Default: dev. */
  readonly stage: string;
  readonly gatewayUrl: string;
  readonly gatewayToken: string;
  readonly adminKeys: string[];
  readonly proxyKeys: string[];
  readonly logLevel: LogLevel;
}

/** Deadline of one call to the gateway. */
const gatewayRequestTimeoutMilliseconds = 5_000;

const portNumberMax = 65_535;
/** Service keys, comma-separated, the current one first (a rotation lists the previous one after it). */
const keyList = (rule: string) =>
  z.pipe(
    variable.withDefault(''),
    z.pipe(
      z.transform((text: string) =>
        text
          .split(',')
          .map((key) => key.trim())
          .filter((key) => key !== ''),
      ),
      z.array(z.string()).check(z.minLength(1, rule)),
    ),
  );

/** The local server's environment (scripts/local-services.ts sets it for `npm run dev`). */
const creditsServerEnvironment = {
  CREDITS_PORT: variable.integer(0, portNumberMax, 7200),
  CREDITS_METRICS_PORT: variable.integer(0, portNumberMax, 7290),
  CREDITS_HOST: variable.withDefault('127.0.0.1'),
  STAGE: variable.withDefault('dev'),
  GATEWAY_URL: variable.matching(
    /^https?:\/\/[^/]+$/,
    'must be the gateway base URL, e.g. http://127.0.0.1:7300',
  ),
  GATEWAY_TOKEN: variable.matching(/^.{32,}$/, 'must be set (32 characters or more)'),
  CREDITS_ADMIN_KEYS: keyList('must list at least one admin key (comma-separated; current first)'),
  CREDITS_PROXY_KEYS: keyList('must list at least one proxy key (comma-separated; current first)'),
  LOG_LEVEL: logLevelVariable(),
};

export function creditsSettingsFromEnvironment(environment: NodeJS.ProcessEnv): {
  settings?: CreditsServerSettings;
  problems: string[];
} {
  const reading = readEnvironment(creditsServerEnvironment, environment);
  if (reading.values === undefined) return { problems: environmentProblems(reading) };
  const values = reading.values;
  return {
    settings: {
      hostname: values.CREDITS_HOST,
      port: values.CREDITS_PORT,
      metricsPort: values.CREDITS_METRICS_PORT,
      stage: values.STAGE,
      gatewayUrl: values.GATEWAY_URL,
      gatewayToken: values.GATEWAY_TOKEN,
      adminKeys: values.CREDITS_ADMIN_KEYS,
      proxyKeys: values.CREDITS_PROXY_KEYS,
      logLevel: values.LOG_LEVEL,
    },
    problems: [],
  };
}

async function main(): Promise<void> {
  const { settings, problems } = creditsSettingsFromEnvironment(process.env);
  if (!settings) {
    console.error(
      `credits: refusing to start:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`,
    );
    process.exit(1);
  }
  const logger = createLogger('credits', settings.logLevel);
  const ledger = createGatewayClient({
    baseUrl: settings.gatewayUrl,
    token: () => settings.gatewayToken,
    requestTimeoutMilliseconds: gatewayRequestTimeoutMilliseconds,
  });
  const keys = createKeyring<CreditsPrincipal>(
    creditsKeyEntries({ admin: settings.adminKeys, proxy: settings.proxyKeys }),
  );
  const metrics = new MetricsRegistry('credits', settings.stage);
  // The stage's currency, as the proxy server prices in it: one value, from the stage config.
  const { currency } = stageConfigFromEnvironment({ ...process.env, STAGE: settings.stage });
  const app = createCreditsApp({ ledger, keys, logger, metrics, config: { currency } });
  const server = await startServer({
    fetch: app.fetch,
    hostname: settings.hostname,
    port: settings.port,
  });
  const metricsListener = await startMetricsListener(metrics, settings.metricsPort);
  shutDownOnSignals({
    server,
    logger,
    name: 'credits',
    release: async () => void (await metricsListener.close()),
  });
  logger.info('credits ready', {
    address: server.url,
    metrics: `${metricsListener.url}/metrics`,
    ledger: `through the gateway at ${settings.gatewayUrl}`,
  });
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(`credits: failed to start: ${(error as Error).message}`);
    process.exit(1);
  });
}
