import type { LedgerClient } from '../../../tigerbeetle/ledger';
import { LedgerUnavailableError } from '../../../tigerbeetle/ledger';
import { createCreditsFixture, newKey, type CreditsFixture } from '../../support/credits';

let fixture: CreditsFixture;
beforeEach(() => {
  fixture = createCreditsFixture();
});
afterEach(() => fixture.close());

async function json(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}

async function topUp(userId: string, amount: string, headers = newKey()): Promise<Response> {
  return fixture.request('POST', '/api/v1/topup', { body: { user_id: userId, amount }, headers });
}

async function hold(
  userId: string,
  amount: string,
  headers = newKey(),
  timeoutSeconds = 60,
): Promise<Response> {
  return fixture.request('POST', '/api/v1/holds', {
    body: { user_id: userId, amount, timeout_seconds: timeoutSeconds },
    headers,
    key: fixture.proxyKey,
  });
}

async function availableMicros(userId: string): Promise<string> {
  return (await json(await fixture.request('GET', `/api/v1/balance/${userId}`)))
    .available_micros as string;
}

describe('authentication and roles', () => {
  test('AUTH-01: a missing or wrong key gets 401 JSON and nothing runs', async () => {
    for (const key of [null, 'sk-wrong']) {
      const response = await fixture.request('POST', '/api/v1/topup', {
        body: { user_id: 'alice', amount: '5' },
        key,
        headers: newKey(),
      });
      expect(response.status).toBe(401);
      const body = await json(response);
      expect(body).toMatchObject({
        error: { type: 'authentication_error', code: 'invalid_api_key' },
        request_id: expect.any(String),
      });
    }
    expect((await fixture.request('GET', '/api/v1/balance/alice')).status).toBe(404); // no account: the top-ups never ran
  });

  test('AUTH-06: keys are accepted as Authorization: Bearer and as X-API-Key', async () => {
    await topUp('alice', '1');
    expect((await fixture.request('GET', '/api/v1/balance/alice')).status).toBe(200);
    const viaHeader = await fixture.request('GET', '/api/v1/balance/alice', {
      key: null,
      headers: { 'x-api-key': fixture.adminKey },
    });
    expect(viaHeader.status).toBe(200);
  });

  test('roles: the proxy key cannot top up, the admin key cannot place holds (403)', async () => {
    const proxyTopUp = await fixture.request('POST', '/api/v1/topup', {
      body: { user_id: 'alice', amount: '5' },
      key: fixture.proxyKey,
      headers: newKey(),
    });
    expect(proxyTopUp.status).toBe(403);
    const adminHold = await fixture.request('POST', '/api/v1/holds', {
      body: { user_id: 'alice', amount: '1', timeout_seconds: 60 },
      headers: newKey(),
    });
    expect(adminHold.status).toBe(403);
    expect(
      (await fixture.request('GET', '/api/v1/transfers/alice', { key: fixture.proxyKey })).status,
    ).toBe(403);
  });

  test('LOG-05: an authentication failure is an audit record without the key', async () => {
    await fixture.request('GET', '/api/v1/balance/alice', { key: 'sk-secret-guess-123' });
    expect(fixture.logger.auditEvents('auth_failure')).toHaveLength(1);
    expect(fixture.logger.text()).not.toContain('sk-secret-guess-123');
  });

  test('MON-01: health needs no key; readiness makes a real ledger round trip every time', async () => {
    expect((await fixture.request('GET', '/api/v1/health', { key: null })).status).toBe(200);
    expect((await fixture.request('GET', '/api/v1/ready', { key: null })).status).toBe(200);
    fixture.embedded.close(); // the ledger goes away after the operator accounts were created
    const ready = await fixture.request('GET', '/api/v1/ready', { key: null });
    expect(ready.status).toBe(503);
    expect(await json(ready)).toEqual({ status: 'not_ready', service: 'credits' });
  });
});

