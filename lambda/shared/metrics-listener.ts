import { Hono } from 'hono';
import type { MetricsRegistry } from './metrics';
import { startServer, type RunningServer } from '../../runtime/node-server';

/**
 * The local /metrics endpoint of a Node server: a second, separate listener that serves only the
 * counters, bound to the loopback address and nowhere else (NET-08). The public app has no
 * /metrics route, and in Lambda there is no listener at all: the metrics go to CloudWatch as EMF.
 */

/** Loopback only, by design: not configurable. */
export const metricsListenerHostname = '127.0.0.1';

export function startMetricsListener(
  registry: MetricsRegistry,
  port: number,
): Promise<RunningServer> {
  const app = new Hono();
  app.get('/metrics', (c) =>
    c.text(registry.render(), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }),
  );
  app.notFound((c) => c.text('not found\n', 404));
  return startServer({ fetch: app.fetch, hostname: metricsListenerHostname, port });
}
