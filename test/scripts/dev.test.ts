import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { createServer, type Server } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { accountIdForUser } from '../../lambda/credits/domain/ids';
import { devListenerOffsets, devPortBaseSpacing } from '../../scripts/dev-layout';
import { portsInUse, repoRoot } from '../../scripts/local-services';
import { openEmbeddedLedger } from '../../tigerbeetle/engine';

/**
 * `npm run dev` as a developer and their tools stop it: every way of stopping stops every service
 * (no listener left behind for the next start to trip over), and a port an earlier run still holds
 * is reported clearly before anything starts. Each run gets its own ports and data directory.
 */

const portOffsets = devListenerOffsets; // proxy, credits, gateway, and the two metrics listeners
const devStartMilliseconds = 120_000;
/** How long a stop may take before the test calls it a failure (in-flight requests drain first). */
const stopMilliseconds = 30_000;
/** Every process a run started, so a failing test still leaves nothing behind. */
const started: number[] = [];

async function freePortBase(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const base = 20_000 + Math.floor(Math.random() * 400) * 100;
    if ((await portsInUse(portOffsets.map((offset) => base + offset))).length === 0) return base;
  }
  throw new Error('no free port range found');
}

interface DevRun {
  readonly child: ChildProcess;
  readonly base: number;
  output(): string;
  /** Resolves when stdout contains `text`. */
  waitFor(text: string): Promise<void>;
  /** Resolves when the output pipe closes: npm and every process that inherited it are gone. */
  closed: Promise<number | null>;
  /** Whether the run closed within `milliseconds` (a bounded wait, so a regression fails, not hangs). */
  closesWithin(milliseconds: number): Promise<boolean>;
}

function startDev(
  base: number,
  dataDirectory: string,
  extra: { environment?: Record<string, string>; detached?: boolean } = {},
): DevRun {
  const child = spawn('npm', ['run', 'dev'], {
    cwd: repoRoot,
    env: {
      ...process.env,
      DEV_PORT_BASE: String(base),
      DEV_DATA_DIR: dataDirectory,
      LOG_LEVEL: 'WARN',
      ...extra.environment,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    // A process group of its own, as a terminal's foreground job is (Ctrl-C signals the group).
    detached: extra.detached ?? false,
  });
  let text = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  const onData = (chunk: Buffer) => {
    text += chunk.toString('utf8');
    for (const waiter of waiters.filter((entry) => text.includes(entry.text))) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const closed = new Promise<number | null>((resolve) =>
    child.once('close', (code) => resolve(code)),
  );
  return {
    child,
    base,
    output: () => text,
    waitFor: (wanted) =>
      new Promise<void>((resolve, reject) => {
        if (text.includes(wanted)) return resolve();
        waiters.push({ text: wanted, resolve });
        void closed.then(() =>
          reject(new Error(`npm run dev ended before printing '${wanted}':\n${text}`)),
        );
      }),
    closed,
    closesWithin: (milliseconds) =>
      new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), milliseconds);
        void closed.then(() => {
          clearTimeout(timer);
          resolve(true);
        });
      }),
  };
}

/** All descendants of `pid` (from ps), recorded so that afterEach can clean up after a failure. */
function recordDescendants(pid: number): void {
  const table = execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number));
  const found = [pid];
  for (let index = 0; index < found.length; index += 1) {
    for (const [child, parent] of table) if (parent === found[index]) found.push(child);
  }
  started.push(...found);
}

/** The pid of the process npm runs the script in (tsx, since the script execs it). */
function scriptProcessOf(npm: ChildProcess): number {
  const children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(npm.pid)], {
    encoding: 'utf8',
  })
    .trim()
    .split(/\s+/);
  return Number(children[0]);
}

/** The client key the first start prints once. */
function clientKeyOf(output: string): string {
  const match = /keep it:\n\n {2}(\S+)\n/.exec(output);
  if (match === null) throw new Error(`no client key in the output:\n${output}`);
  return match[1];
}

/** Words enough that the echo model (one word per chunk, delayed) is still streaming at the stop. */
const streamedPromptWords = 200;
/** The echo model's wait between words while a stop arrives mid-stream. */
const echoChunkDelayMilliseconds = 20;

