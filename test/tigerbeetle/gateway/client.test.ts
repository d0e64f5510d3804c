import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { openEmbeddedLedger, type EmbeddedLedger } from '../../../tigerbeetle/engine';
import { LedgerUnavailableError } from '../../../tigerbeetle/ledger';
import { createGatewayApp } from '../../../tigerbeetle/gateway/app';
import { createGatewayClient } from '../../../tigerbeetle/gateway/client';
import { accountFilter } from '../engine/fixtures';
import {
  currentToken,
  gatewayKeyring,
  previousToken,
  recordingLogger,
  serveLocally,
} from './support';

/** A raw HTTP server that answers however a test says: stands in for a misbehaving gateway. */
async function rawServer(
  handler: (request: IncomingMessage, response: ServerResponse) => void,
): Promise<{ baseUrl: string; close(): Promise<void> }> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function answer(status: number, body: string, contentType = 'application/json') {
  return (request: IncomingMessage, response: ServerResponse) => {
    request.resume();
    request.on('end', () => response.writeHead(status, { 'content-type': contentType }).end(body));
  };
}

const gatewayError = (message: string, code = 'x') =>
  JSON.stringify({ error: { message, type: 'service_unavailable', code }, request_id: 'r1' });

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the call to fail');
}

const clientFor = (baseUrl: string, requestTimeoutMilliseconds = 2_000) =>
  createGatewayClient({ baseUrl, token: () => currentToken, requestTimeoutMilliseconds });

