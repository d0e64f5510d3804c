import { createLogger } from '../../runtime/logger';
import { shutDownOnSignals, startServer, type RunningServer } from '../../runtime/node-server';
import { openLedger, type Ledger } from '../ledger';
import { createGatewayApp } from './app';
import { gatewayConfigFromEnvironment, type GatewayConfig } from './config';
import { openTokenSource } from './token-source';

/**
 * The ledger gateway's process: configuration from the environment, one ledger session, one HTTP
 * server, and a graceful shutdown on SIGTERM/SIGINT (runtime/node-server.ts): readiness fails
 * first so the load balancer stops sending, in-flight requests finish, then the ledger closes.
 */

const serviceName = 'ledger-gateway';

async function main(): Promise<void> {
  const { config, problems } = gatewayConfigFromEnvironment(process.env);
  if (config === undefined) return refuse(problems);
  const logger = createLogger(serviceName, config.logLevel);
  const tokens = await openTokenSource(config.tokens, { logger }).catch((error: unknown) =>
    refuse([`could not read the gateway tokens: ${errorMessage(error)}`]),
  );
  const ledger = openOrRefuse(config);
  for (const warning of ledger.warnings) logger.warn('ledger opened with a warning', { warning });
  let draining = false;
  const app = createGatewayApp({
    ledger: ledger.client,
    tokens,
    logger,
    limits: { ledgerRequestTimeoutMilliseconds: config.ledgerRequestTimeoutMilliseconds },
    isDraining: () => draining,
  });
  const server = await listenOrRefuse(config, ledger, app.fetch);
  logger.info('ledger gateway ready', {
    address: server.url,
    ledger: ledger.description,
    tokens: tokens.description,
  });
  shutDownOnSignals({
    server,
    logger,
    name: 'ledger gateway',
    beforeDrain: () => {
      draining = true;
    },
    release: async () => {
      tokens.close();
      await ledger.close();
    },
  });
}

function refuse(problems: readonly string[]): never {
  console.error(
    `ledger gateway: refusing to start:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`,
  );
  process.exit(1);
}

function openOrRefuse(config: GatewayConfig): Ledger {
  try {
    return openLedger(config.ledger);
  } catch (error) {
    return refuse([`could not open the ledger: ${errorMessage(error)}`]);
  }
}

async function listenOrRefuse(
  config: GatewayConfig,
  ledger: Ledger,
  fetch: (request: Request) => Response | Promise<Response>,
): Promise<RunningServer> {
  try {
    return await startServer({ fetch, hostname: config.host, port: config.port });
  } catch (error) {
    await ledger.close();
    return refuse([`could not listen on ${config.host}:${config.port}: ${errorMessage(error)}`]);
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

void main();
