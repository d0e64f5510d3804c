import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import {
  cutRequestsSettleMillisecondsMax,
  drainMillisecondsMaxDefault,
} from '../runtime/node-server';

/**
 * Starting the services as separate local Node processes (for `npm run dev` and the benchmarks).
 * Each service runs in a process group of its own (tsx runs the script in a child process), and
 * stopping signals the whole group, so no server outlives the command that started it; each one's
 * stdin is a pipe from this process, and a service stops when it ends (this process killed).
 */

export const repoRoot = join(__dirname, '..');
/** How long a service may take to answer its health check after start. */
export const startTimeoutMilliseconds = 30_000;
/** A service still not answering after this long is said to be starting, with what it is doing. */
export const startNoticeMilliseconds = 5_000;
/**
 * How long a stopped service may take to exit (drain its in-flight requests, settle them, close its
 * ledger) before its process group is killed: its own drain bound, the wait for the requests the
 * drain cut to settle, plus time to release.
 */
export const stopGraceMilliseconds =
  drainMillisecondsMaxDefault + cutRequestsSettleMillisecondsMax + 5_000;
/**
 * Deadline of one health request: a listener that accepts and closes without answering leaves
 * Node's fetch pending forever, and the start must go on checking whether the service exited.
 */
export const healthRequestTimeoutMilliseconds = 2_000;
/** Output lines kept per service, shown when it fails to start (quiet services included). */
export const outputLinesKept = 40;

export interface LocalService {
  readonly name: string;
  readonly process: ChildProcess;
  /** The service's last output lines, newest last. */
  readonly recentOutput: string[];
  /** Whether its output is kept only (else it was printed as it came, prefixed with its name). */
  readonly quiet: boolean;
}

/** Runs `entry` with tsx; its output lines are prefixed with the service name unless `quiet`. */
export function startLocalService(
  name: string,
  entry: string,
  environment: Record<string, string>,
  options: { quiet?: boolean } = {},
): LocalService {
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'node_modules', 'tsx', 'dist', 'cli.mjs'), entry],
    {
      cwd: repoRoot,
      // The service stops when its stdin pipe ends: this process gone, even by SIGKILL, when no
      // exit handler of ours can run (runtime/node-server.ts, stopWhenStdinEnds).
      env: { ...process.env, ...environment, STOP_WHEN_STDIN_ENDS: 'true' },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // a process group of its own, signalled as one (see stopLocalServices)
    },
  );
  // Never written to; a service that exited first must not make this process fail (EPIPE).
  child.stdin?.on('error', () => undefined);
  child.once('exit', () => child.stdin?.destroy());
  const recentOutput: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      for (const line of chunk.split('\n').filter((text) => text !== '')) {
        recentOutput.push(line);
        if (recentOutput.length > outputLinesKept) recentOutput.shift();
        if (!options.quiet) console.log(`[${name}] ${line}`);
      }
    });
  }
  return { name, process: child, recentOutput, quiet: options.quiet === true };
}

function exited(service: LocalService): boolean {
  return service.process.exitCode !== null || service.process.signalCode !== null;
}

export interface HealthWaitOptions {
  /** What the service does meanwhile, said once it has taken `noticeAfterMilliseconds`. */
  readonly whileWaiting?: () => string;
  /** Default: startNoticeMilliseconds. */
  readonly noticeAfterMilliseconds?: number;
  /** Where the notice goes. Default: console.log. */
  readonly notice?: (line: string) => void;
}

/**
 * Resolves once `url` answers 2xx; rejects with the service's own output if it exits or times out
 * first. A slow start is said to be one, with what the service is doing, so a quiet wait is never
 * taken for a hang.
 */
export async function waitUntilHealthy(
  name: string,
  url: string,
  service?: LocalService,
  options: HealthWaitOptions = {},
): Promise<void> {
  const started = Date.now();
  const deadline = started + startTimeoutMilliseconds;
  const noticeAt = started + (options.noticeAfterMilliseconds ?? startNoticeMilliseconds);
  let noticed = options.whileWaiting === undefined;
  while (Date.now() < deadline) {
    if (!noticed && Date.now() >= noticeAt) {
      noticed = true;
      const seconds = Math.round((Date.now() - started) / 1000);
      (options.notice ?? console.log)(
        `${name} is still starting after ${seconds} s: ${options.whileWaiting?.()} (it may take up to ${startTimeoutMilliseconds / 1000} s)`,
      );
    }
    if (service !== undefined && exited(service))
      throw startFailure(
        `${name} exited (${service.process.signalCode ?? service.process.exitCode}) before it became healthy`,
        service,
      );
    if (await answersOk(url)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw startFailure(
    `${name} did not become healthy at ${url} within ${startTimeoutMilliseconds / 1000} s`,
    service,
  );
}

/** One health request: true on a 2xx; false when refused, failed or unanswered within its deadline. */
async function answersOk(url: string): Promise<boolean> {
  // A timer of our own, not AbortSignal.timeout(): that one's timer does not keep the process alive,
  // and a start waiting on a request nothing answers would end silently with exit code 0.
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), healthRequestTimeoutMilliseconds);
  try {
    const response = await fetch(url, { signal: deadline.signal });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false; // not listening yet, or no answer
  } finally {
    clearTimeout(timer);
  }
}

