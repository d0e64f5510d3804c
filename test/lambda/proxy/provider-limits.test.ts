import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createProxyApp } from '../../../lambda/proxy/app';
import {
  proxyConfigDefaults,
  proxyConfigFromStage,
  proxyConfigProblems,
} from '../../../lambda/proxy/config';
import { deployableConfig } from '../../support/synth';
import { configSchema } from '../../../lib/config/schema';
import { gate, geminiAnswer, geminiStream, openAiStream } from '../../support/fake-providers';
import { startProxyFixture, type ProxyFixture } from '../../support/proxy';

/**
 * The limits of one provider call (issue 11): the per-attempt deadline fires even after a garbage
 * collection, and a provider's response is capped in bytes, streamed or not (502, hold released).
 */

// A real collection on demand: the defect only shows when the collector runs during the wait.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

let fixture: ProxyFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

const hello = {
  model: 'gemini-2.5-flash',
  messages: [{ role: 'user', content: 'Say hello' }],
  max_tokens: 100,
};

describe('DR-03: the per-attempt provider deadline', () => {
  test('fires after a garbage collection: a hanging provider is a 504 within the attempt deadline, not the budget', async () => {
    // The budget outlives the test's own timeout: only the attempt deadline can end this request in time.
    fixture = await startProxyFixture({
      providerAttemptTimeoutMilliseconds: 300,
      providerBudgetMilliseconds: 120_000,
    });
    await fixture.topUp('alice', '1.00');
    fixture.gemini.script({ status: 200, pieces: [new Promise(() => undefined)] });
    const pending = fixture.request('POST', '/v1/chat/completions', { body: hello });
    await fixture.gemini.request(0);
    collectGarbage();
    const response = await pending;
    expect(response.status).toBe(504);
    expect(await response.json()).toMatchObject({ error: { code: 'provider_timeout' } });
    // The deadline aborted the upstream call: the stand-in saw its connection closed.
    expect(await fixture.gemini.requests[0].closed).toEqual({ completed: false });
    expect(await fixture.availableMicros('alice')).toBe(1_000_000n);
  });

  test('bounds the wait for the first streamed delta too', async () => {
    fixture = await startProxyFixture({
      providerAttemptTimeoutMilliseconds: 300,
      providerBudgetMilliseconds: 120_000,
    });
    await fixture.topUp('alice', '1.00');
    fixture.gemini.script({ status: 200, pieces: [new Promise(() => undefined)] });
    const pending = fixture.request('POST', '/v1/chat/completions', {
      body: { ...hello, stream: true },
    });
    await fixture.gemini.request(0);
    collectGarbage();
    const response = await pending;
    expect(response.status).toBe(504);
    expect(await fixture.availableMicros('alice')).toBe(1_000_000n);
  });
});

describe('the cap on a provider response', () => {
  const responseBytesMax = 64 * 1024;

  test('a JSON answer over the cap is a 502 and the hold is released', async () => {
    fixture = await startProxyFixture({ providerResponseBytesMax: responseBytesMax });
    await fixture.topUp('alice', '1.00');
    fixture.gemini.script(geminiAnswer('x'.repeat(4 * responseBytesMax)));
    const response = await fixture.request('POST', '/v1/chat/completions', { body: hello });
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({
      error: { code: 'provider_response_too_large' },
      request_id: expect.any(String),
    });
    expect(await fixture.availableMicros('alice')).toBe(1_000_000n);
    expect(fixture.metrics.total('ProviderErrors', { provider: 'gemini', kind: 'too_large' })).toBe(
      1,
    );
  });

  test('an answer just under the cap is delivered and billed', async () => {
    fixture = await startProxyFixture({ providerResponseBytesMax: responseBytesMax });
    await fixture.topUp('alice', '1.00');
    fixture.gemini.script(geminiAnswer('x'.repeat(responseBytesMax / 2)));
    expect((await fixture.request('POST', '/v1/chat/completions', { body: hello })).status).toBe(
      200,
    );
  });

  test('a stream that grows over the cap before any delta is a 502; the hold is released', async () => {
    fixture = await startProxyFixture({ providerResponseBytesMax: responseBytesMax });
    await fixture.topUp('alice', '1.00');
    // One event larger than the cap: the cap trips while the first delta is still being read.
    fixture.openAi.script(openAiStream(['y'.repeat(2 * responseBytesMax)]));
    const response = await fixture.request('POST', '/v1/chat/completions', {
      body: { ...hello, model: 'fake-gpt', stream: true },
    });
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({ error: { code: 'provider_response_too_large' } });
    expect(await fixture.availableMicros('alice')).toBe(1_000_000n);
  });

  test('a stream that grows over the cap after its first deltas ends with an error event; the hold is released', async () => {
    fixture = await startProxyFixture({ providerResponseBytesMax: responseBytesMax });
    await fixture.topUp('alice', '1.00');
    const firstRead = gate();
    // The stand-in stays open after its pieces: only the proxy can close this connection.
    fixture.gemini.script({
      ...geminiStream([
        'Hello',
        firstRead.opened,
        ...Array.from({ length: 200 }, () => 'z'.repeat(1024)),
      ]),
      after: 'hang',
    });
    const response = await fixture.request('POST', '/v1/chat/completions', {
      body: { ...hello, stream: true },
    });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value);
    firstRead.open();
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
      text += decoder.decode(chunk.value);
    expect(text).toContain('event: error\ndata: {"error":{"message":');
    expect(text).toContain('"code":"provider_response_too_large"');
    expect(text).not.toContain('[DONE]');
    expect(await fixture.gemini.requests[0].closed).toEqual({ completed: false });
    expect(await fixture.availableMicros('alice')).toBe(1_000_000n);
  });
});

