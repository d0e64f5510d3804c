import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createInternalHttpClient, type InternalHttpClient } from '../../runtime/http-client';

/**
 * The internal hops' keep-alive client against a real node:http server. The case that matters is
 * the stale connection: the server closed an idle keep-alive connection (its keep-alive timeout),
 * but the client has not yet read the FIN, so its agent still lists the socket as free and sends
 * the next request on it. That happens whenever the client's event loop was busy for longer than
 * the server's keep-alive timeout (a Lambda environment thawed, a long synchronous step, a loaded
 * machine): the client's own idle timer cannot run while its loop is busy. Here the server closes
 * its idle connections on cue and the request goes out in the same tick, before the client's loop
 * can see the close: the same race, without waiting for any timer.
 */

/** Large enough that the request is written in several chunks, so a write meets the peer's reset (EPIPE). */
const largeBodyBytes = 4 * 1024 * 1024;
const responseBytesMax = 1024 * 1024;
const requestDeadlineMilliseconds = 30_000;

interface EchoServer {
  readonly url: URL;
  /** Connections the server accepted so far. */
  readonly connections: () => number;
  /** Closes the connections that are idle between requests, as the keep-alive timeout does. */
  readonly closeIdleConnections: () => void;
  readonly close: () => Promise<void>;
}

/** Answers every request with the number of body bytes it read. */
async function startEchoServer(): Promise<EchoServer> {
  let connections = 0;
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    let bytes = 0;
    request.on('data', (chunk: Buffer) => (bytes += chunk.length));
    request.on('end', () =>
      response
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ bytes })),
    );
  });
  server.on('connection', (_socket: Socket) => (connections += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: new URL(`http://127.0.0.1:${port}/`),
    connections: () => connections,
    closeIdleConnections: () => server.closeIdleConnections(),
    close: () =>
      new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

function post(
  client: InternalHttpClient,
  url: URL,
  body: string,
): Promise<{ status: number; text: string }> {
  return client.request({
    method: 'POST',
    url,
    headers: { 'content-type': 'text/plain' },
    body,
    signal: AbortSignal.timeout(requestDeadlineMilliseconds),
    responseBytesMax,
  });
}

let server: EchoServer;
beforeEach(async () => {
  server = await startEchoServer();
});
afterEach(async () => {
  await server.close();
});

describe('internal HTTP client: keep-alive connections', () => {
  test('reuses one connection for consecutive requests', async () => {
    const client = createInternalHttpClient();
    for (let request = 0; request < 3; request += 1)
      expect(await post(client, server.url, 'ping')).toEqual({ status: 200, text: '{"bytes":4}' });
    expect(server.connections()).toBe(1);
  });

  test.each([
    ['a small request (the read meets the reset: ECONNRESET)', 16],
    ['a large request (a later write meets the reset: EPIPE)', largeBodyBytes],
  ])(
    'sends %s once more on a new connection when the reused one was closed by the server',
    async (_case, bodyBytes) => {
      const client = createInternalHttpClient();
      const body = 'x'.repeat(bodyBytes);
      await post(client, server.url, 'warm up'); // leaves one idle keep-alive connection in the agent
      server.closeIdleConnections();
      const answer = await post(client, server.url, body); // same tick: the agent still thinks the connection is free
      expect(answer).toEqual({ status: 200, text: JSON.stringify({ bytes: bodyBytes }) });
      expect(server.connections()).toBe(2);
    },
  );
});
