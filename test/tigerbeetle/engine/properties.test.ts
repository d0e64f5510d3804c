import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import {
  AccountFlags,
  TransferFlags,
  amount_max,
  type Account,
  type Client,
  type Transfer,
} from 'tigerbeetle-node';
import { ManualClock, openEmbeddedLedger } from '../../../tigerbeetle/engine';
import { account, queryFilter, transfer } from './fixtures';

/**
 * Random sequences of transfer batches (plain, pending with timeouts, post, void, balancing,
 * linked chains, reused ids) with the clock moving between batches. After every batch the
 * ledger must balance; at the end, replaying the journal must rebuild exactly the same state.
 * A ledger stopped mid-sequence and started again from its snapshot (after a clean stop, or a
 * crash with a journal tail after the snapshot) must answer every later batch exactly as a ledger
 * that never stopped.
 */
const accounts: Account[] = [
  account(1n, { ledger: 1, flags: AccountFlags.history }),
  account(2n, { ledger: 1, flags: AccountFlags.debits_must_not_exceed_credits }),
  account(3n, { ledger: 1, flags: AccountFlags.credits_must_not_exceed_debits }),
  account(4n, {
    ledger: 1,
    flags: AccountFlags.debits_must_not_exceed_credits | AccountFlags.history,
  }),
  account(5n, { ledger: 2 }),
  account(6n, { ledger: 2, flags: AccountFlags.debits_must_not_exceed_credits }),
];

/** Funds the limited accounts so the random transfers have something to move. */
const funding: Transfer[] = [
  transfer(1000n, { debit_account_id: 1n, credit_account_id: 2n, amount: 100n, ledger: 1 }),
  transfer(1001n, { debit_account_id: 3n, credit_account_id: 4n, amount: 100n, ledger: 1 }),
  transfer(1002n, { debit_account_id: 5n, credit_account_id: 6n, amount: 100n, ledger: 2 }),
];

const kinds = ['plain', 'pending', 'post', 'void', 'balancing_debit', 'balancing_credit'] as const;

/** Ordered account pairs within one ledger, plus one invalid pair to exercise rejections. */
const accountPairs: [number, number][] = [[1, 1]];
for (const group of [
  [1, 2, 3, 4],
  [5, 6],
]) {
  for (const debit of group)
    for (const credit of group) if (debit !== credit) accountPairs.push([debit, credit]);
}

// A small id range, so resubmissions, posts and voids often hit existing transfers.
const transferArbitrary = fc
  .record({
    id: fc.bigInt({ min: 1n, max: 15n }),
    kind: fc.constantFrom(...kinds),
    pair: fc.constantFrom(...accountPairs),
    amount: fc.oneof(fc.bigInt({ min: 0n, max: 60n }), fc.constant(amount_max)),
    pendingId: fc.bigInt({ min: 1n, max: 15n }),
    timeout: fc.integer({ min: 0, max: 3 }),
    linked: fc.boolean(),
  })
  .map(({ id, kind, pair, amount, pendingId, timeout, linked }): Transfer => {
    const flags = (linked ? TransferFlags.linked : 0) | kindFlags(kind);
    if (kind === 'post' || kind === 'void') {
      return transfer(id, {
        debit_account_id: 0n,
        credit_account_id: 0n,
        amount,
        pending_id: pendingId,
        ledger: 0,
        code: 0,
        flags,
      });
    }
    return transfer(id, {
      debit_account_id: BigInt(pair[0]),
      credit_account_id: BigInt(pair[1]),
      amount,
      ledger: pair[0] <= 4 ? 1 : 2,
      timeout: kind === 'pending' ? timeout : 0,
      flags,
    });
  });

function kindFlags(kind: (typeof kinds)[number]): number {
  switch (kind) {
    case 'plain':
      return 0;
    case 'pending':
      return TransferFlags.pending;
    case 'post':
      return TransferFlags.post_pending_transfer;
    case 'void':
      return TransferFlags.void_pending_transfer;
    case 'balancing_debit':
      return TransferFlags.balancing_debit;
    case 'balancing_credit':
      return TransferFlags.balancing_credit;
  }
}

