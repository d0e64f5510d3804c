import { createProxyApp } from '../../../lambda/proxy/app';
import { createProviders } from '../../../lambda/proxy/providers';
import { startProxyFixture, type ProxyFixture } from '../../support/proxy';

let fixture: ProxyFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

describe('RATE: limits per key and per source', () => {
  test('RATE-01 / RATE-04: over the per-key limit the answer is 429 with Retry-After and RateLimit headers, and it is logged', async () => {
    fixture = await startProxyFixture({ rateLimit: { enabled: true, requestsPerMinute: 3 } });
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let index = 0; index < 4; index += 1) {
      last = await fixture.request('GET', '/v1/models');
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(last?.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(last?.headers.get('ratelimit-limit')).toBe('3');
    expect(last?.headers.get('ratelimit-remaining')).toBe('0');
    expect(await last?.json()).toMatchObject({
      error: { type: 'rate_limit_error', code: 'rate_limit_exceeded' },
      request_id: expect.any(String),
    });
    expect(fixture.logger.auditEvents('rate_limited')).toHaveLength(1);
    // Another key has its own budget.
    expect((await fixture.request('GET', '/v1/models', { key: fixture.keys.bob })).status).toBe(
      200,
    );
  });

  test('RATE-02: the limit holds across two proxy instances sharing the ledger', async () => {
    fixture = await startProxyFixture({ rateLimit: { enabled: true, requestsPerMinute: 4 } });
    const instances = [fixture.app, fixture.anotherInstance()];
    const statuses = await Promise.all(
      Array.from({ length: 10 }, (_, index) =>
        Promise.resolve(
          instances[index % 2].request('/v1/models', {
            headers: { authorization: `Bearer ${fixture!.keys.alice}` },
          }),
        ).then((response) => response.status),
      ),
    );
    expect(statuses.filter((status) => status === 200)).toHaveLength(4);
    expect(statuses.filter((status) => status === 429)).toHaveLength(6);
  });

  test('RATE-05: repeated authentication failures from one source are throttled with 429; a right key still passes', async () => {
    fixture = await startProxyFixture({ authFailuresPerMinute: 3 });
    const from = (source: string, key: string) =>
      fixture!.request('GET', '/v1/models', {
        key,
        headers: { 'x-forwarded-for': `10.0.0.1, ${source}` },
      });
    const statuses = [];
    for (let index = 0; index < 4; index += 1)
      statuses.push((await from('203.0.113.9', 'sk-wrong-guess')).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
    const refused = await from('203.0.113.9', 'sk-wrong-guess');
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    // What is throttled is failing: a right key from the same address (the same NAT) passes.
    expect((await from('203.0.113.9', fixture.keys.alice)).status).toBe(200);
    // The ALB appends the client's address last: a forged first entry does not move the client to another bucket.
    expect(
      (
        await fixture.request('GET', '/v1/models', {
          key: 'sk-wrong-guess',
          headers: { 'x-forwarded-for': `198.51.100.4, 203.0.113.9` },
        })
      ).status,
    ).toBe(429);
    // Another source is not affected, and failures never touch the ledger.
    expect((await from('198.51.100.4', 'sk-wrong-guess')).status).toBe(401);
    expect(fixture.logger.auditEvents('rate_limited').length).toBeGreaterThanOrEqual(2);
  });

  test('RATE-05: behind API Gateway the source is the entry the ALB appended, not the ALB node API Gateway appends after it', async () => {
    fixture = await startProxyFixture({ authFailuresPerMinute: 2 });
    // X-Forwarded-For on the streaming path: <what the client sent>, <client, appended by the ALB>, <ALB node, appended by API Gateway>.
    const from = (forwardedFor: string) =>
      fixture!.request('GET', '/v1/models', {
        key: 'sk-wrong-guess',
        headers: { 'x-forwarded-for': forwardedFor },
      });
    const sources = () =>
      fixture!.logger.auditEvents('auth_failure').map((event) => event.source_address);
    await from('203.0.113.9, 10.42.1.17');
    await from('198.51.100.77, 203.0.113.9, 10.42.2.30');
    // Two failures of one client through two ALB nodes, a forged entry ignored: that client is now throttled.
    expect(sources()).toEqual(['203.0.113.9', '203.0.113.9']);
    expect((await from('203.0.113.9, 10.42.3.5')).status).toBe(429);
    // The ALB nodes are not sources: another client through the same node has its own budget.
    expect((await from('198.51.100.4, 10.42.1.17')).status).toBe(401);
    expect(sources().at(-1)).toBe('198.51.100.4');
    // A forged internal entry to the left of a public one moves nothing; a caller inside the network is taken as the ALB saw it.
    await from('10.0.0.9, 192.0.2.50, 10.42.1.17');
    await from('10.0.0.9, 10.42.1.17');
    await from('not-an-address');
    expect(sources().slice(-3)).toEqual(['192.0.2.50', '10.0.0.9', 'unknown']);
  });

  test('RATE-01: with rate limiting off (dev only) no limit applies', async () => {
    fixture = await startProxyFixture({ rateLimit: { enabled: false, requestsPerMinute: 1 } });
    for (let index = 0; index < 3; index += 1)
      expect((await fixture.request('GET', '/v1/models')).status).toBe(200);
  });
});

describe('operations', () => {
  test('LOG-06: requests slower than the threshold are logged as slow', async () => {
    fixture = await startProxyFixture({ slowRequestMilliseconds: 0 });
    await fixture.request('GET', '/health', { key: null });
    expect(
      fixture.logger.records.some(
        (record) => record.level === 'WARN' && record.message === 'slow request',
      ),
    ).toBe(true);
  });

  test('LOG-06: a passing health or readiness probe (a supervisor, a load balancer) is logged at DEBUG, a client request at INFO', async () => {
    fixture = await startProxyFixture();
    for (const path of ['/ready', '/health'])
      expect((await fixture.request('GET', path, { key: null })).status).toBe(200);
    await fixture.request('GET', '/v1/models');
    const requestLines = fixture.logger.records.filter((record) => record.message === 'request');
    expect(requestLines.map((record) => [record.level, record.fields.path])).toEqual([
      ['DEBUG', '/ready'],
      ['DEBUG', '/health'],
      ['INFO', '/v1/models'],
    ]);
  });

  test('a provider without credentials answers 503 "provider not configured" and releases the hold', async () => {
    fixture = await startProxyFixture();
    await fixture.topUp('alice', '1.00');
    const unconfigured = createProxyApp({
      keys: {
        description: 'fixture keys',
        verifier: async () => ({
          size: 1,
          verify: () => ({ status: 'valid', keyId: 'key_unconfigured', userId: 'alice' }),
        }),
      },
      credits: fixture.credits,
      providers: createProviders(async () => ({})),
      config: { ...fixture.config, rateLimit: { enabled: false, requestsPerMinute: 60 } },
      logger: fixture.logger,
      metrics: fixture.metrics,
    });
    const response = await unconfigured.request('/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: 'Bearer anything-valid-here', 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gemini-2.5-flash',
        messages: [{ role: 'user', content: 'hi' }],
      }),
    });
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({
      error: {
        code: 'provider_not_configured',
        message: expect.stringContaining('provider not configured'),
      },
    });
    expect(await fixture.availableMicros('alice')).toBe(1_000_000n);
    expect(fixture.gemini.requests).toHaveLength(0);
  });
});
