import {
  createEmfMetrics,
  MetricsRegistry,
  metricsNamespace,
} from '../../../lambda/shared/metrics';
import {
  metricsListenerHostname,
  startMetricsListener,
} from '../../../lambda/shared/metrics-listener';
import type { RunningServer } from '../../../runtime/node-server';
import { startProxyFixture, type ProxyFixture } from '../../support/proxy';
import { createProxyApp } from '../../../lambda/proxy/app';

/** The two real implementations of the metrics interface: EMF for Lambda, counters for the Node servers. */

describe('MON-02: embedded metric format', () => {
  test('flush writes one EMF document per dimension set, in the AiProxy namespace with service and stage', () => {
    const written: string[] = [];
    const stdout = jest
      .spyOn(process.stdout, 'write')
      .mockImplementation((chunk: string | Uint8Array) => {
        written.push(String(chunk));
        return true;
      });
    try {
      const metrics = createEmfMetrics('proxy', 'staging');
      metrics.record('PromptTokens', 12, { model: 'echo' });
      metrics.record('CompletionTokens', 7, { model: 'echo' });
      metrics.record('BillingFailures', 1, {});
      expect(written).toEqual([]); // buffered until the flush
      metrics.flush();
      metrics.flush(); // nothing left: nothing written
    } finally {
      stdout.mockRestore();
    }
    const documents = written.map(
      (line) =>
        JSON.parse(line) as Record<string, unknown> & {
          _aws: {
            CloudWatchMetrics: {
              Namespace: string;
              Dimensions: string[][];
              Metrics: { Name: string }[];
            }[];
          };
        },
    );
    expect(documents).toHaveLength(2);
    const [byModel, plain] = documents;
    expect(byModel._aws.CloudWatchMetrics[0]).toMatchObject({
      Namespace: metricsNamespace,
      Dimensions: [['service', 'stage', 'model']],
    });
    expect(byModel).toMatchObject({
      service: 'proxy',
      stage: 'staging',
      model: 'echo',
      PromptTokens: 12,
      CompletionTokens: 7,
    });
    expect(plain._aws.CloudWatchMetrics[0]).toMatchObject({
      Namespace: 'AiProxy',
      Dimensions: [['service', 'stage']],
      Metrics: [{ Name: 'BillingFailures', Unit: 'Count' }],
    });
  });
});

describe('MON-02 / NET-08: the local /metrics listener', () => {
  let fixture: ProxyFixture;
  let listener: RunningServer;
  afterEach(async () => {
    await listener.close();
    await fixture.close();
  });

  test('is bound to 127.0.0.1 only and serves the counters the app recorded', async () => {
    fixture = await startProxyFixture();
    await fixture.topUp('alice', '1.00');
    const registry = new MetricsRegistry('proxy', 'dev');
    const app = createProxyApp({
      keys: {
        description: 'one key',
        verifier: async () => ({
          size: 1,
          verify: () => ({ status: 'valid', keyId: 'key_one', userId: 'alice' }),
        }),
      },
      credits: fixture.credits,
      providers: new Map(),
      config: fixture.config,
      logger: fixture.logger,
      metrics: registry,
    });
    listener = await startMetricsListener(registry, 0);
    expect(metricsListenerHostname).toBe('127.0.0.1');
    expect(listener.url).toBe(`http://127.0.0.1:${listener.port}`);

    await app.request('/v1/models', { headers: { authorization: 'Bearer anything' } });
    await app.request('/v1/models', { headers: { authorization: 'Bearer anything' } });
    await app.request('/metrics');
    const response = await fetch(`${listener.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    expect(text).toContain(
      'ai_proxy_requests_total{service="proxy",stage="dev",route="/v1/models",outcome="2xx"} 2',
    );
    expect(text).toContain(
      'ai_proxy_requests_total{service="proxy",stage="dev",route="none",outcome="4xx"} 1',
    );
    expect(text).toMatch(
      /ai_proxy_request_latency_milliseconds_count\{service="proxy",stage="dev",route="\/v1\/models"\} 2/,
    );
    // The listener serves nothing else, and the public app never serves the counters.
    expect((await fetch(`${listener.url}/v1/models`)).status).toBe(404);
    expect(await (await app.request('/metrics')).text()).not.toContain('ai_proxy_');
  });
});
