import { randomBytes } from 'node:crypto';
import {
  AccountFilterFlags,
  AccountFlags,
  CreateAccountStatus,
  CreateTransferStatus,
  QueryFilterFlags,
  TransferFlags,
} from 'tigerbeetle-node';
import {
  LedgerUnavailableError,
  openLedger,
  type Ledger,
  type LedgerClient,
} from '../../../tigerbeetle/ledger';
import { createGatewayApp } from '../../../tigerbeetle/gateway/app';
import { createGatewayClient } from '../../../tigerbeetle/gateway/client';
import { account, accountFilter, queryFilter, transfer } from '../engine/fixtures';
import {
  currentToken,
  gatewayKeyring,
  recordingLogger,
  serveLocally,
  type LocalServer,
} from '../gateway/support';

/**
 * Against a real TigerBeetle cluster, when one is given:
 *   TB_ADDRESSES=3000 TB_CLUSTER_ID=0 npx jest test/tigerbeetle/ledger/cluster.test.ts
 * (start one with `tigerbeetle format --cluster=0 --replica=0 --replica-count=1 0_0.tigerbeetle`
 * and `tigerbeetle start --addresses=3000 0_0.tigerbeetle`). Without TB_ADDRESSES the suite is
 * skipped: no TigerBeetle server can run in this project's development environment.
 */

const addresses = process.env.TB_ADDRESSES?.split(',').map((address) => address.trim());
const clusterId = BigInt(process.env.TB_CLUSTER_ID ?? '0');
const requestTimeoutMilliseconds = 5_000;

const describeWithCluster = addresses ? describe : describe.skip;
if (!addresses)
  console.log(
    'test/tigerbeetle/ledger/cluster.test.ts: skipped, TB_ADDRESSES is not set (no TigerBeetle cluster to test against)',
  );

/** Ids unique to this run, so the suite can run again against the same cluster. */
const runPrefix = BigInt(`0x${randomBytes(8).toString('hex')}`) << 64n;
const id = (n: number) => runPrefix | BigInt(n);

