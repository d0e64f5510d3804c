import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context, Env, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';

/**
 * Service metrics (MON-02) behind a small interface, like the logger: the apps take `metrics` as a
 * dependency; in Lambda it writes CloudWatch embedded metric format (Powertools) flushed after every
 * invocation, on a Node server it keeps counters for the local /metrics listener, in tests it
 * records. Every metric has a fixed set of dimensions, declared here, so that the alarms and the
 * dashboard (lib/stacks/observability-stack.ts) name exactly what the services emit. Dimension
 * values are bounded: models come from the config, routes are route patterns, never a user id, a
 * key id or a raw path.
 */

export const metricsNamespace = 'AiProxy';
export type MetricsService = 'proxy' | 'credits';
export type MetricUnitName = 'Count' | 'Milliseconds' | 'None';

interface MetricDefinition {
  readonly unit: MetricUnitName;
  /** Besides `service` and `stage`, which every metric carries. */
  readonly dimensions: readonly string[];
}

export const metricDefinitions = {
  // Both services
  Requests: { unit: 'Count', dimensions: ['route', 'outcome'] },
  RequestLatency: { unit: 'Milliseconds', dimensions: ['route'] },
  AuthFailures: { unit: 'Count', dimensions: [] },
  InsufficientBalanceRefusals: { unit: 'Count', dimensions: [] },
  // Proxy
  ChatCompletions: { unit: 'Count', dimensions: ['model', 'outcome'] },
  PromptTokens: { unit: 'Count', dimensions: ['model'] },
  CompletionTokens: { unit: 'Count', dimensions: ['model'] },
  CostChargedMicros: { unit: 'None', dimensions: ['model'] },
  BillingFailures: { unit: 'Count', dimensions: [] },
  RateLimitRefusals: { unit: 'Count', dimensions: [] },
  ProviderLatency: { unit: 'Milliseconds', dimensions: ['provider'] },
  ProviderErrors: { unit: 'Count', dimensions: ['provider', 'kind'] },
  /** A request the model could not answer went to its next fallback (model: the one that failed). */
  ModelFallbacks: { unit: 'Count', dimensions: ['model', 'fallback'] },
  CreditsUnavailable: { unit: 'Count', dimensions: [] },
  /** Settlements handed to the durable retry path after the inline retries failed. */
  SettlementsDeferred: { unit: 'Count', dimensions: [] },
  /** Deferred settlements applied later (settle function, or the local settlement file). */
  SettlementsRecovered: { unit: 'Count', dimensions: [] },
  /** Deferred settlements given up (the hold expired first): completions delivered unbilled. */
  UnsettledHolds: { unit: 'Count', dimensions: [] },
  // Credits
  Holds: { unit: 'Count', dimensions: [] },
  Settles: { unit: 'Count', dimensions: [] },
  Releases: { unit: 'Count', dimensions: [] },
  TopUps: { unit: 'Count', dimensions: [] },
  LedgerUnavailable: { unit: 'Count', dimensions: [] },
} as const satisfies Record<string, MetricDefinition>;

export type MetricName = keyof typeof metricDefinitions;
export type MetricDimensions<N extends MetricName> = Record<
  (typeof metricDefinitions)[N]['dimensions'][number],
  string
>;

/** Outcomes of a chat completion (the `outcome` dimension of ChatCompletions). */
export type ChatOutcome =
  | 'completed'
  | 'insufficient_credits'
  | 'provider_error'
  | 'credits_unavailable'
  | 'client_disconnected';

export interface AppMetrics {
  /** One observation: a count, a duration or an amount, with exactly the metric's declared dimensions. */
  record<N extends MetricName>(name: N, value: number, dimensions: MetricDimensions<N>): void;
  /** Emits what was recorded since the last flush (Lambda: after every invocation). */
  flush(): void;
}

interface MetricPoint {
  readonly name: MetricName;
  readonly value: number;
  readonly dimensions: Readonly<Record<string, string>>;
}

