/**
 * Streaming through the proxy: time to first token (TTFT) through the proxy against the same
 * stand-in provider called directly, and the latency the proxy adds to each chunk. Not a test: it
 * prints a table. The proxy runs in a Node server (as in `npm run dev`) with real billing (a credits
 * service over loopback on the embedded engine, in memory) and rate limiting on; the stand-in
 * streams `chunkCount` chunks `chunkIntervalMilliseconds` apart and stamps when it wrote each one.
 *
 * The goal (issue 9): the TTFT the proxy adds is at most `addedTtftGoalMilliseconds` above the
 * admission cost of the non-streaming billed path (auth, rate limit, hold: the time from the
 * client's request to the provider seeing it, through the proxy minus directly).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProxyApp } from '../lambda/proxy/app';
import { staticClientKeySource } from '../lambda/proxy/client-key-source';
import { createProviders } from '../lambda/proxy/providers';
import { clientKeySetVersion } from '../lambda/shared/client-keys';
import { generateApiKey, hashKey } from '../runtime/keys';
import { startServer } from '../runtime/node-server';
import { startProxyFixture } from '../test/support/proxy';

const rounds = 40;
const chunkCount = 20;
const chunkIntervalMilliseconds = 2;
const addedTtftGoalMilliseconds = 5;

interface StandIn {
  readonly url: string;
  /** When the last request arrived, and when each chunk of the last stream was written (performance.now()). */
  arrivedAt: number;
  sentAt: number[];
  close(): void;
}