describe('top-ups and balances', () => {
  test('a top-up creates the account and credits it exactly', async () => {
    const response = await topUp('alice', '100.00');
    expect(response.status).toBe(201);
    expect(await json(response)).toMatchObject({
      user_id: 'alice',
      amount: '100.000000',
      amount_micros: '100000000',
      balance: { available_micros: '100000000' },
    });
    expect(await availableMicros('alice')).toBe('100000000');
  });

  test('DATA-06: a retried top-up with the same Idempotency-Key moves money once and returns the first result', async () => {
    const headers = newKey();
    const first = await json(await topUp('alice', '10', headers));
    const retry = await topUp('alice', '10', headers);
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect((await json(retry)).transfer_id).toBe(first.transfer_id);
    expect(await availableMicros('alice')).toBe('10000000');
  });

  test('the same Idempotency-Key with a different amount is a 409', async () => {
    const headers = newKey();
    await topUp('alice', '10', headers);
    const conflict = await topUp('alice', '11', headers);
    expect(conflict.status).toBe(409);
    expect(await availableMicros('alice')).toBe('10000000');
  });

  test('an unknown user has no balance: 404', async () => {
    const response = await fixture.request('GET', '/api/v1/balance/nobody');
    expect(response.status).toBe(404);
    expect(await json(response)).toMatchObject({ error: { code: 'user_not_found' } });
  });

  test('adjustments credit and debit, and a debit cannot overdraw', async () => {
    await topUp('alice', '10');
    const credit = await fixture.request('POST', '/api/v1/adjustments', {
      body: { user_id: 'alice', amount: '2.5', direction: 'credit', reason: 'goodwill' },
      headers: newKey(),
    });
    expect(credit.status).toBe(201);
    const debit = await fixture.request('POST', '/api/v1/adjustments', {
      body: { user_id: 'alice', amount: '1', direction: 'debit', reason: 'correction' },
      headers: newKey(),
    });
    expect(debit.status).toBe(201);
    const overdraw = await fixture.request('POST', '/api/v1/adjustments', {
      body: { user_id: 'alice', amount: '100', direction: 'debit', reason: 'too much' },
      headers: newKey(),
    });
    expect(overdraw.status).toBe(402);
    expect(await json(overdraw)).toMatchObject({
      error: {
        type: 'insufficient_credits',
        code: 'insufficient_credits',
        message: 'The debit exceeds the available balance',
        available: '11.500000',
        available_micros: '11500000',
      },
      request_id: expect.any(String),
    });
    expect(await availableMicros('alice')).toBe('11500000');
  });

  test('an overdrawing debit retried under its key is still 402; a reused key for another request is 409', async () => {
    await topUp('alice', '1');
    const key = newKey();
    const overdraw = { user_id: 'alice', amount: '5', direction: 'debit', reason: 'too much' };
    const first = await fixture.request('POST', '/api/v1/adjustments', {
      body: overdraw,
      headers: key,
    });
    expect(first.status).toBe(402);
    const retried = await fixture.request('POST', '/api/v1/adjustments', {
      body: overdraw,
      headers: key,
    });
    expect(retried.status).toBe(402);
    expect(await json(retried)).toMatchObject({
      error: {
        code: 'insufficient_credits',
        message: expect.stringMatching(/already refused for insufficient credits/),
        available_micros: '1000000',
      },
    });
    const applied = { user_id: 'alice', amount: '0.5', direction: 'debit', reason: 'fix' };
    const reusedKey = newKey();
    const done = await fixture.request('POST', '/api/v1/adjustments', {
      body: applied,
      headers: reusedKey,
    });
    expect(done.status).toBe(201);
    const reused = await fixture.request('POST', '/api/v1/adjustments', {
      body: { ...applied, amount: '0.25' },
      headers: reusedKey,
    });
    expect(reused.status).toBe(409);
    expect(await json(reused)).toMatchObject({
      error: {
        code: 'idempotency_conflict',
        message: 'This Idempotency-Key was already used for a different request',
      },
    });
    expect(await availableMicros('alice')).toBe('500000');
  });
});

