import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SQSEvent } from 'aws-lambda';
import { createProxyApp } from '../../../lambda/proxy/app';
import { createCreditsClient } from '../../../lambda/proxy/credits-client';
import { createProviders } from '../../../lambda/proxy/providers';
import { fileSettlementQueue, type SettlementJob } from '../../../lambda/proxy/settlement-queue';
import {
  createSettlementHandler,
  settlementRemainingMillisecondsMin,
} from '../../../lambda/settlement/handler';
import { startProxyFixture, type ProxyFixture } from '../../support/proxy';
import { RecordingLogger } from '../../support/recording-logger';
import { RecordingMetrics } from '../../support/recording-metrics';

/**
 * DATA-06: the credits service failing after the hold and before settlement never lets a completion
 * go unbilled silently: settlement is retried with backoff, then handed to the durable retry path,
 * which settles before the hold expires; what cannot be settled is counted (UnsettledHolds).
 */

let fixture: ProxyFixture;
let directory: string;
let standIn: Server;
let standInUrl: string;
/** While true, the stand-in answers settle and release with 503 (everything else reaches credits). */
let settlementFails = true;
let settlementAttempts = 0;

beforeEach(async () => {
  fixture = await startProxyFixture();
  await fixture.topUp('alice', '10.00');
  directory = mkdtempSync(join(tmpdir(), 'settlement-'));
  settlementFails = true;
  settlementAttempts = 0;
  // The credits service as the proxy sees it, failing on settlement only: a real HTTP server in front of the real one.
  standIn = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const settling = /\/holds\/[0-9]+\/(settle|release)$/.test(request.url ?? '');
      if (settling) settlementAttempts += 1;
      if (settling && settlementFails) {
        response
          .writeHead(503, { 'content-type': 'application/json' })
          .end(
            '{"error":{"message":"down","type":"service_unavailable","code":"ledger_unavailable"}}',
          );
        return;
      }
      const headers = Object.fromEntries(
        Object.entries(request.headers).filter(
          ([name]) => !['host', 'content-length', 'connection'].includes(name),
        ),
      ) as Record<string, string>;
      void fetch(`${fixture.creditsServer.url}${request.url}`, {
        method: request.method,
        headers,
        body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
      }).then(async (answer) => {
        response
          .writeHead(answer.status, { 'content-type': 'application/json' })
          .end(await answer.text());
      });
    });
  });
  await new Promise<void>((resolve) => standIn.listen(0, '127.0.0.1', resolve));
  standInUrl = `http://127.0.0.1:${(standIn.address() as AddressInfo).port}`;
});
afterEach(async () => {
  await new Promise((resolve) => standIn.close(resolve));
  await fixture.close();
  rmSync(directory, { recursive: true, force: true });
});

function proxyOverStandIn(
  settlementFile: string,
  metrics: RecordingMetrics,
  logger: RecordingLogger,
) {
  const credits = createCreditsClient({
    baseUrl: standInUrl,
    key: () => fixture.proxyServiceKey,
    requestTimeoutMilliseconds: 5_000,
  });
  const waits: number[] = [];
  const app = createProxyApp({
    keys: {
      description: 'fixture keys',
      verifier: async () => ({
        size: 1,
        verify: () => ({ status: 'valid', keyId: 'key_settlement1', userId: 'alice' }),
      }),
    },
    credits,
    providers: createProviders(async () => ({})),
    config: fixture.config,
    logger,
    metrics,
    settlementQueue: fileSettlementQueue(settlementFile),
    sleep: async (milliseconds) => void waits.push(milliseconds),
  });
  return { app, waits };
}

const echo = {
  model: 'echo',
  messages: [{ role: 'user', content: 'bill me later' }],
  max_tokens: 5,
};

