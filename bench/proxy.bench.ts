/**
 * What billing adds to a request, measured against the upstream stand-in called directly. For each
 * ledger mode (embedded engine in memory, then with its fsync'd journal) a child process runs the
 * system (`proxy-stack.ts`); this process is the load generator (node:http, keep-alive). Three
 * scenarios, direct / proxy billed / proxy billed without rate limiting, at 1 and 32 connections,
 * interleaved round by round and repeated; per scenario the median over rounds of p50 and p99, and
 * the child's CPU per request. Printed as what the proxy adds to direct and as ratios, plus the
 * round trips per billed request counted by the credits service and the gateway. Bounded: every
 * run sends a fixed number of requests and stops after `runSecondsMax`. Not a test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const rounds = 3;
const requestsPerRun = { 1: 300, 32: 1_600 } as const;
const warmupRequests = 200;
const runSecondsMax = 20;
const connectionCounts = [1, 32] as const;
const repoRoot = join(__dirname, '..');

interface Stack {
  readonly control: string;
  readonly direct: string;
  readonly billed: string;
  readonly billedNoRateLimit: string;
  readonly clientKey: string;
}
interface Stats {
  readonly cpuMicroseconds: number;
  readonly creditsRequests: number;
  readonly gatewayRequests: number;
}
type ScenarioName = 'direct' | 'billed' | 'billedNoRateLimit';
interface RunResult {
  readonly p50: number;
  readonly p99: number;
  readonly cpuMillisecondsPerRequest: number;
  readonly creditsPerRequest: number;
  readonly gatewayPerRequest: number;
  readonly failures: number;
}

const scenarios: readonly ScenarioName[] = ['direct', 'billed', 'billedNoRateLimit'];
const labels: Record<ScenarioName, string> = {
  direct: 'direct',
  billed: 'proxy billed',
  billedNoRateLimit: 'proxy billed, no rate limit',
};

function startStack(
  ledgerFile: string | undefined,
): Promise<{ stack: Stack; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(__dirname, 'proxy-stack.ts')],
    {
      cwd: repoRoot,
      env: { ...process.env, BENCH_LEDGER_FILE: ledgerFile ?? '' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => resolve({ stack: JSON.parse(line) as Stack, child }));
    child.once('exit', (code) => reject(new Error(`the bench stack exited with ${code}`)));
  });
}

function stopStack(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

async function stats(stack: Stack): Promise<Stats> {
  return (await (await fetch(`${stack.control}/stats`)).json()) as Stats;
}

const chatBody = JSON.stringify({
  model: 'bench',
  messages: [{ role: 'user', content: 'Say something short.' }],
  max_tokens: 16,
});
const directBody = JSON.stringify({
  model: 'bench-model',
  messages: [{ role: 'user', content: 'Say something short.' }],
  max_tokens: 16,
});

function send(
  agent: Agent,
  url: URL,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; milliseconds: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      url,
      { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } },
      (response) => {
        response.resume();
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, milliseconds: performance.now() - started }),
        );
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/** `total` requests over `connections` keep-alive connections; latencies in milliseconds, sorted. */
async function load(
  target: string,
  stack: Stack,
  scenario: ScenarioName,
  connections: number,
  total: number,
): Promise<{ latencies: number[]; failures: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const url = new URL(target);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (scenario !== 'direct') headers.authorization = `Bearer ${stack.clientKey}`;
  const body = scenario === 'direct' ? directBody : chatBody;
  const latencies: number[] = [];
  let failures = 0;
  let sent = 0;
  const deadline = Date.now() + runSecondsMax * 1000;
  const worker = async () => {
    while (sent < total && Date.now() < deadline) {
      sent += 1;
      const { status, milliseconds } = await send(agent, url, headers, body);
      if (status === 200) latencies.push(milliseconds);
      else failures += 1;
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  agent.destroy();
  return { latencies: latencies.sort((a, b) => a - b), failures };
}

function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))];
}

async function run(stack: Stack, scenario: ScenarioName, connections: 1 | 32): Promise<RunResult> {
  const target = stack[scenario];
  const before = await stats(stack);
  const { latencies, failures } = await load(
    target,
    stack,
    scenario,
    connections,
    requestsPerRun[connections],
  );
  const after = await stats(stack);
  const requests = latencies.length + failures;
  return {
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    cpuMillisecondsPerRequest: (after.cpuMicroseconds - before.cpuMicroseconds) / 1000 / requests,
    // The stats request itself is not counted: it goes to the control listener.
    creditsPerRequest: (after.creditsRequests - before.creditsRequests) / requests,
    gatewayPerRequest: (after.gatewayRequests - before.gatewayRequests) / requests,
    failures,
  };
}