describe('holds: reserve, then settle or release', () => {
  beforeEach(async () => {
    await topUp('alice', '10.00');
  });

  test('a hold reserves credits; settling charges the actual cost and returns the rest', async () => {
    const placed = await hold('alice', '3.00');
    expect(placed.status).toBe(201);
    const { hold_id: holdId, expires_at: expiresAt } = await json(placed);
    expect(typeof expiresAt).toBe('string');
    expect(await availableMicros('alice')).toBe('7000000');
    const settled = await fixture.request('POST', `/api/v1/holds/${holdId}/settle`, {
      body: { amount: '1.25' },
      key: fixture.proxyKey,
    });
    expect(settled.status).toBe(200);
    expect(await json(settled)).toMatchObject({
      status: 'settled',
      charged_micros: '1250000',
      released_micros: '1750000',
    });
    expect(await availableMicros('alice')).toBe('8750000');
  });

  test('DATA-06: settling twice is idempotent; settling for a different amount after is a 409', async () => {
    const { hold_id: holdId } = await json(await hold('alice', '3.00'));
    const settle = () =>
      fixture.request('POST', `/api/v1/holds/${holdId}/settle`, {
        body: { amount_micros: '1000000' },
        key: fixture.proxyKey,
      });
    expect((await settle()).status).toBe(200);
    expect((await settle()).status).toBe(200);
    const different = await fixture.request('POST', `/api/v1/holds/${holdId}/settle`, {
      body: { amount: '2' },
      key: fixture.proxyKey,
    });
    expect(different.status).toBe(409);
    expect(await availableMicros('alice')).toBe('9000000');
  });

  test('releasing returns everything; release after settle and settle after release are 409s', async () => {
    const { hold_id: first } = await json(await hold('alice', '3.00'));
    expect(
      (await fixture.request('POST', `/api/v1/holds/${first}/release`, { key: fixture.proxyKey }))
        .status,
    ).toBe(200);
    expect(
      (await fixture.request('POST', `/api/v1/holds/${first}/release`, { key: fixture.proxyKey }))
        .status,
    ).toBe(200);
    expect(
      (
        await fixture.request('POST', `/api/v1/holds/${first}/settle`, {
          body: { amount: '1' },
          key: fixture.proxyKey,
        })
      ).status,
    ).toBe(409);
    const { hold_id: second } = await json(await hold('alice', '3.00'));
    await fixture.request('POST', `/api/v1/holds/${second}/settle`, {
      body: { amount: '3' },
      key: fixture.proxyKey,
    });
    const late = await fixture.request('POST', `/api/v1/holds/${second}/release`, {
      key: fixture.proxyKey,
    });
    expect(late.status).toBe(409);
    expect(await json(late)).toMatchObject({ error: { code: 'hold_already_settled' } });
    expect(await availableMicros('alice')).toBe('7000000');
  });

  test('settling more than the hold is a 400 and charges nothing', async () => {
    const { hold_id: holdId } = await json(await hold('alice', '3.00'));
    const response = await fixture.request('POST', `/api/v1/holds/${holdId}/settle`, {
      body: { amount: '3.000001' },
      key: fixture.proxyKey,
    });
    expect(response.status).toBe(400);
    expect(await json(response)).toMatchObject({ error: { code: 'exceeds_hold' } });
  });

  test('402 with the available balance when the hold exceeds it, before anything is reserved', async () => {
    const response = await hold('alice', '10.000001');
    expect(response.status).toBe(402);
    expect(await json(response)).toMatchObject({
      error: { type: 'insufficient_credits', available: '10.000000', available_micros: '10000000' },
      request_id: expect.any(String),
    });
    expect(await availableMicros('alice')).toBe('10000000');
    expect(fixture.logger.auditEvents('insufficient_balance')).toHaveLength(1);
  });

  test('a user with no account gets 402 with zero available', async () => {
    const response = await hold('nobody', '1');
    expect(response.status).toBe(402);
    expect(await json(response)).toMatchObject({ error: { available_micros: '0' } });
  });

  test('a refused hold binds its key (TigerBeetle 0.17): the retry after a top-up needs a new key', async () => {
    const headers = newKey();
    expect((await hold('alice', '50', headers)).status).toBe(402);
    await topUp('alice', '100');
    const retry = await hold('alice', '50', headers);
    expect(retry.status).toBe(402);
    expect((await json(retry)).error).toMatchObject({
      message: expect.stringMatching(/retry with a new key/),
    });
    expect((await hold('alice', '50')).status).toBe(201);
  });

  test('a retried hold returns the original hold and reserves once', async () => {
    const headers = newKey();
    const first = await json(await hold('alice', '2', headers));
    const retry = await hold('alice', '2', headers);
    expect(retry.status).toBe(200);
    expect((await json(retry)).hold_id).toBe(first.hold_id);
    expect(await availableMicros('alice')).toBe('8000000');
  });

  test('DR-03: a hold nobody settles (a crash mid-request) expires by itself and the balance returns', async () => {
    const { hold_id: holdId } = await json(await hold('alice', '4', newKey(), 30));
    expect(await availableMicros('alice')).toBe('6000000');
    fixture.clock.advanceSeconds(31);
    expect(await availableMicros('alice')).toBe('10000000');
    const late = await fixture.request('POST', `/api/v1/holds/${holdId}/settle`, {
      body: { amount: '1' },
      key: fixture.proxyKey,
    });
    expect(late.status).toBe(409);
    expect(await json(late)).toMatchObject({ error: { code: 'hold_expired' } });
    const release = await fixture.request('POST', `/api/v1/holds/${holdId}/release`, {
      key: fixture.proxyKey,
    });
    expect(await json(release)).toMatchObject({ status: 'expired', released_micros: '4000000' });
    expect(fixture.logger.auditEvents('billing_failure')).toHaveLength(1);
  });

  test('an unknown hold is 404', async () => {
    const response = await fixture.request('POST', '/api/v1/holds/12345/release', {
      key: fixture.proxyKey,
    });
    expect(response.status).toBe(404);
  });
});

