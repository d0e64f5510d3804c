import {
  AccountFlags,
  CreateAccountStatus,
  CreateTransferStatus,
  ErrorCodes,
  RequestError,
  TransferFlags,
  amount_max,
  type Client,
} from 'tigerbeetle-node';
import { ManualClock, createEmbeddedClient } from '../../../tigerbeetle/engine';
import { account, ledgerId, transfer } from './fixtures';

const u128Max = amount_max;

describe('embedded ledger: create_accounts statuses', () => {
  let client: Client;
  beforeEach(() => {
    client = createEmbeddedClient({ clock: new ManualClock() });
  });
  afterEach(() => client.destroy());

  it('reports created with the assigned timestamp, then exists with the same timestamp', async () => {
    const [created] = await client.createAccounts([account(1n)]);
    expect(created.status).toBe(CreateAccountStatus.created);
    const [exists] = await client.createAccounts([account(1n)]);
    expect(exists.status).toBe(CreateAccountStatus.exists);
    expect(exists.timestamp).toBe(created.timestamp);
    const [stored] = await client.lookupAccounts([1n]);
    expect(stored.timestamp).toBe(created.timestamp);
  });

  it.each([
    [
      'timestamp_must_be_zero before reserved_field',
      account(5n, { timestamp: 1n, reserved: 1 }),
      CreateAccountStatus.timestamp_must_be_zero,
    ],
    [
      'reserved_field before reserved_flag',
      account(5n, { reserved: 1, flags: 1 << 10 }),
      CreateAccountStatus.reserved_field,
    ],
    [
      'reserved_flag before id_must_not_be_zero',
      account(0n, { flags: 1 << 10 }),
      CreateAccountStatus.reserved_flag,
    ],
    ['id_must_not_be_zero', account(0n, { ledger: 0 }), CreateAccountStatus.id_must_not_be_zero],
    ['id_must_not_be_int_max', account(u128Max), CreateAccountStatus.id_must_not_be_int_max],
    [
      'flags_are_mutually_exclusive before balances',
      account(5n, {
        flags:
          AccountFlags.debits_must_not_exceed_credits | AccountFlags.credits_must_not_exceed_debits,
        debits_pending: 1n,
      }),
      CreateAccountStatus.flags_are_mutually_exclusive,
    ],
    [
      'debits_pending_must_be_zero',
      account(5n, { debits_pending: 1n, credits_posted: 1n }),
      CreateAccountStatus.debits_pending_must_be_zero,
    ],
    [
      'credits_posted_must_be_zero',
      account(5n, { credits_posted: 1n, ledger: 0 }),
      CreateAccountStatus.credits_posted_must_be_zero,
    ],
    [
      'ledger_must_not_be_zero before code',
      account(5n, { ledger: 0, code: 0 }),
      CreateAccountStatus.ledger_must_not_be_zero,
    ],
    ['code_must_not_be_zero', account(5n, { code: 0 }), CreateAccountStatus.code_must_not_be_zero],
  ])('%s', async (_name, input, expected) => {
    const [result] = await client.createAccounts([input]);
    expect(result.status).toBe(expected);
    expect(result.timestamp).toBeGreaterThan(0n);
    expect(await client.lookupAccounts([input.id])).toEqual([]);
  });

  it('compares an existing account field by field in precedence order', async () => {
    await client.createAccounts([account(1n, { user_data_64: 7n })]);
    const cases = [
      [
        account(1n, { flags: AccountFlags.history, code: 99 }),
        CreateAccountStatus.exists_with_different_flags,
      ],
      [
        account(1n, { user_data_128: 1n, code: 99 }),
        CreateAccountStatus.exists_with_different_user_data_128,
      ],
      [
        account(1n, { user_data_64: 8n, ledger: 9 }),
        CreateAccountStatus.exists_with_different_user_data_64,
      ],
      [
        account(1n, { user_data_64: 7n, user_data_32: 3 }),
        CreateAccountStatus.exists_with_different_user_data_32,
      ],
      [
        account(1n, { user_data_64: 7n, ledger: 9, code: 99 }),
        CreateAccountStatus.exists_with_different_ledger,
      ],
      [account(1n, { user_data_64: 7n, code: 99 }), CreateAccountStatus.exists_with_different_code],
      // Exists is decided before the "must be zero" checks of a new account.
      [account(1n, { user_data_64: 7n, debits_posted: 5n }), CreateAccountStatus.exists],
    ] as const;
    const results = await client.createAccounts(cases.map(([input]) => input));
    expect(results.map((result) => result.status)).toEqual(cases.map(([, status]) => status));
  });

  it('assigns strictly increasing timestamps across and within batches', async () => {
    const first = await client.createAccounts([account(1n), account(2n), account(0n)]);
    const second = await client.createAccounts([account(3n)]);
    const timestamps = [...first, ...second].map((result) => result.timestamp);
    for (let index = 1; index < timestamps.length; index += 1) {
      expect(timestamps[index]).toBeGreaterThan(timestamps[index - 1]);
    }
  });
});

