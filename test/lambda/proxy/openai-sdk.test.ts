import OpenAI from 'openai';
import { startServer, type RunningServer } from '../../../runtime/node-server';
import { fakeVector } from '../../support/fake-providers';
import { startProxyFixture, testModels, type ProxyFixture } from '../../support/proxy';

/**
 * The official openai npm client, unchanged, against the proxy on a real local Node server (as
 * `npm run dev` runs it), with stand-in providers behind it. Every request the client sends is
 * recorded through its `fetch` option, so the test sees what the SDK really put on the wire.
 */

let fixture: ProxyFixture;
let server: RunningServer;
const sent: { url: string; headers: Headers; body: unknown }[] = [];

beforeAll(async () => {
  fixture = await startProxyFixture({
    models: [...testModels, { ...testModels[2], id: 'org/echo.v2', ledgerCode: 301 }],
  });
  server = await startServer({ fetch: fixture.app.fetch, hostname: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await server.close();
  await fixture.close();
});
beforeEach(async () => {
  sent.length = 0;
  await fixture.topUp('alice', '10.00');
});

function client(options: { maxRetries?: number; key?: string } = {}): OpenAI {
  const recordingFetch: typeof fetch = async (input, init) => {
    const body = typeof init?.body === 'string' ? (JSON.parse(init.body) as unknown) : undefined;
    sent.push({ url: String(input), headers: new Headers(init?.headers), body });
    return fetch(input, init);
  };
  return new OpenAI({
    baseURL: `${server.url}/v1`,
    apiKey: options.key ?? fixture.keys.alice,
    maxRetries: options.maxRetries ?? 2,
    fetch: recordingFetch,
  });
}

test('models.retrieve: the model object, an id with / and . too; an unknown one is NotFoundError with our request id', async () => {
  const openai = client();
  expect(await openai.models.retrieve('echo')).toMatchObject({
    id: 'echo',
    object: 'model',
    owned_by: 'echo',
  });
  expect(await openai.models.retrieve('org/echo.v2')).toMatchObject({ id: 'org/echo.v2' });
  expect(sent[1].url).toBe(`${server.url}/v1/models/org%2Fecho.v2`);
  const missing = await openai.models.retrieve('no-such-model').catch((error: unknown) => error);
  expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
  expect((missing as InstanceType<typeof OpenAI.APIError>).requestID).toMatch(/^[0-9a-f-]{36}$/);
  expect((missing as InstanceType<typeof OpenAI.APIError>).code).toBe('model_not_found');
  const listed = [];
  for await (const model of openai.models.list()) listed.push(model.id);
  expect(listed).toEqual(expect.arrayContaining(['echo', 'text-embedding-3-small']));
});

test('embeddings.create with the SDK default (base64 on the wire): float vectors, billed to the micro', async () => {
  const openai = client();
  const before = await fixture.availableMicros('alice');
  const answer = await openai.embeddings.create({
    model: 'text-embedding-3-small',
    input: ['alpha', 'beta gamma'],
  });
  // The SDK asked for base64 and decoded it (float32, so 0.5 and small integers survive exactly).
  expect(sent[0].body).toMatchObject({ encoding_format: 'base64' });
  expect(answer.data.map((entry) => entry.embedding)).toEqual([fakeVector(0, 8), fakeVector(1, 8)]);
  expect(answer.usage).toEqual({ prompt_tokens: 6, total_tokens: 6 });
  // 6 tokens at 2 micros.
  expect(before - (await fixture.availableMicros('alice'))).toBe(12n);
  const floats = await openai.embeddings.create({
    model: 'echo-embedding',
    input: 'same',
    encoding_format: 'float',
    dimensions: 4,
  });
  expect(floats.data[0].embedding).toHaveLength(4);
});

// The OpenAI client ignores its `idempotencyKey` request option (it names no idempotency header):
// the key goes in `headers`.
test('DATA-06: a retried chat completion with an idempotency key is charged once; the SDK does not loop on the 409', async () => {
  const openai = client();
  const before = await fixture.availableMicros('alice');
  const request = {
    model: 'echo',
    messages: [{ role: 'user' as const, content: 'Hello, ledger!' }],
  };
  const first = await openai.chat.completions.create(request, {
    headers: { 'Idempotency-Key': 'order-42-attempt' },
  });
  expect(first.choices[0].message.content).toBe('echo: Hello, ledger!');
  const charged = before - (await fixture.availableMicros('alice'));
  expect(charged).toBeGreaterThan(0n);
  expect(sent[0].headers.get('idempotency-key')).toBe('order-42-attempt');
  const retried = await openai.chat.completions
    .create(request, { headers: { 'Idempotency-Key': 'order-42-attempt' } })
    .catch((error: unknown) => error);
  expect(retried).toBeInstanceOf(OpenAI.ConflictError);
  expect((retried as InstanceType<typeof OpenAI.APIError>).code).toBe('idempotency_key_reused');
  // One request for the retry: x-should-retry: false stops the SDK's own retries of a 409.
  expect(sent).toHaveLength(2);
  expect(before - (await fixture.availableMicros('alice'))).toBe(charged);
  // A new key is a new request, charged again.
  await openai.chat.completions.create(request, {
    headers: { 'Idempotency-Key': 'order-43-attempt' },
  });
  expect(before - (await fixture.availableMicros('alice'))).toBe(2n * charged);
});

test('embeddings with an idempotency key: the retry is refused and not charged', async () => {
  const openai = client({ maxRetries: 0 });
  const before = await fixture.availableMicros('alice');
  const body = { model: 'echo-embedding', input: 'hello world' };
  await openai.embeddings.create(body, { headers: { 'Idempotency-Key': 'embed-once-0001' } });
  const retried = await openai.embeddings
    .create(body, { headers: { 'Idempotency-Key': 'embed-once-0001' } })
    .catch((error: unknown) => error);
  expect(retried).toBeInstanceOf(OpenAI.ConflictError);
  // ceil(11/4) = 3 tokens at 1 micro, once.
  expect(before - (await fixture.availableMicros('alice'))).toBe(3n);
});
