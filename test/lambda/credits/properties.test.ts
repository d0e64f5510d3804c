import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { ManualClock, openEmbeddedLedger } from '../../../tigerbeetle/engine';
import {
  accountIdForUser,
  operatorAccountId,
  releaseTransferId,
  settleTransferId,
} from '../../../lambda/credits/domain/ids';
import { createCreditsFixture, type CreditsFixture } from '../../support/credits';

/**
 * DATA-06, model-based: random sequences of top-ups, holds, settles, releases, expiries and
 * retries over the credits API, checked against a plain model and TigerBeetle's invariants.
 */

const users = ['alice', 'bob', 'carol'] as const;
type User = (typeof users)[number];

type Command =
  | { kind: 'topUp'; user: User; micros: number }
  | { kind: 'hold'; user: User; micros: number; timeoutSeconds: number }
  | { kind: 'settle'; holdIndex: number; fraction: number }
  | { kind: 'release'; holdIndex: number }
  | { kind: 'advance'; seconds: number }
  | { kind: 'retry'; commandIndex: number };

const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    kind: fc.constant('topUp' as const),
    user: fc.constantFrom(...users),
    micros: fc.integer({ min: 1, max: 5_000_000 }),
  }),
  fc.record({
    kind: fc.constant('hold' as const),
    user: fc.constantFrom(...users),
    micros: fc.integer({ min: 1, max: 4_000_000 }),
    timeoutSeconds: fc.integer({ min: 1, max: 20 }),
  }),
  fc.record({
    kind: fc.constant('settle' as const),
    holdIndex: fc.nat(),
    fraction: fc.double({ min: 0, max: 1, noNaN: true }),
  }),
  fc.record({ kind: fc.constant('release' as const), holdIndex: fc.nat() }),
  fc.record({ kind: fc.constant('advance' as const), seconds: fc.integer({ min: 1, max: 15 }) }),
  fc.record({ kind: fc.constant('retry' as const), commandIndex: fc.nat() }),
);

const nanosecondsPerSecond = 1_000_000_000n;
/** Before each hold the clock moves by this much, so the hold's ledger timestamp is exactly the clock. */
const holdClockStepNanoseconds = 1_000_000n;

interface ModelHold {
  id: string;
  user: User;
  micros: number;
  /** TigerBeetle: a pending transfer expires once its timestamp plus its timeout is reached. */
  expiresAtNanoseconds: bigint;
  outcome: 'pending' | 'settled' | 'released' | 'expired';
  charged: number;
}

class Model {
  readonly credited = new Map<User, number>();
  readonly spent = new Map<User, number>();
  readonly holds: ModelHold[] = [];
  elapsedNanoseconds = 0n;

  available(user: User): number {
    this.expire();
    const held = this.holds
      .filter((hold) => hold.user === user && hold.outcome === 'pending')
      .reduce((sum, hold) => sum + hold.micros, 0);
    return (this.credited.get(user) ?? 0) - (this.spent.get(user) ?? 0) - held;
  }

  expire(): void {
    for (const hold of this.holds) {
      if (hold.outcome === 'pending' && this.elapsedNanoseconds >= hold.expiresAtNanoseconds)
        hold.outcome = 'expired';
    }
  }
}

interface SentRequest {
  method: string;
  path: string;
  body?: unknown;
  key: string;
  headers: Record<string, string>;
}

