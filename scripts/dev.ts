import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateApiKey } from '../lambda/shared/keys';
import { localTopologyEnvironment, repoRoot, startLocalService, stopLocalServices, waitUntilHealthy, type LocalService } from './local-services';

/**
 * `npm run dev`: the whole credits path on one machine, in the same topology as AWS:
 * credits (Node server) -> ledger gateway (Node server) -> embedded TigerBeetle-compatible engine,
 * with the ledger journal and generated development keys under .data/ (git-ignored).
 */

const dataDirectory = join(repoRoot, '.data');
const secretsFile = join(dataDirectory, 'dev-secrets.json');
const ports = { gateway: 7300, credits: 7200 };

interface DevSecrets {
  readonly adminKey: string;
  readonly proxyKey: string;
  readonly gatewayToken: string;
}

/** Development keys, generated on first run and kept, so a restart keeps working curl commands. */
function devSecrets(): DevSecrets {
  mkdirSync(dataDirectory, { recursive: true });
  if (existsSync(secretsFile)) return JSON.parse(readFileSync(secretsFile, 'utf8')) as DevSecrets;
  const secrets: DevSecrets = { adminKey: generateApiKey(), proxyKey: generateApiKey(), gatewayToken: generateApiKey() };
  writeFileSync(secretsFile, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  chmodSync(secretsFile, 0o600);
  return secrets;
}

const services: LocalService[] = [];
let stopping = false;

function shutdown(code: number): void {
  if (stopping) return;
  stopping = true;
  void stopLocalServices(services).then(() => process.exit(code));
}

function start(name: string, entry: string, environment: Record<string, string>): void {
  const service = startLocalService(name, entry, environment);
  service.process.on('exit', (code, signal) => {
    console.log(`[${name}] exited (${signal ?? code})`);
    if (!stopping) shutdown(1);
  });
  services.push(service);
}

function printExamples(secrets: DevSecrets): void {
  const credits = `http://127.0.0.1:${ports.credits}`;
  console.log(`
Ready. The credits service is at ${credits} (ledger journal: .data/ledger.tbj, keys: .data/dev-secrets.json).
Try:

  # top up 100.00 for user alice (admin key; the Idempotency-Key makes a retry safe)
  curl -s -X POST ${credits}/api/v1/topup -H 'authorization: Bearer ${secrets.adminKey}' \\
       -H 'content-type: application/json' -H "idempotency-key: topup-$(date +%s)" \\
       -d '{"user_id":"alice","amount":"100.00"}'

  # balance (admin or proxy key)
  curl -s ${credits}/api/v1/balance/alice -H 'authorization: Bearer ${secrets.adminKey}'

  # hold 2.50 for 60 seconds, as the proxy does before calling a model
  curl -s -X POST ${credits}/api/v1/holds -H 'authorization: Bearer ${secrets.proxyKey}' \\
       -H 'content-type: application/json' \\
       -d '{"user_id":"alice","amount":"2.50","timeout_seconds":60,"request_id":"req-'$(date +%s)'"}'

  # settle it for the actual cost (the rest returns to alice), or release it
  curl -s -X POST ${credits}/api/v1/holds/HOLD_ID/settle -H 'authorization: Bearer ${secrets.proxyKey}' \\
       -H 'content-type: application/json' -d '{"amount":"0.75"}'
  curl -s -X POST ${credits}/api/v1/holds/HOLD_ID/release -H 'authorization: Bearer ${secrets.proxyKey}'

  # history, newest first
  curl -s '${credits}/api/v1/transfers/alice?limit=10' -H 'authorization: Bearer ${secrets.adminKey}'

Ctrl-C stops everything (in-flight requests finish, the journal is closed).
`);
}

async function main(): Promise<void> {
  const secrets = devSecrets();
  console.log('Starting the ledger gateway (embedded engine) and the credits service...');
  const environment = localTopologyEnvironment({
    gatewayPort: ports.gateway,
    creditsPort: ports.credits,
    dataFile: join(dataDirectory, 'ledger.tbj'),
    gatewayToken: secrets.gatewayToken,
    adminKey: secrets.adminKey,
    proxyKey: secrets.proxyKey,
    logLevel: process.env.LOG_LEVEL ?? 'INFO',
  });
  start('gateway', 'tigerbeetle/gateway/server.ts', environment.gateway);
  await waitUntilHealthy('gateway', `http://127.0.0.1:${ports.gateway}/ready`);
  start('credits', 'lambda/credits/server.ts', environment.credits);
  await waitUntilHealthy('credits', `http://127.0.0.1:${ports.credits}/api/v1/ready`);
  printExamples(secrets);
}

process.once('SIGINT', () => shutdown(0));
process.once('SIGTERM', () => shutdown(0));
main().catch((error: unknown) => {
  console.error(`dev: ${(error as Error).message}`);
  shutdown(1);
});
