import type { Hono } from 'hono';
import { ManualClock, openEmbeddedLedger, type EmbeddedLedger } from '../../../tigerbeetle/engine';
import { ledgerOperations, type LedgerClient } from '../../../tigerbeetle/ledger';
import { createGatewayApp, type GatewayDependencies } from '../../../tigerbeetle/gateway/app';
import {
  gatewayBatchEventsMax,
  gatewayOperations,
  toWire,
} from '../../../tigerbeetle/gateway/protocol';
import { account, transfer } from '../engine/fixtures';
import {
  currentToken,
  gatewayKeyring,
  never,
  previousToken,
  recordingLogger,
  type RecordingLogger,
} from './support';

type App = Hono<never>;
type ErrorBody = { error: { message: string; type: string; code: string }; request_id: string };

function post(
  app: App,
  operation: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return Promise.resolve(
    app.request(`/v1/${operation}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${currentToken}`,
        'content-type': 'application/json',
        ...headers,
      },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    }),
  );
}

/** A ledger whose every operation does what `behaviour` says, counting calls. */
function fakeLedger(behaviour: () => Promise<never>): {
  ledger: LedgerClient;
  calls: () => number;
} {
  let calls = 0;
  const ledger = Object.fromEntries(
    ledgerOperations.map((operation) => [
      operation,
      () => {
        calls += 1;
        return behaviour();
      },
    ]),
  ) as unknown as LedgerClient;
  return { ledger, calls: () => calls };
}

function gateway(overrides: Partial<GatewayDependencies> & { logger?: RecordingLogger } = {}): {
  app: App;
  logger: RecordingLogger;
} {
  const logger = overrides.logger ?? recordingLogger();
  const app = createGatewayApp({
    ledger: embedded.createClient(),
    tokens: gatewayKeyring(),
    ...overrides,
    logger,
  }) as unknown as App;
  return { app, logger };
}

let embedded: EmbeddedLedger;
beforeEach(() => {
  embedded = openEmbeddedLedger({ clock: new ManualClock() });
});
afterEach(() => embedded.close());

describe('ledger gateway: authentication (AUTH-01, AUTH-04, AUTH-06, LOG-04, LOG-05)', () => {
  it('answers 401 JSON without a token, with a wrong token, and with an empty bearer, and never reaches the ledger', async () => {
    const { ledger, calls } = fakeLedger(() => Promise.reject(new Error('must not be called')));
    const { app, logger } = gateway({ ledger });
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong-token-0123456789abcdef0123456789abcdef' },
      { authorization: 'Bearer' },
      { authorization: `Basic ${currentToken}` },
      { 'x-api-key': currentToken }, // the gateway takes a bearer token only
    ];
    for (const headers of attempts) {
      const response = await app.request('/v1/lookup_accounts', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ ids: ['1'] }),
      });
      expect(response.status).toBe(401);
      const body = (await response.json()) as ErrorBody;
      expect(body.error).toMatchObject({ type: 'authentication_error', code: 'invalid_token' });
      expect(body.request_id).toEqual(expect.any(String));
    }
    expect(calls()).toBe(0);
    const failures = logger.records.filter(
      (record) => record.fields.audit_event === 'auth_failure',
    );
    expect(failures).toHaveLength(attempts.length);
    expect(failures[0].fields).toMatchObject({
      reason: 'missing_token',
      route: '/v1/lookup_accounts',
    });
    expect(failures[1].fields).toMatchObject({ reason: 'invalid_token' });
    expect(failures[4].fields).toMatchObject({ reason: 'missing_token' });
  });

  it('accepts the current and the previous token, and logs which one was used', async () => {
    const { app, logger } = gateway();
    for (const token of [currentToken, previousToken]) {
      const response = await post(
        app,
        'lookup_accounts',
        { ids: ['1'] },
        { authorization: `Bearer ${token}` },
      );
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ accounts: [] });
    }
    const versions = logger.records
      .filter((record) => record.message === 'request')
      .map((record) => record.fields.token_version);
    expect(versions).toEqual(['current', 'previous']);
  });

  it('never writes a token into a log line, accepted or refused', async () => {
    const { app, logger } = gateway();
    const wrong = 'wrong-token-that-must-not-be-logged-0123456789';
    await post(app, 'lookup_accounts', { ids: ['1'] });
    await post(
      app,
      'lookup_accounts',
      { ids: ['1'] },
      { authorization: `Bearer ${previousToken}` },
    );
    await post(app, 'lookup_accounts', { ids: ['1'] }, { authorization: `Bearer ${wrong}` });
    const lines = logger.lines().join('\n');
    expect(logger.records.length).toBeGreaterThanOrEqual(4);
    for (const token of [currentToken, previousToken, wrong]) expect(lines).not.toContain(token);
  });

  it('verifies against hashes only: a verifier built from SHA-256 hashes authenticates the token', async () => {
    let presented: string | undefined;
    const keyring = gatewayKeyring();
    const { app } = gateway({
      tokens: {
        verify: (token) => {
          presented = token;
          return keyring.verify(token);
        },
      },
    });
    expect((await post(app, 'lookup_accounts', { ids: ['1'] })).status).toBe(200);
    expect(presented).toBe(currentToken);
  });
});

