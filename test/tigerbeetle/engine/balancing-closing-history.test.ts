import {
  AccountFilterFlags,
  AccountFlags,
  CreateAccountStatus,
  CreateTransferStatus,
  QueryFilterFlags,
  TransferFlags,
  amount_max,
  type Client,
} from 'tigerbeetle-node';
import { ManualClock, createEmbeddedClient } from '../../../tigerbeetle/engine';
import { account, accountFilter, queryFilter, transfer } from './fixtures';

const { created } = CreateTransferStatus;

describe('embedded ledger: balancing and closing', () => {
  let clock: ManualClock;
  let client: Client;
  beforeEach(async () => {
    clock = new ManualClock();
    client = createEmbeddedClient({ clock });
    const results = await client.createAccounts([
      account(1n),
      account(2n, { flags: AccountFlags.debits_must_not_exceed_credits }),
      account(3n),
    ]);
    expect(results.every((result) => result.status === CreateAccountStatus.created)).toBe(true);
    expect(
      (
        await client.createTransfers([
          transfer(100n, { debit_account_id: 1n, credit_account_id: 2n, amount: 70n }),
        ])
      )[0].status,
    ).toBe(created);
  });
  afterEach(() => client.destroy());

  it('balancing_debit moves at most the available balance and records the amount moved', async () => {
    const results = await client.createTransfers([
      transfer(1n, {
        debit_account_id: 2n,
        credit_account_id: 3n,
        amount: amount_max,
        flags: TransferFlags.balancing_debit,
      }),
      transfer(2n, {
        debit_account_id: 2n,
        credit_account_id: 3n,
        amount: 5n,
        flags: TransferFlags.balancing_debit,
      }),
    ]);
    expect(results.map((result) => result.status)).toEqual([created, created]);
    const [first, second] = await client.lookupTransfers([1n, 2n]);
    expect(first.amount).toBe(70n);
    expect(second.amount).toBe(0n);
    // A resubmission with a larger upper limit is `exists`; a smaller one is not.
    const again = await client.createTransfers([
      transfer(1n, {
        debit_account_id: 2n,
        credit_account_id: 3n,
        amount: amount_max,
        flags: TransferFlags.balancing_debit,
      }),
      transfer(1n, {
        debit_account_id: 2n,
        credit_account_id: 3n,
        amount: 69n,
        flags: TransferFlags.balancing_debit,
      }),
    ]);
    expect(again.map((result) => result.status)).toEqual([
      CreateTransferStatus.exists,
      CreateTransferStatus.exists_with_different_amount,
    ]);
  });

  it('closing with a pending transfer closes both accounts; voiding it reopens them', async () => {
    const closing = transfer(1n, {
      debit_account_id: 1n,
      credit_account_id: 3n,
      amount: 0n,
      flags: TransferFlags.pending | TransferFlags.closing_debit | TransferFlags.closing_credit,
    });
    expect((await client.createTransfers([closing]))[0].status).toBe(created);
    const accounts = await client.lookupAccounts([1n, 3n]);
    expect(accounts.every((found) => (found.flags & AccountFlags.closed) !== 0)).toBe(true);
    const refused = await client.createTransfers([
      transfer(2n, { debit_account_id: 1n, credit_account_id: 2n }),
      transfer(3n, { debit_account_id: 2n, credit_account_id: 3n, amount: 1n }),
    ]);
    expect(refused.map((result) => result.status)).toEqual([
      CreateTransferStatus.debit_account_already_closed,
      CreateTransferStatus.credit_account_already_closed,
    ]);
    const reopen = await client.createTransfers([
      transfer(4n, {
        flags: TransferFlags.void_pending_transfer,
        pending_id: 1n,
        debit_account_id: 0n,
        credit_account_id: 0n,
        amount: 0n,
      }),
    ]);
    expect(reopen[0].status).toBe(created);
    const reopened = await client.lookupAccounts([1n, 3n]);
    expect(reopened.every((found) => (found.flags & AccountFlags.closed) === 0)).toBe(true);
  });

  it('a closing transfer with a timeout reopens the account when it expires', async () => {
    const closing = transfer(1n, {
      debit_account_id: 1n,
      credit_account_id: 3n,
      amount: 0n,
      timeout: 5,
      flags: TransferFlags.pending | TransferFlags.closing_debit,
    });
    expect((await client.createTransfers([closing]))[0].status).toBe(created);
    expect(((await client.lookupAccounts([1n]))[0].flags & AccountFlags.closed) !== 0).toBe(true);
    clock.advanceSeconds(6);
    expect(((await client.lookupAccounts([1n]))[0].flags & AccountFlags.closed) === 0).toBe(true);
  });
});

