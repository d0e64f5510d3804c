import { metricDefinitions } from '../../../lambda/shared/metrics';
import { geminiAnswer, geminiError } from '../../support/fake-providers';
import { startProxyFixture, type ProxyFixture } from '../../support/proxy';

/**
 * MON-02: the proxy counts every outcome through its metrics dependency (EMF in Lambda, the local
 * /metrics counters on a Node server), exercised through real requests to the app.
 */

let fixture: ProxyFixture;
afterEach(() => fixture.close());

const hello = {
  model: 'gemini-2.5-flash',
  messages: [{ role: 'user', content: 'Say hello' }],
  max_tokens: 100,
};
const chat = (body: unknown = hello, key?: string | null) =>
  fixture.request('POST', '/v1/chat/completions', { body, key });

describe('MON-02: proxy metrics by outcome', () => {
  beforeEach(async () => {
    fixture = await startProxyFixture();
    await fixture.topUp('alice', '10.00');
  });

  test('a billed completion records the request, the completion, its tokens and its cost by model, and the provider latency', async () => {
    fixture.gemini.script(
      geminiAnswer('Hello!', { promptTokenCount: 12, candidatesTokenCount: 7 }),
    );
    expect((await chat()).status).toBe(200);
    const { metrics } = fixture;
    const model = { model: 'gemini-2.5-flash' };
    expect(metrics.total('ChatCompletions', { ...model, outcome: 'completed' })).toBe(1);
    expect(metrics.total('PromptTokens', model)).toBe(12);
    expect(metrics.total('CompletionTokens', model)).toBe(7);
    expect(metrics.total('CostChargedMicros', model)).toBe(22);
    expect(metrics.total('Requests', { route: '/v1/chat/completions', outcome: '2xx' })).toBe(1);
    expect(metrics.find('RequestLatency', { route: '/v1/chat/completions' })).toHaveLength(1);
    expect(metrics.find('ProviderLatency', { provider: 'gemini' })).toHaveLength(1);
    expect(metrics.total('BillingFailures')).toBe(0);
    // The credits service counted the hold and its settlement.
    expect(fixture.creditsMetrics.total('Holds')).toBe(1);
    expect(fixture.creditsMetrics.total('Settles')).toBe(1);
  });

  test('a 402 records an insufficient-balance refusal (in the proxy and in the credits service)', async () => {
    expect((await chat(hello, fixture.keys.bob)).status).toBe(402);
    expect(fixture.metrics.total('InsufficientBalanceRefusals')).toBe(1);
    expect(
      fixture.metrics.total('ChatCompletions', {
        model: 'gemini-2.5-flash',
        outcome: 'insufficient_credits',
      }),
    ).toBe(1);
    expect(
      fixture.metrics.total('Requests', { route: '/v1/chat/completions', outcome: '4xx' }),
    ).toBe(1);
    expect(fixture.creditsMetrics.total('InsufficientBalanceRefusals')).toBe(1);
    expect(fixture.metrics.find('PromptTokens')).toHaveLength(0);
  });

  test('a 401 records an authentication failure', async () => {
    expect((await fixture.request('GET', '/v1/models', { key: 'sk-not-a-key' })).status).toBe(401);
    expect(fixture.metrics.total('AuthFailures')).toBe(1);
    expect(fixture.metrics.total('Requests', { route: '/v1/models', outcome: '4xx' })).toBe(1);
  });

  test('a provider error records the provider error by kind, each attempt, and the hold is released', async () => {
    fixture.gemini.script(geminiError(500, 'internal'), geminiError(503, 'overloaded'));
    expect((await chat()).status).toBe(503);
    expect(
      fixture.metrics.total('ProviderErrors', { provider: 'gemini', kind: 'unavailable' }),
    ).toBe(2);
    expect(
      fixture.metrics.total('ChatCompletions', {
        model: 'gemini-2.5-flash',
        outcome: 'provider_error',
      }),
    ).toBe(1);
    expect(
      fixture.metrics.total('Requests', { route: '/v1/chat/completions', outcome: '5xx' }),
    ).toBe(1);
    expect(fixture.creditsMetrics.total('Releases')).toBe(1);
  });

  test('a settlement that cannot reach the credits service records a billing failure', async () => {
    let answerNow = () => {};
    fixture.gemini.script({
      ...geminiAnswer('Hello!'),
      heldUntil: new Promise<void>((resolve) => (answerNow = resolve)),
    });
    const pending = chat();
    await fixture.gemini.request(0); // admitted: the hold is placed and the provider has the request
    await fixture.creditsServer.close();
    answerNow();
    expect((await pending).status).toBe(200);
    expect(fixture.metrics.total('BillingFailures')).toBe(1);
    expect(fixture.logger.auditEvents('billing_failure')).toHaveLength(1);
  });

  test('the credits service down records credits unavailable', async () => {
    await fixture.creditsServer.close();
    expect((await chat()).status).toBe(503);
    expect(fixture.metrics.total('CreditsUnavailable')).toBe(1);
  });

  test('NET-08: /metrics is not a route of the public app (404, counted under route "none")', async () => {
    expect((await fixture.request('GET', '/metrics')).status).toBe(404);
    expect((await fixture.request('GET', '/metrics', { key: null })).status).toBe(404);
    expect(fixture.metrics.total('Requests', { route: 'none', outcome: '4xx' })).toBe(2);
  });

  test('every record carries exactly its declared dimensions, with bounded values: never a user id or a key', async () => {
    fixture.gemini.script(geminiAnswer('Hello!'));
    await chat();
    await chat(hello, fixture.keys.bob);
    await fixture.request('GET', '/v1/balance');
    await fixture.request('GET', '/v1/nowhere/alice');
    expect(fixture.metrics.records.length).toBeGreaterThan(5);
    for (const record of [...fixture.metrics.records, ...fixture.creditsMetrics.records]) {
      expect(Object.keys(record.dimensions).sort()).toEqual(
        [...metricDefinitions[record.name].dimensions].sort(),
      );
      const values = Object.values(record.dimensions).join(' ');
      for (const forbidden of ['alice', 'bob', fixture.keys.alice, fixture.keys.bob, 'key_test'])
        expect(values).not.toContain(forbidden);
    }
  });
});

