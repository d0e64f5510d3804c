import { Hono } from 'hono';
import { createProxyApp } from '../../../lambda/proxy/app';
import { proxyConfigFromStage } from '../../../lambda/proxy/config';
import { resolveStageConfig } from '../../../lib/config';
import {
  CreditsAnswerError,
  CreditsRefusedError,
  CreditsUnavailableError,
  createCreditsClient,
  type CreditsClient,
} from '../../../lambda/proxy/credits-client';
import { createProviders } from '../../../lambda/proxy/providers';
import { startServer, type RunningServer } from '../../../runtime/node-server';
import { testModels } from '../../support/proxy';
import { RecordingLogger } from '../../support/recording-logger';
import { RecordingMetrics } from '../../support/recording-metrics';

/**
 * The proxy reads the credits service's answers with the credits contract: an answer outside it (a
 * service of another version, something in between) is a typed failure, CreditsAnswerError, which
 * the proxy treats as the service unavailable (503 before any provider call, a settlement retried
 * later), never a crash or a 500. A well-formed refusal it does not expect is CreditsRefusedError.
 * The stand-in is a real HTTP server that answers whatever the test sets.
 */

let answer: { status: number; body: unknown } = { status: 200, body: {} };
let standIn: RunningServer;
let credits: CreditsClient;

beforeAll(async () => {
  const app = new Hono();
  app.all('*', (c) => c.json(answer.body as object, answer.status as 200));
  standIn = await startServer({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
  credits = createCreditsClient({
    baseUrl: standIn.url,
    key: () => 'proxy-service-key',
    requestTimeoutMilliseconds: 5_000,
  });
});
afterAll(() => standIn.close());

const admission = { userId: 'alice', amountMicros: 1_000n, timeoutSeconds: 60, holdKey: 'k' };
const calls: Record<string, () => Promise<unknown>> = {
  admission: () => credits.admit(admission),
  settle: () => credits.settle('17', 10n),
  release: () => credits.release('17'),
  balance: () => credits.balance('alice'),
  'rate-limit': () => credits.rateLimit('key:a', 5),
};
const malformed: [string, number, unknown][] = [
  ['admission', 201, { hold_id: 'not-a-number', expires_at: '2099-01-01T00:00:00Z' }],
  ['admission', 402, { error: { code: 'insufficient_credits', available_micros: 12 } }],
  ['admission', 429, { error: { code: 'rate_limit_exceeded', limit: '5' } }],
  ['settle', 200, { hold_id: '17', status: 'settled', charged_micros: '-1' }],
  ['release', 200, { hold_id: '17', status: 'gone', released_micros: '0', available_micros: '0' }],
  ['balance', 200, { user_id: 'alice', available_micros: 12 }],
  ['rate-limit', 200, { allowed: 'yes', limit: 5 }],
  ['settle', 409, { error: 'conflict' }],
];

test.each(malformed)(
  'the %s answer (status %d) outside the contract is CreditsAnswerError (an unavailable service), never a crash',
  async (call, status, body) => {
    answer = { status, body };
    const failure = await calls[call]().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(CreditsAnswerError);
    expect(failure).toBeInstanceOf(CreditsUnavailableError);
    expect((failure as CreditsAnswerError).message).toBe(
      `credits ${call} answered ${status} with a body outside the credits contract`,
    );
  },
);

test('a well-formed refusal the call does not expect is CreditsRefusedError, with its code (not retried)', async () => {
  answer = {
    status: 409,
    body: {
      error: { message: 'The hold was already settled', type: 'conflict_error', code: 'hold_x' },
      request_id: 'r-1',
    },
  };
  const failure = await credits.settle('17', 10n).catch((error: unknown) => error);
  expect(failure).toBeInstanceOf(CreditsRefusedError);
  expect(failure).not.toBeInstanceOf(CreditsUnavailableError);
  expect(failure).toMatchObject({ status: 409, code: 'hold_x' });
});

test('an admission answered outside the contract is a 503 with a request id, and no provider is called', async () => {
  answer = { status: 201, body: { hold_id: '17' } };
  const metrics = new RecordingMetrics();
  const app = createProxyApp({
    keys: {
      description: 'one key',
      verifier: async () => ({
        size: 1,
        verify: () => ({ status: 'valid', keyId: 'key_contract01', userId: 'alice' }),
      }),
    },
    credits,
    providers: createProviders(async () => ({})),
    config: { ...proxyConfigFromStage(resolveStageConfig('dev')), models: testModels },
    logger: new RecordingLogger(),
    metrics,
  });
  const response = await app.request('/v1/chat/completions', {
    method: 'POST',
    headers: { authorization: 'Bearer any', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'echo', messages: [{ role: 'user', content: 'hi' }] }),
  });
  expect(response.status).toBe(503);
  const body = (await response.json()) as { error: { code: string }; request_id: string };
  expect(body.error.code).toBe('credits_unavailable');
  expect(body.request_id).toMatch(/^[0-9a-f-]{36}$/);
  expect(metrics.total('ChatCompletions')).toBe(1); // counted as credits_unavailable, never answered
});