describe('embedded ledger: history, account transfers and queries', () => {
  let client: Client;
  beforeEach(async () => {
    client = createEmbeddedClient({ clock: new ManualClock() });
    await client.createAccounts([
      account(1n, { flags: AccountFlags.history, user_data_32: 5 }),
      account(2n, { user_data_32: 5 }),
      account(3n, { code: 11 }),
    ]);
    const results = await client.createTransfers([
      transfer(10n, { amount: 10n, user_data_64: 1n }),
      transfer(11n, { debit_account_id: 2n, credit_account_id: 1n, amount: 3n, code: 21 }),
      transfer(12n, { amount: 20n, user_data_64: 1n, flags: TransferFlags.pending }),
      transfer(13n, { debit_account_id: 3n, credit_account_id: 2n, amount: 1n }),
      transfer(14n, { flags: TransferFlags.post_pending_transfer, pending_id: 12n, amount: 15n }),
    ]);
    expect(results.every((result) => result.status === created)).toBe(true);
  });
  afterEach(() => client.destroy());

  it('returns the balance right after each transfer for a history account', async () => {
    const balances = await client.getAccountBalances(accountFilter(1n));
    expect(
      balances.map((balance) => [
        balance.debits_pending,
        balance.debits_posted,
        balance.credits_posted,
      ]),
    ).toEqual([
      [0n, 10n, 0n],
      [0n, 10n, 3n],
      [20n, 10n, 3n],
      [0n, 25n, 3n],
    ]);
    const transfers = await client.getAccountTransfers(accountFilter(1n));
    expect(transfers.map((found) => found.id)).toEqual([10n, 11n, 12n, 14n]);
    expect(balances.map((balance) => balance.timestamp)).toEqual(
      transfers.map((found) => found.timestamp),
    );
    // Without flags.history there is no balance history.
    expect(await client.getAccountBalances(accountFilter(2n))).toEqual([]);
  });

  it('filters account transfers by side, field, direction, limit and time', async () => {
    const ids = async (fields: Parameters<typeof accountFilter>[1]): Promise<bigint[]> =>
      (await client.getAccountTransfers(accountFilter(1n, fields))).map((found) => found.id);
    expect(await ids({ flags: AccountFilterFlags.credits })).toEqual([11n]);
    expect(await ids({ flags: AccountFilterFlags.debits | AccountFilterFlags.reversed })).toEqual([
      14n,
      12n,
      10n,
    ]);
    // The post (14) inherits user_data_64 from its pending transfer (12).
    expect(await ids({ user_data_64: 1n })).toEqual([10n, 12n, 14n]);
    expect(await ids({ code: 21 })).toEqual([11n]);
    expect(
      await ids({
        limit: 2,
        flags: AccountFilterFlags.debits | AccountFilterFlags.credits | AccountFilterFlags.reversed,
      }),
    ).toEqual([14n, 12n]);
    const [, second, third] = await client.getAccountTransfers(accountFilter(1n));
    expect(await ids({ timestamp_min: second.timestamp, timestamp_max: third.timestamp })).toEqual([
      11n,
      12n,
    ]);
    expect(await ids({ flags: 0 })).toEqual([]);
    expect(await ids({ flags: (1 << 5) | AccountFilterFlags.debits })).toEqual([]);
  });

  it('queries accounts and transfers by indexed fields', async () => {
    const accounts = await client.queryAccounts(queryFilter({ user_data_32: 5 }));
    expect(accounts.map((found) => found.id)).toEqual([1n, 2n]);
    const reversed = await client.queryAccounts(
      queryFilter({ flags: QueryFilterFlags.reversed, limit: 2 }),
    );
    expect(reversed.map((found) => found.id)).toEqual([3n, 2n]);
    const transfers = await client.queryTransfers(queryFilter({ user_data_64: 1n, ledger: 700 }));
    expect(transfers.map((found) => found.id)).toEqual([10n, 12n, 14n]);
    expect(await client.queryTransfers(queryFilter({ ledger: 1 }))).toEqual([]);
    expect(await client.queryTransfers(queryFilter({ limit: 0 }))).toEqual([]);
  });
});
