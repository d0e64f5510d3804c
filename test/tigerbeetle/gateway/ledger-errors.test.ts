import type { Hono } from 'hono';
import { ErrorCodes, RequestError } from 'tigerbeetle-node';
import { ManualClock, openEmbeddedLedger, type EmbeddedLedger } from '../../../tigerbeetle/engine';
import { createGatewayApp } from '../../../tigerbeetle/gateway/app';
import { gatewayBatchEventsMax, toWire } from '../../../tigerbeetle/gateway/protocol';
import {
  ledgerOperations,
  recreateOnEviction,
  type LedgerClient,
} from '../../../tigerbeetle/ledger';
import { currentToken, gatewayKeyring, recordingLogger } from './support';

/**
 * DR-03, MON-01: what the gateway answers when the TigerBeetle client refuses a call, tested over
 * HTTP with tigerbeetle-node's own `RequestError` (its real codes and messages): a caller's error is
 * a 400, an eviction gets a new session, and a client release the cluster refuses fails /ready so
 * that the task is replaced.
 */

type App = Hono<never>;
type ErrorBody = { error: { message: string; type: string; code: string }; request_id: string };

let embedded: EmbeddedLedger;
beforeEach(() => {
  embedded = openEmbeddedLedger({ clock: new ManualClock() });
});
afterEach(() => embedded.close());

function gateway(ledger: LedgerClient): App {
  return createGatewayApp({
    ledger,
    tokens: gatewayKeyring(),
    logger: recordingLogger(),
  }) as unknown as App;
}

function post(app: App, operation: string, body: unknown): Promise<Response> {
  return Promise.resolve(
    app.request(`/v1/${operation}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${currentToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }),
  );
}

const lookup = (app: App) => post(app, 'lookup_accounts', { ids: ['1'] });

/** A session whose every call fails with `code` while `failing()` says so, else answers from the embedded ledger. */
function session(
  code: () => ErrorCodes | undefined,
): LedgerClient & { destroy(): void; destroyed: boolean } {
  const real = embedded.createClient();
  const double = {
    destroyed: false,
    destroy: () => void (double.destroyed = true),
  } as LedgerClient & { destroy(): void; destroyed: boolean };
  for (const operation of ledgerOperations) {
    (double as unknown as Record<string, unknown>)[operation] = (argument: never) => {
      const failure = code();
      return failure === undefined
        ? (real[operation] as (argument: never) => Promise<unknown>)(argument)
        : Promise.reject(new RequestError(failure));
    };
  }
  return double;
}

describe("ledger gateway: the TigerBeetle client's errors (DR-03)", () => {
  test("a query limit beyond one TigerBeetle batch is the caller's error: 400 too_much_data, not 503", async () => {
    const app = gateway(embedded.createClient());
    const filter = {
      account_id: 1n,
      user_data_128: 0n,
      user_data_64: 0n,
      user_data_32: 0,
      code: 0,
      timestamp_min: 0n,
      timestamp_max: 0n,
      limit: gatewayBatchEventsMax + 1,
      flags: 3,
    };
    const response = await post(app, 'get_account_transfers', { filter: toWire(filter) });
    expect(response.status).toBe(400);
    const body = (await response.json()) as ErrorBody;
    expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'too_much_data' });
    expect(body.request_id).toEqual(expect.any(String));
    // The gateway stays ready: the caller was wrong, not the ledger.
    expect((await app.request('/ready')).status).toBe(200);
  });

  test('an evicted session is replaced: the evicted call answers 503, the next one is served by a new client', async () => {
    const sessions: ReturnType<typeof session>[] = [];
    let evicted = true;
    const replaceable = recreateOnEviction(() => {
      const created =
        sessions.length === 0
          ? session(() => (evicted ? ErrorCodes.ERR_CLIENT_EVICTED : undefined))
          : session(() => undefined);
      sessions.push(created);
      return created;
    });
    const app = gateway(replaceable.client);
    const first = await lookup(app);
    expect(first.status).toBe(503);
    expect(((await first.json()) as ErrorBody).error.code).toBe('ledger_unavailable');
    expect(sessions).toHaveLength(2);
    expect(sessions[0].destroyed).toBe(true);
    evicted = false;
    const second = await lookup(app);
    expect(second.status).toBe(200);
    expect((await app.request('/ready')).status).toBe(200);
    expect(replaceable.sessions()).toBe(2);
  });

  test('calls evicted together create one new session, not one each', async () => {
    let created = 0;
    const replaceable = recreateOnEviction(() => {
      created += 1;
      const evicting = created === 1;
      return session(() => (evicting ? ErrorCodes.ERR_CLIENT_EVICTED : undefined));
    });
    // Started together, all on the first session, before any of them has failed.
    const answers = await Promise.allSettled(
      Array.from({ length: 8 }, () => replaceable.client.lookupAccounts([1n])),
    );
    expect(answers.map((answer) => answer.status)).toEqual(Array(8).fill('rejected'));
    expect(created).toBe(2);
    expect((await lookup(gateway(replaceable.client))).status).toBe(200);
  });

  test.each([
    [ErrorCodes.ERR_CLIENT_RELEASE_TOO_LOW, 'Client was evicted: release too old.'],
    [ErrorCodes.ERR_CLIENT_RELEASE_TOO_HIGH, 'Client was evicted: release too new.'],
  ])(
    '%s is permanent: 503, then /ready fails for good so that ECS replaces the task; /health stays up',
    async (code, message) => {
      expect(new RequestError(code).message).toBe(message); // the real error, as the client throws it
      let calls = 0;
      const ledger = session(() => ((calls += 1), code));
      const app = gateway(ledger);
      const failed = await lookup(app);
      expect(failed.status).toBe(503);
      expect(((await failed.json()) as ErrorBody).error.code).toBe(
        'ledger_client_release_mismatch',
      );
      const callsBeforeReady = calls;
      for (let probe = 0; probe < 2; probe += 1) {
        const ready = await app.request('/ready');
        expect(ready.status).toBe(503);
        expect(((await ready.json()) as ErrorBody).error.code).toBe('ledger_client_unusable');
      }
      expect(calls).toBe(callsBeforeReady); // no more ledger round trips: nothing can change the answer
      expect((await app.request('/health')).status).toBe(200);
    },
  );

  test('a release mismatch seen first by /ready itself fails it as well', async () => {
    const app = gateway(session(() => ErrorCodes.ERR_CLIENT_RELEASE_TOO_LOW));
    expect((await app.request('/ready')).status).toBe(503);
    const again = await app.request('/ready');
    expect(((await again.json()) as ErrorBody).error.code).toBe('ledger_client_unusable');
  });

  test('a closed client (shutdown, or a replaced session) is a passing 503 that leaves /ready alone', async () => {
    let closed = true;
    const app = gateway(session(() => (closed ? ErrorCodes.ERR_CLIENT_CLOSED : undefined)));
    const response = await lookup(app);
    expect(response.status).toBe(503);
    expect(((await response.json()) as ErrorBody).error.code).toBe('ledger_unavailable');
    closed = false;
    expect((await app.request('/ready')).status).toBe(200);
  });

  test('once closed, an eviction recreates nothing (shutdown)', async () => {
    let created = 0;
    const replaceable = recreateOnEviction(
      () => ((created += 1), session(() => ErrorCodes.ERR_CLIENT_EVICTED)),
    );
    replaceable.close();
    await expect(replaceable.client.lookupAccounts([1n])).rejects.toMatchObject({
      code: ErrorCodes.ERR_CLIENT_EVICTED,
    });
    expect(created).toBe(1);
  });
});