const chunk = (content: string, extra: Record<string, unknown> = {}) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1, model: 'bench', choices: content === '' ? [] : [{ index: 0, delta: { content }, finish_reason: null }], ...extra })}\n\n`;

async function startStandIn(): Promise<StandIn> {
  const state = { arrivedAt: 0, sentAt: [] as number[] };
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const body: Buffer[] = [];
    request.on('data', (part: Buffer) => body.push(part));
    request.on('end', () => {
      state.arrivedAt = performance.now();
      const stream =
        (JSON.parse(Buffer.concat(body).toString('utf8')) as { stream?: boolean }).stream === true;
      if (!stream) {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(
          JSON.stringify({
            choices: [
              { index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' },
            ],
            usage: { prompt_tokens: 5, completion_tokens: 1 },
          }),
        );
        return;
      }
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      state.sentAt = [];
      let index = 0;
      const next = () => {
        state.sentAt.push(performance.now());
        response.write(chunk(`c${index} `));
        index += 1;
        if (index < chunkCount) return void setTimeout(next, chunkIntervalMilliseconds);
        response.write(
          `data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`,
        );
        response.write(chunk('', { usage: { prompt_tokens: 5, completion_tokens: chunkCount } }));
        response.end('data: [DONE]\n\n');
      };
      next();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get arrivedAt() {
      return state.arrivedAt;
    },
    get sentAt() {
      return state.sentAt;
    },
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  } as StandIn;
}

/** Reads a stream: when each chunk `c<i>` arrived, and the time to the first. */
async function timeStream(url: string, headers: Record<string, string>, standIn: StandIn) {
  const started = performance.now();
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({
      model: 'bench',
      messages: [{ role: 'user', content: 'go' }],
      stream: true,
    }),
  });
  if (response.status !== 200) throw new Error(`stream answered ${response.status}`);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const receivedAt: number[] = [];
  let text = '';
  for (let part = await reader.read(); !part.done; part = await reader.read()) {
    text += decoder.decode(part.value, { stream: true });
    const now = performance.now();
    while (text.includes(`"c${receivedAt.length} "`)) receivedAt.push(now);
  }
  if (receivedAt.length !== chunkCount)
    throw new Error(`got ${receivedAt.length} of ${chunkCount} chunks`);
  const perChunk = receivedAt.map((at, index) => at - standIn.sentAt[index]);
  return { ttft: receivedAt[0] - started, perChunkMedian: median(perChunk) };
}

/** A non-streamed request: how long until the provider saw it (the admission cost on the proxy's path). */
async function timeAdmission(
  url: string,
  headers: Record<string, string>,
  standIn: StandIn,
): Promise<number> {
  const started = performance.now();
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'go' }] }),
  });
  if (response.status !== 200) throw new Error(`answered ${response.status}`);
  await response.arrayBuffer();
  return standIn.arrivedAt - started;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))];
}

async function main(): Promise<void> {
  const standIn = await startStandIn();
  const fixture = await startProxyFixture({
    models: [
      {
        id: 'bench',
        provider: 'openai-compatible',
        upstreamModel: 'bench',
        inputMicrosPerMillionTokens: 1,
        outputMicrosPerMillionTokens: 1,
        defaultMaxOutputTokens: 100,
        outputTokensMax: 100,
        ledgerCode: 1,
      },
    ],
    rateLimit: { enabled: true, requestsPerMinute: 100_000 },
  });
  await fixture.topUp('bench-user', '100.00');
  const clientKey = generateApiKey();
  const keys = staticClientKeySource({
    version: clientKeySetVersion,
    keys: [
      {
        id: 'key_bench0001',
        user_id: 'bench-user',
        sha256: hashKey(clientKey).toString('hex'),
        created_at: '2026-01-01T00:00:00Z',
        expires_at: '2099-01-01T00:00:00Z',
        disabled: false,
      },
    ],
  });
  const providers = createProviders(async () => ({
    openaiCompatible: { apiKey: 'bench-provider-key-0123456789', baseUrl: standIn.url },
  }));
  const app = createProxyApp({
    keys,
    credits: fixture.credits,
    providers,
    config: fixture.config,
    logger: fixture.logger,
    metrics: fixture.metrics,
  });
  const proxy = await startServer({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
  const direct = `${standIn.url}/chat/completions`;
  const through = `${proxy.url}/v1/chat/completions`;
  const auth = { authorization: `Bearer ${clientKey}` };
  const samples = {
    directTtft: [] as number[],
    proxyTtft: [] as number[],
    directChunk: [] as number[],
    proxyChunk: [] as number[],
    directAdmission: [] as number[],
    proxyAdmission: [] as number[],
  };
  try {
    // Warm up every path once, then interleave the scenarios so drift hits them alike.
    await timeStream(direct, {}, standIn);
    await timeStream(through, auth, standIn);
    await timeAdmission(through, auth, standIn);
    for (let round = 0; round < rounds; round += 1) {
      const directStream = await timeStream(direct, {}, standIn);
      const proxyStream = await timeStream(through, auth, standIn);
      samples.directTtft.push(directStream.ttft);
      samples.proxyTtft.push(proxyStream.ttft);
      samples.directChunk.push(directStream.perChunkMedian);
      samples.proxyChunk.push(proxyStream.perChunkMedian);
      samples.directAdmission.push(await timeAdmission(direct, {}, standIn));
      samples.proxyAdmission.push(await timeAdmission(through, auth, standIn));
    }
  } finally {
    await proxy.close();
    standIn.close();
    await fixture.close();
  }
  const row = (name: string, directValues: number[], proxyValues: number[]) => ({
    measure: name,
    'direct p50 ms': median(directValues).toFixed(2),
    'proxy p50 ms': median(proxyValues).toFixed(2),
    'added p50 ms': (median(proxyValues) - median(directValues)).toFixed(2),
    'proxy p90 ms': percentile(proxyValues, 0.9).toFixed(2),
  });
  console.log(
    `streaming through the proxy (billing and rate limiting on, engine in memory): ${rounds} rounds, ${chunkCount} chunks ${chunkIntervalMilliseconds} ms apart`,
  );
  console.table([
    row('time to first token', samples.directTtft, samples.proxyTtft),
    row('latency per chunk', samples.directChunk, samples.proxyChunk),
    row('admission (non-streaming, billed)', samples.directAdmission, samples.proxyAdmission),
  ]);
  const addedTtft = median(samples.proxyTtft) - median(samples.directTtft);
  const admission = median(samples.proxyAdmission) - median(samples.directAdmission);
  const overAdmission = addedTtft - admission;
  console.log(
    `added TTFT ${addedTtft.toFixed(2)} ms = admission ${admission.toFixed(2)} ms + ${overAdmission.toFixed(2)} ms of streaming ` +
      `(goal: at most ${addedTtftGoalMilliseconds} ms over admission: ${overAdmission <= addedTtftGoalMilliseconds ? 'met' : 'NOT met'})`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