describe('MON-05: history per user, newest first, paged', () => {
  test('lists top-ups, holds and settlements and pages with before', async () => {
    await topUp('alice', '10');
    const { hold_id: holdId } = await json(await hold('alice', '2'));
    await fixture.request('POST', `/api/v1/holds/${holdId}/settle`, {
      body: { amount: '1' },
      key: fixture.proxyKey,
    });
    const page1 = await json(await fixture.request('GET', '/api/v1/transfers/alice?limit=2'));
    const transfers = page1.transfers as { kind: string; timestamp: string }[];
    expect(transfers.map((transfer) => transfer.kind)).toEqual(['settle', 'hold']);
    const page2 = await json(
      await fixture.request(
        'GET',
        `/api/v1/transfers/alice?limit=2&before=${page1.next_before as string}`,
      ),
    );
    expect((page2.transfers as { kind: string }[]).map((transfer) => transfer.kind)).toEqual([
      'top_up',
    ]);
    expect(page2.next_before).toBeNull();
  });

  test('a cursor before every transfer (before=1) is an empty page, not the newest page', async () => {
    await topUp('alice', '10');
    const page = await json(await fixture.request('GET', '/api/v1/transfers/alice?before=1'));
    expect(page).toMatchObject({ transfers: [], next_before: null });
  });
});