describe('MON-02: outcomes that need their own limits', () => {
  test('a provider timeout is counted as kind "timeout"', async () => {
    fixture = await startProxyFixture({
      providerAttemptTimeoutMilliseconds: 100,
      providerBudgetMilliseconds: 200,
    });
    await fixture.topUp('alice', '1.00');
    fixture.gemini.script({ status: 200, body: {}, delayMilliseconds: 300 });
    expect((await chat()).status).toBe(504);
    expect(fixture.metrics.total('ProviderErrors', { provider: 'gemini', kind: 'timeout' })).toBe(
      1,
    );
  });

  test('a 429 records a rate-limit refusal', async () => {
    fixture = await startProxyFixture({ rateLimit: { enabled: true, requestsPerMinute: 2 } });
    const statuses = [];
    for (let index = 0; index < 3; index += 1)
      statuses.push((await fixture.request('GET', '/v1/models')).status);
    expect(statuses).toEqual([200, 200, 429]);
    expect(fixture.metrics.total('RateLimitRefusals')).toBe(1);
    expect(fixture.metrics.total('Requests', { route: '/v1/models', outcome: '4xx' })).toBe(1);
  });

  test('throttled authentication failures record auth failures and a rate-limit refusal', async () => {
    fixture = await startProxyFixture({ authFailuresPerMinute: 2 });
    const statuses = [];
    for (let index = 0; index < 3; index += 1)
      statuses.push((await fixture.request('GET', '/v1/models', { key: 'sk-wrong' })).status);
    expect(statuses).toEqual([401, 401, 429]);
    expect(fixture.metrics.total('AuthFailures')).toBe(3); // every failure counts; the third, over the limit, is answered 429
    expect(fixture.metrics.total('RateLimitRefusals')).toBe(1);
  });
});
