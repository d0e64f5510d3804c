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
/** Bound on seeing the reaction to SIGTERM: the process is running and only has to log a line. */
const stopMillisecondsMax = 5_000;

interface Spawned {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

interface Running extends Spawned {
  readonly baseUrl: string;
}

function spawnGateway(environment: Record<string, string>): Spawned {
  const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), serverPath], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...environment },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited: Spawned['exited'] = new Promise((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

async function startGateway(environment: Record<string, string>): Promise<Running> {
  const process_ = spawnGateway({
    GATEWAY_TOKEN: currentToken,
    LEDGER_MODE: 'embedded',
    GATEWAY_PORT: '0',
    ...environment,
  });
  try {
    const ready = await logLine(process_, 'ledger gateway ready', startupMillisecondsMax);
    return { ...process_, baseUrl: String(ready.address) };
  } catch (error) {
    process_.child.kill('SIGKILL');
    throw new Error(
      `the gateway did not start: ${error instanceof Error ? error.message : String(error)}: ${process_.stderr()}`,
    );
  }
}

/** The complete JSON log lines written so far (a line still being written is left out). */
function logLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .slice(0, -1)
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/**
 * Settles when the process has logged a line with this message (checked on every stdout chunk);
 * fails when it exits first, or after `deadlineMilliseconds` (a bound, not a wait).
 */
function logLine(
  process_: Spawned,
  message: string,
  deadlineMilliseconds: number,
): Promise<Record<string, unknown>> {
  const stdout = process_.child.stdout;
  if (!stdout) return Promise.reject(new Error('no stdout'));
  return new Promise((resolve, reject) => {
    const check = () => {
      const line = logLines(process_.stdout()).find((candidate) => candidate.message === message);
      if (line) finish(() => resolve(line));
    };
    const onExit = () => finish(() => reject(new Error(`exited before logging "${message}"`)));
    const deadline = setTimeout(
      () => finish(() => reject(new Error(`no "${message}" within ${deadlineMilliseconds} ms`))),
      deadlineMilliseconds,
    );
    const finish = (settle: () => void) => {
      clearTimeout(deadline);
      stdout.off('data', check);
      process_.child.off('exit', onExit);
      settle();
    };
    // Registered after spawnGateway's own listener, so the accumulated stdout includes each chunk.
    stdout.on('data', check);
    process_.child.once('exit', onExit);
    check();
    if (process_.child.exitCode !== null) onExit();
  });
}

/**
 * A request whose body arrives in two parts, the second only when `finish` is called. It asks for
 * 100-continue, so `accepted` settles when the server has read its headers: from then on the
 * request is in flight on the server (a drain must wait for it), with no guess at how long that takes.
 */
function slowRequest(
  baseUrl: string,
  body: string,
): {
  accepted: Promise<void>;
  finish: () => void;
  response: Promise<{ status: number; body: string }>;
} {
  const url = new URL('/v1/create_accounts', baseUrl);
  const split = Math.floor(body.length / 2);
  let finish = () => {};
  let accept = () => {};
  const accepted = new Promise<void>((resolve) => (accept = resolve));
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const request = httpRequest(url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${currentToken}`,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        expect: '100-continue',
      },
    });
    request.on('continue', () => {
      request.write(body.slice(0, split));
      accept();
    });
    request.on('response', (answer) => {
      let text = '';
      answer.on('data', (chunk: Buffer) => (text += chunk.toString()));
      answer.on('end', () => resolve({ status: answer.statusCode ?? 0, body: text }));
    });
    request.on('error', reject);
    request.flushHeaders();
    finish = () => request.end(body.slice(split));
  });
  return { accepted, finish: () => finish(), response };
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
      const ready = logLines(gateway.stdout()).find(
        (line) => line.message === 'ledger gateway ready',
      );
      expect(ready).toMatchObject({
        ledger: `embedded ledger (journal ${dataFile}; started from 0 bytes of journal, no snapshot)`,
        address: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      });
      expect((await fetch(`${gateway.baseUrl}/health`)).status).toBe(200);
      const client = createGatewayClient({
        baseUrl: gateway.baseUrl,
        token: () => currentToken,
        requestTimeoutMilliseconds: 5_000,
      });
      expect((await client.createAccounts([account(1n)]))[0].status).toBe(
        CreateAccountStatus.created,
      );

      const slow = slowRequest(
        gateway.baseUrl,
        JSON.stringify({ accounts: [toWire(account(2n)), toWire(account(3n))] }),
      );
      await slow.accepted;
      gateway.child.kill('SIGTERM');
      await logLine(gateway, 'ledger gateway stopping', stopMillisecondsMax); // logged just before it stops listening
      expect(gateway.child.exitCode).toBeNull(); // still draining
      await expect(client.lookupAccounts([1n])).rejects.toBeInstanceOf(LedgerUnavailableError); // no new connections
      slow.finish();
      const answer = await slow.response;
      expect(answer.status).toBe(200);
      expect(
        JSON.parse(answer.body).results.map((result: { status: number }) => result.status),
      ).toEqual([CreateAccountStatus.created, CreateAccountStatus.created]);
      expect(await gateway.exited).toEqual({ code: 0, signal: null });
      const messages = logLines(gateway.stdout()).map((line) => line.message);
      expect(messages).toEqual(
        expect.arrayContaining(['ledger gateway stopping', 'ledger gateway stopped']),
      );
      expect(
        logLines(gateway.stdout()).find((line) => line.message === 'ledger gateway stopped'),
      ).toMatchObject({ drained: true });
    } finally {
      gateway.child.kill('SIGKILL');
    }

    // The data file was closed cleanly: a new process finds every account, the drained one included.
    const again = await startGateway({ LEDGER_DATA_FILE: dataFile });
    try {
      const client = createGatewayClient({
        baseUrl: again.baseUrl,
        token: () => currentToken,
        requestTimeoutMilliseconds: 5_000,
      });
      expect((await client.lookupAccounts([1n, 2n, 3n])).map((found) => found.id)).toEqual([
        1n,
        2n,
        3n,
      ]);
      again.child.kill('SIGINT');
      expect(await again.exited).toEqual({ code: 0, signal: null });
    } finally {
      again.child.kill('SIGKILL');
    }
  });

  it('refuses to start without a token, listing every problem, and exits non-zero (AUTH-08)', async () => {
    const gateway = spawnGateway({
      LEDGER_MODE: 'cluster',
      TB_ADDRESSES: '10.0.0.1:3000,db.internal:3000',
      GATEWAY_PORT: '70000',
    });
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
