import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileClientKeyStore, issueClientKey, localClientKeysFile } from '../lambda/shared/client-key-store';
import { generateApiKey } from '../lambda/shared/keys';
import { localTopologyEnvironment, repoRoot, startLocalService, stopLocalServices, waitUntilHealthy, type LocalService } from './local-services';

/**
 * `npm run dev`: the whole system on one machine, in the same topology as AWS:
 * proxy -> credits -> ledger gateway -> embedded TigerBeetle-compatible engine, three Node
 * processes, with the ledger journal, the client key file and generated development keys under
 * .data/ (git-ignored). The built-in `echo` model needs no provider key; set GEMINI_API_KEY to call
 * Gemini for real.
 */

const dataDirectory = join(repoRoot, '.data');
const secretsFile = join(dataDirectory, 'dev-secrets.json');
const ports = { gateway: 7300, credits: 7200, proxy: 7100 };
const clientKeysFile = join(repoRoot, localClientKeysFile);
/** The user the development client key bills, and what it starts with. */
const devUser = 'dev-user';
const devStartingCredits = '10.00';

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

/** On first start: a client key for the dev user (printed once, like `npm run keys -- issue`) and some credits. */
async function firstStart(secrets: DevSecrets): Promise<string | undefined> {
  const store = fileClientKeyStore(clientKeysFile);
  const set = await store.read();
  if (set.keys.some((entry) => entry.user_id === devUser)) return undefined;
  const { set: next, issued } = issueClientKey(set, { userId: devUser, label: 'npm run dev', now: new Date() });
  await store.write(next);
  const topUp = await fetch(`http://127.0.0.1:${ports.credits}/api/v1/topup`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secrets.adminKey}`, 'content-type': 'application/json', 'idempotency-key': `dev-first-start-${issued.entry.id}` },
    body: JSON.stringify({ user_id: devUser, amount: devStartingCredits }),
  });
  if (topUp.status !== 201) throw new Error(`the first top-up failed with ${topUp.status}`);
  return issued.key;
}

function printExamples(secrets: DevSecrets, newClientKey: string | undefined): void {
  const proxy = `http://127.0.0.1:${ports.proxy}`;
  const credits = `http://127.0.0.1:${ports.credits}`;
  const key = newClientKey ?? 'YOUR_CLIENT_KEY';
  console.log(`
Ready: proxy ${proxy} -> credits ${credits} -> gateway http://127.0.0.1:${ports.gateway} -> embedded ledger (.data/ledger.tbj).
${
  newClientKey
    ? `\nA client key for '${devUser}' (with ${devStartingCredits} credits). It is shown only this once; keep it:\n\n  ${newClientKey}\n`
    : `\nThe client key for '${devUser}' was printed on the first start. Issue another with: npm run keys -- issue --user ${devUser}\n`
}
Try:

  # a chat completion with the built-in echo model (no provider key needed), billed in credits
  curl -s ${proxy}/v1/chat/completions -H 'authorization: Bearer ${key}' -H 'content-type: application/json' \\
       -d '{"model":"echo","messages":[{"role":"user","content":"Hello, ledger!"}]}' -D - 

  # your balance, and the models with their prices
  curl -s ${proxy}/v1/balance -H 'authorization: Bearer ${key}'
  curl -s ${proxy}/v1/models -H 'authorization: Bearer ${key}'

  # top up (the credits service's admin key; only inside the VPC in AWS)
  curl -s -X POST ${credits}/api/v1/topup -H 'authorization: Bearer ${secrets.adminKey}' \\
       -H 'content-type: application/json' -H "idempotency-key: topup-$(date +%s)" \\
       -d '{"user_id":"${devUser}","amount":"5.00"}'

  # history of the dev user, newest first
  curl -s '${credits}/api/v1/transfers/${devUser}?limit=10' -H 'authorization: Bearer ${secrets.adminKey}'

With GEMINI_API_KEY set before npm run dev, "model":"gemini-2.5-flash" calls Gemini for real.
Ctrl-C stops everything (in-flight requests finish, the journal is closed).
`);
}

async function main(): Promise<void> {
  const secrets = devSecrets();
  console.log('Starting the ledger gateway (embedded engine), the credits service and the proxy...');
  const environment = localTopologyEnvironment({
    gatewayPort: ports.gateway,
    creditsPort: ports.credits,
    dataFile: join(dataDirectory, 'ledger.tbj'),
    gatewayToken: secrets.gatewayToken,
    adminKey: secrets.adminKey,
    proxyKey: secrets.proxyKey,
    proxyPort: ports.proxy,
    clientKeysFile,
    logLevel: process.env.LOG_LEVEL ?? 'INFO',
  });
  start('gateway', 'tigerbeetle/gateway/server.ts', environment.gateway);
  await waitUntilHealthy('gateway', `http://127.0.0.1:${ports.gateway}/ready`);
  start('credits', 'lambda/credits/server.ts', environment.credits);
  await waitUntilHealthy('credits', `http://127.0.0.1:${ports.credits}/api/v1/ready`);
  start('proxy', 'lambda/proxy/server.ts', environment.proxy);
  await waitUntilHealthy('proxy', `http://127.0.0.1:${ports.proxy}/ready`);
  printExamples(secrets, await firstStart(secrets));
}

process.once('SIGINT', () => shutdown(0));
process.once('SIGTERM', () => shutdown(0));
main().catch((error: unknown) => {
  console.error(`dev: ${(error as Error).message}`);
  shutdown(1);
});
