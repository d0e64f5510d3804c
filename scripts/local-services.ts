import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

/** Starting the services as separate local Node processes (for `npm run dev` and the benchmarks). */

export const repoRoot = join(__dirname, '..');
/** How long a service may take to answer its health check after start. */
export const startTimeoutMilliseconds = 30_000;

export interface LocalService {
  readonly name: string;
  readonly process: ChildProcess;
}

/** Runs `entry` with tsx; its output lines are prefixed with the service name unless `quiet`. */
export function startLocalService(name: string, entry: string, environment: Record<string, string>, options: { quiet?: boolean } = {}): LocalService {
  const child = spawn(process.execPath, [join(repoRoot, 'node_modules', 'tsx', 'dist', 'cli.mjs'), entry], {
    cwd: repoRoot,
    env: { ...process.env, ...environment },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      if (options.quiet) return;
      for (const line of chunk.split('\n').filter((text) => text !== '')) console.log(`[${name}] ${line}`);
    });
  }
  return { name, process: child };
}

export async function waitUntilHealthy(name: string, url: string): Promise<void> {
  const deadline = Date.now() + startTimeoutMilliseconds;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${name} did not become healthy at ${url} within ${startTimeoutMilliseconds / 1000} s`);
}

/** SIGTERM to every service; resolves when all have exited. */
export function stopLocalServices(services: readonly LocalService[]): Promise<void> {
  return Promise.all(
    services.map(
      (service) =>
        new Promise<void>((resolve) => {
          if (service.process.exitCode !== null || service.process.signalCode !== null) return resolve();
          service.process.once('exit', () => resolve());
          service.process.kill('SIGTERM');
        }),
    ),
  ).then(() => undefined);
}

/** The local /metrics listener (127.0.0.1) of a service sits this far above its port, so topologies side by side do not collide. */
const metricsPortOffset = 90;

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
}): { gateway: Record<string, string>; credits: Record<string, string>; proxy: Record<string, string> } {
  return {
    proxy: {
      PROXY_PORT: String(input.proxyPort ?? 7100),
      PROXY_METRICS_PORT: String((input.proxyPort ?? 7100) + metricsPortOffset),
      PROXY_HOST: '127.0.0.1',
      CREDITS_URL: `http://127.0.0.1:${input.creditsPort}`,
      CREDITS_PROXY_KEY: input.proxyKey,
      CLIENT_KEYS_FILE: input.clientKeysFile ?? '',
      STAGE: 'dev',
      LOG_LEVEL: input.logLevel,
    },
    gateway: {
      GATEWAY_PORT: String(input.gatewayPort),
      GATEWAY_HOST: '127.0.0.1',
      LEDGER_MODE: 'embedded',
      LEDGER_DATA_FILE: input.dataFile,
      GATEWAY_TOKEN: input.gatewayToken,
      LOG_LEVEL: input.logLevel,
    },
    credits: {
      CREDITS_PORT: String(input.creditsPort),
      CREDITS_METRICS_PORT: String(input.creditsPort + metricsPortOffset),
      CREDITS_HOST: '127.0.0.1',
      GATEWAY_URL: `http://127.0.0.1:${input.gatewayPort}`,
      GATEWAY_TOKEN: input.gatewayToken,
      CREDITS_ADMIN_KEYS: input.adminKey,
      CREDITS_PROXY_KEYS: input.proxyKey,
      LOG_LEVEL: input.logLevel,
    },
  };
}
