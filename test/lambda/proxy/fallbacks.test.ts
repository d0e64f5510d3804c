import type { ModelConfig } from '../../../lib/config/schema';
import { startServer, type RunningServer } from '../../../runtime/node-server';
import {
  anthropicError,
  anthropicStream,
  anthropicStreamError,
  gate,
  geminiError,
  openAiStream,
  type ScriptedAnswer,
} from '../../support/fake-providers';
import { startProxyFixture, testModels, type ProxyFixture } from '../../support/proxy';

/**
 * Fallbacks over HTTP: the proxy in a Node server, the real credits service and ledger, and local
 * stand-ins for Anthropic, an OpenAI-compatible server and Gemini that answer 429, 5xx, an error
 * event, or nothing at all. Every test checks the ledger to the micro: the hold covers the dearest
 * candidate, the settlement is at the price of the model that answered.
 *
 * `claude-first` is Anthropic (3 / 15 micros per token, cache writes 3.75) falling back to
 * `fake-gpt` (1 / 4) then `gemini-2.5-flash` (0.3 / 2.5). `gpt-first` is `fake-gpt`'s provider at
 * its prices, falling back to `fake-claude`: its hold is Claude's.
 */

const claudeFirst: ModelConfig = {
  ...testModels.find((model) => model.id === 'fake-claude')!,
  id: 'claude-first',
  ledgerCode: 301,
  fallbacks: ['fake-gpt', 'gemini-2.5-flash'],
};
const gptFirst: ModelConfig = {
  ...testModels.find((model) => model.id === 'fake-gpt')!,
  id: 'gpt-first',
  ledgerCode: 302,
  fallbacks: ['fake-claude'],
};

let fixture: ProxyFixture;
let server: RunningServer;
// A short attempt deadline, so a hanging provider is left quickly; the budget holds every attempt.
beforeEach(async () => {
  fixture = await startProxyFixture({
    models: [...testModels, claudeFirst, gptFirst],
    providerAttemptTimeoutMilliseconds: 300,
    providerBudgetMilliseconds: 3_000,
  });
  server = await startServer({ fetch: fixture.app.fetch, hostname: '127.0.0.1', port: 0 });
  await fixture.topUp('alice', '1.00');
});
afterEach(async () => {
  await server.close();
  await fixture.close();
});

type Json = Record<string, unknown>;
const never = new Promise<never>(() => undefined);
/** An answer that never comes: the connection stays open until the client gives up. */
const hang: ScriptedAnswer = { status: 200, body: {}, heldUntil: never };
const ask = (model: string, extra: Json = {}) => ({
  model,
  messages: [{ role: 'user', content: 'Say hello' }],
  max_tokens: 100,
  ...extra,
});

