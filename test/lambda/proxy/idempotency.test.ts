import { geminiAnswer } from '../../support/fake-providers';
import { startProxyFixture, type ProxyFixture } from '../../support/proxy';

/**
 * Idempotency-Key on billable requests: the hold's id derives from the key and the caller, so a
 * retry is never charged twice (the ledger is the store), and gets 409 naming the first hold.
 * Gemini's default stand-in answer uses 12 prompt and 7 completion tokens: 22 micros on
 * gemini-2.5-flash (ceil((12 x 300,000 + 7 x 2,500,000) / 1,000,000)).
 */

let fixture: ProxyFixture;
afterEach(() => fixture.close());

const startingMicros = 10_000_000n;
const chargeMicros = 22n;
const hello = {
  model: 'gemini-2.5-flash',
  messages: [{ role: 'user', content: 'Say hello' }],
  max_tokens: 100,
};
const chat = (idempotencyKey?: string, options: { key?: string; body?: unknown } = {}) =>
  fixture.request('POST', '/v1/chat/completions', {
    body: options.body ?? hello,
    key: options.key,
    headers: idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey },
  });

describe('Idempotency-Key on chat completions', () => {
  beforeEach(async () => {
    fixture = await startProxyFixture();
    await fixture.topUp('alice', '10.00');
  });

  test('DATA-06: a retry after the first finished is a 409 naming the first hold, and is not charged', async () => {
    const first = await chat('stainless-node-retry-3f1c2b7a-0000-4000-8000-000000000001');
    expect(first.status).toBe(200);
    expect(first.headers.get('x-credits-charged-micros')).toBe(chargeMicros.toString());
    const retry = await chat('stainless-node-retry-3f1c2b7a-0000-4000-8000-000000000001');
    expect(retry.status).toBe(409);
    // The SDKs retry a 409 by default; this one can never succeed.
    expect(retry.headers.get('x-should-retry')).toBe('false');
    const body = (await retry.json()) as { error: Record<string, unknown>; request_id: string };
    expect(body).toMatchObject({
      error: {
        type: 'conflict_error',
        code: 'idempotency_key_reused',
        original_hold_id: expect.stringMatching(/^[1-9][0-9]*$/),
        // The first request's id: its receipt (GET /v1/usage/{request_id}) is the one charge.
        original_request_id: first.headers.get('x-request-id'),
      },
      request_id: retry.headers.get('x-request-id'),
    });
    expect(first.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.request_id).not.toBe(first.headers.get('x-request-id'));
    expect(fixture.gemini.requests).toHaveLength(1);
    expect(await fixture.availableMicros('alice')).toBe(startingMicros - chargeMicros);
    expect(fixture.logger.auditEvents('idempotency_key_reused')).toHaveLength(1);
  });

  test('DATA-06: a retry while the first is in flight is a 409; the first completes and is charged once', async () => {
    let answerNow = () => {};
    fixture.gemini.script({
      ...geminiAnswer('Hello!'),
      heldUntil: new Promise<void>((resolve) => (answerNow = resolve)),
    });
    const first = chat('key-in-flight-0001');
    await fixture.gemini.request(0); // admitted: the hold is on the ledger
    const retry = await chat('key-in-flight-0001');
    expect(retry.status).toBe(409);
    answerNow();
    const answered = await first;
    expect(answered.status).toBe(200);
    expect(await retry.json()).toMatchObject({
      error: {
        code: 'idempotency_key_reused',
        original_request_id: answered.headers.get('x-request-id'),
      },
    });
    expect(fixture.gemini.requests).toHaveLength(1);
    expect(await fixture.availableMicros('alice')).toBe(startingMicros - chargeMicros);
  });

  test('different keys are different requests: each is charged', async () => {
    expect((await chat('key-one-0001')).status).toBe(200);
    expect((await chat('key-two-0002')).status).toBe(200);
    expect((await chat()).status).toBe(200);
    expect(await fixture.availableMicros('alice')).toBe(startingMicros - 3n * chargeMicros);
  });

  test('the key is scoped to the API key that sent it: another caller with the same key is charged on its own', async () => {
    await fixture.topUp('bob', '1.00');
    expect((await chat('shared-key-0001')).status).toBe(200);
    expect((await chat('shared-key-0001', { key: fixture.keys.bob })).status).toBe(200);
    expect(await fixture.availableMicros('bob')).toBe(1_000_000n - chargeMicros);
  });

  test('the same key on a different request (another hold) is a 409 conflict, nothing charged', async () => {
    expect((await chat('reused-for-another-0001')).status).toBe(200);
    const other = await chat('reused-for-another-0001', { body: { ...hello, max_tokens: 200 } });
    expect(other.status).toBe(409);
    expect(await other.json()).toMatchObject({ error: { code: 'idempotency_key_conflict' } });
    expect(await fixture.availableMicros('alice')).toBe(startingMicros - chargeMicros);
  });

  test.each([
    ['too long', 'k'.repeat(129)],
    ['empty', ''],
    ['with other characters', 'key with spaces'],
  ])('a key %s is a 400 naming the header; no provider call, nothing charged', async (_, key) => {
    const response = await chat(key);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({
      error: {
        code: 'invalid_idempotency_key',
        message: expect.stringContaining('Idempotency-Key'),
      },
      request_id: expect.any(String),
    });
    expect(fixture.gemini.requests).toHaveLength(0);
    expect(await fixture.availableMicros('alice')).toBe(startingMicros);
  });
});

