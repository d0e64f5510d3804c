import { keyReference, keyReferenceText } from '../../../lambda/shared/receipts';
import { openAiStream } from '../../support/fake-providers';
import { startProxyFixture, type ProxyFixture } from '../../support/proxy';

/**
 * Receipts over HTTP (issue 15): the proxy app in front of a real credits service over the
 * embedded ledger; every receipt is read back from the ledger's user data, nothing else.
 */

let fixture: ProxyFixture;

beforeEach(async () => {
  fixture = await startProxyFixture();
  await fixture.topUp('alice', '1.00');
  await fixture.topUp('bob', '1.00');
});
afterEach(() => fixture.close());

type Json = Record<string, unknown>;

async function complete(body: Json, key?: string): Promise<Response> {
  return fixture.request('POST', '/v1/chat/completions', {
    body: { messages: [{ role: 'user', content: 'Hello, ledger!' }], max_tokens: 50, ...body },
    key,
  });
}

async function usage(path: string, key?: string | null): Promise<{ status: number; body: Json }> {
  const response = await fixture.request('GET', path, { key });
  return { status: response.status, body: (await response.json()) as Json };
}

/** The key id the fixture gave alice's key (the audit record of a completion names it). */
async function keyIdOf(requestId: string): Promise<string> {
  return (await fixture.logger.nextAudit('chat_completion', requestId)).key_id as string;
}

describe('GET /v1/usage/{request_id}', () => {
  test("DATA-06, DATA-07: a completion's receipt matches its headers to the micro, the x-request-id is its id, and its audit record carries the same ids", async () => {
    const response = await complete({ model: 'echo' });
    expect(response.status).toBe(200);
    await response.json();
    const requestId = response.headers.get('x-request-id')!;
    const receipt = await usage(`/v1/usage/${requestId}`);
    expect(receipt.status).toBe(200);
    expect(receipt.body).toEqual({
      object: 'usage.receipt',
      request_id: requestId,
      model: 'echo',
      key_id: await keyIdOf(requestId),
      status: 'settled',
      currency: 'USD',
      held: expect.stringMatching(/^0\.\d{6}$/),
      held_micros: expect.stringMatching(/^[1-9]\d*$/),
      charged: response.headers.get('x-credits-charged'),
      charged_micros: response.headers.get('x-credits-charged-micros'),
      created_at: expect.any(String),
      resolved_at: expect.any(String),
    });
    // The hold in the receipt is the one the audit record logged, so logs and ledger join.
    const audited = await fixture.logger.nextAudit('chat_completion', requestId);
    expect(receipt.body.held_micros).toBe(audited.held_micros);
    expect(receipt.body.charged_micros).toBe(audited.charged_micros);
    expect(audited).toMatchObject({ model: 'echo', model_code: 3, hold_id: expect.any(String) });
    expect(BigInt(receipt.body.charged_micros as string)).toBeLessThan(
      BigInt(receipt.body.held_micros as string),
    );
  });

  test("a completion's own id (chatcmpl-<request id>, what an SDK user holds) finds the same receipt", async () => {
    const response = await complete({ model: 'echo' });
    const completion = (await response.json()) as Json;
    const requestId = response.headers.get('x-request-id')!;
    expect(completion.id).toBe(`chatcmpl-${requestId}`);
    const byCompletionId = await usage(`/v1/usage/${completion.id as string}`);
    expect(byCompletionId.status).toBe(200);
    expect(byCompletionId.body).toEqual((await usage(`/v1/usage/${requestId}`)).body);
    const malformed = await usage('/v1/usage/chatcmpl-not-a-uuid');
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({
      error: { code: 'invalid_request_id', param: 'request_id' },
    });
  });

  test("AUTH-01: another user's receipt is 404, the same as one that does not exist; a malformed id is 400; no key is 401", async () => {
    const response = await complete({ model: 'echo' });
    const requestId = response.headers.get('x-request-id')!;
    const bobs = await usage(`/v1/usage/${requestId}`, fixture.keys.bob);
    expect(bobs.status).toBe(404);
    expect(bobs.body).toMatchObject({
      error: { code: 'receipt_not_found', type: 'not_found_error' },
      request_id: expect.any(String),
    });
    expect((await usage('/v1/usage/0b5e0a5c-3f4e-4b8a-9c1d-2e3f4a5b6c7d')).status).toBe(404);
    const malformed = await usage('/v1/usage/not-a-uuid');
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({ error: { code: 'invalid_request_id' } });
    expect((await usage('/v1/usage', fixture.keys.bob)).body.data).toEqual([]);
    expect((await usage(`/v1/usage/${requestId}`, null)).status).toBe(401);
  });

  test('a failed request has a receipt: released, nothing charged', async () => {
    fixture.openAi.script(
      { status: 500, body: { error: { message: 'down' } } },
      { status: 500, body: { error: { message: 'still down' } } },
    );
    const response = await complete({ model: 'fake-gpt' });
    expect(response.status).toBeGreaterThanOrEqual(500);
    const requestId = response.headers.get('x-request-id')!;
    const receipt = await usage(`/v1/usage/${requestId}`);
    expect(receipt.body).toMatchObject({
      request_id: requestId,
      model: 'fake-gpt',
      status: 'released',
      charged: '0.000000',
      charged_micros: '0',
    });
    expect(BigInt(receipt.body.held_micros as string)).toBeGreaterThan(0n);
  });

  test('a streamed request has a receipt with what its usage chunk said; one settled from an estimate too', async () => {
    const streamed = await complete({
      model: 'echo',
      stream: true,
      stream_options: { include_usage: true },
    });
    const events = (await streamed.text()).split('\n\n').filter((event) => event !== '');
    const usageChunk = JSON.parse(events.at(-2)!.replace(/^data: /, '')) as Json;
    const receipt = await usage(`/v1/usage/${streamed.headers.get('x-request-id')}`);
    expect(receipt.body).toMatchObject({
      status: 'settled',
      model: 'echo',
      charged: usageChunk.x_credits_charged,
    });

    fixture.openAi.script(openAiStream(['An answer the provider never counted.'], null));
    const estimated = await complete({ model: 'fake-gpt', stream: true });
    await estimated.text();
    const estimatedId = estimated.headers.get('x-request-id')!;
    const audited = await fixture.logger.nextAudit('chat_completion', estimatedId);
    expect(audited.usage_source).toBe('estimate');
    expect((await usage(`/v1/usage/${estimatedId}`)).body).toMatchObject({
      status: 'settled',
      charged_micros: audited.charged_micros,
    });
  });
});