describe('embedded ledger: create_transfers statuses', () => {
  let client: Client;
  beforeEach(async () => {
    client = createEmbeddedClient({ clock: new ManualClock() });
    const results = await client.createAccounts([
      account(1n),
      account(2n),
      account(3n, { ledger: ledgerId + 1 }),
      account(4n, { ledger: ledgerId + 1 }),
      account(5n, { flags: AccountFlags.debits_must_not_exceed_credits }),
      account(6n, { flags: AccountFlags.credits_must_not_exceed_debits }),
    ]);
    expect(results.every((result) => result.status === CreateAccountStatus.created)).toBe(true);
  });
  afterEach(() => client.destroy());

  async function statusOf(input: ReturnType<typeof transfer>): Promise<CreateTransferStatus> {
    const [result] = await client.createTransfers([input]);
    return result.status;
  }

  it.each([
    [
      'reserved_flag before id_must_not_be_zero',
      transfer(0n, { flags: 1 << 12 }),
      CreateTransferStatus.reserved_flag,
    ],
    [
      'id_must_not_be_zero',
      transfer(0n, { debit_account_id: 0n }),
      CreateTransferStatus.id_must_not_be_zero,
    ],
    ['id_must_not_be_int_max', transfer(u128Max), CreateTransferStatus.id_must_not_be_int_max],
    [
      'flags_are_mutually_exclusive (post and void)',
      transfer(50n, {
        flags: TransferFlags.post_pending_transfer | TransferFlags.void_pending_transfer,
        pending_id: 0n,
      }),
      CreateTransferStatus.flags_are_mutually_exclusive,
    ],
    [
      'flags_are_mutually_exclusive (post and balancing)',
      transfer(50n, {
        flags: TransferFlags.post_pending_transfer | TransferFlags.balancing_debit,
        pending_id: 9n,
      }),
      CreateTransferStatus.flags_are_mutually_exclusive,
    ],
    [
      'debit_account_id_must_not_be_zero',
      transfer(50n, { debit_account_id: 0n, credit_account_id: 0n }),
      CreateTransferStatus.debit_account_id_must_not_be_zero,
    ],
    [
      'credit_account_id_must_not_be_int_max',
      transfer(50n, { credit_account_id: u128Max }),
      CreateTransferStatus.credit_account_id_must_not_be_int_max,
    ],
    [
      'accounts_must_be_different',
      transfer(50n, { credit_account_id: 1n, ledger: 0 }),
      CreateTransferStatus.accounts_must_be_different,
    ],
    [
      'pending_id_must_be_zero',
      transfer(50n, { pending_id: 1n, timeout: 5 }),
      CreateTransferStatus.pending_id_must_be_zero,
    ],
    [
      'timeout_reserved_for_pending_transfer',
      transfer(50n, { timeout: 5, ledger: 0 }),
      CreateTransferStatus.timeout_reserved_for_pending_transfer,
    ],
    [
      'closing_transfer_must_be_pending',
      transfer(50n, { flags: TransferFlags.closing_debit, ledger: 0 }),
      CreateTransferStatus.closing_transfer_must_be_pending,
    ],
    [
      'ledger_must_not_be_zero before code',
      transfer(50n, { ledger: 0, code: 0 }),
      CreateTransferStatus.ledger_must_not_be_zero,
    ],
    [
      'code_must_not_be_zero before account lookups',
      transfer(50n, { code: 0, debit_account_id: 99n }),
      CreateTransferStatus.code_must_not_be_zero,
    ],
    [
      'debit_account_not_found before credit',
      transfer(50n, { debit_account_id: 98n, credit_account_id: 99n }),
      CreateTransferStatus.debit_account_not_found,
    ],
    [
      'credit_account_not_found',
      transfer(50n, { credit_account_id: 99n }),
      CreateTransferStatus.credit_account_not_found,
    ],
    [
      'accounts_must_have_the_same_ledger',
      transfer(50n, { credit_account_id: 3n }),
      CreateTransferStatus.accounts_must_have_the_same_ledger,
    ],
    [
      'transfer_must_have_the_same_ledger_as_accounts',
      transfer(50n, { debit_account_id: 3n, credit_account_id: 4n }),
      CreateTransferStatus.transfer_must_have_the_same_ledger_as_accounts,
    ],
    [
      'exceeds_credits',
      transfer(50n, { debit_account_id: 5n }),
      CreateTransferStatus.exceeds_credits,
    ],
    [
      'exceeds_debits',
      transfer(50n, { credit_account_id: 6n }),
      CreateTransferStatus.exceeds_debits,
    ],
    [
      'pending_transfer_not_found',
      transfer(50n, { flags: TransferFlags.void_pending_transfer, pending_id: 77n }),
      CreateTransferStatus.pending_transfer_not_found,
    ],
  ])('%s', async (_name, input, expected) => {
    expect(await statusOf(input)).toBe(expected);
  });

  it('checks overflows in order: pending, posted, then their sum', async () => {
    const nearMax = u128Max - 5n;
    expect(await statusOf(transfer(60n, { amount: nearMax }))).toBe(CreateTransferStatus.created);
    expect(await statusOf(transfer(61n, { amount: 10n }))).toBe(
      CreateTransferStatus.overflows_debits_posted,
    );
    expect(
      await statusOf(transfer(62n, { amount: 3n, flags: TransferFlags.pending, timeout: 0 })),
    ).toBe(CreateTransferStatus.created);
    // 3 pending + (max - 5) posted + 3 overflows only the sum.
    expect(await statusOf(transfer(63n, { amount: 3n }))).toBe(
      CreateTransferStatus.overflows_debits,
    );
    expect(await statusOf(transfer(64n, { amount: u128Max, flags: TransferFlags.pending }))).toBe(
      CreateTransferStatus.overflows_debits_pending,
    );
    expect(
      await statusOf(
        transfer(65n, { amount: u128Max - 1n, flags: TransferFlags.pending, debit_account_id: 6n }),
      ),
    ).toBe(CreateTransferStatus.overflows_credits_pending);
  });

  it('binds the id of a transient failure: a retry after a top-up is id_already_failed', async () => {
    const spend = transfer(70n, { debit_account_id: 5n, amount: 100n });
    expect(await statusOf(spend)).toBe(CreateTransferStatus.exceeds_credits);
    expect(
      await statusOf(transfer(71n, { debit_account_id: 1n, credit_account_id: 5n, amount: 500n })),
    ).toBe(CreateTransferStatus.created);
    expect(await statusOf(spend)).toBe(CreateTransferStatus.id_already_failed);
    expect(await client.lookupTransfers([70n])).toEqual([]);
    // A new id goes through now that the balance allows it.
    expect(await statusOf({ ...spend, id: 72n })).toBe(CreateTransferStatus.created);
  });

  it('does not bind the id of a validation failure: the corrected retry is created', async () => {
    expect(await statusOf(transfer(80n, { code: 0 }))).toBe(
      CreateTransferStatus.code_must_not_be_zero,
    );
    expect(await statusOf(transfer(80n))).toBe(CreateTransferStatus.created);
  });

  it('compares a resubmitted transfer field by field, and exists returns the original timestamp', async () => {
    const [created] = await client.createTransfers([transfer(90n, { user_data_64: 4n })]);
    const cases = [
      [
        transfer(90n, { flags: TransferFlags.pending, amount: 1n }),
        CreateTransferStatus.exists_with_different_flags,
      ],
      [
        transfer(90n, { pending_id: 3n, amount: 1n }),
        CreateTransferStatus.exists_with_different_pending_id,
      ],
      [
        transfer(90n, { timeout: 3, amount: 1n }),
        CreateTransferStatus.exists_with_different_timeout,
      ],
      [
        transfer(90n, { debit_account_id: 2n, credit_account_id: 1n }),
        CreateTransferStatus.exists_with_different_debit_account_id,
      ],
      [
        transfer(90n, { amount: 11n, user_data_64: 4n }),
        CreateTransferStatus.exists_with_different_amount,
      ],
      [
        transfer(90n, { user_data_64: 5n, ledger: 3 }),
        CreateTransferStatus.exists_with_different_user_data_64,
      ],
      [
        transfer(90n, { user_data_64: 4n, ledger: 3, code: 3 }),
        CreateTransferStatus.exists_with_different_ledger,
      ],
      [
        transfer(90n, { user_data_64: 4n, code: 3 }),
        CreateTransferStatus.exists_with_different_code,
      ],
      [transfer(90n, { user_data_64: 4n }), CreateTransferStatus.exists],
    ] as const;
    const results = await client.createTransfers(cases.map(([input]) => input));
    expect(results.map((result) => result.status)).toEqual(cases.map(([, status]) => status));
    expect(results[results.length - 1].timestamp).toBe(created.timestamp);
  });
});