describe('ledger gateway: limits and validation (NET-12)', () => {
  it('answers 413 JSON to a body over the limit', async () => {
    const { app } = gateway({ limits: { bodyBytesMax: 1_024 } });
    const response = await post(app, 'lookup_accounts', {
      ids: Array.from({ length: 200 }, (_, index) => String(index + 1)),
    });
    expect(response.status).toBe(413);
    expect(((await response.json()) as ErrorBody).error.code).toBe('request_too_large');
  });

  it(`accepts ${gatewayBatchEventsMax} events and refuses ${gatewayBatchEventsMax + 1} with 400`, async () => {
    const { app } = gateway();
    const ids = (count: number) => Array.from({ length: count }, (_, index) => String(index + 1));
    expect((await post(app, 'lookup_accounts', { ids: ids(gatewayBatchEventsMax) })).status).toBe(
      200,
    );
    const response = await post(app, 'lookup_accounts', { ids: ids(gatewayBatchEventsMax + 1) });
    expect(response.status).toBe(400);
    const body = (await response.json()) as ErrorBody;
    expect(body.error.code).toBe('batch_too_large');
    expect(body.error.message).toContain(`ids: at most ${gatewayBatchEventsMax} events`);
  });

  it('refuses malformed JSON and a body that is not JSON', async () => {
    const { app } = gateway();
    const malformed = await post(app, 'lookup_accounts', '{"ids": [');
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as ErrorBody).error.code).toBe('invalid_json');
    const text = await post(app, 'lookup_accounts', 'ids=1', { 'content-type': 'text/plain' });
    expect(text.status).toBe(400);
    expect(((await text.json()) as ErrorBody).error.code).toBe('unsupported_media_type');
  });

  const goodAccount = toWire(account(1n));
  const goodTransfer = toWire(transfer(1n));
  const cases: [string, string, unknown, string][] = [
    [
      'a wrong type (string for a u32)',
      'create_accounts',
      { accounts: [{ ...goodAccount, ledger: '700' }] },
      'accounts[0].ledger',
    ],
    ['a number for a u128', 'lookup_accounts', { ids: [1] }, 'ids[0]'],
    [
      'a negative amount',
      'create_transfers',
      { transfers: [{ ...goodTransfer, amount: '-5' }] },
      'transfers[0].amount: a u128 must be a decimal string',
    ],
    [
      'a hexadecimal id',
      'lookup_transfers',
      { ids: ['0x10'] },
      'ids[0]: a u128 must be a decimal string',
    ],
    [
      'an exponent',
      'lookup_transfers',
      { ids: ['1e3'] },
      'ids[0]: a u128 must be a decimal string',
    ],
    [
      'a leading zero',
      'lookup_transfers',
      { ids: ['01'] },
      'ids[0]: a u128 must be a decimal string',
    ],
    [
      'a u128 over 2^128-1',
      'lookup_accounts',
      { ids: [(1n << 128n).toString()] },
      'ids[0]: a u128 is out of range',
    ],
    [
      'a u64 over 2^64-1',
      'create_accounts',
      { accounts: [{ ...goodAccount, user_data_64: (1n << 64n).toString() }] },
      'accounts[0].user_data_64: a u64 is out of range',
    ],
    [
      'a fractional u32',
      'create_transfers',
      { transfers: [{ ...goodTransfer, timeout: 1.5 }] },
      'transfers[0].timeout',
    ],
    [
      'an unknown field in an event',
      'create_accounts',
      { accounts: [{ ...goodAccount, colour: 'blue' }] },
      'accounts[0].colour: unknown field',
    ],
    [
      'an unknown top-level field',
      'lookup_accounts',
      { ids: ['1'], limit: 5 },
      'limit: unknown field',
    ],
    [
      'a missing field',
      'create_transfers',
      { transfers: [{ ...goodTransfer, amount: undefined }] },
      'transfers[0].amount',
    ],
    ['an empty batch', 'lookup_accounts', { ids: [] }, 'ids'],
    [
      'a filter of the wrong shape',
      'get_account_balances',
      { filter: { account_id: '1' } },
      'filter.user_data_128',
    ],
    ['an array body', 'lookup_accounts', [], 'body'],
  ];
  it.each(cases)(
    'refuses %s with a 400 that names the field',
    async (_name, operation, body, expected) => {
      const { app } = gateway();
      const response = await post(app, operation, body);
      expect(response.status).toBe(400);
      const payload = (await response.json()) as ErrorBody;
      expect(payload.error).toMatchObject({
        type: 'invalid_request_error',
        code: 'invalid_request',
      });
      expect(payload.error.message).toContain(expected);
    },
  );

  it('lists at most a few problems of a bad batch, and counts the rest', async () => {
    const { app } = gateway();
    const response = await post(app, 'lookup_accounts', {
      ids: Array.from({ length: 50 }, () => '-1'),
    });
    const message = ((await response.json()) as ErrorBody).error.message;
    expect(message).toContain('ids[4]');
    expect(message).not.toContain('ids[5]');
    expect(message).toContain('and 45 more');
  });

  it('answers unknown routes and methods with a JSON 404', async () => {
    const { app } = gateway();
    for (const [method, path] of [
      ['POST', '/v1/query_accounts'],
      ['GET', '/v1/lookup_accounts'],
      ['GET', '/'],
    ]) {
      const response = await app.request(path, {
        method,
        headers: { authorization: `Bearer ${currentToken}` },
      });
      expect(response.status).toBe(404);
      expect(((await response.json()) as ErrorBody).error.code).toBe('not_found');
    }
  });
});