describe('Idempotency-Key on embeddings', () => {
  const embed = (idempotencyKey: string) =>
    fixture.request('POST', '/v1/embeddings', {
      body: { model: 'text-embedding-3-small', input: 'hello' },
      headers: { 'idempotency-key': idempotencyKey },
    });

  test('DATA-06: a retry is a 409 naming the first request, and is charged once', async () => {
    fixture = await startProxyFixture();
    await fixture.topUp('alice', '10.00');
    const first = await embed('embeddings-retry-original-0001');
    expect(first.status).toBe(200);
    const charged = startingMicros - (await fixture.availableMicros('alice'));
    expect(charged).toBeGreaterThan(0n);
    const retry = await embed('embeddings-retry-original-0001');
    expect(retry.status).toBe(409);
    expect(retry.headers.get('x-should-retry')).toBe('false');
    expect(await retry.json()).toMatchObject({
      error: {
        code: 'idempotency_key_reused',
        original_hold_id: expect.stringMatching(/^[1-9][0-9]*$/),
        original_request_id: first.headers.get('x-request-id'),
      },
      request_id: retry.headers.get('x-request-id'),
    });
    expect(fixture.openAi.requests).toHaveLength(1);
    expect(await fixture.availableMicros('alice')).toBe(startingMicros - charged);
  });
});

describe('Idempotency-Key and refusals', () => {
  test('a key refused with 402 stays refused after a top-up (TigerBeetle binds the id); a new key passes', async () => {
    fixture = await startProxyFixture();
    const refused = await chat('key-before-topup-0001');
    expect(refused.status).toBe(402);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain(
      'retry with a new key',
    );
    await fixture.topUp('alice', '10.00');
    expect((await chat('key-before-topup-0001')).status).toBe(402);
    expect((await chat('key-after-topup-0002')).status).toBe(200);
    expect(await fixture.availableMicros('alice')).toBe(startingMicros - chargeMicros);
  });

  test('RATE-04: a key refused with 429 passes once the window has room: the rate unit is not bound to the key', async () => {
    fixture = await startProxyFixture({ rateLimit: { enabled: true, requestsPerMinute: 1 } });
    await fixture.topUp('alice', '10.00');
    expect((await chat()).status).toBe(200);
    const limited = await chat('key-rate-limited-0001');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
    fixture.clock.advanceSeconds(61);
    const retried = await chat('key-rate-limited-0001');
    expect(retried.status).toBe(200);
    expect(await fixture.availableMicros('alice')).toBe(startingMicros - 2n * chargeMicros);
  });
});
