import {
  AccountFilterFlags,
  AccountFlags,
  CreateAccountStatus,
  QueryFilterFlags,
  CreateTransferStatus,
  TransferFlags,
  type Account,
  type Transfer,
} from 'tigerbeetle-node';
import { ManualClock, openEmbeddedLedger, type EmbeddedLedger } from '../../../tigerbeetle/engine';
import type { LedgerClient, OperationsLedger } from '../../../tigerbeetle/ledger';
import { createGatewayApp, gatewayBodyBytesMaxDefault } from '../../../tigerbeetle/gateway/app';
import { createGatewayClient } from '../../../tigerbeetle/gateway/client';
import { gatewayBatchEventsMax } from '../../../tigerbeetle/gateway/protocol';
import { account, accountFilter, queryFilter, transfer } from '../engine/fixtures';
import {
  currentToken,
  gatewayKeyring,
  recordingLogger,
  serveLocally,
  type LocalServer,
} from './support';

/**
 * Every operation through client -> HTTP -> gateway -> engine, next to the same operation on an
 * identical engine called directly: the answers must be equal, bigints exact to the last digit.
 */

/**
 * The client's deadline here, sized for the work and not under test (client.test.ts tests the
 * deadline). Client, gateway and engine share this process's one thread, so one call's time is
 * all three's CPU: a full batch of 8189 maximum-width transfers is about 0.2 s of it alone and
 * 0.7 s in a jest worker, and 200 concurrent calls queue for 64 connections with the wait counted
 * in each call's deadline. On a loaded machine (2 cores, load average 16) both took over 5 s.
 * Below jest's 60 s test timeout, so a gateway that never answers still fails with this client's
 * own message.
 */
const roundTripDeadlineMilliseconds = 30_000;

const u128Max = (1n << 128n) - 1n;
const u64Max = (1n << 64n) - 1n;
const u32Max = 0xffff_ffff;

let behindGateway: EmbeddedLedger;
let direct: EmbeddedLedger;
let server: LocalServer;
let viaGateway: LedgerClient;
let directly: LedgerClient;
let clockBehind: ManualClock;
let clockDirect: ManualClock;

beforeEach(async () => {
  clockBehind = new ManualClock();
  clockDirect = new ManualClock();
  behindGateway = openEmbeddedLedger({ clock: clockBehind });
  direct = openEmbeddedLedger({ clock: clockDirect });
  server = await serveLocally(
    createGatewayApp({
      ledger: behindGateway.createClient(),
      tokens: gatewayKeyring(),
      logger: recordingLogger(),
    }),
  );
  viaGateway = createGatewayClient({
    baseUrl: server.baseUrl,
    token: () => currentToken,
    requestTimeoutMilliseconds: roundTripDeadlineMilliseconds,
  });
  directly = direct.createClient();
});
afterEach(async () => {
  await server.close();
  behindGateway.close();
  direct.close();
});

/** Runs the same call on both ledgers and asserts the answers are equal; returns the gateway's. */
async function same<T>(
  call: (client: LedgerClient) => Promise<T>,
  project: (value: T) => unknown = (value) => value,
): Promise<T> {
  const [fromGateway, fromEngine] = await Promise.all([call(viaGateway), call(directly)]);
  expect(project(fromGateway)).toEqual(project(fromEngine));
  return fromGateway;
}

/** The engine's create results carry `reserved: 0`, as the native client's do; the wire has exactly timestamp and status. */
const createResults = (results: { timestamp: bigint; status: number }[]) =>
  results.map(({ timestamp, status }) => ({ timestamp, status }));

function advanceBoth(seconds: number): void {
  clockBehind.advanceSeconds(seconds);
  clockDirect.advanceSeconds(seconds);
}

const bigAccount = (id: bigint, fields: Partial<Account> = {}): Account =>
  account(id, {
    user_data_128: u128Max,
    user_data_64: u64Max,
    user_data_32: u32Max,
    ledger: u32Max,
    code: 0xffff,
    flags: AccountFlags.history,
    ...fields,
  });