describe('LOG-02: bad input gets a clear 4xx with a JSON body and a request id, never a 500 or a stack trace', () => {
  const proxy = () => fixture.proxyKey;
  const cases: [
    string,
    string,
    string,
    unknown,
    (() => string) | null,
    Record<string, string> | null,
    number,
    RegExp,
  ][] = [
    ['malformed JSON', 'POST', '/api/v1/topup', '{"user_id":', null, {}, 400, /not valid JSON/],
    [
      'no Idempotency-Key on a top-up',
      'POST',
      '/api/v1/topup',
      { user_id: 'alice', amount: '1' },
      null,
      null,
      400,
      /Idempotency-Key header is required/,
    ],
    [
      'a short Idempotency-Key',
      'POST',
      '/api/v1/topup',
      { user_id: 'alice', amount: '1' },
      null,
      { 'idempotency-key': 'abc' },
      400,
      /8 to 128 characters/,
    ],
    [
      'a float amount',
      'POST',
      '/api/v1/topup',
      { user_id: 'alice', amount: 1.5 },
      null,
      {},
      400,
      /not a JSON number/,
    ],
    [
      'a negative amount',
      'POST',
      '/api/v1/topup',
      { user_id: 'alice', amount: '-1' },
      null,
      {},
      400,
      /no sign/,
    ],
    [
      'a zero top-up',
      'POST',
      '/api/v1/topup',
      { user_id: 'alice', amount: '0' },
      null,
      {},
      400,
      /greater than zero/,
    ],
    [
      'an exponent',
      'POST',
      '/api/v1/topup',
      { user_id: 'alice', amount: '1e6' },
      null,
      {},
      400,
      /exponent/,
    ],
    [
      'an amount beyond the top-up maximum',
      'POST',
      '/api/v1/topup',
      { user_id: 'alice', amount: '1000000.000001' },
      null,
      {},
      400,
      /exceeds the maximum/,
    ],
    [
      'a bad user id',
      'POST',
      '/api/v1/topup',
      { user_id: '../etc', amount: '1' },
      null,
      {},
      400,
      /user_id must be/,
    ],
    [
      'an unknown field',
      'POST',
      '/api/v1/topup',
      { user_id: 'alice', amount: '1', extra: true },
      null,
      {},
      400,
      /extra|Unrecognized/i,
    ],
    [
      'a hold without timeout',
      'POST',
      '/api/v1/holds',
      { user_id: 'alice', amount: '1' },
      proxy,
      {},
      400,
      /timeout_seconds/,
    ],
    [
      'a hold with a fractional timeout',
      'POST',
      '/api/v1/holds',
      { user_id: 'alice', amount: '1', timeout_seconds: 1.5 },
      proxy,
      {},
      400,
      /whole number/,
    ],
    [
      'a hold with a too long timeout',
      'POST',
      '/api/v1/holds',
      { user_id: 'alice', amount: '1', timeout_seconds: 86_400 },
      proxy,
      {},
      400,
      /at most 3600/,
    ],
    [
      'a non-numeric hold id',
      'POST',
      '/api/v1/holds/abc/settle',
      { amount: '1' },
      proxy,
      {},
      400,
      /hold id must be/,
    ],
    [
      'a hold id beyond u128',
      'POST',
      `/api/v1/holds/${'9'.repeat(39)}/release`,
      undefined,
      proxy,
      {},
      400,
      /hold id must be/,
    ],
    [
      'a history limit too large',
      'GET',
      '/api/v1/transfers/alice?limit=5000',
      undefined,
      null,
      {},
      400,
      /at most 200/,
    ],
    [
      'a history cursor that is not a timestamp',
      'GET',
      '/api/v1/transfers/alice?before=-1',
      undefined,
      null,
      {},
      400,
      /before must be/,
    ],
    [
      'a wrong content type',
      'POST',
      '/api/v1/topup',
      'user_id=alice',
      null,
      { 'content-type': 'text/plain' },
      400,
      /application\/json/,
    ],
    ['an unknown route', 'GET', '/api/v1/nothing', undefined, null, {}, 404, /No route/],
  ];

  /** The field each refusal names in `param` (OpenAI's error shape); absent where no one field is at fault. */
  const paramOf: Record<string, string> = {
    'a float amount': 'amount',
    'a negative amount': 'amount',
    'a zero top-up': 'amount',
    'an exponent': 'amount',
    'an amount beyond the top-up maximum': 'amount',
    'a bad user id': 'user_id',
    'an unknown field': 'extra',
    'a hold without timeout': 'timeout_seconds',
    'a hold with a fractional timeout': 'timeout_seconds',
    'a hold with a too long timeout': 'timeout_seconds',
    'a non-numeric hold id': 'hold_id',
    'a hold id beyond u128': 'hold_id',
    'a history limit too large': 'limit',
    'a history cursor that is not a timestamp': 'before',
  };

  test.each(cases)('%s', async (name, method, path, body, key, headers, status, message) => {
    const requestHeaders = headers === null ? {} : { ...newKey(), ...headers };
    const response = await fixture.request(method, path, {
      body,
      key: key ? key() : undefined,
      headers: requestHeaders,
    });
    expect(response.status).toBe(status);
    const parsed = await json(response);
    expect(parsed.request_id).toEqual(expect.any(String));
    expect((parsed.error as { message: string }).message).toMatch(message);
    expect((parsed.error as { param?: string }).param).toBe(paramOf[name]);
    expect(JSON.stringify(parsed)).not.toMatch(/\n\s+at |node_modules/);
  });

  test('NET-12: a body over the limit is a 413', async () => {
    const response = await fixture.request('POST', '/api/v1/topup', {
      body: { user_id: 'alice', amount: '1', pad: 'x'.repeat(20_000) },
      headers: newKey(),
    });
    expect(response.status).toBe(413);
    expect(await json(response)).toMatchObject({ error: { code: 'request_too_large' } });
  });
});