const stepsArbitrary = fc.array(
  fc.record({
    batch: fc.array(transferArbitrary, { minLength: 1, maxLength: 6 }),
    advanceSeconds: fc.integer({ min: 0, max: 2 }),
  }),
  { minLength: 1, maxLength: 25 },
);

async function checkInvariants(client: Client): Promise<void> {
  const found = await client.lookupAccounts(accounts.map((entry) => entry.id));
  for (const ledger of [1, 2]) {
    const inLedger = found.filter((entry) => entry.ledger === ledger);
    const sum = (
      field: 'debits_pending' | 'debits_posted' | 'credits_pending' | 'credits_posted',
    ): bigint => inLedger.reduce((total, entry) => total + entry[field], 0n);
    expect(sum('debits_posted')).toBe(sum('credits_posted'));
    expect(sum('debits_pending')).toBe(sum('credits_pending'));
  }
  for (const entry of found) {
    if ((entry.flags & AccountFlags.debits_must_not_exceed_credits) !== 0) {
      expect(entry.debits_posted + entry.debits_pending).toBeLessThanOrEqual(entry.credits_posted);
    }
    if ((entry.flags & AccountFlags.credits_must_not_exceed_debits) !== 0) {
      expect(entry.credits_posted + entry.credits_pending).toBeLessThanOrEqual(entry.debits_posted);
    }
  }
}

async function fullState(client: Client): Promise<unknown> {
  const ids = Array.from({ length: 15 }, (_, index) => BigInt(index + 1));
  return {
    accounts: await client.lookupAccounts(accounts.map((entry) => entry.id)),
    transfers: await client.lookupTransfers(ids),
    queried: await client.queryTransfers(queryFilter()),
    history: await client.getAccountBalances({
      account_id: 1n,
      user_data_128: 0n,
      user_data_64: 0n,
      user_data_32: 0,
      code: 0,
      timestamp_min: 0n,
      timestamp_max: 0n,
      limit: 8189,
      flags: 3,
    }),
  };
}

describe('embedded ledger: properties over random operation sequences', () => {
  it('balances every ledger, respects balance limits, and replays the journal to the same state', async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-property-'));
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(stepsArbitrary, async (steps) => {
          run += 1;
          const dataFile = path.join(directory, `run-${run}.journal`);
          const clock = new ManualClock();
          const ledger = openEmbeddedLedger({ clock, dataFile });
          const client = ledger.createClient();
          try {
            // Fund the limited accounts so the random transfers have something to move.
            await client.createAccounts(accounts);
            await client.createTransfers(funding);
            for (const step of steps) {
              const results = await client.createTransfers(step.batch);
              expect(results).toHaveLength(step.batch.length);
              clock.advanceSeconds(step.advanceSeconds);
              await checkInvariants(client);
            }
            const before = await fullState(client);
            ledger.close();
            const replayed = openEmbeddedLedger({ clock, dataFile });
            try {
              expect(await fullState(replayed.createClient())).toEqual(before);
            } finally {
              replayed.close();
            }
          } finally {
            ledger.close();
          }
        }),
        { numRuns: 60 },
      );
    } finally {
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });

  it('a ledger restarted from its snapshot mid-sequence answers exactly like one that never stopped', async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-snapshot-property-'));
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(stepsArbitrary, fc.nat(), fc.nat(), async (steps, stopSeed, tailSeed) => {
          run += 1;
          const dataFile = path.join(directory, `run-${run}.journal`);
          const stopAfter = stopSeed % (steps.length + 1);
          // The snapshot is taken this many steps before the stop; the steps between are the
          // journal tail a crash leaves after it.
          const tailSteps = tailSeed % (stopAfter + 1);
          const referenceClock = new ManualClock();
          const clock = new ManualClock();
          const reference = openEmbeddedLedger({ clock: referenceClock });
          let durable = openEmbeddedLedger({ clock, dataFile, snapshotJournalBytesMin: 1 });
          const clients = [reference.createClient(), durable.createClient()];
          try {
            for (const client of clients) {
              await client.createAccounts(accounts);
              await client.createTransfers(funding);
            }
            for (const [index, step] of steps.entries()) {
              if (index === stopAfter - tailSteps) {
                durable.close(); // writes the snapshot (every journaled byte is due)
                durable = openEmbeddedLedger({ clock, dataFile, snapshotJournalBytesMin: 2 ** 40 });
                clients[1] = durable.createClient();
              }
              if (index === stopAfter) {
                const crashed = `${dataFile}.crashed-${index}`; // what a killed process leaves
                fs.copyFileSync(dataFile, crashed);
                fs.copyFileSync(`${dataFile}.snapshot`, `${crashed}.snapshot`);
                durable.close();
                durable = openEmbeddedLedger({ clock, dataFile: crashed });
                expect(durable.journalWarnings).toEqual([]);
                expect(durable.start.snapshotLoaded).toBe(true);
                if (tailSteps === 0) expect(durable.start.journalReplayedBytes).toBe(0);
                clients[1] = durable.createClient();
              }
              const [expected, actual] = await Promise.all(
                clients.map((client) => client.createTransfers(step.batch)),
              );
              expect(actual).toEqual(expected);
              referenceClock.advanceSeconds(step.advanceSeconds);
              clock.advanceSeconds(step.advanceSeconds);
            }
            expect(await fullState(clients[1])).toEqual(await fullState(clients[0]));
          } finally {
            durable.close();
            reference.close();
          }
        }),
        { numRuns: 40 },
      );
    } finally {
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });
});

