import { anthropicAnswer, anthropicError, anthropicStream } from '../../support/fake-providers';
import { startProxyFixture, type ProxyFixture } from '../../support/proxy';

/**
 * Anthropic through the proxy over HTTP: the real credits service and ledger behind, a local
 * server speaking Anthropic's JSON and SSE in front; cache reads and writes billed at their own
 * prices, to the micro, streamed or not. The model `fake-claude` costs 3 / 15 micros per token in
 * and out, 0.3 per cached token read and 3.75 per token written to the cache.
 */

let fixture: ProxyFixture;
beforeEach(async () => {
  fixture = await startProxyFixture();
  await fixture.topUp('alice', '1.00');
});
afterEach(() => fixture.close());

type Json = Record<string, unknown>;
const cachedUsage = {
  input_tokens: 40,
  output_tokens: 12,
  cache_read_input_tokens: 1000,
  cache_creation_input_tokens: 200,
};
// 40 x 3 + 1000 x 0.3 + 200 x 3.75 + 12 x 15 = 120 + 300 + 750 + 180 micros.
const cachedCostMicros = 1350n;
const ask = (extra: Json = {}) => ({
  body: {
    model: 'fake-claude',
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Say hello' },
    ],
    max_tokens: 100,
    ...extra,
  },
});

test('a completion is billed with its cache reads and writes at their own prices, to the micro', async () => {
  fixture.anthropic.script(anthropicAnswer(['Hello.'], cachedUsage));
  const before = await fixture.availableMicros('alice');
  const response = await fixture.request('POST', '/v1/chat/completions', ask());
  expect(response.status).toBe(200);
  expect(await response.json()).toMatchObject({
    model: 'fake-claude',
    choices: [{ message: { role: 'assistant', content: 'Hello.' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1240, completion_tokens: 12, total_tokens: 1252 },
  });
  expect(response.headers.get('x-credits-charged-micros')).toBe(cachedCostMicros.toString());
  expect(before - (await fixture.availableMicros('alice'))).toBe(cachedCostMicros);
  expect((await fixture.anthropic.request(0)).body).toMatchObject({
    system: 'Be brief.',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hello' }] }],
    max_tokens: 100,
  });
});

test('a stream is billed the same, from message_start and message_delta usage', async () => {
  fixture.anthropic.script(anthropicStream(['Hel', 'lo.'], cachedUsage));
  const before = await fixture.availableMicros('alice');
  const response = await fixture.request(
    'POST',
    '/v1/chat/completions',
    ask({ stream: true, stream_options: { include_usage: true } }),
  );
  expect(response.status).toBe(200);
  const events = (await response.text()).split('\n\n').filter((event) => event !== '');
  const chunks = events
    .filter((event) => event !== 'data: [DONE]')
    .map((event) => JSON.parse(event.replace(/^data: /, '')) as Json);
  const text = chunks
    .map((chunk) => (chunk.choices as { delta?: { content?: string } }[])[0]?.delta?.content ?? '')
    .join('');
  expect(text).toBe('Hello.');
  expect(chunks.at(-1)).toMatchObject({
    model: 'fake-claude',
    usage: { prompt_tokens: 1240, completion_tokens: 12 },
    x_credits_charged: '0.001350',
  });
  expect(events.at(-1)).toBe('data: [DONE]');
  expect((await fixture.logger.nextAudit('chat_completion')).charged_micros).toBe('1350');
  expect(before - (await fixture.availableMicros('alice'))).toBe(cachedCostMicros);
});

test('the hold prices the prompt at the dearest input price (the cache write) and the output at the output price', async () => {
  // Bob has nothing: the 402 names what the hold needed. The prompt estimate is one token per byte
  // plus 8 per message: (9 + 8) + (9 + 8) = 34 tokens x 3.75 + 100 x 15 = 127.5 + 1500 -> 1628 micros.
  const response = await fixture.request('POST', '/v1/chat/completions', {
    ...ask(),
    key: fixture.keys.bob,
  });
  expect(response.status).toBe(402);
  expect(((await response.json()) as { error: Json }).error).toMatchObject({
    required_micros: '1628',
  });
  expect(fixture.anthropic.requests).toHaveLength(0);
});

test('overloaded (529) is retried once; the second answer is billed, the first not', async () => {
  fixture.anthropic.script(
    anthropicError(529, 'overloaded_error', 'Overloaded'),
    anthropicAnswer(['ok']),
  );
  const before = await fixture.availableMicros('alice');
  const response = await fixture.request('POST', '/v1/chat/completions', ask());
  expect(response.status).toBe(200);
  expect(fixture.anthropic.requests).toHaveLength(2);
  // The stand-in's default usage: 25 in x 3 + 9 out x 15 = 210 micros.
  expect(before - (await fixture.availableMicros('alice'))).toBe(210n);
});

test("anthropic's 400 is a 502, not retried, nothing charged", async () => {
  fixture.anthropic.script(
    anthropicError(400, 'invalid_request_error', 'messages: roles must alternate'),
  );
  const before = await fixture.availableMicros('alice');
  const response = await fixture.request('POST', '/v1/chat/completions', ask());
  expect(response.status).toBe(502);
  expect(((await response.json()) as { error: Json }).error).toMatchObject({
    code: 'provider_error',
    message: 'anthropic answered 400: messages: roles must alternate',
  });
  expect(fixture.anthropic.requests).toHaveLength(1);
  expect(await fixture.availableMicros('alice')).toBe(before);
});
