import {
  AccountFlags,
  CreateAccountStatus,
  CreateTransferStatus,
  TransferFlags,
  amount_max,
  type Client,
} from 'tigerbeetle-node';
import { ManualClock, createEmbeddedClient } from '../../../tigerbeetle/engine';
import { account, accountFilter, transfer } from './fixtures';

const { created, linked_event_failed, linked_event_chain_open } = CreateTransferStatus;

async function setUp(clock: ManualClock): Promise<Client> {
  const client = createEmbeddedClient({ clock });
  const results = await client.createAccounts([
    account(1n),
    account(2n),
    account(3n, { flags: AccountFlags.debits_must_not_exceed_credits }),
  ]);
  expect(results.every((result) => result.status === CreateAccountStatus.created)).toBe(true);
  return client;
}

async function balances(client: Client, id: bigint): Promise<bigint[]> {
  const [found] = await client.lookupAccounts([id]);
  return [found.debits_pending, found.debits_posted, found.credits_pending, found.credits_posted];
}

describe('embedded ledger: linked chains', () => {
  let clock: ManualClock;
  let client: Client;
  beforeEach(async () => {
    clock = new ManualClock();
    client = await setUp(clock);
  });
  afterEach(() => client.destroy());

  it('applies a chain all-or-nothing and fails the rest of the chain', async () => {
    const results = await client.createTransfers([
      transfer(1n, { flags: TransferFlags.linked, amount: 5n }),
      transfer(2n, { flags: TransferFlags.linked, amount: 7n }),
      transfer(3n, { debit_account_id: 3n, amount: 1n }), // exceeds_credits ends the chain
      transfer(4n, { amount: 11n }), // independent of the chain
    ]);
    expect(results.map((result) => result.status)).toEqual([
      linked_event_failed,
      linked_event_failed,
      CreateTransferStatus.exceeds_credits,
      created,
    ]);
    expect(await client.lookupTransfers([1n, 2n, 3n, 4n])).toHaveLength(1);
    expect(await balances(client, 1n)).toEqual([0n, 11n, 0n, 0n]);
    // Only the transient failure binds its id; the rolled-back events can be retried.
    const retry = await client.createTransfers([
      transfer(1n, { amount: 5n }),
      transfer(3n, { debit_account_id: 3n, amount: 1n }),
    ]);
    expect(retry.map((result) => result.status)).toEqual([
      created,
      CreateTransferStatus.id_already_failed,
    ]);
  });

  it('reports linked_event_chain_open for a chain left open at the end of the batch', async () => {
    const results = await client.createTransfers([
      transfer(1n, { amount: 1n }),
      transfer(2n, { flags: TransferFlags.linked, amount: 2n }),
      transfer(3n, { flags: TransferFlags.linked, amount: 3n }),
    ]);
    expect(results.map((result) => result.status)).toEqual([
      created,
      linked_event_failed,
      linked_event_chain_open,
    ]);
    expect(await balances(client, 1n)).toEqual([0n, 1n, 0n, 0n]);
  });

  it('rolls back account creation inside a failed chain', async () => {
    const results = await client.createAccounts([
      account(10n, { flags: AccountFlags.linked }),
      account(11n, { flags: AccountFlags.linked }),
      account(12n, { code: 0 }),
    ]);
    expect(results.map((result) => result.status)).toEqual([
      CreateAccountStatus.linked_event_failed,
      CreateAccountStatus.linked_event_failed,
      CreateAccountStatus.code_must_not_be_zero,
    ]);
    expect(await client.lookupAccounts([10n, 11n, 12n])).toEqual([]);
  });

  it('sees earlier events of the same chain: a pending transfer posted in its own chain', async () => {
    const results = await client.createTransfers([
      transfer(1n, { flags: TransferFlags.linked | TransferFlags.pending, amount: 9n }),
      transfer(2n, {
        flags: TransferFlags.post_pending_transfer,
        pending_id: 1n,
        amount: amount_max,
      }),
    ]);
    expect(results.map((result) => result.status)).toEqual([created, created]);
    expect(await balances(client, 2n)).toEqual([0n, 0n, 0n, 9n]);
  });
});

