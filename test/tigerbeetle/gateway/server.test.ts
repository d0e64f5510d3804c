import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateAccountStatus } from 'tigerbeetle-node';
import { LedgerUnavailableError } from '../../../tigerbeetle/ledger';
import { createGatewayClient } from '../../../tigerbeetle/gateway/client';
import { toWire } from '../../../tigerbeetle/gateway/protocol';
import { account } from '../engine/fixtures';
import { currentToken } from './support';

/** server.ts as a real process: configuration from the environment, start-up, requests, SIGTERM. */

const serverPath = join(__dirname, '../../../tigerbeetle/gateway/server.ts');
const startupMillisecondsMax = 15_000;

interface Running {
  readonly child: ChildProcess;
  readonly baseUrl: string;
  readonly stdout: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnGateway(environment: Record<string, string>): { child: ChildProcess; stdout: () => string; stderr: () => string; exited: Running['exited'] } {
  const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), serverPath], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...environment },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

async function startGateway(environment: Record<string, string>): Promise<Running> {
  const process_ = spawnGateway({ GATEWAY_TOKEN: currentToken, LEDGER_MODE: 'embedded', GATEWAY_PORT: '0', ...environment });
  const deadline = Date.now() + startupMillisecondsMax;
  while (Date.now() < deadline) {
    const ready = logLines(process_.stdout()).find((line) => line.message === 'ledger gateway ready');
    if (ready) return { ...process_, baseUrl: String(ready.address) };
    if (process_.child.exitCode !== null) break;
    await sleep(25);
  }
  process_.child.kill('SIGKILL');
  throw new Error(`the gateway did not start: ${process_.stderr()}`);
}

function logLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

const sleep = (milliseconds: number) => new Promise((resolve) => setTimeout(resolve, milliseconds));

/** A request whose body arrives in two parts, the second only when `finish` is called. */
function slowRequest(baseUrl: string, body: string): { finish: () => void; response: Promise<{ status: number; body: string }> } {
  const url = new URL('/v1/create_accounts', baseUrl);
  const split = Math.floor(body.length / 2);
  let finish = () => {};
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const request = httpRequest(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${currentToken}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    request.on('response', (answer) => {
      let text = '';
      answer.on('data', (chunk: Buffer) => (text += chunk.toString()));
      answer.on('end', () => resolve({ status: answer.statusCode ?? 0, body: text }));
    });
    request.on('error', reject);
    request.write(body.slice(0, split));
    finish = () => request.end(body.slice(split));
  });
  return { finish: () => finish(), response };
}

let directory: string;
beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), 'ledger-gateway-'));
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

describe('ledger gateway process', () => {
  it('serves, drains a slow in-flight request on SIGTERM, closes its data file and exits 0', async () => {
    const dataFile = join(directory, 'ledger.journal');
    const gateway = await startGateway({ LEDGER_DATA_FILE: dataFile });
    try {
      const ready = logLines(gateway.stdout()).find((line) => line.message === 'ledger gateway ready');
      expect(ready).toMatchObject({ ledger: `embedded ledger (journal ${dataFile})`, address: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) });
      expect((await fetch(`${gateway.baseUrl}/health`)).status).toBe(200);
      const client = createGatewayClient({ baseUrl: gateway.baseUrl, token: () => currentToken, requestTimeoutMilliseconds: 5_000 });
      expect((await client.createAccounts([account(1n)]))[0].status).toBe(CreateAccountStatus.created);

      const slow = slowRequest(gateway.baseUrl, JSON.stringify({ accounts: [toWire(account(2n)), toWire(account(3n))] }));
      await sleep(150);
      gateway.child.kill('SIGTERM');
      await sleep(300);
      expect(gateway.child.exitCode).toBeNull(); // still draining
      await expect(client.lookupAccounts([1n])).rejects.toBeInstanceOf(LedgerUnavailableError); // no new connections
      slow.finish();
      const answer = await slow.response;
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body).results.map((result: { status: number }) => result.status)).toEqual([CreateAccountStatus.created, CreateAccountStatus.created]);
      expect(await gateway.exited).toEqual({ code: 0, signal: null });
      const messages = logLines(gateway.stdout()).map((line) => line.message);
      expect(messages).toEqual(expect.arrayContaining(['ledger gateway stopping', 'ledger gateway stopped']));
      expect(logLines(gateway.stdout()).find((line) => line.message === 'ledger gateway stopped')).toMatchObject({ drained: true });
    } finally {
      gateway.child.kill('SIGKILL');
    }

    // The data file was closed cleanly: a new process finds every account, the drained one included.
    const again = await startGateway({ LEDGER_DATA_FILE: dataFile });
    try {
      const client = createGatewayClient({ baseUrl: again.baseUrl, token: () => currentToken, requestTimeoutMilliseconds: 5_000 });
      expect((await client.lookupAccounts([1n, 2n, 3n])).map((found) => found.id)).toEqual([1n, 2n, 3n]);
      again.child.kill('SIGINT');
      expect(await again.exited).toEqual({ code: 0, signal: null });
    } finally {
      again.child.kill('SIGKILL');
    }
  });

  it('refuses to start without a token, listing every problem, and exits non-zero (AUTH-08)', async () => {
    const gateway = spawnGateway({ LEDGER_MODE: 'cluster', TB_ADDRESSES: '10.0.0.1:3000,db.internal:3000', GATEWAY_PORT: '70000' });
    const { code } = await gateway.exited;
    expect(code).toBe(1);
    const message = gateway.stderr();
    expect(message).toContain('ledger gateway: refusing to start');
    expect(message).toContain('no gateway token: set GATEWAY_TOKEN_SECRET_ARN');
    expect(message).toContain('GATEWAY_PORT must be an integer from 0 to 65535');
    expect(message).toContain('TB_CLUSTER_ID is required');
    expect(message).toContain('"db.internal:3000"');
    expect(gateway.stdout()).not.toContain('ready');
  });
});
