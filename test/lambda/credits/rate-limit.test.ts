import { createCreditsApp } from '../../../lambda/credits/app';
import { creditsKeyEntries } from '../../../lambda/credits/keys';
import { createKeyring } from '../../../runtime/keys';
import { createCreditsFixture, type CreditsFixture } from '../../support/credits';
import { RecordingLogger } from '../../support/recording-logger';

/** RATE-02: limits on the ledger are exact across every instance; units return after one window. */

let fixture: CreditsFixture;
beforeEach(() => {
  fixture = createCreditsFixture();
});
afterEach(() => fixture.close());

async function consume(
  subject: string,
  limit: number,
  app = fixture.app,
  key = fixture.proxyKey,
): Promise<Record<string, unknown>> {
  const response = await app.request('/api/v1/rate-limit', {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ subject, limit_per_minute: limit }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

test('RATE-02: exactly `limit` requests pass per window, counted across two app instances sharing the ledger', async () => {
  const other = createCreditsApp({
    ledger: fixture.ledger,
    keys: createKeyring(
      creditsKeyEntries({ admin: [fixture.adminKey], proxy: [fixture.proxyKey] }),
    ),
    logger: new RecordingLogger(),
    metrics: fixture.metrics,
  });
  const verdicts = await Promise.all(
    Array.from({ length: 12 }, (_, index) =>
      consume('key:abc', 5, index % 2 === 0 ? fixture.app : other),
    ),
  );
  expect(verdicts.filter((verdict) => verdict.allowed)).toHaveLength(5);
  const refused = verdicts.filter((verdict) => !verdict.allowed);
  expect(refused).toHaveLength(7);
  for (const verdict of refused)
    expect(verdict).toMatchObject({ remaining: 0, retry_after_seconds: expect.any(Number) });
});

test('a unit returns exactly one window after it was used (sliding window), and Retry-After says when', async () => {
  expect(await consume('key:slide', 2)).toMatchObject({ allowed: true, remaining: 1 });
  fixture.clock.advanceSeconds(30);
  expect(await consume('key:slide', 2)).toMatchObject({ allowed: true, remaining: 0 });
  const refused = await consume('key:slide', 2);
  // The first unit returns 30 s from now (less the nanoseconds between the two transfers' timestamps, rounded up).
  expect(refused).toMatchObject({ allowed: false, retry_after_seconds: 30 });
  fixture.clock.advanceSeconds(30);
  expect(await consume('key:slide', 2)).toMatchObject({ allowed: false, retry_after_seconds: 1 });
  fixture.clock.advanceSeconds(1); // waiting Retry-After is enough
  expect(await consume('key:slide', 2)).toMatchObject({ allowed: true, remaining: 0 });
  expect(await consume('key:slide', 2)).toMatchObject({ allowed: false });
});

test('subjects and limits are independent; a changed limit applies at once', async () => {
  await consume('key:a', 1);
  expect(await consume('key:a', 1)).toMatchObject({ allowed: false });
  expect(await consume('key:b', 1)).toMatchObject({ allowed: true });
  expect(await consume('key:a', 3)).toMatchObject({ allowed: true, remaining: 2 });
});

test('rate units never touch money: the credits ledger balances are unchanged', async () => {
  await fixture.request('POST', '/api/v1/topup', {
    body: { user_id: 'alice', amount: '1' },
    headers: { 'idempotency-key': 'rate-topup-0001' },
  });
  for (let index = 0; index < 3; index += 1) await consume('key:alice', 2);
  const balance = (await (await fixture.request('GET', '/api/v1/balance/alice')).json()) as Record<
    string,
    string
  >;
  expect(balance.available_micros).toBe('1000000');
});

test('only the proxy role may consume, and the input is validated', async () => {
  const admin = await fixture.request('POST', '/api/v1/rate-limit', {
    body: { subject: 'key:x', limit_per_minute: 5 },
  });
  expect(admin.status).toBe(403);
  const bad = await fixture.request('POST', '/api/v1/rate-limit', {
    body: { subject: 'key x', limit_per_minute: 0 },
    key: fixture.proxyKey,
  });
  expect(bad.status).toBe(400);
});

test('RATE-02: 50 concurrent first requests of a new subject with a limit of 60 all pass, and again after a change of the limit', async () => {
  const burst = (limit: number) =>
    Promise.all(Array.from({ length: 50 }, () => consume('key:burst', limit)));
  expect((await burst(60)).every((verdict) => verdict.allowed)).toBe(true);
  expect((await burst(61)).every((verdict) => verdict.allowed)).toBe(true);
});

test("RATE-02: a request landing while another instance opens the subject's account is not refused (opened and funded at once)", async () => {
  // Instance A's ledger holds A's answer to creating the accounts until B has been answered: B
  // lands exactly between A's account creation and whatever A does next.
  let releaseA: () => void = () => undefined;
  const aPaused = new Promise<void>((resolve) => (releaseA = resolve));
  let aCreatedAccounts: () => void = () => undefined;
  const aReachedPause = new Promise<void>((resolve) => (aCreatedAccounts = resolve));
  const pausing = {
    ...fixture.ledger,
    createAccounts: async (accounts: Parameters<typeof fixture.ledger.createAccounts>[0]) => {
      const results = await fixture.ledger.createAccounts(accounts);
      aCreatedAccounts();
      await aPaused;
      return results;
    },
  };
  const keys = createKeyring(
    creditsKeyEntries({ admin: [fixture.adminKey], proxy: [fixture.proxyKey] }),
  );
  const instanceA = createCreditsApp({
    ledger: pausing,
    keys,
    logger: new RecordingLogger(),
    metrics: fixture.metrics,
  });
  const instanceB = createCreditsApp({
    ledger: fixture.ledger,
    keys,
    logger: new RecordingLogger(),
    metrics: fixture.metrics,
  });
  const first = consume('key:opening', 60, instanceA);
  await aReachedPause;
  expect(await consume('key:opening', 60, instanceB)).toMatchObject({ allowed: true });
  releaseA();
  expect(await first).toMatchObject({ allowed: true });
});