function post(body: Json, key = fixture.keys.alice): Promise<Response> {
  return fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function spent(action: () => Promise<void>): Promise<bigint> {
  const before = await fixture.availableMicros('alice');
  await action();
  return before - (await fixture.availableMicros('alice'));
}

/** The data events of a streamed response, parsed, and whether it ended with [DONE]. */
async function streamed(response: Response) {
  const events = (await response.text()).split('\n\n').filter((event) => event !== '');
  const done = events.at(-1) === 'data: [DONE]';
  const chunks = events
    .filter((event) => event.startsWith('data: {'))
    .map((event) => JSON.parse(event.slice('data: '.length)) as Json);
  return { events, chunks, done };
}

// The stand-ins' default answers: fake-gpt 20 in, 5 out (20 x 1 + 5 x 4 = 40 micros); Gemini 12 in,
// 7 out (12 x 0.3 + 7 x 2.5 = 21.1, billed 22); Anthropic 25 in, 9 out (25 x 3 + 9 x 15 = 210).
const gptMicros = 40n;
const geminiMicros = 22n;
const claudeMicros = 210n;

describe('DR-03: a provider outage, a whole answer', () => {
  test('MON-02 / DATA-06: Anthropic throttled (429): fake-gpt answers, the response names it, billed at its price, counted', async () => {
    fixture.anthropic.script(anthropicError(429, 'rate_limit_error', 'Rate limited'));
    let body: Json = {};
    const charged = await spent(async () => {
      const response = await post(ask('claude-first'));
      expect(response.status).toBe(200);
      expect(response.headers.get('x-credits-charged-micros')).toBe(gptMicros.toString());
      body = (await response.json()) as Json;
    });
    expect(charged).toBe(gptMicros);
    expect(body).toMatchObject({
      model: 'fake-gpt',
      choices: [{ message: { content: 'Hello from the fake OpenAI-compatible server.' } }],
    });
    expect(fixture.anthropic.requests).toHaveLength(1);
    expect(fixture.openAi.requests).toHaveLength(1);
    expect((await fixture.openAi.request(0)).body).toMatchObject({ model: 'fake-model' });
    expect(await fixture.logger.nextAudit('model_fallback')).toMatchObject({
      model: 'claude-first',
      provider: 'anthropic',
      fallback_model: 'fake-gpt',
      fallback_provider: 'openai-compatible',
      error_kind: 'unavailable',
    });
    expect(await fixture.logger.nextAudit('chat_completion')).toMatchObject({
      model: 'fake-gpt',
      provider: 'openai-compatible',
      fallback_from: 'claude-first',
      charged_micros: '40',
    });
    expect(
      fixture.metrics.total('ModelFallbacks', { model: 'claude-first', fallback: 'fake-gpt' }),
    ).toBe(1);
    expect(
      fixture.metrics.total('ChatCompletions', { model: 'fake-gpt', outcome: 'completed' }),
    ).toBe(1);
  });

  test('in order: Anthropic 500, fake-gpt 503, then Gemini answers', async () => {
    fixture.anthropic.script(anthropicError(500, 'api_error', 'Internal error'));
    fixture.openAi.script({ status: 503, body: { error: { message: 'overloaded' } } });
    const charged = await spent(async () => {
      const response = await post(ask('claude-first'));
      expect(response.status).toBe(200);
      expect(((await response.json()) as Json).model).toBe('gemini-2.5-flash');
    });
    expect(charged).toBe(geminiMicros);
    expect(
      [fixture.anthropic, fixture.openAi, fixture.gemini].map((p) => p.requests.length),
    ).toEqual([1, 1, 1]);
    expect(fixture.metrics.total('ModelFallbacks')).toBe(2);
  });

  test('Anthropic silent past its attempt deadline: the next model answers within the budget', async () => {
    fixture.anthropic.script(hang);
    const charged = await spent(async () => {
      const response = await post(ask('claude-first'));
      expect(response.status).toBe(200);
      expect(((await response.json()) as Json).model).toBe('fake-gpt');
    });
    expect(charged).toBe(gptMicros);
    // The hanging request was abandoned, not left open.
    expect(await fixture.anthropic.requests[0].closed).toEqual({ completed: false });
    expect((await fixture.logger.nextAudit('model_fallback')).error_kind).toBe('timeout');
  });

  test("a client's 4xx at Anthropic is final: no fallback, nothing charged", async () => {
    fixture.anthropic.script(anthropicError(400, 'invalid_request_error', 'bad image'));
    const charged = await spent(async () => {
      const response = await post(ask('claude-first'));
      expect(response.status).toBe(400);
    });
    expect(charged).toBe(0n);
    expect(fixture.openAi.requests).toHaveLength(0);
    expect(fixture.gemini.requests).toHaveLength(0);
    expect(fixture.metrics.total('ModelFallbacks')).toBe(0);
  });

  test('every candidate failing: the last error, each tried once, the hold released', async () => {
    fixture.anthropic.script(anthropicError(529, 'overloaded_error', 'Overloaded'));
    fixture.openAi.script({ status: 429, body: { error: { message: 'slow down' } } });
    fixture.gemini.script(geminiError(503, 'The model is overloaded', 'UNAVAILABLE'));
    const charged = await spent(async () => {
      const response = await post(ask('claude-first'));
      expect(response.status).toBe(503);
      expect(((await response.json()) as { error: Json }).error).toMatchObject({
        code: 'provider_unavailable',
        message: 'gemini answered 503: The model is overloaded',
      });
    });
    expect(charged).toBe(0n);
    expect(
      [fixture.anthropic, fixture.openAi, fixture.gemini].map((p) => p.requests.length),
    ).toEqual([1, 1, 1]);
    expect(await fixture.logger.nextAudit('provider_failure')).toMatchObject({
      model: 'gemini-2.5-flash',
      fallback_from: 'claude-first',
    });
  });

  test("the hold covers the dearest candidate: a cheap model falling back to Claude holds at Claude's prices", async () => {
    // Bob has nothing: the 402 names the hold. (9 + 8) prompt tokens x 3.75 + 100 x 15 = 1563.75 -> 1564;
    // fake-gpt alone would hold (9 + 8) x 1 + 100 x 4 = 417.
    const cheap = await post(ask('fake-gpt'), fixture.keys.bob);
    expect(((await cheap.json()) as { error: Json }).error.required_micros).toBe('417');
    const withFallback = await post(ask('gpt-first'), fixture.keys.bob);
    expect(withFallback.status).toBe(402);
    expect(((await withFallback.json()) as { error: Json }).error.required_micros).toBe('1564');
  });

  test('settled at the price of the model that answered, even when the hold was the dearest', async () => {
    // gpt-first answers itself: billed at fake-gpt's price although Claude's price was held.
    const charged = await spent(async () => {
      const response = await post(ask('gpt-first'));
      expect(((await response.json()) as Json).model).toBe('gpt-first');
    });
    expect(charged).toBe(gptMicros);
    // Its fallback answers: billed at Claude's price.
    fixture.openAi.script({ status: 500, body: { error: { message: 'boom' } } });
    const fellBack = await spent(async () => {
      const response = await post(ask('gpt-first'));
      expect(((await response.json()) as Json).model).toBe('fake-claude');
    });
    expect(fellBack).toBe(claudeMicros);
  });

  test('a fallback that cannot serve the request is left out of the attempts and of the hold', async () => {
    // Anthropic takes no seed: gpt-first with a seed may only be answered by itself, retried once.
    const withSeed = ask('gpt-first', { seed: 7 });
    const poor = await post(withSeed, fixture.keys.bob);
    expect(((await poor.json()) as { error: Json }).error.required_micros).toBe('417');
    fixture.openAi.script({ status: 429, body: { error: { message: 'slow down' } } });
    const charged = await spent(async () => {
      const response = await post(withSeed);
      expect(response.status).toBe(200);
      expect(((await response.json()) as Json).model).toBe('gpt-first');
    });
    expect(charged).toBe(gptMicros);
    expect(fixture.openAi.requests).toHaveLength(2);
    expect(fixture.anthropic.requests).toHaveLength(0);
    expect(fixture.metrics.total('ModelFallbacks')).toBe(0);
  });
});

describe('DR-03: a provider outage, a stream', () => {
  const streamAsk = (model: string) =>
    ask(model, { stream: true, stream_options: { include_usage: true } });

  test('Anthropic throttled before its first byte: fake-gpt streams, every chunk names it, billed at its price', async () => {
    fixture.anthropic.script(anthropicError(429, 'rate_limit_error', 'Rate limited'));
    let result: Awaited<ReturnType<typeof streamed>> | undefined;
    const charged = await spent(async () => {
      const response = await post(streamAsk('claude-first'));
      expect(response.status).toBe(200);
      result = await streamed(response);
    });
    expect(result!.done).toBe(true);
    expect(result!.chunks.every((chunk) => chunk.model === 'fake-gpt')).toBe(true);
    expect(result!.chunks.at(-1)).toMatchObject({ x_credits_charged: '0.000040' });
    expect(charged).toBe(gptMicros);
    expect(await fixture.logger.nextAudit('chat_completion')).toMatchObject({
      model: 'fake-gpt',
      fallback_from: 'claude-first',
      stream: true,
      charged_micros: '40',
    });
  });

  test("an overloaded error event before Anthropic's first delta falls back too", async () => {
    const opened = anthropicStream([], undefined, 'end_turn', 'none');
    fixture.anthropic.script({
      ...opened,
      pieces: [...opened.pieces, anthropicStreamError('overloaded_error', 'Overloaded')],
    });
    const charged = await spent(async () => {
      const result = await streamed(await post(streamAsk('claude-first')));
      expect(result.done).toBe(true);
      expect(result.chunks[0].model).toBe('fake-gpt');
    });
    expect(charged).toBe(gptMicros);
  });

  test('Anthropic silent past its attempt deadline (before the first keep-alive): the next model streams', async () => {
    fixture.anthropic.script({ status: 200, pieces: [never] });
    const charged = await spent(async () => {
      const result = await streamed(await post(streamAsk('claude-first')));
      expect(result.done).toBe(true);
      expect(result.chunks[0].model).toBe('fake-gpt');
    });
    expect(charged).toBe(gptMicros);
    expect(await fixture.anthropic.requests[0].closed).toEqual({ completed: false });
  });

  test('after the first byte there is no fallback: a cut stream is an error event, billed for what was delivered', async () => {
    const delivered = gate();
    fixture.anthropic.script({
      ...anthropicStream(['Partial answer', delivered.opened], undefined, 'end_turn', 'none'),
      after: 'cut',
    });
    const charged = await spent(async () => {
      const response = await post(streamAsk('claude-first'));
      // The provider cuts only once the client has the first text: the response is committed.
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      for (let read = await reader.read(); !read.done; read = await reader.read()) {
        text += decoder.decode(read.value, { stream: true });
        if (text.includes('Partial answer')) delivered.open();
      }
      expect(text).toMatch(/event: error\ndata: .*"code":"provider_error"/);
      expect(text).not.toContain('[DONE]');
      expect(text).not.toContain('fake-gpt');
    });
    expect(fixture.openAi.requests).toHaveLength(0);
    // An estimate at Claude's price: the input message_start reported (25 x 3) and the delivered
    // text (14 bytes, about 4 tokens, above the 1 output token reported so far) x 15.
    expect(charged).toBe(25n * 3n + 4n * 15n);
  });

  test('a fallback that answers after a retryable failure is billed exactly, streamed from Gemini', async () => {
    fixture.anthropic.script(anthropicError(503, 'api_error', 'Unavailable'));
    fixture.openAi.script({ status: 502, body: { error: { message: 'bad gateway' } } });
    const charged = await spent(async () => {
      const result = await streamed(await post(streamAsk('claude-first')));
      expect(result.done).toBe(true);
      expect(result.chunks[0].model).toBe('gemini-2.5-flash');
    });
    expect(charged).toBe(geminiMicros);
  });
});

test('without fallbacks a model keeps its one retry, streamed or not', async () => {
  fixture.anthropic.script(
    anthropicError(529, 'overloaded_error', 'Overloaded'),
    anthropicError(529, 'overloaded_error', 'Overloaded'),
  );
  const response = await post(ask('fake-claude'));
  expect(response.status).toBe(503);
  expect(fixture.anthropic.requests).toHaveLength(2);
  fixture.openAi.script(
    { status: 500, body: { error: { message: 'boom' } } },
    openAiStream(['ok']),
  );
  const result = await streamed(await post(ask('fake-gpt', { stream: true })));
  expect(result.done).toBe(true);
  expect(fixture.openAi.requests).toHaveLength(2);
});
