import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { fileClientKeyStore, issueClientKey } from './client-key-store';
import {
  devClientKeysFile,
  devDataDirectory,
  devLedgerDataFile,
  devListenerOffsets,
  devMetricsPortOffset,
  devPortBase,
  devPortBaseSpacing,
  devPorts,
  devSecretsFile,
  readDevSecrets,
  type DevSecrets,
} from './dev-layout';
import { stageConfigFromEnvironment } from '../lib/config';
import { generateApiKey } from '../runtime/keys';
import {
  checkPortsFree,
  localTopologyEnvironment,
  portsInUse,
  signalGroup,
  startLocalService,
  stopLocalServices,
  waitUntilHealthy,
  type LocalService,
} from './local-services';

/**
 * `npm run dev`: the whole system on one machine, in the same topology as AWS:
 * proxy -> credits -> ledger gateway -> embedded TigerBeetle-compatible engine, three Node
 * processes, with the ledger journal, the client key file and generated development keys under
 * .data/ (git-ignored). The built-in `echo` model needs no provider key; set GEMINI_API_KEY,
 * ANTHROPIC_API_KEY or OPENAI_COMPATIBLE_BASE_URL and OPENAI_COMPATIBLE_API_KEY to call those
 * providers for real (DEV_OVERRIDES names a file of other models). Every way of stopping it (Ctrl-C, SIGTERM or SIGHUP to it, its parent or any process
 * above it going away) stops every service, the proxy first so in-flight requests finish and are billed; this process
 * killed outright (SIGKILL) ends the services' stdin pipes, and they stop on their own; a port still held by an earlier
 * run is reported before anything starts.
 * DEV_PORT_BASE (default 7100) and DEV_DATA_DIR (default .data) move it, e.g. beside another copy.
 */

/** DEV_PORT_BASE and DEV_DATA_DIR, read once (scripts/dev-layout.ts); a bad value ends the start. */
function layoutOrExit(): { portBase: number; dataDirectory: string } {
  try {
    return { portBase: devPortBase(), dataDirectory: devDataDirectory() };
  } catch (error) {
    console.error(`dev: ${(error as Error).message}`);
    process.exit(2);
  }
}

const { portBase, dataDirectory } = layoutOrExit();
const secretsFile = devSecretsFile();
const ports = devPorts(portBase);
const clientKeysFile = devClientKeysFile();
const ledgerDataFile = devLedgerDataFile();
/** How often the ancestor processes are checked: a supervisor that dies without a signal must not leave servers. */
const ancestorCheckMilliseconds = 1_000;
/** The user the development client key bills, and what it starts with. */
const devUser = 'dev-user';
const devStartingCredits = '10.00';