describe('DR-03: the ledger unavailable is a 503 to retry, never a 500', () => {
  test('a ledger that fails answers 503 with a request id', async () => {
    const failing: LedgerClient = new Proxy({} as LedgerClient, {
      get: () => () => Promise.reject(new LedgerUnavailableError('gateway unreachable')),
    });
    const down = createCreditsFixture({ ledger: failing });
    try {
      const response = await down.request('POST', '/api/v1/topup', {
        body: { user_id: 'alice', amount: '1' },
        headers: newKey(),
      });
      expect(response.status).toBe(503);
      expect(await json(response)).toMatchObject({
        error: { code: 'ledger_unavailable' },
        request_id: expect.any(String),
      });
      expect((await down.request('GET', '/api/v1/ready', { key: null })).status).toBe(503);
    } finally {
      down.close();
    }
  });
});

describe('LOG-04 / LOG-05: money movements are audit records with pseudonymous user ids', () => {
  test('top-up, hold and settle are logged; the user id never appears', async () => {
    await topUp('alice.smith@example.com', '10');
    const { hold_id: holdId } = await json(await hold('alice.smith@example.com', '1'));
    await fixture.request('POST', `/api/v1/holds/${holdId}/settle`, {
      body: { amount: '1' },
      key: fixture.proxyKey,
    });
    expect(fixture.logger.auditEvents().map((event) => event.audit_event)).toEqual([
      'top_up',
      'hold',
      'settle',
    ]);
    expect(fixture.logger.text()).not.toContain('alice.smith@example.com');
    expect(fixture.logger.auditEvents('top_up')[0]).toMatchObject({
      user: expect.stringMatching(/^[0-9a-f]{16}$/),
      amount_micros: '10000000',
    });
  });
});

describe('LOG-02: request ids are ours', () => {
  test('a caller-supplied x-request-id is logged as client_request_id, never used as the request id', async () => {
    const response = await fixture.request('GET', '/api/v1/balance/nobody', {
      headers: { 'x-request-id': 'proxy-request-id-1' },
    });
    const ours = response.headers.get('x-request-id');
    expect(ours).toMatch(/^[0-9a-f-]{36}$/);
    expect(((await response.json()) as { request_id: string }).request_id).toBe(ours);
    const line = fixture.logger.records.find(
      (record) => record.message === 'request' && record.fields.request_id === ours,
    );
    expect(line?.fields).toMatchObject({ client_request_id: 'proxy-request-id-1', status: 404 });
  });
});