describe('ledger gateway: a failing ledger (DR-03)', () => {
  const deadlineMilliseconds = 150;

  it('answers 503 within the deadline when the ledger never answers', async () => {
    const { ledger } = fakeLedger(() => never());
    const { app, logger } = gateway({
      ledger,
      limits: { ledgerRequestTimeoutMilliseconds: deadlineMilliseconds },
    });
    const started = Date.now();
    const response = await post(app, 'create_transfers', { transfers: [toWire(transfer(1n))] });
    const elapsed = Date.now() - started;
    expect(response.status).toBe(503);
    expect(((await response.json()) as ErrorBody).error).toMatchObject({
      type: 'service_unavailable',
      code: 'ledger_unavailable',
    });
    expect(elapsed).toBeGreaterThanOrEqual(deadlineMilliseconds - 10);
    expect(elapsed).toBeLessThan(deadlineMilliseconds + 1_000);
    expect(
      logger.records.some(
        (record) =>
          record.message === 'ledger call failed' && record.fields.operation === 'createTransfers',
      ),
    ).toBe(true);
  });

  it.each([
    ['rejects', () => Promise.reject(new Error('connection to 10.0.3.17:3000 lost'))],
    [
      'throws synchronously',
      (): Promise<never> => {
        throw new TypeError('internal detail');
      },
    ],
    ['rejects with a non-Error', () => Promise.reject('weird')],
  ])('answers 503 when the ledger %s, without leaking the cause', async (_name, behaviour) => {
    const { ledger } = fakeLedger(behaviour);
    const { app } = gateway({ ledger });
    for (const [operation, body] of [
      ['lookup_accounts', { ids: ['1'] }],
      [
        'get_account_transfers',
        {
          filter: toWire({
            account_id: 1n,
            user_data_128: 0n,
            user_data_64: 0n,
            user_data_32: 0,
            code: 0,
            timestamp_min: 0n,
            timestamp_max: 0n,
            limit: 10,
            flags: 3,
          }),
        },
      ],
    ] as const) {
      const response = await post(app, operation, body);
      expect(response.status).toBe(503);
      const text = await response.text();
      expect(text).toContain('ledger_unavailable');
      expect(text).not.toMatch(/10\.0\.3\.17|internal detail|weird|stack/);
    }
  });
});

