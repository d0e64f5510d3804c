import { request as httpRequest } from 'node:http';
import { startServer, type RunningServer } from '../../../runtime/node-server';
import { startProxyFixture, type ProxyFixture } from '../../support/proxy';

/** Races and fault paths of the billed request path (issue 11), each reproduced before it was fixed. */

let fixture: ProxyFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

describe("RATE-02: a key's first requests in a concurrent burst", () => {
  const burst = async (proxy: ProxyFixture, path: string, count: number) =>
    Promise.all(
      Array.from({ length: count }, () =>
        proxy.request('GET', path).then((response) => response.status),
      ),
    );

  test('50 concurrent first requests on a new key with a limit of 60 all pass, and again after the limit changes', async () => {
    fixture = await startProxyFixture({ rateLimit: { enabled: true, requestsPerMinute: 60 } });
    expect(await burst(fixture, '/v1/models', 50)).toEqual(Array(50).fill(200));
    // A changed limit is a fresh account: its first burst must not see it half-opened either.
    const changed = await startProxyFixtureSharing(fixture, 61);
    expect(await burst(changed, '/v1/models', 50)).toEqual(Array(50).fill(200));
  });

  test('50 concurrent first billed requests on a new key all pass, and each is charged', async () => {
    fixture = await startProxyFixture({ rateLimit: { enabled: true, requestsPerMinute: 60 } });
    await fixture.topUp('alice', '10.00');
    const statuses = await Promise.all(
      Array.from({ length: 50 }, (_, index) =>
        fixture!
          .request('POST', '/v1/chat/completions', {
            body: {
              model: 'echo',
              messages: [{ role: 'user', content: `burst ${index}` }],
              max_tokens: 5,
            },
          })
          .then((response) => response.status),
      ),
    );
    expect(statuses).toEqual(Array(50).fill(200));
    expect(fixture.logger.auditEvents('billing_failure')).toHaveLength(0);
  });
});

/** The same proxy, keys and credits service, with another configured limit (a config change). */
function startProxyFixtureSharing(proxy: ProxyFixture, requestsPerMinute: number): ProxyFixture {
  const app = proxy.anotherInstance({ rateLimit: { enabled: true, requestsPerMinute } });
  return {
    ...proxy,
    app,
    request: (method, path, options = {}) =>
      Promise.resolve(
        app.request(path, {
          method,
          headers: { authorization: `Bearer ${proxy.keys.alice}`, ...options.headers },
        }),
      ),
  };
}

describe('RATE-05: failed authentications are throttled per source, never a valid key', () => {
  const from = (proxy: ProxyFixture, source: string, key: string) =>
    proxy.request('GET', '/v1/models', {
      key,
      headers: { 'x-forwarded-for': `10.0.0.1, ${source}` },
    });

  test('behind one NAT address, a client guessing keys never locks out a client with a valid key', async () => {
    fixture = await startProxyFixture({ authFailuresPerMinute: 3 });
    const statuses = [];
    for (let index = 0; index < 5; index += 1)
      statuses.push((await from(fixture, '203.0.113.9', `sk-wrong-guess-${index}`)).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    const right = await from(fixture, '203.0.113.9', fixture.keys.alice);
    expect(right.status).toBe(200);
    expect((await from(fixture, '203.0.113.9', fixture.keys.bob)).status).toBe(200);
  });

  test('rotating junk keys does not escape the throttle: every further failure from the source is 429 with Retry-After', async () => {
    fixture = await startProxyFixture({ authFailuresPerMinute: 3 });
    for (let index = 0; index < 3; index += 1)
      await from(fixture, '203.0.113.9', `sk-junk-${index}`);
    for (const junk of [
      'sk-junk-a',
      'sk-junk-b',
      'sk-junk-c',
      fixture.keys.expired,
      fixture.keys.revoked,
    ]) {
      const refused = await from(fixture, '203.0.113.9', junk);
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(await refused.json()).toMatchObject({ error: { code: 'too_many_auth_failures' } });
    }
    // Another source is not affected.
    expect((await from(fixture, '198.51.100.4', 'sk-junk-z')).status).toBe(401);
  });
});

describe('LOG-02: request ids are ours', () => {
  test('a client-supplied x-request-id is never used as our id; it is logged as a separate field', async () => {
    fixture = await startProxyFixture();
    const response = await fixture.request('GET', '/v1/models', {
      headers: { 'x-request-id': 'client-chosen-id-1' },
    });
    const ours = response.headers.get('x-request-id');
    expect(ours).toMatch(/^[0-9a-f-]{36}$/);
    const line = fixture.logger.records.find(
      (record) => record.message === 'request' && record.fields.request_id === ours,
    );
    expect(line?.fields).toMatchObject({ client_request_id: 'client-chosen-id-1' });
    expect(
      fixture.logger.records.some((record) => record.fields.request_id === 'client-chosen-id-1'),
    ).toBe(false);
  });

  test('a client request id that could forge log lines is not logged at all', async () => {
    fixture = await startProxyFixture();
    const response = await fixture.request('GET', '/v1/models', {
      headers: { 'x-request-id': 'a b"}{"level":"ERROR' },
    });
    const line = fixture.logger.records.find(
      (record) =>
        record.message === 'request' &&
        record.fields.request_id === response.headers.get('x-request-id'),
    );
    expect(line?.fields.client_request_id).toBeUndefined();
  });
});

describe('LOG-02: a request body the client does not finish', () => {
  let server: RunningServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  test('is answered and counted as a client error (4xx), never logged as an unhandled 500', async () => {
    fixture = await startProxyFixture();
    const proxy = fixture;
    server = await startServer({ fetch: proxy.app.fetch, hostname: '127.0.0.1', port: 0 });
    const logged = new Promise<void>((resolve) => {
      const info = proxy.logger.info.bind(proxy.logger);
      const warn = proxy.logger.warn.bind(proxy.logger);
      proxy.logger.info = (message, fields) => (
        info(message, fields),
        message === 'request' && resolve()
      );
      proxy.logger.warn = (message, fields) => (
        warn(message, fields),
        message === 'slow request' && resolve()
      );
    });
    const url = new URL(`${server.url}/v1/chat/completions`);
    const request = httpRequest(url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${proxy.keys.alice}`,
        'content-type': 'application/json',
        'content-length': '1000',
      },
    });
    request.on('error', () => undefined); // the socket is cut on purpose
    request.write('{"model":"echo","messages":[', () => request.destroy());
    await logged;
    const line = proxy.logger.records.find((record) => record.message === 'request');
    expect(line?.fields.status).toBeGreaterThanOrEqual(400);
    expect(line?.fields.status).toBeLessThan(500);
    expect(proxy.logger.records.filter((record) => record.level === 'ERROR')).toEqual([]);
    expect(proxy.logger.text()).not.toMatch(/\n\s+at /);
  });
});
