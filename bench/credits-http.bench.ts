/**
 * Credits requests per second over HTTP on loopback, in the deployed topology: autocannon ->
 * credits (Node process) -> gateway (Node process) -> embedded engine with its journal (fsync).
 * Not a test: it prints requests per second and latency. Each scenario runs `scenarioSeconds`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { generateApiKey } from '../runtime/keys';
import {
  checkPortsFree,
  localTopologyEnvironment,
  startLocalService,
  stopLocalServices,
  waitUntilHealthy,
  type LocalService,
} from '../scripts/local-services';

const scenarioSeconds = 8;
const connections = 32;
const ports = { gateway: 7310, credits: 7210 };

interface Scenario {
  readonly name: string;
  readonly request: autocannon.Request;
}

async function runScenario(url: string, scenario: Scenario): Promise<void> {
  const result = await autocannon({
    url,
    connections,
    duration: scenarioSeconds,
    requests: [scenario.request],
  });
  const ok = result.requests.total - result.non2xx;
  console.log(
    `${scenario.name.padEnd(28)} ${result.requests.average.toFixed(0).padStart(7)} req/s   p50 ${result.latency.p50} ms   p99 ${result.latency.p99} ms   ` +
      `ok ${ok}   non-2xx ${result.non2xx}   errors ${result.errors}`,
  );
}

async function main(): Promise<void> {
  await checkPortsFree(
    [ports.gateway, ports.credits],
    'is another benchmark running, or a service on these ports?',
  );
  const directory = mkdtempSync(join(tmpdir(), 'credits-bench-'));
  const keys = {
    gatewayToken: generateApiKey(),
    adminKey: generateApiKey(),
    proxyKey: generateApiKey(),
  };
  const environment = localTopologyEnvironment({
    ...ports,
    gatewayPort: ports.gateway,
    creditsPort: ports.credits,
    dataFile: join(directory, 'ledger.tbj'),
    ...keys,
    logLevel: 'WARN',
  });
  const services: LocalService[] = [];
  try {
    const gateway = startLocalService(
      'gateway',
      'tigerbeetle/gateway/server.ts',
      environment.gateway,
      { quiet: true },
    );
    services.push(gateway);
    await waitUntilHealthy('gateway', `http://127.0.0.1:${ports.gateway}/ready`, gateway);
    const creditsService = startLocalService(
      'credits',
      'lambda/credits/server.ts',
      environment.credits,
      { quiet: true },
    );
    services.push(creditsService);
    const credits = `http://127.0.0.1:${ports.credits}`;
    await waitUntilHealthy('credits', `${credits}/api/v1/ready`, creditsService);

    const topUp = await fetch(`${credits}/api/v1/topup`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${keys.adminKey}`,
        'content-type': 'application/json',
        'idempotency-key': 'bench-topup-0001',
      },
      body: JSON.stringify({ user_id: 'bench-user', amount: '1000000.00' }),
    });
    if (topUp.status !== 201) throw new Error(`top-up failed: ${topUp.status}`);

    console.log(
      `credits over HTTP: ${connections} connections, ${scenarioSeconds} s per scenario, journal with fsync`,
    );
    await runScenario(credits, {
      name: 'GET balance',
      request: {
        method: 'GET',
        path: '/api/v1/balance/bench-user',
        headers: { authorization: `Bearer ${keys.proxyKey}` },
      },
    });
    let holdCounter = 0;
    await runScenario(credits, {
      name: 'POST hold (0.01, unique key)',
      request: {
        method: 'POST',
        path: '/api/v1/holds',
        headers: { authorization: `Bearer ${keys.proxyKey}`, 'content-type': 'application/json' },
        setupRequest: (request) => {
          holdCounter += 1;
          return {
            ...request,
            body: JSON.stringify({
              user_id: 'bench-user',
              amount: '0.01',
              timeout_seconds: 60,
              request_id: `bench-hold-${holdCounter}`,
            }),
          };
        },
      },
    });
  } finally {
    await stopLocalServices(services);
    rmSync(directory, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`bench: ${(error as Error).message}`);
  process.exit(1);
});
