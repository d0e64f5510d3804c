import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateAccountStatus } from 'tigerbeetle-node';
import {
  LedgerUnavailableError,
  ledgerOperations,
  openLedger,
  withDeadline,
  type LedgerClient,
} from '../../../tigerbeetle/ledger';
import { account, accountFilter } from '../engine/fixtures';

/** withDeadline on its own, and openLedger's embedded mode (DR-03). */

type Behaviour = (argument: unknown) => Promise<unknown>;

/** A client whose every operation behaves as told and records what it was called with. */
function scriptedClient(behaviour: Behaviour): {
  client: LedgerClient;
  calls: { operation: string; argument: unknown; self: unknown }[];
} {
  const calls: { operation: string; argument: unknown; self: unknown }[] = [];
  const client = {} as Record<string, unknown>;
  for (const operation of ledgerOperations) {
    client[operation] = function (this: unknown, argument: unknown) {
      calls.push({ operation, argument, self: this });
      return behaviour(argument);
    };
  }
  return { client: client as unknown as LedgerClient, calls };
}

describe('withDeadline', () => {
  afterEach(() => jest.useRealTimers());

  it('passes every operation through with its argument and its client as `this`, and returns the answer unchanged', async () => {
    const answer = [{ id: 1n }];
    const { client, calls } = scriptedClient(() => Promise.resolve(answer));
    const wrapped = withDeadline(client, 1_000);
    for (const operation of ledgerOperations) {
      const call = wrapped[operation] as (argument: unknown) => Promise<unknown>;
      expect(await call([operation])).toBe(answer);
    }
    expect(calls.map((call) => call.operation)).toEqual([...ledgerOperations]);
    expect(calls.every((call) => call.self === client && Array.isArray(call.argument))).toBe(true);
  });

  it('rejects with LedgerUnavailableError at the deadline when the ledger never answers, and drops a late answer', async () => {
    jest.useFakeTimers();
    let answerLate: (value: unknown) => void = () => {};
    const { client } = scriptedClient(() => new Promise((resolve) => (answerLate = resolve)));
    const pending = withDeadline(client, 250).lookupAccounts([1n]);
    const outcome = pending.then(
      () => 'answered',
      (error: unknown) => error,
    );
    await jest.advanceTimersByTimeAsync(249);
    let settled = false;
    void outcome.then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    const error = await outcome;
    expect(error).toBeInstanceOf(LedgerUnavailableError);
    expect((error as Error).message).toBe('ledger lookupAccounts did not answer within 250 ms');
    answerLate([]); // too late: nothing happens
    await expect(pending).rejects.toBeInstanceOf(LedgerUnavailableError);
  });

  it('turns a rejection into LedgerUnavailableError that names the operation and the cause', async () => {
    const { client } = scriptedClient(() => Promise.reject(new Error('ERR_CLIENT_CLOSED')));
    const error = await withDeadline(client, 1_000)
      .createTransfers([])
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LedgerUnavailableError);
    expect((error as Error).message).toBe('ledger createTransfers failed: ERR_CLIENT_CLOSED');
  });

  it('turns a synchronous throw and a non-Error rejection into LedgerUnavailableError too', async () => {
    const throwing = scriptedClient(() => {
      throw new Error('too much data');
    });
    await expect(withDeadline(throwing.client, 1_000).createAccounts([])).rejects.toThrow(
      'ledger createAccounts failed: too much data',
    );
    const odd = scriptedClient(() => Promise.reject('connection reset'));
    const error = await withDeadline(odd.client, 1_000)
      .lookupTransfers([1n])
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LedgerUnavailableError);
    expect((error as Error).message).toBe('ledger lookupTransfers failed: connection reset');
  });

  it('clears its timer once the ledger answers', async () => {
    jest.useFakeTimers();
    const { client } = scriptedClient(() => Promise.resolve([]));
    await withDeadline(client, 60_000).getAccountBalances(accountFilter(1n));
    expect(jest.getTimerCount()).toBe(0);
  });

  it('refuses a deadline that is not positive', () => {
    const { client } = scriptedClient(() => Promise.resolve([]));
    for (const deadline of [0, -1, Number.NaN])
      expect(() => withDeadline(client, deadline)).toThrow('a ledger deadline must be positive');
  });
});

describe('openLedger (embedded)', () => {
  let directory: string;
  beforeAll(() => {
    directory = mkdtempSync(join(tmpdir(), 'ledger-open-'));
  });
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('keeps what it wrote in its data file across a close and a reopen', async () => {
    const dataFile = join(directory, 'ledger.journal');
    const first = openLedger({ kind: 'embedded', dataFile });
    expect(first.description).toBe(
      `embedded ledger (journal ${dataFile}; started from 0 bytes of journal, no snapshot)`,
    );
    expect((await first.client.createAccounts([account(42n)]))[0].status).toBe(
      CreateAccountStatus.created,
    );
    await first.close();
    await expect(first.client.lookupAccounts([42n])).rejects.toThrow();
    const second = openLedger({ kind: 'embedded', dataFile });
    try {
      // How the start went, so a slow start explains itself in the ready line of the gateway's log.
      expect(second.description).toMatch(
        new RegExp(
          `^embedded ledger \\(journal .+; started from [1-9]\\d* bytes of journal, no snapshot\\)$`,
        ),
      );
      expect((await second.client.lookupAccounts([42n])).map((found) => found.id)).toEqual([42n]);
    } finally {
      await second.close();
    }
  });

  it('refuses a cluster without replica addresses', () => {
    expect(() =>
      openLedger({
        kind: 'cluster',
        clusterId: 0n,
        replicaAddresses: [],
        requestTimeoutMilliseconds: 1_000,
      }),
    ).toThrow(/at least one replica address/);
  });
});
