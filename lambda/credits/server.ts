import { stageConfigFromEnvironment } from '../../lib/config';
import { createGatewayClient } from '../../tigerbeetle/gateway/client';
import { createKeyring } from '../shared/keys';
import { createLogger, type LogLevel } from '../shared/logger';
import { MetricsRegistry } from '../shared/metrics';
import { startMetricsListener } from '../shared/metrics-listener';
import { shutDownOnSignals, startServer } from '../shared/node-server';
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

export function creditsSettingsFromEnvironment(environment: NodeJS.ProcessEnv): {
  settings?: CreditsServerSettings;
  problems: string[];
} {
  const problems: string[] = [];
  const port = Number(environment.CREDITS_PORT ?? '7200');
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    problems.push('CREDITS_PORT must be a port number');
  const metricsPort = Number(environment.CREDITS_METRICS_PORT ?? '7290');
  if (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65_535)
    problems.push('CREDITS_METRICS_PORT must be a port number');
  const gatewayUrl = environment.GATEWAY_URL ?? '';
  if (!/^https?:\/\/[^/]+$/.test(gatewayUrl))
    problems.push('GATEWAY_URL must be the gateway base URL, e.g. http://127.0.0.1:7300');
  const gatewayToken = environment.GATEWAY_TOKEN ?? '';
  if (gatewayToken.length < 32) problems.push('GATEWAY_TOKEN must be set (32 characters or more)');
  const split = (value: string | undefined) =>
    (value ?? '')
      .split(',')
      .map((key) => key.trim())
      .filter((key) => key !== '');
  const adminKeys = split(environment.CREDITS_ADMIN_KEYS);
  const proxyKeys = split(environment.CREDITS_PROXY_KEYS);
  if (adminKeys.length === 0)
    problems.push(
      'CREDITS_ADMIN_KEYS must list at least one admin key (comma-separated; current first)',
    );
  if (proxyKeys.length === 0)
    problems.push(
      'CREDITS_PROXY_KEYS must list at least one proxy key (comma-separated; current first)',
    );
  const logLevel = (environment.LOG_LEVEL ?? 'INFO').toUpperCase();
  if (!['DEBUG', 'INFO', 'WARN', 'ERROR'].includes(logLevel))
    problems.push('LOG_LEVEL must be DEBUG, INFO, WARN or ERROR');
  if (problems.length > 0) return { problems };
  return {
    settings: {
      hostname: environment.CREDITS_HOST ?? '127.0.0.1',
      port,
      metricsPort,
      stage: environment.STAGE ?? 'dev',
      gatewayUrl,
      gatewayToken,
      adminKeys,
      proxyKeys,
      logLevel: logLevel as LogLevel,
    },
    problems,
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