/** The failure with the service's own last words: quoted when quiet, else pointed to (printed once). */
function startFailure(message: string, service: LocalService | undefined): Error {
  const output = service?.recentOutput ?? [];
  if (output.length === 0) return new Error(message);
  if (service?.quiet === false) return new Error(`${message}; its output is above`);
  return new Error(
    `${message}; its last output:\n${output.map((line) => `  | ${line}`).join('\n')}`,
  );
}

/**
 * Stops the services one at a time, the last started first (`services` in start order, each
 * depending on the ones before it): the proxy drains and settles its in-flight requests while
 * credits and the gateway still answer, then credits, then the gateway closes the journal.
 * Resolves when all have exited.
 */
export async function stopLocalServices(
  services: readonly LocalService[],
  graceMilliseconds = stopGraceMilliseconds,
): Promise<void> {
  for (const service of [...services].reverse()) await stopLocalService(service, graceMilliseconds);
}

/** SIGTERM to the service's process group; past `graceMilliseconds`, SIGKILL. */
function stopLocalService(service: LocalService, graceMilliseconds: number): Promise<void> {
  return new Promise<void>((resolve) => {
    if (exited(service)) return resolve();
    const force = setTimeout(() => {
      console.log(`[${service.name}] did not stop within ${graceMilliseconds} ms; killed`);
      signalGroup(service, 'SIGKILL');
    }, graceMilliseconds);
    service.process.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    signalGroup(service, 'SIGTERM');
  });
}

/** Signals a service's whole process group (tsx and the server it runs); never throws. */
export function signalGroup(service: LocalService, signal: NodeJS.Signals): void {
  try {
    if (service.process.pid !== undefined) process.kill(-service.process.pid, signal);
  } catch {
    // already gone
  }
}

/**
 * Refuses to start over ports something already holds (an earlier run, another topology), naming
 * them; `hint` says what probably holds them.
 */
export async function checkPortsFree(ports: readonly number[], hint: string): Promise<void> {
  const busy = await portsInUse(ports);
  if (busy.length === 0) return;
  throw new Error(
    `port${busy.length > 1 ? 's' : ''} ${busy.join(', ')} already in use on 127.0.0.1: ${hint} ` +
      `Find it with: ss -ltnp 'sport = :${busy[0]}' (or lsof -i :${busy[0]}), stop it, and start again`,
  );
}

/** The ports among `ports` that something already listens on (127.0.0.1). */
export async function portsInUse(ports: readonly number[]): Promise<number[]> {
  const busy: number[] = [];
  for (const port of ports) {
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (!free) busy.push(port);
  }
  return busy;
}

/** The environment of the gateway, the credits service and the proxy for a local topology. */
export function localTopologyEnvironment(input: {
  gatewayPort: number;
  creditsPort: number;
  proxyPort?: number;
  dataFile: string;
  clientKeysFile?: string;
  gatewayToken: string;
  adminKey: string;
  proxyKey: string;
  logLevel: string;
  /**
   * Where the local /metrics listeners go: this far above each service's port, or (default) on
   * ephemeral ports the services log, so topologies side by side never collide.
   */
  metricsPortOffset?: number;
  /** The log level of the internal services (credits, gateway). Default: `logLevel`. */
  internalLogLevel?: string;
}): {
  gateway: Record<string, string>;
  credits: Record<string, string>;
  proxy: Record<string, string>;
} {
  // A local topology is stage dev, whatever STAGE the shell exports (a production stage's
  // placeholders would make the services refuse): set for both services that read it, here only.
  const stage = { STAGE: 'dev' };
  const metricsPort = (servicePort: number) =>
    input.metricsPortOffset === undefined ? 0 : servicePort + input.metricsPortOffset;
  const internalLogLevel = input.internalLogLevel ?? input.logLevel;
  return {
    proxy: {
      PROXY_PORT: String(input.proxyPort ?? 7100),
      PROXY_METRICS_PORT: String(metricsPort(input.proxyPort ?? 7100)),
      PROXY_HOST: '127.0.0.1',
      CREDITS_URL: `http://127.0.0.1:${input.creditsPort}`,
      CREDITS_PROXY_KEY: input.proxyKey,
      CLIENT_KEYS_FILE: input.clientKeysFile ?? '',
      // Settlements the proxy could not apply wait here, beside the ledger's data file.
      SETTLEMENT_FILE: join(dirname(input.dataFile), 'settlements.jsonl'),
      ...stage,
      LOG_LEVEL: input.logLevel,
    },
    gateway: {
      GATEWAY_PORT: String(input.gatewayPort),
      GATEWAY_HOST: '127.0.0.1',
      LEDGER_MODE: 'embedded',
      LEDGER_DATA_FILE: input.dataFile,
      GATEWAY_TOKEN: input.gatewayToken,
      LOG_LEVEL: internalLogLevel,
    },
    credits: {
      CREDITS_PORT: String(input.creditsPort),
      CREDITS_METRICS_PORT: String(metricsPort(input.creditsPort)),
      CREDITS_HOST: '127.0.0.1',
      GATEWAY_URL: `http://127.0.0.1:${input.gatewayPort}`,
      GATEWAY_TOKEN: input.gatewayToken,
      CREDITS_ADMIN_KEYS: input.adminKey,
      CREDITS_PROXY_KEYS: input.proxyKey,
      ...stage,
      LOG_LEVEL: internalLogLevel,
    },
  };
}
