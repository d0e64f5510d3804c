import { startCreditsTopology, type CreditsTopology } from '../../support/topology';

/**
 * Admission and settlement over real HTTP through the gateway (issue 11): the rate-limit unit and
 * the hold are one credits call and one gateway request, both or neither; settlement is one call
 * and one gateway request, with TigerBeetle checking the amount against the hold (RATE-02, DATA-06).
 */

let topology: CreditsTopology;
beforeAll(async () => {
  topology = await startCreditsTopology();
});
afterAll(() => topology.close());

let keyCounter = 0;
function post(
  path: string,
  body: unknown,
  options: { key?: string; idempotencyKey?: string } = {},
): Promise<Response> {
  keyCounter += 1;
  return fetch(`${topology.creditsUrl}${path}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${options.key ?? topology.proxyKey}`,
      'content-type': 'application/json',
      'idempotency-key': options.idempotencyKey ?? `admission-test-${keyCounter}-${Date.now()}`,
    },
    body: JSON.stringify(body),
  });
}

async function topUp(userId: string, amount: string): Promise<void> {
  expect(
    (await post('/api/v1/topup', { user_id: userId, amount }, { key: topology.adminKey })).status,
  ).toBe(201);
}

async function available(userId: string): Promise<string> {
  const response = await fetch(`${topology.creditsUrl}/api/v1/balance/${userId}`, {
    headers: { authorization: `Bearer ${topology.adminKey}` },
  });
  return ((await response.json()) as { available_micros: string }).available_micros;
}

const admit = (
  userId: string,
  amount: string,
  subject: string,
  limit: number,
  idempotencyKey?: string,
) =>
  post(
    '/api/v1/admissions',
    { user_id: userId, amount, timeout_seconds: 300, rate: { subject, limit_per_minute: limit } },
    { idempotencyKey },
  );

/** Gateway requests made while `action` ran. */
async function gatewayRoundTrips(action: () => Promise<unknown>): Promise<number> {
  const before = topology.gatewayRequests();
  await action();
  return topology.gatewayRequests() - before;
}

test('an admission is one gateway request: the unit and the hold, with the remaining units and the hold in the answer', async () => {
  await topUp('admitted', '5.00');
  await admit('admitted', '0.10', 'key:warm', 10); // this instance's first: opens the accounts in the same request
  let response: Response | undefined;
  expect(
    await gatewayRoundTrips(
      async () => (response = await admit('admitted', '1.00', 'key:admitted', 3)),
    ),
  ).toBe(1);
  expect(response?.status).toBe(201);
  expect(await response?.json()).toMatchObject({
    amount_micros: '1000000',
    rate: { limit: 3, remaining: 2, reset_seconds: 60 },
  });
  expect(await available('admitted')).toBe('3900000');
});

test('RATE-04: over the rate limit is 429 with Retry-After and holds nothing; without credits is 402 and takes no unit', async () => {
  await topUp('limited', '1.00');
  expect((await admit('limited', '0.50', 'key:limited', 1)).status).toBe(201);
  const limited = await admit('limited', '0.10', 'key:limited', 1);
  expect(limited.status).toBe(429);
  expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
  expect(await limited.json()).toMatchObject({
    error: { type: 'rate_limit_error', code: 'rate_limit_exceeded', limit: 1 },
  });
  expect(await available('limited')).toBe('500000'); // the refused admission held nothing

  const poor = await admit('limited', '5.00', 'key:poor', 1);
  expect(poor.status).toBe(402);
  expect(await poor.json()).toMatchObject({
    error: { type: 'insufficient_credits', available_micros: '500000' },
  });
  // The refused hold took no unit with it: the key's single unit is still there.
  expect((await admit('limited', '0.10', 'key:poor', 1)).status).toBe(201);
});

test('a retried admission (same key) replays the hold and takes no second unit', async () => {
  await topUp('retrier', '1.00');
  const first = await admit('retrier', '0.20', 'key:retrier', 2, 'retried-admission-0001');
  const again = await admit('retrier', '0.20', 'key:retrier', 2, 'retried-admission-0001');
  expect([first.status, again.status]).toEqual([201, 200]);
  expect(((await again.json()) as { hold_id: string }).hold_id).toBe(
    ((await first.json()) as { hold_id: string }).hold_id,
  );
  expect(await available('retrier')).toBe('800000');
  expect((await admit('retrier', '0.20', 'key:retrier', 2)).status).toBe(201); // the second unit was never taken
});

test("settlement with the user is one gateway request; the ledger refuses more than the hold and another user's hold", async () => {
  await topUp('settler', '2.00');
  await topUp('other', '2.00');
  const { hold_id: holdId } = (await (
    await admit('settler', '1.00', 'key:settler', 10)
  ).json()) as { hold_id: string };
  const over = await post(`/api/v1/holds/${holdId}/settle`, { amount: '1.50', user_id: 'settler' });
  expect(over.status).toBe(400);
  expect(await over.json()).toMatchObject({
    error: { code: 'exceeds_hold', message: expect.stringContaining('1.000000') },
  });
  const wrongUser = await post(`/api/v1/holds/${holdId}/settle`, {
    amount: '0.10',
    user_id: 'other',
  });
  expect(wrongUser.status).toBe(404);
  expect(await available('other')).toBe('2000000');

  let settled: Response | undefined;
  // A refused settle binds its id (TigerBeetle 0.17); settling this hold needs a fresh hold to show the one round trip.
  const { hold_id: fresh } = (await (await admit('settler', '0.50', 'key:settler', 10)).json()) as {
    hold_id: string;
  };
  expect(
    await gatewayRoundTrips(
      async () =>
        (settled = await post(`/api/v1/holds/${fresh}/settle`, {
          amount: '0.20',
          user_id: 'settler',
        })),
    ),
  ).toBe(1);
  expect(settled?.status).toBe(200);
  expect(await settled?.json()).toMatchObject({
    status: 'settled',
    charged_micros: '200000',
    released_micros: '300000',
    available_micros: '800000',
  });
  // Released in one round trip too.
  let released: Response | undefined;
  expect(
    await gatewayRoundTrips(
      async () =>
        (released = await post(`/api/v1/holds/${holdId}/release`, { user_id: 'settler' })),
    ),
  ).toBe(1);
  expect(await released?.json()).toMatchObject({
    status: 'released',
    released_micros: '1000000',
    available_micros: '1800000',
  });
});

test('the admission input is validated', async () => {
  const response = await post('/api/v1/admissions', {
    user_id: 'x',
    amount: '1',
    timeout_seconds: 300,
    rate: { subject: 'key with spaces', limit_per_minute: 0 },
  });
  expect(response.status).toBe(400);
  expect(await response.json()).toMatchObject({
    error: { code: 'invalid_request' },
    request_id: expect.any(String),
  });
});
