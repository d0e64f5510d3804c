import {
  balanceAnswerSchema,
  creditsRoutes,
  errorAnswerSchema,
  healthAnswerSchema,
  historyAnswerSchema,
  holdAnswerSchema,
  insufficientCreditsAnswerSchema,
  movedAnswerSchema,
  rateLimitedAnswerSchema,
  rateVerdictAnswerSchema,
  readyAnswerSchema,
  releasedAnswerSchema,
  settledAnswerSchema,
} from '../../../lambda/credits/contract';
import type { z } from '../../../runtime/zod-mini';
import { createCreditsFixture, newKey, type CreditsFixture } from '../../support/credits';

/**
 * The credits app answers every route in the shapes of its contract (lambda/credits/contract.ts),
 * the schemas its callers (the proxy, the settle function, the operator CLI) read them with: each
 * answer of the real app, over HTTP, parses with its route's answer schema.
 */

let fixture: CreditsFixture;
beforeEach(() => {
  fixture = createCreditsFixture();
});
afterEach(() => fixture.close());

async function answerOf<S extends z.ZodMiniType>(
  schema: S,
  response: Response,
  status: number,
): Promise<z.output<S>> {
  expect(response.status).toBe(status);
  const parsed = schema.safeParse(await response.json());
  if (!parsed.success) throw new Error(`outside the contract: ${parsed.error.message}`);
  return parsed.data;
}

const asProxy = (method: string, path: string, body?: unknown, headers = newKey()) =>
  fixture.request(method, path, { body, headers, key: fixture.proxyKey });

test('health and readiness answer in the contract', async () => {
  await answerOf(healthAnswerSchema, await fixture.request('GET', creditsRoutes.health), 200);
  expect(
    (await answerOf(readyAnswerSchema, await fixture.request('GET', creditsRoutes.ready), 200))
      .status,
  ).toBe('ready');
});

test("an operator's top-up, adjustment, balance and history answer in the contract", async () => {
  const body = { user_id: 'alice', amount: '10.00' };
  const topUp = await fixture.request('POST', creditsRoutes.topUp, { body, headers: newKey() });
  expect((await answerOf(movedAnswerSchema, topUp, 201)).balance.available_micros).toBe(
    10_000_000n,
  );
  const adjusted = await fixture.request('POST', creditsRoutes.adjustments, {
    body: { user_id: 'alice', amount: '1.50', direction: 'debit', reason: 'refund correction' },
    headers: newKey(),
  });
  expect((await answerOf(movedAnswerSchema, adjusted, 201)).amount_micros).toBe(1_500_000n);
  const balance = await fixture.request('GET', creditsRoutes.balance('alice'));
  expect((await answerOf(balanceAnswerSchema, balance, 200)).available).toBe('8.500000');
  const history = await fixture.request('GET', `${creditsRoutes.transfers('alice')}?limit=1`);
  const page = await answerOf(historyAnswerSchema, history, 200);
  expect(page.transfers).toHaveLength(1);
  expect(page.next_before).not.toBeNull();
});

test("the proxy's admission, hold, settle, release and rate limit answer in the contract", async () => {
  await fixture.request('POST', creditsRoutes.topUp, {
    body: { user_id: 'alice', amount: '10.00' },
    headers: newKey(),
  });
  const hold = { user_id: 'alice', amount: '1.00', timeout_seconds: 60 };
  const admitted = await answerOf(
    holdAnswerSchema,
    await asProxy('POST', creditsRoutes.admissions, {
      ...hold,
      rate: { subject: 'key:a', limit_per_minute: 5 },
    }),
    201,
  );
  expect(admitted.rate).toEqual({ limit: 5, remaining: 4, reset_seconds: expect.any(Number) });
  const settled = await answerOf(
    settledAnswerSchema,
    await asProxy('POST', creditsRoutes.settle(admitted.hold_id), {
      amount: '0.25',
      user_id: 'alice',
    }),
    200,
  );
  expect(settled.charged_micros).toBe(250_000n);
  const held = await answerOf(
    holdAnswerSchema,
    await asProxy('POST', creditsRoutes.holds, hold),
    201,
  );
  const released = await answerOf(
    releasedAnswerSchema,
    await asProxy('POST', creditsRoutes.release(held.hold_id)),
    200,
  );
  expect(released.status).toBe('released');
  const verdict = await answerOf(
    rateVerdictAnswerSchema,
    await asProxy('POST', creditsRoutes.rateLimit, { subject: 'key:b', limit_per_minute: 1 }),
    200,
  );
  expect(verdict.allowed).toBe(true);
  const refused = await answerOf(
    rateVerdictAnswerSchema,
    await asProxy('POST', creditsRoutes.rateLimit, { subject: 'key:b', limit_per_minute: 1 }),
    200,
  );
  expect(refused.allowed).toBe(false);
});

test('refusals answer in the contract: 402 with the balance (a hold or a debit), 429 with the limit, any other with a code', async () => {
  const hold = { user_id: 'bob', amount: '1.00', timeout_seconds: 60 };
  const insufficient = await asProxy('POST', creditsRoutes.admissions, hold);
  expect(
    (await answerOf(insufficientCreditsAnswerSchema, insufficient.clone(), 402)).error
      .available_micros,
  ).toBe(0n);
  await answerOf(errorAnswerSchema, insufficient, 402);
  const rate = { subject: 'key:c', limit_per_minute: 1 };
  await asProxy('POST', creditsRoutes.rateLimit, rate);
  const limited = await asProxy('POST', creditsRoutes.admissions, { ...hold, rate });
  expect((await answerOf(rateLimitedAnswerSchema, limited, 429)).error.limit).toBe(1);
  await fixture.request('POST', creditsRoutes.topUp, {
    body: { user_id: 'carol', amount: '1.00' },
    headers: newKey(),
  });
  const overdraw = { user_id: 'carol', amount: '2.00', direction: 'debit', reason: 'too much' };
  const debit = await fixture.request('POST', creditsRoutes.adjustments, {
    body: overdraw,
    headers: newKey(),
  });
  expect((await answerOf(insufficientCreditsAnswerSchema, debit, 402)).error.available_micros).toBe(
    1_000_000n,
  );
  const unknown = await fixture.request('GET', creditsRoutes.balance('nobody'));
  expect((await answerOf(errorAnswerSchema, unknown, 404)).error.code).toBe('user_not_found');
});