describe('GET /v1/usage', () => {
  test('lists the caller’s receipts newest first, in pages, filtered by model and key', async () => {
    const ids: string[] = [];
    for (const model of ['echo', 'fake-gpt', 'echo', 'echo', 'fake-gpt']) {
      const response = await complete({ model });
      expect(response.status).toBe(200);
      ids.push(response.headers.get('x-request-id')!);
    }
    await complete({ model: 'echo' }, fixture.keys.bob); // another user's: never listed
    const newestFirst = [...ids].reverse();

    const all = await usage('/v1/usage');
    expect(all.status).toBe(200);
    expect((all.body.data as Json[]).map((receipt) => receipt.request_id)).toEqual(newestFirst);
    expect(all.body).toMatchObject({ object: 'list', has_more: false, next_before: null });

    const first = await usage('/v1/usage?limit=2');
    expect((first.body.data as Json[]).map((receipt) => receipt.request_id)).toEqual(
      newestFirst.slice(0, 2),
    );
    expect(first.body.has_more).toBe(true);
    const second = await usage(`/v1/usage?limit=2&before=${first.body.next_before as string}`);
    expect((second.body.data as Json[]).map((receipt) => receipt.request_id)).toEqual(
      newestFirst.slice(2, 4),
    );
    const third = await usage(`/v1/usage?limit=2&before=${second.body.next_before as string}`);
    expect((third.body.data as Json[]).map((receipt) => receipt.request_id)).toEqual(
      newestFirst.slice(4),
    );

    const echoOnly = await usage('/v1/usage?model=echo');
    expect((echoOnly.body.data as Json[]).map((receipt) => receipt.request_id)).toEqual([
      ids[3],
      ids[2],
      ids[0],
    ]);
    const keyId = await keyIdOf(ids[0]);
    const byKey = await usage(`/v1/usage?key_id=${keyId}&limit=1`);
    expect((byKey.body.data as Json[])[0]).toMatchObject({ request_id: ids[4], key_id: keyId });
    expect((await usage('/v1/usage?key_id=key_00000000nokey')).body.data).toEqual([]);
    expect(keyReferenceText(keyReference(keyId))).toMatch(/^[0-9a-f]{16}$/);
  });

  test('refuses a bad page size, cursor or model with 400, never 500', async () => {
    const cases = [
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=abc', 'limit'],
      ['before=-1', 'before'],
      ['model=nope', 'model'],
      ['key_id=nokey', 'key_id'],
      ['x=1', 'x'],
    ];
    for (const [query, param] of cases) {
      const answer = await usage(`/v1/usage?${query}`);
      expect([query, answer.status]).toEqual([query, 400]);
      expect([query, answer.body]).toMatchObject([
        query,
        { error: { type: 'invalid_request_error', param } },
      ]);
    }
  });
});