/** Development keys, generated on first run and kept, so a restart keeps working curl commands. */
function devSecrets(): DevSecrets {
  mkdirSync(dataDirectory, { recursive: true });
  const kept = readDevSecrets(secretsFile);
  if (kept !== undefined) return kept;
  const secrets: DevSecrets = {
    adminKey: generateApiKey(),
    proxyKey: generateApiKey(),
    gatewayToken: generateApiKey(),
  };
  writeFileSync(secretsFile, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  chmodSync(secretsFile, 0o600);
  return secrets;
}

const services: LocalService[] = [];
let stopping = false;

function shutdown(code: number, reason?: string): void {
  if (stopping) return;
  stopping = true;
  if (reason) console.log(`dev: ${reason}; stopping every service`);
  void stopLocalServices(services).then(() => process.exit(code));
}

async function start(
  name: string,
  entry: string,
  environment: Record<string, string>,
  readyUrl: string,
  whileWaiting?: () => string,
): Promise<void> {
  const service = startLocalService(name, entry, environment);
  service.process.on('exit', (code, signal) => {
    console.log(`[${name}] exited (${signal ?? code})`);
    if (!stopping) shutdown(1, `${name} stopped`);
  });
  services.push(service);
  await waitUntilHealthy(name, readyUrl, service, {
    whileWaiting,
    notice: (line) => console.log(`dev: ${line}`),
  });
}

/** What the gateway does while it has not answered yet: opening the ledger, and how much there is. */
function ledgerOpening(dataFile: string): () => string {
  const mebibytes = (path: string) =>
    existsSync(path) ? `${Math.round(statSync(path).size / 2 ** 20)} MiB` : null;
  return () => {
    const journal = mebibytes(dataFile) ?? 'new';
    const snapshot = mebibytes(`${dataFile}.snapshot`);
    return snapshot === null
      ? `opening the ledger (journal ${journal}, no snapshot beside it: the whole journal is replayed)`
      : `opening the ledger (journal ${journal}, loading its ${snapshot} snapshot and the journal after it)`;
  };
}

/**
 * Refuses to start over ports an earlier run (or anything else) still holds, naming them; when they
 * look like another running copy's (all its ports held), says so and how far apart bases must be.
 */
async function checkDevPortsFree(): Promise<void> {
  const wanted = devListenerOffsets.map((offset) => portBase + offset);
  const busy = await portsInUse(wanted);
  if (busy.length === 0) return;
  const other = await otherDevBase(busy);
  await checkPortsFree(
    wanted,
    other === undefined
      ? 'is an earlier npm run dev still running?'
      : `another npm run dev seems to run with DEV_PORT_BASE=${other}; copies side by side need ` +
          `DEV_PORT_BASE values at least ${devPortBaseSpacing} apart (this one: ${portBase}).`,
  );
}

/** A base other than ours whose every dev port is held, overlapping ours: another copy, probably. */
async function otherDevBase(busy: readonly number[]): Promise<number | undefined> {
  for (const port of busy)
    for (const offset of devListenerOffsets) {
      const base = port - offset;
      if (base === portBase || base < 1) continue;
      const theirs = devListenerOffsets.map((each) => base + each);
      if ((await portsInUse(theirs)).length === theirs.length) return base;
    }
  return undefined;
}

const hasProcfs = existsSync('/proc/self/stat');

/** The parent of `pid` (Linux: /proc; elsewhere: ps), or undefined once it is gone. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = hasProcfs ? readFileSync(`/proc/${pid}/stat`, 'utf8') : undefined;
    // /proc/PID/stat: "pid (command) state ppid ...", the command may hold spaces and parentheses.
    const text =
      stat === undefined
        ? execFileSync('ps', ['-o', 'ppid=', '-p', String(pid)], { encoding: 'utf8' })
        : stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
    const parent = Number(text.trim());
    return Number.isInteger(parent) && parent > 0 ? parent : undefined;
  } catch {
    return undefined; // gone
  }
}

/** This process's ancestors up to (not including) init, each with the parent it had at start. */
function ancestorChain(): { pid: number; parent: number }[] {
  const chain: { pid: number; parent: number }[] = [];
  for (let pid = process.ppid; pid > 1;) {
    const parent = parentOf(pid);
    if (parent === undefined) break;
    chain.push({ pid, parent });
    pid = parent;
  }
  return chain;
}

/**
 * Stops everything when any ancestor goes away without a signal (a killed supervisor, terminal or
 * the shell that ran `npm run dev`): tsx and npm above this process survive their parent's death
 * (reparented, not signalled), so the whole chain is watched, not only this process's parent.
 */
function watchAncestors(): void {
  const chain = ancestorChain();
  setInterval(() => {
    for (const ancestor of chain) {
      const parent = parentOf(ancestor.pid);
      if (parent === ancestor.parent) continue;
      const gone = parent === undefined ? ancestor.pid : ancestor.parent;
      return shutdown(0, `the parent process is gone (pid ${gone})`);
    }
  }, ancestorCheckMilliseconds).unref();
}

/** What a start did for the dev user: a key issued (printed once), credits for a ledger without them. */
interface DevUserStart {
  readonly newClientKey?: string;
  /** True when the ledger had no account for the dev user (a first start, or a new journal). */
  readonly toppedUp: boolean;
}

/**
 * A client key for the dev user on the first start (printed once, like `npm run keys -- issue`), and
 * starting credits whenever the ledger has no account for the user: a first start, or a journal that
 * was moved aside or deleted, whose keys file still holds the key.
 */
async function devUserStart(secrets: DevSecrets): Promise<DevUserStart> {
  const store = fileClientKeyStore(clientKeysFile);
  const set = await store.read();
  let newClientKey: string | undefined;
  if (!set.keys.some((entry) => entry.user_id === devUser)) {
    const { set: next, issued } = issueClientKey(set, {
      userId: devUser,
      label: 'npm run dev',
      now: new Date(),
    });
    await store.write(next);
    newClientKey = issued.key;
  }
  const credits = `http://127.0.0.1:${ports.credits}/api/v1`;
  const authorization = `Bearer ${secrets.adminKey}`;
  const balance = await fetch(`${credits}/balance/${devUser}`, { headers: { authorization } });
  await balance.body?.cancel();
  if (balance.status === 200) return { newClientKey, toppedUp: false };
  if (balance.status !== 404)
    throw new Error(`reading ${devUser}'s balance failed with ${balance.status}`);
  const topUp = await fetch(`${credits}/topup`, {
    method: 'POST',
    headers: {
      authorization,
      'content-type': 'application/json',
      // A new key each time: only a ledger without the account gets here.
      'idempotency-key': `dev-starting-credits-${randomUUID()}`,
    },
    body: JSON.stringify({ user_id: devUser, amount: devStartingCredits }),
  });
  await topUp.body?.cancel();
  if (topUp.status !== 201) throw new Error(`the starting top-up failed with ${topUp.status}`);
  return { newClientKey, toppedUp: true };
}

/** `DEV_DATA_DIR=... ` when set, so a printed command reaches this run's files however it was set. */
function devDataPrefix(): string {
  return process.env.DEV_DATA_DIR?.trim() ? `DEV_DATA_DIR=${dataDirectory} ` : '';
}

/** The models the running proxy serves: the dev stage's, or DEV_OVERRIDES's (as the proxy reads them). */
function servedModels(): { chat: string[]; embedding: string[] } {
  const config = stageConfigFromEnvironment({ ...process.env, STAGE: 'dev' });
  return {
    chat: config.models.map((model) => model.id),
    embedding: config.embeddingModels.map((model) => model.id),
  };
}

/** The example's model and what to say of it: echo when served (it needs no provider key). */
function exampleModel(models: readonly string[]): { id: string; about: string } {
  if (models.includes('echo'))
    return { id: 'echo', about: 'the built-in echo model (no provider key needed)' };
  return { id: models[0], about: `${models[0]}, a model of DEV_OVERRIDES` };
}

/** Which provider keys make which models answer, or the models DEV_OVERRIDES serves. */
function providerNote(models: { chat: readonly string[]; embedding: readonly string[] }): string {
  if (process.env.DEV_OVERRIDES?.trim()) {
    const embeddings =
      models.embedding.length > 0 ? `; embeddings: ${models.embedding.join(', ')}` : '';
    return `DEV_OVERRIDES (${process.env.DEV_OVERRIDES}) serves chat: ${models.chat.join(', ')}${embeddings}.`;
  }
  return `Provider keys set before npm run dev make their models answer for real: GEMINI_API_KEY
("model":"gemini-2.5-flash"), ANTHROPIC_API_KEY ("claude-haiku-4-5"), OPENAI_COMPATIBLE_BASE_URL
and OPENAI_COMPATIBLE_API_KEY ("gpt-4.1-mini"); DEV_OVERRIDES=file.json serves other models.`;
}

function printExamples(secrets: DevSecrets, { newClientKey, toppedUp }: DevUserStart): void {
  const models = servedModels();
  const example = exampleModel(models.chat);
  const proxy = `http://127.0.0.1:${ports.proxy}`;
  const credits = `http://127.0.0.1:${ports.credits}`;
  const key = newClientKey ?? 'YOUR_CLIENT_KEY';
  console.log(`
Ready: proxy ${proxy} -> credits ${credits} -> gateway http://127.0.0.1:${ports.gateway} -> embedded ledger (${ledgerDataFile}).
${
  newClientKey
    ? `\nA client key for '${devUser}' (with ${devStartingCredits} credits). It is shown only this once; keep it:\n\n  ${newClientKey}\n`
    : `\nThe client key for '${devUser}' was printed on the first start. Issue another with: ${devDataPrefix()}npm run keys -- issue --user ${devUser}\n${
        toppedUp
          ? `The ledger had no account for '${devUser}' (a new journal): topped up with ${devStartingCredits} credits.\n`
          : ''
      }`
}
Try:

  # a chat completion with ${example.about}, billed in credits
  curl -s ${proxy}/v1/chat/completions -H 'authorization: Bearer ${key}' -H 'content-type: application/json' \\
       -d '{"model":"${example.id}","messages":[{"role":"user","content":"Hello, ledger!"}]}' -D - 

  # your balance, and the models with their prices
  curl -s ${proxy}/v1/balance -H 'authorization: Bearer ${key}'
  curl -s ${proxy}/v1/models -H 'authorization: Bearer ${key}'

  # top up (the credits service's admin key; only inside the VPC in AWS)
  curl -s -X POST ${credits}/api/v1/topup -H 'authorization: Bearer ${secrets.adminKey}' \\
       -H 'content-type: application/json' -H "idempotency-key: topup-$(date +%s)" \\
       -d '{"user_id":"${devUser}","amount":"5.00"}'

  # history of the dev user, newest first
  curl -s '${credits}/api/v1/transfers/${devUser}?limit=10' -H 'authorization: Bearer ${secrets.adminKey}'

${providerNote(models)}
Ctrl-C stops everything (in-flight requests finish, the journal is closed).
`);
}

async function main(): Promise<void> {
  await checkDevPortsFree();
  const exportedStage = process.env.STAGE?.trim();
  if (exportedStage && exportedStage !== 'dev')
    console.log(
      `dev: STAGE=${exportedStage} from your shell is ignored: npm run dev runs stage dev (other stages are for cdk synth and deploy: -c stage=${exportedStage})`,
    );
  const secrets = devSecrets();
  console.log(
    'Starting the ledger gateway (embedded engine), the credits service and the proxy...',
  );
  const environment = localTopologyEnvironment({
    gatewayPort: ports.gateway,
    creditsPort: ports.credits,
    dataFile: ledgerDataFile,
    gatewayToken: secrets.gatewayToken,
    adminKey: secrets.adminKey,
    proxyKey: secrets.proxyKey,
    proxyPort: ports.proxy,
    clientKeysFile,
    // The proxy logs each client request; the internal hops log warnings only (LOG_LEVEL shows all).
    logLevel: process.env.LOG_LEVEL ?? 'INFO',
    internalLogLevel: process.env.LOG_LEVEL ?? 'WARN',
    metricsPortOffset: devMetricsPortOffset,
  });
  await start(
    'gateway',
    'tigerbeetle/gateway/server.ts',
    environment.gateway,
    `http://127.0.0.1:${ports.gateway}/ready`,
    ledgerOpening(ledgerDataFile),
  );
  await start(
    'credits',
    'lambda/credits/server.ts',
    environment.credits,
    `http://127.0.0.1:${ports.credits}/api/v1/ready`,
  );
  await start(
    'proxy',
    'lambda/proxy/server.ts',
    environment.proxy,
    `http://127.0.0.1:${ports.proxy}/ready`,
  );
  printExamples(secrets, await devUserStart(secrets));
}

// `on`, not `once`: Ctrl-C reaches this process twice (from the terminal and relayed by tsx), and a
// second signal left to Node's default would end it mid-stop, cutting the services' drain.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
  process.on(signal, () => shutdown(0));
// Last resort if this process ends some other way: no service may outlive it.
process.on('exit', () => {
  for (const service of services) signalGroup(service, 'SIGTERM');
});
watchAncestors();
main().catch((error: unknown) => {
  console.error(`dev: ${(error as Error).message}`);
  shutdown(1);
});