describe('ledger gateway: health and readiness (MON-01)', () => {
  it('answers /health without a token and without touching the ledger', async () => {
    const { ledger, calls } = fakeLedger(() => Promise.reject(new Error('down')));
    const { app } = gateway({ ledger });
    const response = await app.request('/health');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
    expect(calls()).toBe(0);
  });

  it('answers /ready 200 after a real round trip to a working ledger', async () => {
    let lookups = 0;
    const client = embedded.createClient();
    const counted: LedgerClient = {
      ...client,
      lookupAccounts: (ids) => ((lookups += 1), client.lookupAccounts(ids)),
    };
    const { app } = gateway({ ledger: counted });
    const response = await app.request('/ready');
    expect(response.status).toBe(200);
    expect(lookups).toBe(1);
  });

  it('answers /ready 503 when the ledger fails, never answers, or the gateway is draining', async () => {
    const dead = gateway({ ledger: fakeLedger(() => Promise.reject(new Error('down'))).ledger });
    expect((await dead.app.request('/ready')).status).toBe(503);
    const silent = gateway({
      ledger: fakeLedger(() => never()).ledger,
      limits: { ledgerRequestTimeoutMilliseconds: 100 },
    });
    const started = Date.now();
    expect((await silent.app.request('/ready')).status).toBe(503);
    expect(Date.now() - started).toBeLessThan(1_000);
    const draining = gateway({ isDraining: () => true });
    const response = await draining.app.request('/ready');
    expect(response.status).toBe(503);
    expect(((await response.json()) as ErrorBody).error.code).toBe('shutting_down');
    expect(response.headers.get('connection')).toBe('close');
  });
});

describe('ledger gateway: request logs (LOG-04, DATA-07)', () => {
  it('writes one line per request with method, route, status, duration, request id and event count, never the body', async () => {
    const { app, logger } = gateway();
    const marker = 987_654_321_123_456_789n;
    const response = await post(
      app,
      'create_accounts',
      { accounts: [toWire(account(1n, { user_data_128: marker })), toWire(account(2n))] },
      { 'x-request-id': 'req-abc-123' },
    );
    expect(response.status).toBe(200);
    // Our own id, never the caller's; the caller's is logged beside it (LOG-02).
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    await post(app, 'lookup_accounts', { ids: ['1'] }, { authorization: 'Bearer nope' });
    const requests = logger.records.filter((record) => record.message === 'request');
    expect(requests).toHaveLength(2);
    expect(requests[0].fields).toMatchObject({
      request_id: response.headers.get('x-request-id'),
      client_request_id: 'req-abc-123',
      method: 'POST',
      route: '/v1/create_accounts',
      status: 200,
      event_count: 2,
      duration_milliseconds: expect.any(Number),
    });
    expect(requests[1].fields).toMatchObject({ status: 401, event_count: 0 });
    expect(logger.lines().join('\n')).not.toContain(marker.toString());
  });

  it('refuses limits that are not positive integers', () => {
    expect(() => gateway({ limits: { bodyBytesMax: 0 } })).toThrow(/bodyBytesMax/);
    expect(() => gateway({ limits: { ledgerRequestTimeoutMilliseconds: Number.NaN } })).toThrow(
      /ledgerRequestTimeoutMilliseconds/,
    );
  });

  it('serves exactly the operations of the protocol', async () => {
    const { app } = gateway();
    for (const operation of gatewayOperations) {
      const response = await post(app, operation, {});
      expect(response.status).toBe(400); // routed and validated, not 404
    }
  });
});
