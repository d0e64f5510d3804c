import {
  AccountFlags,
  CreateAccountStatus,
  CreateTransferStatus,
  TransferFlags,
  type Client,
} from 'tigerbeetle-node';
import { ManualClock, createEmbeddedClient } from '../../../tigerbeetle/engine';
import { account, accountFilter, queryFilter, transfer } from './fixtures';

/**
 * Corners where TigerBeetle 0.17's state machine (src/state_machine.zig) and the engine once
 * differed; each case is what TigerBeetle itself answers.
 */

const u63Max = (1n << 63n) - 1n;

describe('embedded ledger: TigerBeetle state-machine corners', () => {
  let client: Client;
  let clock: ManualClock;
  beforeEach(async () => {
    clock = new ManualClock();
    client = createEmbeddedClient({ clock });
    await client.createAccounts([account(1n, { flags: AccountFlags.history }), account(2n)]);
    expect((await client.createTransfers([transfer(10n)]))[0].status).toBe(
      CreateTransferStatus.created,
    );
  });
  afterEach(() => client.destroy());

  it('a filter whose timestamp_min or timestamp_max is past 2^63 - 1 is invalid: no results', async () => {
    // TimestampRange.valid: a u64 timestamp's top bit is TigerBeetle's tombstone flag.
    for (const bound of [1n << 63n, (1n << 64n) - 2n]) {
      expect(await client.queryTransfers(queryFilter({ timestamp_max: bound }))).toEqual([]);
      expect(await client.queryAccounts(queryFilter({ timestamp_max: bound }))).toEqual([]);
      expect(await client.getAccountTransfers(accountFilter(1n, { timestamp_max: bound }))).toEqual(
        [],
      );
      expect(await client.getAccountBalances(accountFilter(1n, { timestamp_max: bound }))).toEqual(
        [],
      );
      expect(await client.queryTransfers(queryFilter({ timestamp_min: bound }))).toEqual([]);
    }
    // The largest valid bound still finds everything.
    expect(
      (await client.queryTransfers(queryFilter({ timestamp_max: u63Max }))).map(
        (found) => found.id,
      ),
    ).toEqual([10n]);
    expect(
      (await client.getAccountTransfers(accountFilter(1n, { timestamp_max: u63Max }))).map(
        (found) => found.id,
      ),
    ).toEqual([10n]);
  });

  it('a rolled-back imported event keeps its own timestamp in the result, as TigerBeetle reports it', async () => {
    const [existing] = await client.lookupTransfers([10n]);
    const importedTimestamp = existing.timestamp + 1n;
    clock.advanceSeconds(1); // imported timestamps must lie before the batch's own
    const results = await client.createTransfers([
      transfer(20n, {
        flags: TransferFlags.imported | TransferFlags.linked,
        timestamp: importedTimestamp,
      }),
      transfer(21n, {
        flags: TransferFlags.imported,
        timestamp: importedTimestamp + 1n,
        amount: 0n,
        debit_account_id: 9n,
      }),
    ]);
    expect(results.map((result) => result.status)).toEqual([
      CreateTransferStatus.linked_event_failed,
      CreateTransferStatus.debit_account_not_found,
    ]);
    // TigerBeetle only rewrites the status of the rolled-back event; its timestamp stays the one it had.
    expect(results[0].timestamp).toBe(importedTimestamp);
    expect(await client.lookupTransfers([20n])).toEqual([]);
  });

  it('accounts: a rolled-back imported account keeps its timestamp too', async () => {
    const [existing] = await client.lookupAccounts([2n]);
    const importedTimestamp = existing.timestamp + 100n;
    clock.advanceSeconds(1);
    const results = await client.createAccounts([
      account(30n, {
        flags: AccountFlags.imported | AccountFlags.linked,
        timestamp: importedTimestamp,
      }),
      account(31n, { flags: AccountFlags.imported, timestamp: importedTimestamp + 1n, ledger: 0 }),
    ]);
    expect(results.map((result) => result.status)).toEqual([
      CreateAccountStatus.linked_event_failed,
      CreateAccountStatus.ledger_must_not_be_zero,
    ]);
    expect(results[0].timestamp).toBe(importedTimestamp);
  });
});