describeWithCluster('real TigerBeetle cluster', () => {
  let ledger: Ledger;
  let gateway: LocalServer;
  let clients: [string, LedgerClient][];

  beforeAll(async () => {
    ledger = openLedger({
      kind: 'cluster',
      clusterId,
      replicaAddresses: addresses ?? [],
      requestTimeoutMilliseconds,
    });
    gateway = await serveLocally(
      createGatewayApp({
        ledger: ledger.client,
        tokens: gatewayKeyring(),
        logger: recordingLogger(),
      }),
    );
    const viaGateway = createGatewayClient({
      baseUrl: gateway.baseUrl,
      token: () => currentToken,
      requestTimeoutMilliseconds,
    });
    clients = [
      ['direct', ledger.client],
      ['via the gateway', viaGateway],
    ];
  });
  afterAll(async () => {
    await gateway?.close();
    await ledger?.close();
  });

  it('creates accounts and transfers, holds, posts and voids, and looks everything up', async () => {
    for (const [index, [name, client]] of clients.entries()) {
      const base = index * 100;
      const [customer, revenue] = [id(base + 1), id(base + 2)];
      const accounts = await client.createAccounts([
        account(customer, {
          flags: AccountFlags.debits_must_not_exceed_credits | AccountFlags.history,
        }),
        account(revenue),
      ]);
      expect({ name, statuses: accounts.map((result) => result.status) }).toEqual({
        name,
        statuses: [CreateAccountStatus.created, CreateAccountStatus.created],
      });
      const funded = await client.createTransfers([
        transfer(id(base + 10), {
          debit_account_id: revenue,
          credit_account_id: customer,
          amount: 1_000n,
        }),
      ]);
      expect(funded[0].status).toBe(CreateTransferStatus.created);
      const pending = {
        debit_account_id: customer,
        credit_account_id: revenue,
        flags: TransferFlags.pending,
        timeout: 60,
      };
      const held = await client.createTransfers([
        transfer(id(base + 11), { ...pending, amount: 600n }),
        transfer(id(base + 12), { ...pending, amount: 600n }),
        transfer(id(base + 13), { ...pending, amount: 300n }),
      ]);
      expect(held.map((result) => result.status)).toEqual([
        CreateTransferStatus.created,
        CreateTransferStatus.exceeds_credits,
        CreateTransferStatus.created,
      ]);
      const settled = await client.createTransfers([
        transfer(id(base + 14), {
          pending_id: id(base + 11),
          amount: 250n,
          debit_account_id: 0n,
          credit_account_id: 0n,
          flags: TransferFlags.post_pending_transfer,
        }),
        transfer(id(base + 15), {
          pending_id: id(base + 13),
          amount: 0n,
          debit_account_id: 0n,
          credit_account_id: 0n,
          flags: TransferFlags.void_pending_transfer,
        }),
      ]);
      expect(settled.map((result) => result.status)).toEqual([
        CreateTransferStatus.created,
        CreateTransferStatus.created,
      ]);
      const [found] = await client.lookupAccounts([customer]);
      expect(found).toMatchObject({
        credits_posted: 1_000n,
        debits_posted: 250n,
        debits_pending: 0n,
      });
      const transfers = await client.lookupTransfers([id(base + 11), id(base + 14), id(base + 99)]);
      expect(transfers.map((found) => found.id)).toEqual([id(base + 11), id(base + 14)]);
      const filter = accountFilter(customer, {
        flags: AccountFilterFlags.debits | AccountFilterFlags.credits,
      });
      expect((await client.getAccountTransfers(filter)).length).toBeGreaterThanOrEqual(4);
      expect((await client.getAccountBalances(filter)).at(-1)).toMatchObject({
        credits_posted: 1_000n,
        debits_posted: 250n,
      });
    }
  });

  it("queries transfers by user data, and a post inherits its hold's user data (the receipts of issue 15)", async () => {
    for (const [index, [name, client]] of clients.entries()) {
      const base = 1_000 + index * 100;
      const [customer, revenue] = [id(base + 1), id(base + 2)];
      await client.createAccounts([account(customer), account(revenue)]);
      const receipt = {
        user_data_128: id(base + 50),
        user_data_64: BigInt(base + 51),
        user_data_32: 7,
      };
      await client.createTransfers([
        transfer(id(base + 10), {
          debit_account_id: customer,
          credit_account_id: revenue,
          amount: 100n,
          flags: TransferFlags.pending,
          timeout: 60,
          code: 20,
          ...receipt,
        }),
      ]);
      const [posted] = await client.createTransfers([
        transfer(id(base + 11), {
          pending_id: id(base + 10),
          amount: 40n,
          debit_account_id: 0n,
          credit_account_id: 0n,
          flags: TransferFlags.post_pending_transfer,
        }),
      ]);
      expect({ name, status: posted.status }).toEqual({
        name,
        status: CreateTransferStatus.created,
      });
      const found = await client.queryTransfers(
        queryFilter({
          user_data_128: receipt.user_data_128,
          code: 20,
          flags: QueryFilterFlags.reversed,
        }),
      );
      expect(found.map((transfer) => [transfer.id, transfer.amount])).toEqual([
        [id(base + 11), 40n],
        [id(base + 10), 100n],
      ]);
      expect(found[0]).toMatchObject(receipt);
    }
  });

  it('gives up at the deadline when no replica answers (DR-03)', async () => {
    const unreachable = openLedger({
      kind: 'cluster',
      clusterId,
      replicaAddresses: ['127.0.0.1:9'],
      requestTimeoutMilliseconds: 300,
    });
    try {
      const started = Date.now();
      await expect(unreachable.client.lookupAccounts([id(1)])).rejects.toBeInstanceOf(
        LedgerUnavailableError,
      );
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      await unreachable.close();
    }
  });
});