test('DATA-06: settlement is retried with backoff, then deferred to the settlement file, which settles it later', async () => {
  const file = join(directory, 'settlements.jsonl');
  const metrics = new RecordingMetrics();
  const logger = new RecordingLogger();
  const { app, waits } = proxyOverStandIn(file, metrics, logger);
  const response = await app.request('/v1/chat/completions', {
    method: 'POST',
    headers: { authorization: 'Bearer any', 'content-type': 'application/json' },
    body: JSON.stringify(echo),
  });
  expect(response.status).toBe(200);
  expect(settlementAttempts).toBe(3);
  expect(waits).toEqual([50, 200]);
  expect(metrics.total('BillingFailures')).toBe(1);
  expect(metrics.total('SettlementsDeferred')).toBe(1);
  const [job] = readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as SettlementJob);
  expect(job).toMatchObject({
    action: 'settle',
    user_id: 'alice',
    amount_micros: expect.stringMatching(/^[1-9][0-9]*$/),
  });
  const held = await fixture.availableMicros('alice');
  expect(held).toBeLessThan(10_000_000n); // still held, not yet charged

  // The next drain while credits is still down keeps the job; once credits is back, it settles.
  const queue = fileSettlementQueue(file);
  const credits = createCreditsClient({
    baseUrl: standInUrl,
    key: () => fixture.proxyServiceKey,
    requestTimeoutMilliseconds: 5_000,
  });
  expect(await queue.drain(credits, logger, metrics, Date.now())).toBe(0);
  settlementFails = false;
  expect(await queue.drain(credits, logger, metrics, Date.now())).toBe(1);
  expect(metrics.total('SettlementsRecovered')).toBe(1);
  expect(await fixture.availableMicros('alice')).toBe(10_000_000n - BigInt(job.amount_micros));
  expect(await queue.drain(credits, logger, metrics, Date.now())).toBe(0); // nothing left
});

test('a deferred settlement whose hold expired first is counted unsettled and logged, never retried forever', async () => {
  const file = join(directory, 'settlements.jsonl');
  const metrics = new RecordingMetrics();
  const logger = new RecordingLogger();
  const { app } = proxyOverStandIn(file, metrics, logger);
  await app.request('/v1/chat/completions', {
    method: 'POST',
    headers: { authorization: 'Bearer any', 'content-type': 'application/json' },
    body: JSON.stringify(echo),
  });
  const [job] = readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as SettlementJob);
  const queue = fileSettlementQueue(file);
  expect(await queue.drain(fixture.credits, logger, metrics, job.expires_at_milliseconds)).toBe(1);
  expect(metrics.total('UnsettledHolds')).toBe(1);
  expect(logger.auditEvents('unsettled_hold')).toEqual([
    expect.objectContaining({ hold_id: job.hold_id, reason: 'hold_expired' }),
  ]);
});

test('a refusal by the credits service (not an outage) is not retried; a refused settle is revenue lost, a refused release is not', async () => {
  settlementFails = false;
  const metrics = new RecordingMetrics();
  const logger = new RecordingLogger();
  const queue = fileSettlementQueue(join(directory, 'refused.jsonl'));
  const job: SettlementJob = {
    hold_id: '12345',
    user_id: 'alice',
    action: 'settle',
    amount_micros: '10',
    request_id: 'r-1',
    expires_at_milliseconds: Date.now() + 60_000,
  };
  await queue.enqueue(job);
  await queue.enqueue({ ...job, hold_id: '12346', action: 'release', amount_micros: '0' });
  expect(await queue.drain(fixture.credits, logger, metrics, Date.now())).toBe(2); // 404: given up at once
  expect(metrics.total('UnsettledHolds')).toBe(1);
  expect(logger.auditEvents('unsettled_hold')).toEqual([
    expect.objectContaining({ hold_id: '12345', reason: expect.stringContaining('404') }),
  ]);
  expect(logger.auditEvents('release_by_expiry')).toEqual([
    expect.objectContaining({ hold_id: '12346' }),
  ]);
});

