import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { startServer, type RunningServer } from '../../../runtime/node-server';
import { startProxyFixture, type ProxyFixture } from '../../support/proxy';

/**
 * SDKs keep connections alive and send the next request on the same socket. An early answer (413
 * over the body limit, 401 without a key, 429 over the rate limit) must leave that socket usable:
 * the rest of the refused body is read and discarded, never taken for the start of the next
 * request. Checked on the real Node server with a raw socket, so nothing hides the framing.
 */

let fixture: ProxyFixture;
let server: RunningServer;
beforeEach(async () => {
  fixture = await startProxyFixture({ requestBodyBytesMax: 1024 });
  await fixture.topUp('alice', '10.00');
  server = await startServer({ fetch: fixture.app.fetch, hostname: '127.0.0.1', port: 0 });
});
afterEach(async () => {
  await server.close();
  await fixture.close();
});

/** A raw HTTP/1.1 connection that collects complete responses (status and body) as they arrive. */
function rawConnection(port: number) {
  const socket: Socket = connect(port, '127.0.0.1');
  let buffered = Buffer.alloc(0);
  const responses: { status: number; body: string }[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  let closed = false;
  const settle = () => {
    for (const waiter of [...waiters])
      if (responses.length >= waiter.count || closed) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
  };
  const parse = () => {
    for (;;) {
      const headerEnd = buffered.indexOf('\r\n\r\n');
      if (headerEnd < 0) return;
      const head = buffered.subarray(0, headerEnd).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? Number.NaN);
      if (!Number.isFinite(length)) throw new Error(`the test expects content-length: ${head}`);
      if (buffered.length < headerEnd + 4 + length) return;
      const body = buffered.subarray(headerEnd + 4, headerEnd + 4 + length).toString('utf8');
      responses.push({ status, body });
      buffered = buffered.subarray(headerEnd + 4 + length);
    }
  };
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    parse();
    settle();
  });
  socket.on('close', () => {
    closed = true;
    settle();
  });
  socket.on('error', () => undefined);
  return {
    responses,
    write: (text: string | Buffer) => socket.write(text),
    /** Settles once `count` responses arrived, or the server closed the connection. */
    responsesArrived: (count: number) =>
      new Promise<void>((resolve) => {
        waiters.push({ count, resolve });
        settle();
      }),
    get closed() {
      return closed;
    },
    end: () => socket.destroy(),
  };
}

const chatBody = (contentBytes: number) =>
  JSON.stringify({
    model: 'echo',
    messages: [{ role: 'user', content: 'x'.repeat(contentBytes) }],
  });

function post(path: string, body: string, headers: Record<string, string>, chunked = false) {
  const lines = [
    `POST ${path} HTTP/1.1`,
    'host: 127.0.0.1',
    'content-type: application/json',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  if (!chunked)
    return `${[...lines, `content-length: ${Buffer.byteLength(body)}`].join('\r\n')}\r\n\r\n${body}`;
  // Two chunks, so the limit is crossed while the body is still arriving.
  const half = Math.floor(body.length / 2);
  const chunks = [body.slice(0, half), body.slice(half)]
    .map((piece) => `${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n`)
    .join('');
  return `${[...lines, 'transfer-encoding: chunked'].join('\r\n')}\r\n\r\n${chunks}0\r\n\r\n`;
}

const health = 'GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n';

describe('NET-12: an early answer leaves a kept-alive connection usable', () => {
  const cases: [string, () => string, number][] = [
    [
      '413 over the body limit (content-length)',
      () =>
        post('/v1/chat/completions', chatBody(2 * 1024 * 1024), {
          authorization: `Bearer ${fixture.keys.alice}`,
        }),
      413,
    ],
    [
      '413 over the body limit (chunked)',
      () =>
        post(
          '/v1/chat/completions',
          chatBody(2 * 1024 * 1024),
          { authorization: `Bearer ${fixture.keys.alice}` },
          true,
        ),
      413,
    ],
    ['401 without a key, body unread', () => post('/v1/chat/completions', chatBody(512), {}), 401],
  ];
  test.each(cases)('%s, then a second request on the same socket', async (_, request, status) => {
    const connection = rawConnection(server.port);
    try {
      connection.write(request());
      connection.write(health);
      await connection.responsesArrived(2);
      expect(connection.responses.map((response) => response.status)).toEqual([status, 200]);
      expect(JSON.parse(connection.responses[0].body)).toMatchObject({
        error: { message: expect.any(String) },
        request_id: expect.any(String),
      });
      expect(JSON.parse(connection.responses[1].body)).toMatchObject({ status: 'ok' });
    } finally {
      connection.end();
    }
  });

  test('429 over the rate limit, body unread, then a second request on the same socket', async () => {
    await server.close();
    await fixture.close();
    fixture = await startProxyFixture({
      requestBodyBytesMax: 1024,
      rateLimit: { enabled: true, requestsPerMinute: 1 },
    });
    await fixture.topUp('alice', '10.00');
    server = await startServer({ fetch: fixture.app.fetch, hostname: '127.0.0.1', port: 0 });
    const connection = rawConnection(server.port);
    try {
      const authorization = `Bearer ${fixture.keys.alice}`;
      connection.write(
        `GET /v1/models HTTP/1.1\r\nhost: x\r\nauthorization: ${authorization}\r\n\r\n`,
      );
      connection.write(post('/v1/balance', chatBody(512), { authorization }));
      connection.write(health);
      await connection.responsesArrived(3);
      expect(connection.responses.map((response) => response.status)).toEqual([200, 429, 200]);
    } finally {
      connection.end();
    }
  });
});

describe('NET-12: with a keep-alive http.Agent (what SDKs use), the request after an early answer succeeds', () => {
  /** One request on the agent; resolves with the status, or the client-side error's message. */
  const send = (agent: Agent, path: string, body?: Buffer, headers: Record<string, string> = {}) =>
    new Promise<string>((resolve) => {
      const request = httpRequest(
        {
          host: '127.0.0.1',
          port: server.port,
          path,
          method: body ? 'POST' : 'GET',
          agent,
          headers: { 'content-type': 'application/json', ...headers },
        },
        (response) => {
          response.resume();
          response.on('end', () => resolve(String(response.statusCode)));
          response.on('error', (error) => resolve(error.message));
        },
      );
      request.on('error', (error) => resolve(error.message));
      request.end(body);
    });

  test.each([100_000, 2_000_000, 8_000_000, 20_000_000])(
    'a %d-byte body over the limit: 413, then 200 on the same agent',
    async (bodyBytes) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const authorization = `Bearer ${fixture.keys.alice}`;
        expect(
          await send(agent, '/v1/chat/completions', Buffer.alloc(bodyBytes, 'x'), {
            authorization,
          }),
        ).toBe('413');
        expect(await send(agent, '/health')).toBe('200');
      } finally {
        agent.destroy();
      }
    },
  );

  test('a body answered 401 unread, then 200 on the same agent', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect(await send(agent, '/v1/chat/completions', Buffer.alloc(900, 'x'))).toBe('401');
      expect(await send(agent, '/health')).toBe('200');
    } finally {
      agent.destroy();
    }
  });
});