async function run(fixture: CreditsFixture, model: Model, commands: Command[]): Promise<void> {
  const sent: SentRequest[] = [];
  let keyCounter = 0;
  const send = async (request: SentRequest) => {
    sent.push(request);
    return fixture.request(request.method, request.path, {
      body: request.body,
      key: request.key,
      headers: request.headers,
    });
  };
  for (const command of commands) {
    switch (command.kind) {
      case 'topUp': {
        keyCounter += 1;
        const response = await send({
          method: 'POST',
          path: '/api/v1/topup',
          body: { user_id: command.user, amount_micros: command.micros },
          key: fixture.adminKey,
          headers: { 'idempotency-key': `topup-key-${keyCounter}` },
        });
        expect(response.status).toBe(201);
        model.credited.set(command.user, (model.credited.get(command.user) ?? 0) + command.micros);
        break;
      }
      case 'hold': {
        keyCounter += 1;
        fixture.clock.advanceNanoseconds(holdClockStepNanoseconds);
        model.elapsedNanoseconds += holdClockStepNanoseconds;
        const expected = model.available(command.user) >= command.micros;
        const response = await send({
          method: 'POST',
          path: '/api/v1/holds',
          body: {
            user_id: command.user,
            amount_micros: command.micros,
            timeout_seconds: command.timeoutSeconds,
          },
          key: fixture.proxyKey,
          headers: { 'idempotency-key': `hold-key-${keyCounter}` },
        });
        expect(response.status).toBe(expected ? 201 : 402);
        if (expected) {
          const body = (await response.json()) as { hold_id: string };
          const expiresAtNanoseconds =
            model.elapsedNanoseconds + BigInt(command.timeoutSeconds) * nanosecondsPerSecond;
          model.holds.push({
            id: body.hold_id,
            user: command.user,
            micros: command.micros,
            expiresAtNanoseconds,
            outcome: 'pending',
            charged: 0,
          });
        }
        break;
      }
      case 'settle':
      case 'release': {
        if (model.holds.length === 0) break;
        model.expire();
        const hold = model.holds[command.holdIndex % model.holds.length];
        const charge = command.kind === 'settle' ? Math.floor(hold.micros * command.fraction) : 0;
        const path = `/api/v1/holds/${hold.id}/${command.kind}`;
        const response = await send({
          method: 'POST',
          path,
          body: command.kind === 'settle' ? { amount_micros: charge } : undefined,
          key: fixture.proxyKey,
          headers: {},
        });
        if (hold.outcome === 'pending') {
          expect(response.status).toBe(200);
          hold.outcome = command.kind === 'settle' ? 'settled' : 'released';
          hold.charged = charge;
          if (command.kind === 'settle')
            model.spent.set(hold.user, (model.spent.get(hold.user) ?? 0) + charge);
        } else {
          const sameAgain =
            (hold.outcome === 'settled' && command.kind === 'settle' && hold.charged === charge) ||
            (hold.outcome !== 'settled' && command.kind === 'release');
          expect(response.status).toBe(sameAgain ? 200 : 409);
        }
        break;
      }
      case 'advance':
        fixture.clock.advanceSeconds(command.seconds);
        model.elapsedNanoseconds += BigInt(command.seconds) * nanosecondsPerSecond;
        break;
      case 'retry': {
        // A retried write (same key, same body) never moves money twice.
        const writes = sent.filter(
          (request) => request.method === 'POST' && request.path !== '/api/v1/holds',
        );
        if (writes.length === 0) break;
        const before = await snapshot(fixture);
        const replay = await send(writes[command.commandIndex % writes.length]);
        expect([200, 409]).toContain(replay.status);
        model.expire();
        expect(await snapshot(fixture)).toEqual(before);
        break;
      }
    }
    for (const user of users) await expectBalance(fixture, model, user);
  }
}

async function snapshot(fixture: CreditsFixture): Promise<string> {
  const accounts = await fixture.ledger.lookupAccounts([
    ...users.map(accountIdForUser),
    operatorAccountId('funding'),
    operatorAccountId('revenue'),
  ]);
  return JSON.stringify(accounts, (_key, value: unknown) =>
    typeof value === 'bigint' ? value.toString() : value,
  );
}

async function expectBalance(fixture: CreditsFixture, model: Model, user: User): Promise<void> {
  const response = await fixture.request('GET', `/api/v1/balance/${user}`);
  const expected = model.available(user);
  if (response.status === 404) {
    expect(model.credited.get(user) ?? 0).toBe(0);
    return;
  }
  const body = (await response.json()) as { available_micros: string };
  expect(BigInt(body.available_micros)).toBe(BigInt(expected));
  expect(expected).toBeGreaterThanOrEqual(0);
}

async function expectLedgerInvariants(fixture: CreditsFixture, model: Model): Promise<void> {
  const ids = [
    ...users.map(accountIdForUser),
    operatorAccountId('funding'),
    operatorAccountId('revenue'),
  ];
  const accounts = await fixture.ledger.lookupAccounts(ids);
  const sum = (field: 'debits_posted' | 'credits_posted' | 'debits_pending' | 'credits_pending') =>
    accounts.reduce((total, account) => total + account[field], 0n);
  expect(sum('debits_posted')).toBe(sum('credits_posted'));
  expect(sum('debits_pending')).toBe(sum('credits_pending'));
  for (const hold of model.holds) {
    const resolutions = await fixture.ledger.lookupTransfers([
      settleTransferId(BigInt(hold.id)),
      releaseTransferId(BigInt(hold.id)),
    ]);
    expect(resolutions.length).toBeLessThanOrEqual(1); // every hold resolves at most once
    for (const resolution of resolutions)
      expect(resolution.amount).toBeLessThanOrEqual(BigInt(hold.micros)); // settle never exceeds the hold
  }
}

describe('DATA-06: credits stay exact under any sequence of operations', () => {
  test('model, ledger invariants and journal replay agree', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'credits-property-'));
    let run_ = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(commandArbitrary, { minLength: 1, maxLength: 30 }),
          async (commands) => {
            run_ += 1;
            const dataFile = join(directory, `ledger-${run_}.tbj`);
            const clock = new ManualClock();
            const fixture = createCreditsFixture({ dataFile, clock });
            const model = new Model();
            try {
              await run(fixture, model, commands);
              await expectLedgerInvariants(fixture, model);
              const live = await snapshot(fixture);
              fixture.close();
              // Replaying the journal gives the same state.
              const reopened = openEmbeddedLedger({ dataFile, clock });
              const client = reopened.createClient();
              try {
                const replayed = await client.lookupAccounts([
                  ...users.map(accountIdForUser),
                  operatorAccountId('funding'),
                  operatorAccountId('revenue'),
                ]);
                expect(
                  JSON.stringify(replayed, (_key, value: unknown) =>
                    typeof value === 'bigint' ? value.toString() : value,
                  ),
                ).toBe(live);
              } finally {
                reopened.close();
              }
            } finally {
              fixture.close();
            }
          },
        ),
        { numRuns: Number(process.env.PROPERTY_RUNS ?? 100) },
      );
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
