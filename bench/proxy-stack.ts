/**
 * The proxy benchmark's system under test, in one child process of `proxy.bench.ts`: a fast
 * OpenAI-compatible upstream stand-in, the ledger gateway over the embedded engine (in memory, or
 * with its journal when BENCH_LEDGER_FILE is set), the credits service, and two proxies (rate
 * limiting on and off), each a real HTTP server on 127.0.0.1. A control listener answers
 * GET /stats with this process's CPU time and the requests each internal hop received, so the
 * parent measures CPU per request and round trips per billed request from counters.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCreditsApp, type CreditsPrincipal } from '../lambda/credits/app';
import { creditsKeyEntries } from '../lambda/credits/keys';
import { createProxyApp } from '../lambda/proxy/app';
import { staticClientKeySource } from '../lambda/proxy/client-key-source';
import { proxyConfigDefaults, type ProxyConfig } from '../lambda/proxy/config';
import { createCreditsClient } from '../lambda/proxy/credits-client';
import { createProviders } from '../lambda/proxy/providers';
import { clientKeySetVersion } from '../lambda/shared/client-keys';
import { createKeyring, generateApiKey, hashKey } from '../runtime/keys';
import { createLogger } from '../runtime/logger';
import { MetricsRegistry } from '../lambda/shared/metrics';
import { startServer } from '../runtime/node-server';
import { openEmbeddedLedger } from '../tigerbeetle/engine';
import { createGatewayApp } from '../tigerbeetle/gateway/app';
import { createGatewayClient } from '../tigerbeetle/gateway/client';
import { staticTokenSource } from '../tigerbeetle/gateway/token-source';

/** The stand-in's answer: what a small real completion looks like on the wire. */
const upstreamAnswer = JSON.stringify({
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created: 0,
  model: 'bench-model',
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: 'A short answer from the stand-in.' },
      finish_reason: 'stop',
    },
  ],
  usage: { prompt_tokens: 12, completion_tokens: 8, total_tokens: 20 },
});
/** Far above what a bounded run sends in a minute, so the ledger's rate limit never refuses. */
const benchRequestsPerMinute = 1_000_000;
/** A loaded shared machine makes requests slow; their warnings would only add log I/O to the measurement. */
const benchSlowMilliseconds = 600_000;

function startUpstream(): Promise<{ url: string; server: Server }> {
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(upstreamAnswer),
      });
      response.end(upstreamAnswer);
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }),
    ),
  );
}

/** Counts the requests an app receives: the round trips of one hop. */
function counted(
  fetchFunction: (request: Request) => Response | Promise<Response>,
  counter: { requests: number },
) {
  return (request: Request) => {
    counter.requests += 1;
    return fetchFunction(request);
  };
}

async function main(): Promise<void> {
  const embedded = openEmbeddedLedger({ dataFile: process.env.BENCH_LEDGER_FILE || undefined });
  const logger = createLogger('bench', 'WARN');
  const counters = { credits: { requests: 0 }, gateway: { requests: 0 } };
  const gatewayToken = generateApiKey();
  const gateway = await startServer({
    fetch: counted(
      createGatewayApp({
        ledger: embedded.createClient(),
        tokens: staticTokenSource(gatewayToken),
        logger,
        limits: { slowRequestMilliseconds: benchSlowMilliseconds },
      }).fetch,
      counters.gateway,
    ),
    hostname: '127.0.0.1',
    port: 0,
  });
  const adminKey = generateApiKey();
  const proxyServiceKey = generateApiKey();
  const creditsApp = createCreditsApp({
    ledger: createGatewayClient({
      baseUrl: gateway.url,
      token: () => gatewayToken,
      requestTimeoutMilliseconds: 5_000,
    }),
    keys: createKeyring<CreditsPrincipal>(
      creditsKeyEntries({ admin: [adminKey], proxy: [proxyServiceKey] }),
    ),
    logger,
    metrics: new MetricsRegistry('credits', 'bench'),
  });
  const credits = await startServer({
    fetch: counted(creditsApp.fetch, counters.credits),
    hostname: '127.0.0.1',
    port: 0,
  });
  const upstream = await startUpstream();

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
    openaiCompatible: { apiKey: 'bench-upstream-key-0123456789', baseUrl: upstream.url },
  }));
  const config = (rateLimited: boolean): ProxyConfig => ({
    ...proxyConfigDefaults,
    embeddingModels: [],
    models: [
      {
        id: 'bench',
        provider: 'openai-compatible',
        upstreamModel: 'bench-model',
        inputMicrosPerMillionTokens: 1_000_000,
        outputMicrosPerMillionTokens: 2_000_000,
        defaultMaxOutputTokens: 64,
        outputTokensMax: 1024,
        ledgerCode: 1,
      },
    ],
    currency: 'USD',
    allowedOrigins: [],
    rateLimit: { enabled: rateLimited, requestsPerMinute: benchRequestsPerMinute },
    requestBodyBytesMax: 1024 * 1024,
    httpsOnly: false,
    slowRequestMilliseconds: benchSlowMilliseconds,
  });
  const proxy = async (rateLimited: boolean) => {
    const app = createProxyApp({
      keys,
      credits: createCreditsClient({
        baseUrl: credits.url,
        key: () => proxyServiceKey,
        requestTimeoutMilliseconds: 5_000,
      }),
      providers,
      config: config(rateLimited),
      logger,
      metrics: new MetricsRegistry('proxy', 'bench'),
    });
    return `${(await startServer({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 })).url}/v1/chat/completions`;
  };
  const [billed, billedNoRateLimit] = [await proxy(true), await proxy(false)];

  const topUp = await fetch(`${credits.url}/api/v1/topup`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${adminKey}`,
      'content-type': 'application/json',
      'idempotency-key': 'bench-topup-0001',
    },
    body: JSON.stringify({ user_id: 'bench-user', amount: '1000000.00' }),
  });
  if (topUp.status !== 201) throw new Error(`top-up failed: ${topUp.status}`);

  const control = createServer((_request, response) => {
    const cpu = process.cpuUsage();
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(
      JSON.stringify({
        cpuMicroseconds: cpu.user + cpu.system,
        creditsRequests: counters.credits.requests,
        gatewayRequests: counters.gateway.requests,
      }),
    );
  });
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
  const ready = {
    control: `http://127.0.0.1:${(control.address() as AddressInfo).port}`,
    direct: `${upstream.url}/chat/completions`,
    billed,
    billedNoRateLimit,
    clientKey,
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  process.once('SIGTERM', () => process.exit(0));
}

main().catch((error: unknown) => {
  console.error(`bench stack: ${(error as Error).stack}`);
  process.exit(1);
});