describe('relations between the limits, checked at start-up', () => {
  test('the shipped defaults agree; an attempt over the budget and a hold shorter than the budget are refused', async () => {
    const base = {
      ...proxyConfigDefaults,
      models: [],
      embeddingModels: [],
      currency: 'USD',
      allowedOrigins: [],
      rateLimit: { enabled: true, requestsPerMinute: 60 },
      requestBodyBytesMax: 1024,
      httpsOnly: true,
    };
    expect(proxyConfigProblems(base)).toEqual([]);
    expect(
      proxyConfigProblems({
        ...base,
        providerAttemptTimeoutMilliseconds: base.providerBudgetMilliseconds + 1,
      }),
    ).toEqual([expect.stringContaining('must not exceed providerBudgetMilliseconds')]);
    expect(proxyConfigProblems({ ...base, holdTimeoutSeconds: 100 })).toEqual([
      expect.stringContaining('holdTimeoutSeconds (100) must outlast'),
    ]);
    expect(proxyConfigProblems({ ...base, embeddingInputsPerRequestMax: 101 })).toEqual([
      expect.stringContaining("must not exceed Gemini's batch of 100"),
    ]);
    fixture = await startProxyFixture();
    const { credits, logger, metrics, config } = fixture;
    const keys = {
      description: 'no keys',
      verifier: async () => ({ size: 0, verify: () => ({ status: 'unknown' as const }) }),
    };
    expect(() =>
      createProxyApp({
        keys,
        credits,
        providers: new Map(),
        logger,
        metrics,
        config: { ...config, holdTimeoutSeconds: 1 },
      }),
    ).toThrow(/refusing to start, inconsistent limits: holdTimeoutSeconds \(1\) must outlast/);
  });
});

describe('the proxy section of the stage config', () => {
  test('is optional (the defaults apply), validated with units, and what it sets reaches the function', () => {
    const stage = deployableConfig('production');
    expect(proxyConfigFromStage(stage)).toMatchObject({
      providerResponseBytesMax: 32 * 1024 * 1024,
      streamKeepAliveIntervalMilliseconds: 15_000,
    });
    const tuned = configSchema.parse({
      ...stage,
      proxy: {
        providerResponseBytesMax: 8 * 1024 * 1024,
        streamKeepAliveIntervalMilliseconds: 5000,
      },
    });
    expect(proxyConfigFromStage(tuned)).toMatchObject({
      providerResponseBytesMax: 8 * 1024 * 1024,
      streamKeepAliveIntervalMilliseconds: 5000,
      echoChunkDelayMilliseconds: 20,
    });
    expect(
      configSchema.safeParse({ ...stage, proxy: { providerResponseBytesMax: 10 } }).success,
    ).toBe(false);
    expect(
      configSchema.safeParse({ ...stage, proxy: { streamKeepAliveIntervalMilliseconds: 120_000 } })
        .success,
    ).toBe(false);
  });
});