describe('embedded ledger: client behaviour', () => {
  it('rejects like the native client on malformed input, too-large batches and after destroy', async () => {
    const client = createEmbeddedClient();
    await expect(client.createAccounts([account(1n, { code: 65536 })])).rejects.toThrow(
      'code must be a u16.',
    );
    await expect(client.createTransfers([transfer(-1n)])).rejects.toThrow('id must be positive');
    await expect(client.createTransfers([transfer(1n << 128n)])).rejects.toThrow(
      'id must fit in 128 bits',
    );
    await expect(client.lookupAccounts([1 as unknown as bigint])).rejects.toThrow(
      'lookup must be a BigInt',
    );
    const tooMany = Array.from({ length: 8190 }, (_, index) => account(BigInt(index + 1)));
    const tooMuch = await client.createAccounts(tooMany).catch((error: unknown) => error);
    expect(tooMuch).toBeInstanceOf(RequestError);
    expect((tooMuch as RequestError).code).toBe(ErrorCodes.ERR_TOO_MUCH_DATA);
    expect(await client.lookupAccounts([1n])).toEqual([]);
    client.destroy();
    const closed = await client.lookupAccounts([1n]).catch((error: unknown) => error);
    expect((closed as RequestError).code).toBe(ErrorCodes.ERR_CLIENT_CLOSED);
  });

  it('returns one result per event carrying status and timestamp, as 0.17 does', async () => {
    const client = createEmbeddedClient();
    const results = await client.createAccounts([account(1n), account(1n), account(0n)]);
    expect(results.map((result) => result.status)).toEqual([
      CreateAccountStatus.created,
      CreateAccountStatus.exists,
      CreateAccountStatus.id_must_not_be_zero,
    ]);
    expect(results[1].timestamp).toBe(results[0].timestamp);
    expect(results[2].timestamp).toBeGreaterThan(results[0].timestamp);
    client.destroy();
  });
});
