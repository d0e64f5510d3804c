import { LedgerUnavailableError, type LedgerClient } from '../../../tigerbeetle/ledger';
import { createCreditsFixture, newKey, type CreditsFixture } from '../../support/credits';

/** MON-02: the credits service counts its ledger operations, refusals and outages, through real requests. */

let fixture: CreditsFixture;
beforeEach(() => {
  fixture = createCreditsFixture();
});
afterEach(() => fixture.close());

async function holdId(userId: string, amount: string): Promise<string> {
  const response = await fixture.request('POST', '/api/v1/holds', {
    body: { user_id: userId, amount, timeout_seconds: 60 },
    headers: newKey(),
    key: fixture.proxyKey,
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { hold_id: string }).hold_id;
}

describe('MON-02: credits metrics', () => {
  test('top-ups, holds, settles and releases are counted once each; replays are not counted again', async () => {
    const topUpKey = newKey();
    const topUp = () =>
      fixture.request('POST', '/api/v1/topup', {
        body: { user_id: 'alice', amount: '10' },
        headers: topUpKey,
      });
    expect((await topUp()).status).toBe(201);
    expect((await topUp()).status).toBe(200); // replayed
    const settled = await holdId('alice', '2');
    const released = await holdId('alice', '1');
    const settle = () =>
      fixture.request('POST', `/api/v1/holds/${settled}/settle`, {
        body: { amount: '1' },
        key: fixture.proxyKey,
      });
    expect((await settle()).status).toBe(200);
    expect((await settle()).status).toBe(200); // replayed
    expect(
      (
        await fixture.request('POST', `/api/v1/holds/${released}/release`, {
          key: fixture.proxyKey,
        })
      ).status,
    ).toBe(200);
    const { metrics } = fixture;
    expect([
      metrics.total('TopUps'),
      metrics.total('Holds'),
      metrics.total('Settles'),
      metrics.total('Releases'),
    ]).toEqual([1, 2, 1, 1]);
    expect(metrics.total('Requests', { route: '/api/v1/holds/:id/settle', outcome: '2xx' })).toBe(
      2,
    );
    expect(metrics.find('RequestLatency', { route: '/api/v1/topup' })).toHaveLength(2);
  });

  test('an insufficient balance and a bad key are counted', async () => {
    const refused = await fixture.request('POST', '/api/v1/holds', {
      body: { user_id: 'nobody', amount: '1', timeout_seconds: 60 },
      headers: newKey(),
      key: fixture.proxyKey,
    });
    expect(refused.status).toBe(402);
    expect(fixture.metrics.total('InsufficientBalanceRefusals')).toBe(1);
    expect(
      (await fixture.request('GET', '/api/v1/balance/alice', { key: 'sk-wrong' })).status,
    ).toBe(401);
    expect(fixture.metrics.total('AuthFailures')).toBe(1);
    expect(
      fixture.metrics.total('Requests', { route: '/api/v1/balance/:user_id', outcome: '4xx' }),
    ).toBe(1);
  });

  test('the ledger unavailable is counted', async () => {
    const failing: LedgerClient = new Proxy({} as LedgerClient, {
      get: () => () => Promise.reject(new LedgerUnavailableError('gateway unreachable')),
    });
    const down = createCreditsFixture({ ledger: failing });
    try {
      expect(
        (
          await down.request('POST', '/api/v1/topup', {
            body: { user_id: 'alice', amount: '1' },
            headers: newKey(),
          })
        ).status,
      ).toBe(503);
      expect(down.metrics.total('LedgerUnavailable')).toBe(1);
      expect(down.metrics.total('Requests', { route: '/api/v1/topup', outcome: '5xx' })).toBe(1);
    } finally {
      down.close();
    }
  });

  test('NET-08: the credits app has no /metrics route either', async () => {
    expect((await fixture.request('GET', '/metrics')).status).toBe(404);
  });
});