describe('embedded ledger: pending transfers and expiry', () => {
  let clock: ManualClock;
  let client: Client;
  beforeEach(async () => {
    clock = new ManualClock();
    client = await setUp(clock);
  });
  afterEach(() => client.destroy());

  it('expires a pending transfer at its timeout and then refuses to post it', async () => {
    const [hold] = await client.createTransfers([
      transfer(1n, { flags: TransferFlags.pending, amount: 40n, timeout: 30 }),
    ]);
    expect(hold.status).toBe(created);
    // Timestamps may run ahead of the clock; expiry is `timestamp + timeout`, on the cluster clock.
    const expiresAt = hold.timestamp + 30n * 1_000_000_000n;
    clock.advanceNanoseconds(expiresAt - 1n - clock.nowNanoseconds());
    expect(await balances(client, 1n)).toEqual([40n, 0n, 0n, 0n]);
    clock.advanceNanoseconds(1n);
    expect(await balances(client, 1n)).toEqual([0n, 0n, 0n, 0n]);
    expect(await balances(client, 2n)).toEqual([0n, 0n, 0n, 0n]);
    const [post] = await client.createTransfers([
      transfer(2n, {
        flags: TransferFlags.post_pending_transfer,
        pending_id: 1n,
        amount: amount_max,
      }),
    ]);
    expect(post.status).toBe(CreateTransferStatus.pending_transfer_expired);
  });

  it('a failed chain leaves no trace: statuses, account lists and history balances restored', async () => {
    await client.createAccounts([account(4n, { flags: AccountFlags.history })]);
    const held = { debit_account_id: 4n, credit_account_id: 2n };
    expect(
      await client.createTransfers([transfer(20n, { ...held, flags: TransferFlags.pending })]),
    ).toEqual([expect.objectContaining({ status: created })]);
    const before = {
      transfers: await client.getAccountTransfers(accountFilter(4n)),
      history: await client.getAccountBalances(accountFilter(4n)),
    };
    const results = await client.createTransfers([
      transfer(21n, {
        flags: TransferFlags.post_pending_transfer | TransferFlags.linked,
        pending_id: 20n,
        debit_account_id: 0n,
        credit_account_id: 0n,
      }),
      transfer(22n, { ...held, flags: TransferFlags.linked }),
      transfer(23n, { credit_account_id: 4n, flags: TransferFlags.linked }),
      transfer(24n, { credit_account_id: 99n }),
    ]);
    expect(results.map((result) => result.status)).toEqual([
      linked_event_failed,
      linked_event_failed,
      linked_event_failed,
      CreateTransferStatus.credit_account_not_found,
    ]);
    expect({
      transfers: await client.getAccountTransfers(accountFilter(4n)),
      history: await client.getAccountBalances(accountFilter(4n)),
    }).toEqual(before);
    expect(await client.lookupTransfers([21n, 22n, 23n])).toEqual([]);
    // The hold is still pending, and what follows is recorded after it alone.
    expect(
      await client.createTransfers([
        transfer(25n, {
          flags: TransferFlags.void_pending_transfer,
          pending_id: 20n,
          debit_account_id: 0n,
          credit_account_id: 0n,
        }),
        transfer(26n, { credit_account_id: 4n, amount: 7n }),
      ]),
    ).toEqual([
      expect.objectContaining({ status: created }),
      expect.objectContaining({ status: created }),
    ]);
    const history = await client.getAccountBalances(accountFilter(4n));
    expect(history.map((entry) => [entry.debits_pending, entry.credits_posted])).toEqual([
      [10n, 0n],
      [0n, 0n],
      [0n, 7n],
    ]);
  });

  it("a rolled-back hold's expiry never fires on the transfer that takes its slot", async () => {
    // The chain's hold (timeout 1 s) is stored, then rolled back; the next transfer takes its
    // slot: a hold with a longer timeout, then (next batch) one with the same timeout.
    const results = await client.createTransfers([
      transfer(10n, { flags: TransferFlags.pending | TransferFlags.linked, timeout: 1 }),
      transfer(11n, { credit_account_id: 99n }),
      transfer(12n, { flags: TransferFlags.pending, timeout: 3 }),
    ]);
    expect(results.map((result) => result.status)).toEqual([
      linked_event_failed,
      CreateTransferStatus.credit_account_not_found,
      created,
    ]);
    clock.advanceSeconds(1);
    expect(await balances(client, 1n)).toEqual([10n, 0n, 0n, 0n]); // 12 still held
    const rolledBack = await client.createTransfers([
      transfer(13n, { flags: TransferFlags.pending | TransferFlags.linked, timeout: 1 }),
      transfer(14n, { credit_account_id: 99n }),
    ]);
    expect(rolledBack.map((result) => result.status)).toEqual([
      linked_event_failed,
      CreateTransferStatus.credit_account_not_found,
    ]);
    expect(await client.createTransfers([transfer(15n, { flags: TransferFlags.pending })])).toEqual(
      [expect.objectContaining({ status: created })],
    );
    clock.advanceSeconds(3); // 12 expires; 15 (no timeout, in 13's slot) stays held
    expect(await balances(client, 1n)).toEqual([10n, 0n, 0n, 0n]);
    const [held] = await client.lookupTransfers([15n]);
    expect(
      await client.createTransfers([
        transfer(16n, { flags: TransferFlags.post_pending_transfer, pending_id: held.id }),
      ]),
    ).toEqual([expect.objectContaining({ status: created })]);
  });

  it('posts part of a hold, releasing the rest; amount_max posts it all', async () => {
    await client.createTransfers([
      transfer(1n, { flags: TransferFlags.pending, amount: 100n, timeout: 60 }),
      transfer(2n, { flags: TransferFlags.pending, amount: 50n, timeout: 60 }),
    ]);
    const results = await client.createTransfers([
      transfer(3n, { flags: TransferFlags.post_pending_transfer, pending_id: 1n, amount: 101n }),
      transfer(4n, {
        flags: TransferFlags.post_pending_transfer,
        pending_id: 1n,
        amount: 30n,
        debit_account_id: 0n,
        credit_account_id: 0n,
        ledger: 0,
        code: 0,
      }),
      transfer(5n, { flags: TransferFlags.post_pending_transfer, pending_id: 1n, amount: 1n }),
      transfer(6n, {
        flags: TransferFlags.post_pending_transfer,
        pending_id: 2n,
        amount: amount_max,
      }),
    ]);
    expect(results.map((result) => result.status)).toEqual([
      CreateTransferStatus.exceeds_pending_transfer_amount,
      created,
      CreateTransferStatus.pending_transfer_already_posted,
      created,
    ]);
    expect(await balances(client, 1n)).toEqual([0n, 80n, 0n, 0n]);
    const [posted] = await client.lookupTransfers([6n]);
    expect(posted.amount).toBe(50n);
    // Expiry no longer applies to a posted hold.
    clock.advanceSeconds(120);
    expect(await balances(client, 1n)).toEqual([0n, 80n, 0n, 0n]);
  });

  it('voids the full amount only, and reports pending_id rules in order', async () => {
    await client.createTransfers([
      transfer(1n, { flags: TransferFlags.pending, amount: 100n }),
      transfer(9n),
    ]);
    const results = await client.createTransfers([
      transfer(2n, { flags: TransferFlags.void_pending_transfer, pending_id: 0n }),
      transfer(3n, { flags: TransferFlags.void_pending_transfer, pending_id: 3n }),
      transfer(4n, { flags: TransferFlags.void_pending_transfer, pending_id: 9n }),
      transfer(5n, { flags: TransferFlags.void_pending_transfer, pending_id: 1n, amount: 99n }),
      transfer(6n, { flags: TransferFlags.void_pending_transfer, pending_id: 1n, code: 77 }),
      transfer(7n, { flags: TransferFlags.void_pending_transfer, pending_id: 1n, amount: 0n }),
      transfer(8n, { flags: TransferFlags.void_pending_transfer, pending_id: 1n, amount: 0n }),
    ]);
    expect(results.map((result) => result.status)).toEqual([
      CreateTransferStatus.pending_id_must_not_be_zero,
      CreateTransferStatus.pending_id_must_be_different,
      CreateTransferStatus.pending_transfer_not_pending,
      CreateTransferStatus.pending_transfer_has_different_amount,
      CreateTransferStatus.pending_transfer_has_different_code,
      created,
      CreateTransferStatus.pending_transfer_already_voided,
    ]);
    expect(await balances(client, 1n)).toEqual([0n, 10n, 0n, 0n]);
  });

  it('keeps a hold against a limited account atomic: concurrent holds never overdraw', async () => {
    await client.createTransfers([
      transfer(1n, { debit_account_id: 2n, credit_account_id: 3n, amount: 100n }),
    ]);
    const holds = Array.from({ length: 5 }, (_, index) =>
      client.createTransfers([
        transfer(10n + BigInt(index), {
          debit_account_id: 3n,
          flags: TransferFlags.pending,
          amount: 30n,
          timeout: 10,
        }),
      ]),
    );
    const statuses = (await Promise.all(holds)).map(([result]) => result.status);
    expect(statuses.filter((status) => status === created)).toHaveLength(3);
    expect(
      statuses.filter((status) => status === CreateTransferStatus.exceeds_credits),
    ).toHaveLength(2);
    clock.advanceSeconds(11);
    expect(await balances(client, 3n)).toEqual([0n, 0n, 0n, 100n]);
  });
});