test('a release whose hold has already expired is done (the hold voided itself), not revenue lost', async () => {
  const metrics = new RecordingMetrics();
  const logger = new RecordingLogger();
  const queue = fileSettlementQueue(join(directory, 'expired-release.jsonl'));
  const expiredAt = Date.now() - 1;
  await queue.enqueue({
    hold_id: '22345',
    user_id: 'alice',
    action: 'release',
    amount_micros: '0',
    request_id: 'r-2',
    expires_at_milliseconds: expiredAt,
  });
  expect(await queue.drain(fixture.credits, logger, metrics, Date.now())).toBe(1);
  expect(metrics.total('UnsettledHolds')).toBe(0);
  expect(logger.auditEvents('release_by_expiry')).toEqual([
    expect.objectContaining({ hold_id: '22345' }),
  ]);
});

describe('the settle function (SQS)', () => {
  const event = (job: unknown, receiveCount: number): SQSEvent =>
    ({
      Records: [
        {
          messageId: 'm-1',
          body: JSON.stringify(job),
          attributes: { ApproximateReceiveCount: String(receiveCount) },
        },
      ],
    }) as unknown as SQSEvent;

  async function deferredJob(): Promise<SettlementJob> {
    const file = join(directory, 'settlements.jsonl');
    const { app } = proxyOverStandIn(file, new RecordingMetrics(), new RecordingLogger());
    await app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: 'Bearer any', 'content-type': 'application/json' },
      body: JSON.stringify(echo),
    });
    return JSON.parse(readFileSync(file, 'utf8').trim()) as SettlementJob;
  }

  test('reports a failed item while credits is down, then settles it; on the last receive it counts it unsettled', async () => {
    const job = await deferredJob();
    const metrics = new RecordingMetrics();
    const credits = createCreditsClient({
      baseUrl: standInUrl,
      key: () => fixture.proxyServiceKey,
      requestTimeoutMilliseconds: 5_000,
    });
    const handler = createSettlementHandler({
      credits,
      logger: new RecordingLogger(),
      metrics,
      receivesMax: 8,
    });
    expect(await handler(event(job, 1))).toEqual({
      batchItemFailures: [{ itemIdentifier: 'm-1' }],
    });
    expect(await handler(event(job, 8))).toEqual({ batchItemFailures: [] });
    expect(metrics.total('UnsettledHolds')).toBe(1);
    settlementFails = false;
    expect(await handler(event(job, 2))).toEqual({ batchItemFailures: [] });
    expect(metrics.total('SettlementsRecovered')).toBe(1);
    expect(await fixture.availableMicros('alice')).toBe(10_000_000n - BigInt(job.amount_micros));
  });

  test('a message that is not a settlement job is counted and dropped, not retried', async () => {
    const metrics = new RecordingMetrics();
    const handler = createSettlementHandler({
      credits: fixture.credits,
      logger: new RecordingLogger(),
      metrics,
      receivesMax: 8,
    });
    expect(await handler(event({ hold_id: 'nope' }, 1))).toEqual({ batchItemFailures: [] });
    expect(metrics.total('UnsettledHolds')).toBe(1);
  });

  test('starts a message only with time left for its credits call; the rest go back to the queue, uncounted; each message is flushed', async () => {
    const job = await deferredJob();
    settlementFails = false;
    const metrics = new RecordingMetrics();
    const handler = createSettlementHandler({
      credits: fixture.credits,
      logger: new RecordingLogger(),
      metrics,
      receivesMax: 5,
    });
    const two = {
      Records: [...event(job, 1).Records, { ...event(job, 1).Records[0], messageId: 'm-2' }],
    } as SQSEvent;
    // The invocation's clock: time for the first message, then too little for a second credits call.
    const remaining = [20_000, settlementRemainingMillisecondsMin - 1];
    const context = { getRemainingTimeInMillis: () => remaining.shift() ?? 0 };
    expect(await handler(two, context)).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-2' }] });
    expect(metrics.total('SettlementsRecovered')).toBe(1);
    expect(metrics.total('UnsettledHolds')).toBe(0);
    expect(metrics.flushes).toBe(1);
  });
});