const bigTransfer = (id: bigint, fields: Partial<Transfer> = {}): Transfer =>
  transfer(id, {
    user_data_128: u128Max,
    user_data_64: u64Max,
    user_data_32: u32Max,
    ledger: u32Max,
    code: 0xffff,
    ...fields,
  });

describe('ledger gateway round trip: every operation, exact bigints', () => {
  const debitId = u128Max - 1n; // 2^128-1 itself is not a valid id
  const creditId = u128Max - 2n;

  it('creates accounts and returns the same results as the engine, failures included', async () => {
    const results = await same(
      (client) =>
        client.createAccounts([
          bigAccount(debitId),
          bigAccount(creditId),
          bigAccount(u128Max),
          bigAccount(0n),
          bigAccount(debitId, { code: 1 }),
          account(5n, { flags: AccountFlags.linked }),
          account(6n, { ledger: 0 }),
        ]),
      createResults,
    );
    expect(results.map((result) => result.status)).toEqual([
      CreateAccountStatus.created,
      CreateAccountStatus.created,
      CreateAccountStatus.id_must_not_be_int_max,
      CreateAccountStatus.id_must_not_be_zero,
      CreateAccountStatus.exists_with_different_code,
      CreateAccountStatus.linked_event_failed,
      CreateAccountStatus.ledger_must_not_be_zero,
    ]);
    expect(results[0].timestamp > 1n << 53n).toBe(true); // beyond what a JSON number holds exactly
    const accounts = await same((client) => client.lookupAccounts([debitId, creditId, 77n]));
    expect(accounts).toHaveLength(2);
    expect(accounts[0]).toMatchObject({
      id: debitId,
      user_data_128: u128Max,
      user_data_64: u64Max,
      user_data_32: u32Max,
      ledger: u32Max,
      code: 0xffff,
    });
  });

  it('moves the largest amount, refuses an overflow, and round-trips lookups, history and balances', async () => {
    await same(
      (client) => client.createAccounts([bigAccount(debitId), bigAccount(creditId)]),
      createResults,
    );
    advanceBoth(1);
    const transfers = await same(
      (client) =>
        client.createTransfers([
          bigTransfer(u128Max - 10n, {
            debit_account_id: debitId,
            credit_account_id: creditId,
            amount: u128Max,
          }),
          bigTransfer(u128Max - 11n, {
            debit_account_id: debitId,
            credit_account_id: creditId,
            amount: 1n,
          }),
        ]),
      createResults,
    );
    expect(transfers.map((result) => result.status)).toEqual([
      CreateTransferStatus.created,
      CreateTransferStatus.overflows_debits_posted,
    ]);
    await same((client) => client.lookupTransfers([u128Max - 10n, u128Max - 11n, 1n]));
    const [debited] = await same((client) => client.lookupAccounts([debitId]));
    expect(debited.debits_posted).toBe(u128Max);
    const filter = accountFilter(debitId, {
      limit: gatewayBatchEventsMax,
      flags: AccountFilterFlags.debits | AccountFilterFlags.credits,
    });
    const history = await same((client) => client.getAccountTransfers(filter));
    expect(history.map((found) => found.amount)).toEqual([u128Max]);
    const balances = await same((client) => client.getAccountBalances(filter));
    expect(balances).toEqual([
      expect.objectContaining({ debits_posted: u128Max, credits_posted: 0n }),
    ]);
    const reversed = {
      ...filter,
      flags: filter.flags | AccountFilterFlags.reversed,
      user_data_64: u64Max,
      code: 0xffff,
    };
    await same((client) => client.getAccountTransfers(reversed));
  });

  it('holds, posts, voids and expires pending transfers like the engine', async () => {
    await same(
      (client) =>
        client.createAccounts([
          account(1n),
          account(2n, { flags: AccountFlags.debits_must_not_exceed_credits }),
        ]),
      createResults,
    );
    await same(
      (client) =>
        client.createTransfers([
          transfer(100n, { debit_account_id: 1n, credit_account_id: 2n, amount: 1_000_000n }),
        ]),
      createResults,
    );
    const pending = {
      debit_account_id: 2n,
      credit_account_id: 1n,
      flags: TransferFlags.pending,
      timeout: 30,
    };
    const held = await same(
      (client) =>
        client.createTransfers([
          transfer(200n, { ...pending, amount: 400_000n }),
          transfer(201n, { ...pending, amount: 400_000n }),
          transfer(202n, { ...pending, amount: 400_000n }), // more than is left: refused atomically
          transfer(203n, { ...pending, amount: 100_000n, timeout: 1 }),
        ]),
      createResults,
    );
    expect(held.map((result) => result.status)).toEqual([
      CreateTransferStatus.created,
      CreateTransferStatus.created,
      CreateTransferStatus.exceeds_credits,
      CreateTransferStatus.created,
    ]);
    const settled = await same(
      (client) =>
        client.createTransfers([
          transfer(300n, {
            pending_id: 200n,
            amount: 123_456n,
            debit_account_id: 0n,
            credit_account_id: 0n,
            flags: TransferFlags.post_pending_transfer,
          }),
          transfer(301n, {
            pending_id: 201n,
            amount: 0n,
            debit_account_id: 0n,
            credit_account_id: 0n,
            flags: TransferFlags.void_pending_transfer,
          }),
          transfer(302n, {
            pending_id: 200n,
            amount: 0n,
            debit_account_id: 0n,
            credit_account_id: 0n,
            flags: TransferFlags.void_pending_transfer,
          }),
        ]),
      createResults,
    );
    expect(settled.map((result) => result.status)).toEqual([
      CreateTransferStatus.created,
      CreateTransferStatus.created,
      CreateTransferStatus.pending_transfer_already_posted,
    ]);
    advanceBoth(2);
    const expired = await same(
      (client) =>
        client.createTransfers([
          transfer(304n, {
            pending_id: 203n,
            amount: 0n,
            debit_account_id: 0n,
            credit_account_id: 0n,
            flags: TransferFlags.post_pending_transfer,
          }),
        ]),
      createResults,
    );
    expect(expired[0].status).toBe(CreateTransferStatus.pending_transfer_expired);
    const [client2] = await same((client) => client.lookupAccounts([2n]));
    expect(client2).toMatchObject({
      credits_posted: 1_000_000n,
      debits_posted: 123_456n,
      debits_pending: 0n,
    });
    await same((client) =>
      client.lookupTransfers([200n, 201n, 202n, 203n, 300n, 301n, 302n, 304n]),
    );
  });

  it('queries transfers by user data, code, ledger and time, newest first, as TigerBeetle 0.17 does', async () => {
    await same((client) => client.createAccounts([account(1n), account(2n)]), createResults);
    const receipt = { user_data_128: u128Max - 5n, user_data_64: u64Max, user_data_32: 7 };
    const pending = { debit_account_id: 2n, credit_account_id: 1n, flags: TransferFlags.pending };
    await same(
      (client) =>
        client.createTransfers([
          transfer(10n, { ...pending, amount: 50n, timeout: 60, code: 20, ...receipt }),
          transfer(11n, { ...pending, amount: 40n, timeout: 60, code: 20, user_data_32: 8 }),
          transfer(12n, { debit_account_id: 1n, credit_account_id: 2n, amount: 5n, code: 10 }),
        ]),
      createResults,
    );
    advanceBoth(1);
    // A post or void with zero user data inherits the pending transfer's (state_machine.zig).
    const resolution = { debit_account_id: 0n, credit_account_id: 0n, code: 0, ledger: 0 };
    await same(
      (client) =>
        client.createTransfers([
          transfer(20n, {
            ...resolution,
            pending_id: 10n,
            amount: 30n,
            flags: TransferFlags.post_pending_transfer,
          }),
          transfer(21n, {
            ...resolution,
            pending_id: 11n,
            amount: 0n,
            flags: TransferFlags.void_pending_transfer,
          }),
        ]),
      createResults,
    );
    const ids = (transfers: Transfer[]) => transfers.map((found) => found.id);
    const byRequest = await same((client) =>
      client.queryTransfers(queryFilter({ user_data_128: receipt.user_data_128 })),
    );
    expect(ids(byRequest)).toEqual([10n, 20n]);
    expect(byRequest[1]).toMatchObject({ ...receipt, pending_id: 10n, amount: 30n, code: 20 });
    const newestFirst = await same((client) =>
      client.queryTransfers(queryFilter({ code: 20, flags: QueryFilterFlags.reversed })),
    );
    expect(ids(newestFirst)).toEqual([21n, 20n, 11n, 10n]);
    const [first] = byRequest;
    const later = await same((client) =>
      client.queryTransfers(
        queryFilter({ code: 20, timestamp_min: first.timestamp + 1n, limit: 2 }),
      ),
    );
    expect(ids(later)).toEqual([11n, 20n]);
    expect(
      ids(await same((client) => client.queryTransfers(queryFilter({ user_data_32: 8 })))),
    ).toEqual([11n, 21n]);
    expect(
      await same((client) =>
        client.queryTransfers(queryFilter({ user_data_64: u64Max, ledger: 1 })),
      ),
    ).toEqual([]);
    const [viaOperations] = await (viaGateway as LedgerClient & OperationsLedger).execute([
      { operation: 'query_transfers', filter: queryFilter({ user_data_64: u64Max }) },
    ] as const);
    expect(ids(viaOperations)).toEqual([10n, 20n]);
  });

  it('answers empty batches with [] like the engine', async () => {
    await same((client) => client.createAccounts([]));
    await same((client) => client.createTransfers([]));
    await same((client) => client.lookupAccounts([]));
    await same((client) => client.lookupTransfers([]));
  });

  it('keeps every answer to many concurrent requests (one session, batched by the client)', async () => {
    await viaGateway.createAccounts([account(1n), account(2n)]);
    const count = 200;
    const results = await Promise.all(
      Array.from({ length: count }, (_, index) =>
        viaGateway.createTransfers([
          transfer(BigInt(1_000 + index), { amount: BigInt(index + 1) }),
        ]),
      ),
    );
    expect(results.every(([result]) => result.status === CreateTransferStatus.created)).toBe(true);
    const [credited] = await viaGateway.lookupAccounts([2n]);
    expect(credited.credits_posted).toBe(BigInt((count * (count + 1)) / 2));
  });

  it(`carries a full batch of ${gatewayBatchEventsMax} maximum-width transfers within the default body limit`, async () => {
    const batch = Array.from({ length: gatewayBatchEventsMax }, (_, index) =>
      bigTransfer(u128Max - BigInt(index) - 1n, {
        debit_account_id: u128Max - 1n,
        credit_account_id: u128Max - 2n,
        amount: u128Max,
        pending_id: u128Max,
        timestamp: 0n,
      }),
    );
    const bodyBytes = Buffer.byteLength(
      JSON.stringify({
        transfers: batch.map((event) =>
          Object.fromEntries(Object.entries(event).map(([key, field]) => [key, String(field)])),
        ),
      }),
    );
    expect(bodyBytes).toBeLessThan(gatewayBodyBytesMaxDefault);
    const results = await viaGateway.createTransfers(batch);
    expect(results).toHaveLength(gatewayBatchEventsMax);
  });
});

describe('ledger gateway over a real socket: body limit (NET-12)', () => {
  it('answers 413 JSON when the declared content length is over the limit', async () => {
    const small = await serveLocally(
      createGatewayApp({
        ledger: directly,
        tokens: gatewayKeyring(),
        logger: recordingLogger(),
        limits: { bodyBytesMax: 512 },
      }),
    );
    try {
      const response = await fetch(`${small.baseUrl}/v1/lookup_accounts`, {
        method: 'POST',
        headers: { authorization: `Bearer ${currentToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ids: Array.from({ length: 300 }, (_, index) => String(index + 1)) }),
      });
      expect(response.status).toBe(413);
      expect(response.headers.get('content-type')).toMatch(/application\/json/);
      expect(await response.json()).toMatchObject({ error: { code: 'request_too_large' } });
    } finally {
      await small.close();
    }
  });
});