/** Transfers with user data and codes from small ranges, so the query filters match some. */
const taggedStepsArbitrary = fc.array(
  fc.record({
    batch: fc.array(
      fc
        .tuple(
          transferArbitrary,
          fc.constantFrom(0n, 1n, 2n),
          fc.constantFrom(0n, 1n, 2n),
          fc.constantFrom(0, 1, 2),
          fc.constantFrom(20, 21),
        )
        .map(([event, userData128, userData64, userData32, code]) => ({
          ...event,
          user_data_128: userData128,
          user_data_64: userData64,
          user_data_32: userData32,
          code: event.code === 0 ? 0 : code,
        })),
      { minLength: 1, maxLength: 6 },
    ),
    advanceSeconds: fc.integer({ min: 0, max: 2 }),
  }),
  { minLength: 5, maxLength: 40 },
);

/** A filter field: usually 0 (any value), so most queries match something. */
function mostlyZero<Value>(zero: Value, values: Value[]): fc.Arbitrary<Value> {
  return fc.oneof(
    { arbitrary: fc.constant(zero), weight: 3 },
    { arbitrary: fc.constantFrom(...values), weight: 1 },
  );
}

/** A query of any kind; its timestamp bounds are picks among the ledger's transfer timestamps. */
const queryArbitrary = fc.record({
  kind: fc.constantFrom('accountTransfers', 'accountBalances', 'queryTransfers', 'queryAccounts'),
  accountId: fc.bigInt({ min: 1n, max: 6n }),
  userData128: mostlyZero(0n, [1n, 2n]),
  userData64: mostlyZero(0n, [1n, 2n]),
  userData32: mostlyZero(0, [1, 2]),
  code: mostlyZero(0, [20, 21]),
  ledger: mostlyZero(0, [1, 2]),
  limit: fc.constantFrom(1, 2, 3, 8189),
  flags: fc.integer({ min: 0, max: 7 }),
  // No bound half the time: two bounds are in the wrong order (an empty answer) half the time.
  minimumPick: fc.option(fc.nat(), { nil: null, freq: 2 }),
  maximumPick: fc.option(fc.nat(), { nil: null, freq: 2 }),
});
type Query = typeof queryArbitrary extends fc.Arbitrary<infer Value> ? Value : never;