const median = (values: number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

function summarize(results: RunResult[]): RunResult {
  return {
    p50: median(results.map((result) => result.p50)),
    p99: median(results.map((result) => result.p99)),
    cpuMillisecondsPerRequest: median(results.map((result) => result.cpuMillisecondsPerRequest)),
    creditsPerRequest: median(results.map((result) => result.creditsPerRequest)),
    gatewayPerRequest: median(results.map((result) => result.gatewayPerRequest)),
    failures: results.reduce((sum, result) => sum + result.failures, 0),
  };
}

async function measureMode(
  mode: string,
  ledgerFile: string | undefined,
): Promise<Map<string, RunResult>> {
  const { stack, child } = await startStack(ledgerFile);
  const summary = new Map<string, RunResult>();
  try {
    for (const scenario of scenarios)
      await load(stack[scenario], stack, scenario, 8, warmupRequests);
    for (const connections of connectionCounts) {
      const results = new Map<ScenarioName, RunResult[]>(
        scenarios.map((scenario) => [scenario, []]),
      );
      for (let round = 0; round < rounds; round += 1) {
        for (const scenario of scenarios)
          results.get(scenario)!.push(await run(stack, scenario, connections));
      }
      for (const scenario of scenarios)
        summary.set(`${scenario}@${connections}`, summarize(results.get(scenario)!));
      printTable(mode, connections, summary);
    }
  } finally {
    await stopStack(child);
  }
  return summary;
}

const fixed = (value: number, digits = 2) => value.toFixed(digits).padStart(7);

function printTable(mode: string, connections: number, summary: Map<string, RunResult>): void {
  const direct = summary.get(`direct@${connections}`)!;
  console.log(
    `\n${mode}, ${connections} connection${connections > 1 ? 's' : ''} (median of ${rounds} interleaved rounds):`,
  );
  console.log(
    'scenario                      p50 ms  p99 ms  added p50  added p99  p50/direct  CPU ms/req  added CPU  credits/req  gateway/req  failures',
  );
  for (const scenario of scenarios) {
    const result = summary.get(`${scenario}@${connections}`)!;
    console.log(
      `${labels[scenario].padEnd(28)} ${fixed(result.p50)} ${fixed(result.p99)} ${fixed(result.p50 - direct.p50, 2).padStart(10)} ${fixed(result.p99 - direct.p99, 2).padStart(10)} ` +
        `${fixed(result.p50 / direct.p50, 1).padStart(11)} ${fixed(result.cpuMillisecondsPerRequest, 3).padStart(11)} ${fixed(result.cpuMillisecondsPerRequest - direct.cpuMillisecondsPerRequest, 3).padStart(10)} ` +
        `${fixed(result.creditsPerRequest, 2).padStart(12)} ${fixed(result.gatewayPerRequest, 2).padStart(12)} ${String(result.failures).padStart(9)}`,
    );
  }
}

async function main(): Promise<void> {
  const memory = await measureMode('engine in memory', undefined);
  const directory = mkdtempSync(join(tmpdir(), 'proxy-bench-'));
  try {
    const journal = await measureMode(
      'engine with its journal (fsync per batch)',
      join(directory, 'ledger.tbj'),
    );
    console.log("\nthe journal's fsync cost on its own (billed, journal minus memory):");
    for (const connections of connectionCounts) {
      const inMemory = memory.get(`billed@${connections}`)!;
      const withJournal = journal.get(`billed@${connections}`)!;
      console.log(
        `  ${connections} connection(s): p50 +${(withJournal.p50 - inMemory.p50).toFixed(2)} ms, p99 +${(withJournal.p99 - inMemory.p99).toFixed(2)} ms, CPU +${(withJournal.cpuMillisecondsPerRequest - inMemory.cpuMillisecondsPerRequest).toFixed(3)} ms/req`,
      );
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
  const sequential = memory.get('billed@1')!;
  const direct = memory.get('direct@1')!;
  console.log(
    `\ngoals (engine in memory, 1 connection): added p50 ${(sequential.p50 - direct.p50).toFixed(2)} ms (goal <= 4), CPU ${sequential.cpuMillisecondsPerRequest.toFixed(2)} ms per billed request (goal <= 5), round trips ${sequential.creditsPerRequest.toFixed(2)} proxy->credits (goal 2), ${sequential.gatewayPerRequest.toFixed(2)} credits->gateway (goal 2)`,
  );
}

main().catch((error: unknown) => {
  console.error(`bench: ${(error as Error).stack}`);
  process.exit(1);
});