/** Observations grouped by their dimension values: one EMF document per group. */
function groupByDimensions(points: readonly MetricPoint[]): MetricPoint[][] {
  const groups = new Map<string, MetricPoint[]>();
  for (const point of points) {
    const key = JSON.stringify(
      Object.entries(point.dimensions).sort(([a], [b]) => a.localeCompare(b)),
    );
    const group = groups.get(key);
    if (group) group.push(point);
    else groups.set(key, [point]);
  }
  return [...groups.values()];
}

/**
 * CloudWatch metrics through the embedded metric format (Powertools): recorded observations are
 * buffered and written to stdout as EMF documents by `flush`, which the Lambda handler calls after
 * every invocation so that nothing is lost when the environment is frozen or recycled.
 */
export function createEmfMetrics(service: MetricsService, stage: string): AppMetrics {
  const emf = new Metrics({
    namespace: metricsNamespace,
    serviceName: service,
    defaultDimensions: { stage },
  });
  let pending: MetricPoint[] = [];
  return {
    record(name, value, dimensions) {
      pending.push({ name, value, dimensions });
    },
    flush() {
      const points = pending;
      pending = [];
      for (const group of groupByDimensions(points)) {
        for (const [dimension, value] of Object.entries(group[0].dimensions))
          emf.addDimension(dimension, value);
        for (const point of group)
          emf.addMetric(point.name, metricDefinitions[point.name].unit, point.value);
        emf.publishStoredMetrics();
      }
    },
  };
}

/** Label values of the Prometheus text format are escaped this way. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function snakeCase(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

interface Series {
  readonly name: MetricName;
  readonly labels: Readonly<Record<string, string>>;
  sum: number;
  count: number;
}

/**
 * The same metrics as counters in memory, for the Node servers: `render()` is the body of the local
 * /metrics listener (Prometheus text format). Series are bounded as the dimensions are.
 */
export class MetricsRegistry implements AppMetrics {
  private readonly series = new Map<string, Series>();
  private readonly baseLabels: Readonly<Record<string, string>>;

  constructor(service: MetricsService, stage: string) {
    this.baseLabels = { service, stage };
  }

  record<N extends MetricName>(name: N, value: number, dimensions: MetricDimensions<N>): void {
    const labels: Record<string, string> = { ...this.baseLabels, ...dimensions };
    const key = JSON.stringify([
      name,
      Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)),
    ]);
    const series = this.series.get(key) ?? { name, labels, sum: 0, count: 0 };
    series.sum += value;
    series.count += 1;
    this.series.set(key, series);
  }

  /** Counters only grow; there is nothing to emit. */
  flush(): void {}

  render(): string {
    const lines: string[] = [];
    const sorted = [...this.series.values()].sort((a, b) => a.name.localeCompare(b.name));
    for (const series of sorted) {
      const labels = Object.entries(series.labels)
        .map(([label, value]) => `${label}="${escapeLabel(value)}"`)
        .join(',');
      const base = `${snakeCase(metricsNamespace)}_${snakeCase(series.name)}`;
      if (metricDefinitions[series.name].unit === 'Milliseconds') {
        lines.push(
          `${base}_milliseconds_sum{${labels}} ${series.sum}`,
          `${base}_milliseconds_count{${labels}} ${series.count}`,
        );
      } else {
        lines.push(`${base}_total{${labels}} ${series.sum}`);
      }
    }
    return lines.length > 0 ? `${lines.join('\n')}\n` : '';
  }
}

/** The route pattern that answered (e.g. /api/v1/holds/:id/settle), or `none` when no route matched. */
export function routeLabel(c: Context): string {
  const route = [...matchedRoutes(c)].reverse().find((candidate) => candidate.method !== 'ALL');
  return route?.path ?? 'none';
}

/** Every request: its count by route and status class, and its latency by route. */
export function requestMetrics<E extends Env>(metrics: AppMetrics): MiddlewareHandler<E> {
  return async (c, next) => {
    const started = performance.now();
    await next();
    const route = routeLabel(c);
    metrics.record('Requests', 1, { route, outcome: `${Math.floor(c.res.status / 100)}xx` });
    metrics.record('RequestLatency', Math.round(performance.now() - started), { route });
  };
}