async function answer(client: Client, query: Query, timestamps: bigint[]): Promise<unknown> {
  // A pick is a transfer's timestamp, or one past it, so bounds fall on and between transfers.
  const bound = (pick: number | null): bigint =>
    pick === null || timestamps.length === 0
      ? 0n
      : timestamps[(pick >> 1) % timestamps.length] + BigInt(pick & 1);
  const common = {
    user_data_128: query.userData128,
    user_data_64: query.userData64,
    user_data_32: query.userData32,
    code: query.code,
    timestamp_min: bound(query.minimumPick),
    timestamp_max: bound(query.maximumPick),
    limit: query.limit,
  };
  switch (query.kind) {
    case 'accountTransfers':
      return client.getAccountTransfers({
        ...common,
        account_id: query.accountId,
        flags: query.flags,
      });
    case 'accountBalances':
      return client.getAccountBalances({
        ...common,
        account_id: query.accountId,
        flags: query.flags,
      });
    case 'queryTransfers':
      return client.queryTransfers({ ...common, ledger: query.ledger, flags: query.flags & 1 });
    case 'queryAccounts':
      return client.queryAccounts({ ...common, ledger: query.ledger, flags: query.flags & 1 });
  }
}

describe('embedded ledger: queries over a loaded snapshot', () => {
  it('answer every query exactly like a ledger that never stopped and one that replayed its whole journal', async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-query-property-'));
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          taggedStepsArbitrary,
          fc.nat(),
          fc.array(queryArbitrary, { minLength: 20, maxLength: 60 }),
          async (steps, snapshotSeed, queries) => {
            run += 1;
            const dataFile = path.join(directory, `run-${run}.journal`);
            const snapshotAfter = snapshotSeed % (steps.length + 1);
            const referenceClock = new ManualClock();
            const clock = new ManualClock();
            const reference = openEmbeddedLedger({ clock: referenceClock });
            let durable = openEmbeddedLedger({ clock, dataFile, snapshotJournalBytesMin: 1 });
            const clients = [reference.createClient(), durable.createClient()];
            const opened: { close: () => void }[] = [];
            try {
              for (const client of clients) {
                await client.createAccounts(accounts);
                await client.createTransfers(funding);
              }
              for (const [index, step] of steps.entries()) {
                if (index === snapshotAfter) {
                  durable.close(); // writes the snapshot; the later steps are its journal tail
                  durable = openEmbeddedLedger({
                    clock,
                    dataFile,
                    snapshotJournalBytesMin: 2 ** 40,
                  });
                  clients[1] = durable.createClient();
                }
                await Promise.all(clients.map((client) => client.createTransfers(step.batch)));
                referenceClock.advanceSeconds(step.advanceSeconds);
                clock.advanceSeconds(step.advanceSeconds);
              }
              // What a killed process leaves: the journal and the snapshot; and the journal alone.
              const crashed = `${dataFile}.crashed`;
              const journalOnly = `${dataFile}.journal-only`;
              fs.copyFileSync(dataFile, crashed);
              fs.copyFileSync(`${dataFile}.snapshot`, `${crashed}.snapshot`);
              fs.copyFileSync(dataFile, journalOnly);
              durable.close();
              const fromSnapshot = openEmbeddedLedger({ clock, dataFile: crashed });
              opened.push(fromSnapshot);
              const replayed = openEmbeddedLedger({ clock, dataFile: journalOnly });
              opened.push(replayed);
              expect(fromSnapshot.journalWarnings).toEqual([]);
              expect(fromSnapshot.start.snapshotLoaded).toBe(true); // written while running at least
              expect(replayed.start.snapshotLoaded).toBe(false);

              const all = await clients[0].queryTransfers(queryFilter());
              const timestamps = all.map((found) => found.timestamp);
              const ledgers = [clients[0], fromSnapshot.createClient(), replayed.createClient()];
              for (const query of queries) {
                const [expected, ...others] = await Promise.all(
                  ledgers.map((client) => answer(client, query, timestamps)),
                );
                for (const other of others) expect(other).toEqual(expected);
              }
            } finally {
              for (const ledger of opened) ledger.close();
              durable.close();
              reference.close();
            }
          },
        ),
        { numRuns: 40 },
      );
    } finally {
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });
});
