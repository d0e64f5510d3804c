import { randomUUID } from 'node:crypto';
import { QueryFilterFlags } from 'tigerbeetle-node';
import {
  keyReference,
  keyReferenceText,
  operatorReference,
  requestIdToUserData,
} from '../../../lambda/shared/receipts';
import { createCreditsFixture, newKey, type CreditsFixture } from '../../support/credits';

/** The credits service's receipts (issue 15) over HTTP, read back from the ledger's user data. */

let fixture: CreditsFixture;
beforeEach(async () => {
  fixture = createCreditsFixture();
  const topUp = await fixture.request('POST', '/api/v1/topup', {
    body: { user_id: 'alice', amount: '5' },
    headers: { 'idempotency-key': 'invoice-2026-0001' },
  });
  expect(topUp.status).toBe(201);
});
afterEach(() => fixture.close());

type Json = Record<string, unknown>;
const keyId = 'key_AbCdEfGh12345678';

async function admit(requestId: string, amount: string, timeoutSeconds = 60): Promise<string> {
  const response = await fixture.request('POST', '/api/v1/admissions', {
    body: {
      user_id: 'alice',
      amount,
      timeout_seconds: timeoutSeconds,
      receipt: { request_id: requestId, key_id: keyId, model_code: 3 },
    },
    headers: newKey(),
    key: fixture.proxyKey,
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as Json).hold_id as string;
}

async function get(path: string, key = fixture.proxyKey): Promise<{ status: number; body: Json }> {
  const response = await fixture.request('GET', path, { key });
  return { status: response.status, body: (await response.json()) as Json };
}

test('a hold carries its receipt; its settlement inherits it; the receipt reads back pending, then settled', async () => {
  const requestId = randomUUID();
  const holdId = await admit(requestId, '0.001000');
  const pending = await get(`/api/v1/usage/alice/${requestId}`);
  expect(pending.body).toMatchObject({
    request_id: requestId,
    hold_id: holdId,
    key_ref: keyReferenceText(keyReference(keyId)),
    model_code: 3,
    status: 'pending',
    held_micros: '1000',
    charged_micros: '0',
    resolved_at: null,
  });
  const settled = await fixture.request('POST', `/api/v1/holds/${holdId}/settle`, {
    body: { amount_micros: '420', user_id: 'alice' },
    key: fixture.proxyKey,
  });
  expect(settled.status).toBe(200);
  // TigerBeetle's own query: the hold and its post, both carrying the request id.
  const transfers = await fixture.ledger.queryTransfers({
    user_data_128: requestIdToUserData(requestId)!,
    user_data_64: keyReference(keyId),
    user_data_32: 3,
    ledger: 0,
    code: 0,
    timestamp_min: 0n,
    timestamp_max: 0n,
    limit: 10,
    flags: QueryFilterFlags.none,
  });
  expect(transfers.map((transfer) => transfer.amount)).toEqual([1000n, 420n]);
  expect((await get(`/api/v1/usage/alice/${requestId}`, fixture.adminKey)).body).toMatchObject({
    status: 'settled',
    charged_micros: '420',
    resolved_at: expect.any(String),
  });
  expect((await get(`/api/v1/usage/bob/${requestId}`)).status).toBe(404);
});

test('a hold nobody resolves reads as released once its timeout passed, with nothing charged', async () => {
  const requestId = randomUUID();
  await admit(requestId, '0.000500', 1);
  fixture.clock.advanceSeconds(2);
  expect((await get(`/api/v1/usage/alice/${requestId}`)).body).toMatchObject({
    status: 'released',
    expired: true,
    charged_micros: '0',
  });
});

test('top-ups carry their operator reference; the export is the admin’s only, in pages', async () => {
  const [topUp] = await fixture.ledger.queryTransfers({
    user_data_128: operatorReference('invoice-2026-0001'),
    user_data_64: 0n,
    user_data_32: 0,
    ledger: 0,
    code: 0,
    timestamp_min: 0n,
    timestamp_max: 0n,
    limit: 10,
    flags: QueryFilterFlags.none,
  });
  expect(topUp.amount).toBe(5_000_000n);
  for (let index = 0; index < 3; index += 1) {
    const holdId = await admit(randomUUID(), '0.000100');
    await fixture.request('POST', `/api/v1/holds/${holdId}/release`, { key: fixture.proxyKey });
  }
  const range = `from=1&to=${(1n << 62n).toString()}`;
  expect((await get(`/api/v1/charges?${range}`)).status).toBe(403);
  const first = await get(`/api/v1/charges?${range}&limit=4`, fixture.adminKey);
  expect(first.status).toBe(200);
  const next = first.body.next_from as string;
  expect(next).toMatch(/^\d+$/);
  const second = await get(`/api/v1/charges?from=${next}&to=${1n << 62n}`, fixture.adminKey);
  const charges = [...(first.body.charges as Json[]), ...(second.body.charges as Json[])];
  expect(charges.map((charge) => charge.status)).toEqual(['released', 'released', 'released']);
  expect(second.body.next_from).toBeNull();
  for (const query of ['from=5&to=4', 'from=0&to=1', 'to=1', `${range}&limit=9000`])
    expect((await get(`/api/v1/charges?${query}`, fixture.adminKey)).status).toBe(400);
});

test('refuses a receipt that is not one: a request id that is no UUID, a key id that is no key id', async () => {
  for (const receipt of [
    { request_id: 'not-a-uuid', key_id: keyId, model_code: 3 },
    { request_id: randomUUID(), key_id: 'alice', model_code: 3 },
    { request_id: randomUUID(), key_id: keyId, model_code: 0 },
  ]) {
    const response = await fixture.request('POST', '/api/v1/admissions', {
      body: { user_id: 'alice', amount: '0.01', timeout_seconds: 60, receipt },
      headers: newKey(),
      key: fixture.proxyKey,
    });
    expect(response.status).toBe(400);
  }
  expect((await get('/api/v1/usage/alice/not-a-uuid')).status).toBe(400);
});