describe('gateway client: failures the caller can retry become LedgerUnavailableError (DR-03)', () => {
  it.each([
    [503, gatewayError('The ledger is unavailable; retry later')],
    [500, gatewayError('Internal error')],
    [502, '<html>bad gateway</html>'],
  ])('maps a gateway %i to LedgerUnavailableError', async (status, body) => {
    const server = await rawServer(answer(status, body));
    try {
      const error = await failure(clientFor(server.baseUrl).lookupAccounts([1n]));
      expect(error).toBeInstanceOf(LedgerUnavailableError);
      expect(error.message).toContain(`lookup_accounts answered ${status}`);
      if (body.startsWith('{')) expect(error.message).toContain(JSON.parse(body).error.message);
    } finally {
      await server.close();
    }
  });

  it('maps a refused connection to LedgerUnavailableError', async () => {
    const server = await rawServer(answer(200, '{}'));
    const { baseUrl } = server;
    await server.close();
    const error = await failure(clientFor(baseUrl).lookupTransfers([5n]));
    expect(error).toBeInstanceOf(LedgerUnavailableError);
    expect(error.message).toMatch(/unreachable.*ECONNREFUSED/);
  });

  it('gives up at its deadline when the gateway never answers, and when it stalls mid-body', async () => {
    const silent = await rawServer(() => {});
    const stalling = await rawServer((request, response) => {
      request.resume();
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"accounts": [');
    });
    try {
      for (const server of [silent, stalling]) {
        const started = Date.now();
        const error = await failure(clientFor(server.baseUrl, 200).lookupAccounts([1n]));
        expect(error).toBeInstanceOf(LedgerUnavailableError);
        expect(error.message).toContain('did not answer within 200 ms');
        expect(Date.now() - started).toBeLessThan(1_500);
      }
    } finally {
      await silent.close();
      await stalling.close();
    }
  });

  it('maps a token that cannot be read to LedgerUnavailableError, without a request', async () => {
    let requests = 0;
    const server = await rawServer((request, response) => {
      requests += 1;
      answer(200, '{"accounts":[]}')(request, response);
    });
    try {
      const client = createGatewayClient({
        baseUrl: server.baseUrl,
        token: () => Promise.reject(new Error('throttled')),
        requestTimeoutMilliseconds: 1_000,
      });
      const error = await failure(client.lookupAccounts([1n]));
      expect(error).toBeInstanceOf(LedgerUnavailableError);
      expect(error.message).toContain('could not read the gateway token: throttled');
      expect(requests).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('bounds a token read that never finishes by the request deadline', async () => {
    const client = createGatewayClient({
      baseUrl: 'http://127.0.0.1:9',
      token: () => new Promise<string>(() => {}),
      requestTimeoutMilliseconds: 100,
    });
    const error = await failure(client.lookupAccounts([1n]));
    expect(error).toBeInstanceOf(LedgerUnavailableError);
    expect(error.message).toContain('could not read the gateway token: no token within 100 ms');
  });
});

describe('gateway client: our own mistakes are plain Errors', () => {
  let ledger: EmbeddedLedger;
  beforeEach(() => {
    ledger = openEmbeddedLedger();
  });
  afterEach(() => ledger.close());

  it('maps 4xx from the real gateway to an Error with the gateway message', async () => {
    const server = await serveLocally(
      createGatewayApp({
        ledger: ledger.createClient(),
        tokens: gatewayKeyring(),
        logger: recordingLogger(),
      }),
    );
    try {
      const wrongToken = createGatewayClient({
        baseUrl: server.baseUrl,
        token: () => 'not-the-token-0123456789abcdef0123456789',
        requestTimeoutMilliseconds: 1_000,
      });
      const unauthorized = await failure(wrongToken.lookupAccounts([1n]));
      expect(unauthorized).not.toBeInstanceOf(LedgerUnavailableError);
      expect(unauthorized.message).toBe(
        'ledger gateway lookup_accounts answered 401: Missing or invalid bearer token',
      );
      const invalid = await failure(clientFor(server.baseUrl).lookupAccounts([-1n]));
      expect(invalid).not.toBeInstanceOf(LedgerUnavailableError);
      expect(invalid.message).toContain('answered 400: ids[0]: a u128 must be a decimal string');
      const tooMany = await failure(
        clientFor(server.baseUrl).getAccountBalances(
          accountFilter(1n, { user_data_64: 1n << 64n }),
        ),
      );
      expect(tooMany.message).toContain('filter.user_data_64: a u64 is out of range');
    } finally {
      await server.close();
    }
  });

  it('refuses a 2xx answer it cannot decode', async () => {
    for (const body of ['not json', '{"accounts":[{"id":"1"}]}', '{"transfers":[]}']) {
      const server = await rawServer(answer(200, body));
      try {
        const error = await failure(clientFor(server.baseUrl).lookupAccounts([1n]));
        expect(error).not.toBeInstanceOf(LedgerUnavailableError);
        expect(error.message).toMatch(
          /answered 2xx with (a body that is not JSON|an unexpected body)/,
        );
      } finally {
        await server.close();
      }
    }
  });

  it('asks for the token on every call, so a rotated token is picked up (AUTH-04)', async () => {
    const server = await serveLocally(
      createGatewayApp({
        ledger: ledger.createClient(),
        tokens: gatewayKeyring(),
        logger: recordingLogger(),
      }),
    );
    try {
      const tokens = [previousToken, currentToken];
      let calls = 0;
      const client = createGatewayClient({
        baseUrl: server.baseUrl,
        token: () => tokens[calls++],
        requestTimeoutMilliseconds: 1_000,
      });
      expect(await client.lookupAccounts([1n])).toEqual([]);
      expect(await client.lookupAccounts([1n])).toEqual([]);
      expect(calls).toBe(2);
    } finally {
      await server.close();
    }
  });

  it('posts JSON with the bearer token below the base path, through the fetch it is given', async () => {
    const seen: { url: string; init: RequestInit }[] = [];
    const recordingFetch: typeof fetch = async (input, init) => {
      seen.push({ url: String(input), init: init ?? {} });
      return new Response('{"balances":[]}', {
        status: 200,
        headers: { 'content-type': 'application/json' },
      });
    };
    const client = createGatewayClient({
      baseUrl: 'http://gateway.internal:7300/ledger',
      token: () => 'the-token',
      requestTimeoutMilliseconds: 1_000,
      fetch: recordingFetch,
    });
    await client.getAccountBalances(accountFilter(7n));
    expect(seen[0].url).toBe('http://gateway.internal:7300/ledger/v1/get_account_balances');
    expect(seen[0].init.method).toBe('POST');
    expect(seen[0].init.headers).toMatchObject({
      authorization: 'Bearer the-token',
      'content-type': 'application/json',
    });
    expect(JSON.parse(String(seen[0].init.body)).filter).toMatchObject({
      account_id: '7',
      limit: 8189,
    });
  });

  it('refuses options it cannot work with', () => {
    const token = () => 'x';
    expect(() =>
      createGatewayClient({ baseUrl: 'not a url', token, requestTimeoutMilliseconds: 1_000 }),
    ).toThrow(/baseUrl is not a URL/);
    expect(() =>
      createGatewayClient({ baseUrl: 'ftp://gateway', token, requestTimeoutMilliseconds: 1_000 }),
    ).toThrow(/http\(s\)/);
    expect(() =>
      createGatewayClient({ baseUrl: 'http://gateway', token, requestTimeoutMilliseconds: 0 }),
    ).toThrow(/requestTimeoutMilliseconds/);
  });
});
