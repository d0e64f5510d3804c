import { startCreditsTopology, type CreditsTopology } from '../../support/topology';

/** DATA-06 under concurrency, over real HTTP through the gateway: admission is atomic. */

let topology: CreditsTopology;
beforeAll(async () => {
  topology = await startCreditsTopology();
});
afterAll(() => topology.close());

function post(
  path: string,
  key: string,
  body: unknown,
  idempotencyKey?: string,
): Promise<Response> {
  return fetch(`${topology.creditsUrl}${path}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${key}`,
      'content-type': 'application/json',
      ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
    },
    body: JSON.stringify(body),
  });
}

test('DATA-06: 200 concurrent holds of 1.00 against a balance of 100.00 give exactly 100 holds and 100 402s', async () => {
  const topUp = await post(
    '/api/v1/topup',
    topology.adminKey,
    { user_id: 'racer', amount: '100.00' },
    'topup-racer-0001',
  );
  expect(topUp.status).toBe(201);

  const responses = await Promise.all(
    Array.from({ length: 200 }, (_, index) =>
      post('/api/v1/holds', topology.proxyKey, {
        user_id: 'racer',
        amount: '1.00',
        timeout_seconds: 300,
        request_id: `race-request-${index}`,
      }),
    ),
  );
  const statuses = responses.map((response) => response.status);
  expect(statuses.filter((status) => status === 201)).toHaveLength(100);
  expect(statuses.filter((status) => status === 402)).toHaveLength(100);

  const balance = (await (
    await fetch(`${topology.creditsUrl}/api/v1/balance/racer`, {
      headers: { authorization: `Bearer ${topology.adminKey}` },
    })
  ).json()) as Record<string, string>;
  expect(balance).toMatchObject({
    available_micros: '0',
    held_micros: '100000000',
    credited_micros: '100000000',
    spent_micros: '0',
  });

  // Settle half the holds for 0.40 each: 50 x 0.40 charged, everything else returns.
  const holds = (await Promise.all(
    responses.filter((response) => response.status === 201).map((response) => response.json()),
  )) as { hold_id: string }[];
  const resolutions = await Promise.all(
    holds.map((hold, index) =>
      index % 2 === 0
        ? post(`/api/v1/holds/${hold.hold_id}/settle`, topology.proxyKey, { amount: '0.40' })
        : fetch(`${topology.creditsUrl}/api/v1/holds/${hold.hold_id}/release`, {
            method: 'POST',
            headers: { authorization: `Bearer ${topology.proxyKey}` },
          }),
    ),
  );
  expect(resolutions.every((response) => response.status === 200)).toBe(true);
  const after = (await (
    await fetch(`${topology.creditsUrl}/api/v1/balance/racer`, {
      headers: { authorization: `Bearer ${topology.adminKey}` },
    })
  ).json()) as Record<string, string>;
  expect(after).toMatchObject({
    available_micros: '80000000',
    held_micros: '0',
    spent_micros: '20000000',
  });
});
