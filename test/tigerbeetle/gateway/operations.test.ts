import { CreateAccountStatus, CreateTransferStatus, TransferFlags } from 'tigerbeetle-node';
import { openEmbeddedLedger, type EmbeddedLedger } from '../../../tigerbeetle/engine';
import { executeLedgerOperations } from '../../../tigerbeetle/ledger';
import { createGatewayApp } from '../../../tigerbeetle/gateway/app';
import { createGatewayClient } from '../../../tigerbeetle/gateway/client';
import { gatewayOperationsPerRequestMax } from '../../../tigerbeetle/gateway/protocol';
import { account, transfer } from '../engine/fixtures';
import {
  currentToken,
  gatewayKeyring,
  recordingLogger,
  serveLocally,
  type LocalServer,
} from './support';

/**
 * Several ledger operations in one gateway request (POST /v1/operations): run in order, answered in
 * order, parsed by the same schemas on both ends; the same results as running them one by one.
 */

let engine: EmbeddedLedger;
let server: LocalServer;
let requests = 0;
beforeEach(async () => {
  engine = openEmbeddedLedger();
  requests = 0;
  const app = createGatewayApp({
    ledger: engine.createClient(),
    tokens: gatewayKeyring(),
    logger: recordingLogger(),
  });
  server = await serveLocally({ fetch: (request) => ((requests += 1), app.fetch(request)) });
});
afterEach(async () => {
  await server.close();
  engine.close();
});

const client = () =>
  createGatewayClient({
    baseUrl: server.baseUrl,
    token: () => currentToken,
    requestTimeoutMilliseconds: 5_000,
  });

test('create accounts, then a linked chain of transfers, then lookups: one request, results in order', async () => {
  const [accounts, transfers, found, empty] = await executeLedgerOperations(client(), [
    { operation: 'create_accounts', accounts: [account(1n), account(2n)] },
    {
      operation: 'create_transfers',
      transfers: [
        transfer(10n, {
          debit_account_id: 1n,
          credit_account_id: 2n,
          amount: 5n,
          flags: TransferFlags.linked,
        }),
        transfer(11n, { debit_account_id: 2n, credit_account_id: 1n, amount: 3n }),
      ],
    },
    { operation: 'lookup_accounts', ids: [1n, 2n] },
    { operation: 'lookup_transfers', ids: [] },
  ] as const);
  expect(requests).toBe(1);
  expect(accounts.map((result) => result.status)).toEqual([
    CreateAccountStatus.created,
    CreateAccountStatus.created,
  ]);
  expect(transfers.map((result) => result.status)).toEqual([
    CreateTransferStatus.created,
    CreateTransferStatus.created,
  ]);
  expect(found.map((entry) => [entry.id, entry.debits_posted, entry.credits_posted])).toEqual([
    [1n, 5n, 3n],
    [2n, 3n, 5n],
  ]);
  expect(empty).toEqual([]); // an empty batch is answered without going on the wire
});

test('the results equal running the operations one by one on the engine', async () => {
  const direct = openEmbeddedLedger();
  try {
    const operations = [
      { operation: 'create_accounts', accounts: [account(1n), account(2n)] },
      {
        operation: 'create_transfers',
        transfers: [
          transfer(10n, {
            debit_account_id: 1n,
            credit_account_id: 2n,
            amount: 5n,
            flags: TransferFlags.linked,
          }),
          transfer(11n, { debit_account_id: 1n, credit_account_id: 9n, amount: 3n }),
        ],
      },
      { operation: 'lookup_accounts', ids: [1n] },
    ] as const;
    const [, viaGateway, accountsViaGateway] = await executeLedgerOperations(client(), operations);
    const [, directly, accountsDirectly] = await executeLedgerOperations(
      direct.createClient(),
      operations,
    );
    expect(viaGateway.map((result) => result.status)).toEqual(
      directly.map((result) => result.status),
    );
    expect(viaGateway.map((result) => result.status)).toEqual([
      CreateTransferStatus.linked_event_failed,
      CreateTransferStatus.credit_account_not_found,
    ]);
    expect(accountsViaGateway.map(({ timestamp: _timestamp, ...rest }) => rest)).toEqual(
      accountsDirectly.map(({ timestamp: _timestamp, ...rest }) => rest),
    );
  } finally {
    direct.close();
  }
});

test('the gateway refuses an unknown operation, a malformed one and too many, with a 400 that says why', async () => {
  const post = (body: unknown) =>
    fetch(`${server.baseUrl}/v1/operations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${currentToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  for (const body of [
    { operations: [{ operation: 'drop_everything', ids: ['1'] }] },
    { operations: [{ operation: 'lookup_accounts', ids: [1] }] },
    {
      operations: Array.from({ length: gatewayOperationsPerRequestMax + 1 }, () => ({
        operation: 'lookup_accounts',
        ids: ['1'],
      })),
    },
    { operations: [] },
  ]) {
    const response = await post(body);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({
      error: { code: 'invalid_request' },
      request_id: expect.any(String),
    });
  }
});