/** Starts a streamed echo completion; resolves once its first chunk arrived, with the rest. */
async function streamInFlight(
  base: number,
  key: string,
): Promise<{ rest: Promise<string>; first: string }> {
  const response = await fetch(`http://127.0.0.1:${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'echo',
      stream: true,
      stream_options: { include_usage: true },
      messages: [
        {
          role: 'user',
          content: Array.from({ length: streamedPromptWords }, () => 'word').join(' '),
        },
      ],
    }),
  });
  expect(response.status).toBe(200);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const first = decoder.decode((await reader.read()).value);
  const rest = (async () => {
    let text = '';
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done) return text;
      text += decoder.decode(value);
    }
  })();
  return { rest, first };
}

describe('npm run dev: stopping and starting', () => {
  let dataDirectory: string;
  beforeEach(() => {
    dataDirectory = fs.mkdtempSync(path.join(os.tmpdir(), 'dev-test-'));
  });
  afterEach(() => {
    for (const pid of started.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone, as it should be
      }
    }
    fs.rmSync(dataDirectory, { recursive: true, force: true });
  });

  it(
    'a plain SIGTERM to npm (an IDE stop button, a supervisor) stops every service; a start on an emptied ledger tops the dev user up again',
    async () => {
      const run = startDev(await freePortBase(), dataDirectory);
      await run.waitFor('Ready:');
      recordDescendants(run.child.pid as number);
      expect(await portsInUse([run.base, run.base + 100, run.base + 200])).toHaveLength(3);
      run.child.kill('SIGTERM');
      expect(await run.closesWithin(stopMilliseconds)).toBe(true);
      for (const name of ['proxy', 'credits', 'gateway'])
        expect(run.output()).toContain(`[${name}] exited`);
      expect(await portsInUse(portOffsets.map((offset) => run.base + offset))).toEqual([]);
      // What a refused journal's message advises, moving it aside, gives an empty ledger: the next
      // start tops the dev user up again (its key, in the keys file, is kept).
      const key = clientKeyOf(run.output());
      for (const name of fs
        .readdirSync(dataDirectory)
        .filter((file) => file.startsWith('ledger.tbj')))
        fs.renameSync(path.join(dataDirectory, name), path.join(dataDirectory, `aside-${name}`));
      const again = startDev(run.base, dataDirectory);
      await again.waitFor('Ready:');
      recordDescendants(again.child.pid as number);
      expect(again.output()).toContain(
        "The ledger had no account for 'dev-user' (a new journal): topped up with 10.00 credits.",
      );
      const balance = await fetch(`http://127.0.0.1:${run.base}/v1/balance`, {
        headers: { authorization: `Bearer ${key}` },
      });
      expect(await balance.json()).toMatchObject({ available_micros: '10000000' });
      again.child.kill('SIGTERM');
      expect(await again.closesWithin(stopMilliseconds)).toBe(true);
    },
    devStartMilliseconds * 2,
  );

  it.each([
    [
      'Ctrl-C (SIGINT to the process group)',
      (run: DevRun) => process.kill(-(run.child.pid as number), 'SIGINT'),
    ],
    ['a SIGTERM to npm only', (run: DevRun) => run.child.kill('SIGTERM')],
  ])(
    'stopping with %s while a stream is in flight: the stream finishes and is billed',
    async (_name, stop) => {
      const base = await freePortBase();
      const overrides = path.join(dataDirectory, 'overrides.json');
      fs.writeFileSync(overrides, JSON.stringify({ proxy: { echoChunkDelayMilliseconds } }));
      const environment = { DEV_OVERRIDES: overrides };
      const run = startDev(base, dataDirectory, { environment, detached: true });
      await run.waitFor('Ready:');
      recordDescendants(run.child.pid as number);
      const key = clientKeyOf(run.output());
      const stream = await streamInFlight(base, key);
      stop(run);
      const text = stream.first + (await stream.rest);
      expect(await run.closesWithin(stopMilliseconds)).toBe(true);
      // Completed: the finish, the usage chunk and [DONE]; the proxy drained, not killed.
      expect(text).toContain('"finish_reason":"stop"');
      expect(text).toContain('data: [DONE]');
      const usageLine = text
        .split('\n')
        .find((line) => line.startsWith('data: {') && line.includes('"usage":{'));
      expect(usageLine).toBeDefined();
      const usage = (
        JSON.parse((usageLine as string).slice('data: '.length)) as {
          usage: { prompt_tokens: number; completion_tokens: number };
        }
      ).usage;
      expect(run.output()).not.toMatch(/\[proxy\] exited \((?!0\))/);
      expect(fs.existsSync(path.join(dataDirectory, 'settlements.jsonl'))).toBe(false);
      // Billed: the journal dev closed holds the start less exactly this charge (echo: 1 micro a
      // token), settled, no hold left (read from the data file itself, without another start).
      const ledger = openEmbeddedLedger({ dataFile: path.join(dataDirectory, 'ledger.tbj') });
      try {
        const [account] = await ledger
          .createClient()
          .lookupAccounts([accountIdForUser('dev-user')]);
        expect(account.debits_pending).toBe(0n);
        expect(account.credits_posted - account.debits_posted).toBe(
          10_000_000n - BigInt(usage.prompt_tokens + usage.completion_tokens),
        );
      } finally {
        ledger.close();
      }
    },
    devStartMilliseconds,
  );

  it(
    'a killed parent (SIGKILL, no chance to forward anything) still stops every service',
    async () => {
      const run = startDev(await freePortBase(), dataDirectory);
      await run.waitFor('Ready:');
      recordDescendants(run.child.pid as number);
      process.kill(scriptProcessOf(run.child), 'SIGKILL');
      // The output pipe closes only when dev.ts, which stops the services first, is gone.
      expect(await run.closesWithin(stopMilliseconds)).toBe(true);
      expect(run.output()).toMatch(
        /the parent process is gone \(pid \d+\); stopping every service/,
      );
      expect(await portsInUse(portOffsets.map((offset) => run.base + offset))).toEqual([]);
    },
    devStartMilliseconds,
  );

  it(
    'a killed parent of npm (the shell that ran it, SIGKILL) stops npm, dev.ts and every service',
    async () => {
      const base = await freePortBase();
      // `; true` keeps bash from exec-ing npm: bash stays npm's parent, as a terminal's shell is.
      const shell = spawn('bash', ['-c', 'npm run dev; true'], {
        cwd: repoRoot,
        env: {
          ...process.env,
          DEV_PORT_BASE: String(base),
          DEV_DATA_DIR: dataDirectory,
          LOG_LEVEL: 'WARN',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // setsid: its own session, as in the report (setsid bash -c 'npm run dev')
      });
      let text = '';
      const ready = new Promise<void>((resolve) => {
        const onData = (chunk: Buffer) => {
          text += chunk.toString('utf8');
          if (text.includes('Ready:')) resolve();
        };
        shell.stdout?.on('data', onData);
        shell.stderr?.on('data', onData);
      });
      // The pipes close only when npm, dev.ts and every service (which inherited them) are gone.
      const closed = new Promise<void>((resolve) => shell.once('close', () => resolve()));
      await ready;
      recordDescendants(shell.pid as number);
      process.kill(shell.pid as number, 'SIGKILL');
      const closedInTime = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), stopMilliseconds);
        void closed.then(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      expect(closedInTime).toBe(true);
      expect(text).toMatch(/the parent process is gone \(pid \d+\); stopping every service/);
      expect(await portsInUse(portOffsets.map((offset) => base + offset))).toEqual([]);
    },
    devStartMilliseconds,
  );

  it(
    'a port still held by an earlier run is reported before anything starts',
    async () => {
      const base = await freePortBase();
      const holder: Server = createServer();
      await new Promise<void>((resolve) => holder.listen(base + 200, '127.0.0.1', resolve));
      try {
        const run = startDev(base, dataDirectory);
        const code = await run.closed;
        expect(code).not.toBe(0);
        expect(run.output()).toContain(
          `port ${base + 200} already in use on 127.0.0.1: is an earlier npm run dev still running?`,
        );
        expect(run.output()).not.toContain('Starting the ledger gateway');
      } finally {
        await new Promise((resolve) => holder.close(resolve));
      }
    },
    devStartMilliseconds,
  );

  it.each([
    ['abc', 'DEV_PORT_BASE must be an integer from 1024 to 65335, got "abc"'],
    ['65400', 'DEV_PORT_BASE must be an integer from 1024 to 65335, got "65400"'],
  ])(
    'DEV_PORT_BASE=%s is refused, naming the variable',
    async (value, message) => {
      const run = startDev(0, dataDirectory, { environment: { DEV_PORT_BASE: value } });
      expect(await run.closed).toBe(2);
      expect(run.output()).toContain(`dev: ${message}`);
      expect(run.output()).not.toContain('options.port');
    },
    devStartMilliseconds,
  );

  it.each([
    ['{"adminKey": "', 'is not JSON'],
    ['{}', 'is not the development keys (adminKey:'],
  ])(
    'a damaged dev-secrets.json (%s) is refused, naming the file and what to do',
    async (content, problem) => {
      fs.writeFileSync(path.join(dataDirectory, 'dev-secrets.json'), content);
      const run = startDev(await freePortBase(), dataDirectory);
      expect(await run.closed).not.toBe(0);
      expect(run.output()).toContain(
        `dev: ${path.join(dataDirectory, 'dev-secrets.json')} ${problem}`,
      );
      expect(run.output()).toContain('delete it and npm run dev generates new development keys');
      expect(run.output()).not.toContain('Starting the ledger gateway');
    },
    devStartMilliseconds,
  );

  it(
    "ports held by another copy are reported as that copy's, with how far apart bases must be",
    async () => {
      const base = await freePortBase();
      // Another copy 100 above: its proxy and metrics listeners take this one's credits and gateway.
      const other = base + 100;
      const holders: Server[] = [];
      for (const offset of portOffsets) {
        const holder = createServer();
        await new Promise<void>((resolve) => holder.listen(other + offset, '127.0.0.1', resolve));
        holders.push(holder);
      }
      try {
        const run = startDev(base, dataDirectory);
        expect(await run.closed).not.toBe(0);
        expect(run.output()).toContain(
          `another npm run dev seems to run with DEV_PORT_BASE=${other}; copies side by side need ` +
            `DEV_PORT_BASE values at least ${devPortBaseSpacing} apart (this one: ${base}).`,
        );
      } finally {
        for (const holder of holders) await new Promise((resolve) => holder.close(resolve));
      }
    },
    devStartMilliseconds,
  );

  it(
    'with DEV_OVERRIDES replacing the models, the banner suggests a model the running catalogue has',
    async () => {
      const overrides = path.join(dataDirectory, 'overrides.json');
      const model = {
        id: 'llama3.2',
        provider: 'openai-compatible',
        upstreamModel: 'llama3.2:1b',
        ledgerCode: 101,
        inputMicrosPerMillionTokens: 0,
        outputMicrosPerMillionTokens: 0,
        defaultMaxOutputTokens: 512,
        outputTokensMax: 4096,
      };
      const embeddingModel = {
        id: 'nomic-embed-text',
        provider: 'openai-compatible',
        upstreamModel: 'nomic-embed-text',
        ledgerCode: 102,
        inputMicrosPerMillionTokens: 0,
        dimensions: 768,
        dimensionsConfigurable: false,
      };
      fs.writeFileSync(
        overrides,
        JSON.stringify({ models: [model], embeddingModels: [embeddingModel] }),
      );
      const run = startDev(await freePortBase(), dataDirectory, {
        // An exported STAGE is said to be ignored (the services run as stage dev whatever it is).
        environment: { DEV_OVERRIDES: overrides, STAGE: 'production' },
      });
      await run.waitFor('Ctrl-C stops everything');
      recordDescendants(run.child.pid as number);
      expect(run.output()).toContain('dev: STAGE=production from your shell is ignored');
      expect(run.output()).toContain('"model":"llama3.2"');
      expect(run.output()).toContain(
        `DEV_OVERRIDES (${overrides}) serves chat: llama3.2; embeddings: nomic-embed-text.`,
      );
      expect(run.output()).not.toContain('"model":"echo"');
      run.child.kill('SIGTERM');
      expect(await run.closesWithin(stopMilliseconds)).toBe(true);
    },
    devStartMilliseconds,
  );

  it(
    'a configuration a local service refuses is reported once, as that, naming the overrides file',
    async () => {
      const overrides = path.join(dataDirectory, 'overrides.json');
      fs.writeFileSync(overrides, '{ "models": ');
      const run = startDev(await freePortBase(), dataDirectory, {
        environment: { DEV_OVERRIDES: overrides },
      });
      expect(await run.closed).not.toBe(0);
      const problem = `overrides file '${overrides}' is not valid JSON`;
      expect(run.output().split(problem)).toHaveLength(2); // once
      expect(run.output()).toContain(
        `the local service refuses to start with this configuration (stage 'dev' with DEV_OVERRIDES=${overrides})`,
      );
      expect(run.output()).not.toContain('synthesize');
    },
    devStartMilliseconds,
  );

  it("the README says how far apart two copies' DEV_PORT_BASE values must be", () => {
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    expect(readme).toContain(`DEV_PORT_BASE\` values at least ${devPortBaseSpacing} apart`);
  });
});
