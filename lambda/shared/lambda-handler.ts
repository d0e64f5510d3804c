import type { Hono } from 'hono';
import { handle, type LambdaEvent } from 'hono/aws-lambda';
import type { AppMetrics } from './metrics';

export type LambdaHandler = (event: LambdaEvent, context?: unknown) => Promise<unknown>;

export interface LambdaApp {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any app's environment
  readonly app: Hono<any>;
  /** Flushed after every invocation (MON-02): what one request recorded is emitted with it. */
  readonly metrics: AppMetrics;
}

/**
 * A Lambda handler for a hono app built once per execution environment (the cold start: reading
 * secrets, opening clients). A start that fails (a secret unreadable) is retried on the next event
 * instead of poisoning the environment. The app's metrics are flushed after every invocation, even
 * a failed one, so none are lost when the environment is frozen or recycled.
 */
export function coldStartHandler(build: () => Promise<LambdaApp>): LambdaHandler {
  let started: Promise<{ handler: LambdaHandler; metrics: AppMetrics }> | undefined;
  return async (event, context) => {
    started ??= build()
      .then(({ app, metrics }) => ({ handler: handle(app) as LambdaHandler, metrics }))
      .catch((error: unknown) => {
        started = undefined;
        throw error;
      });
    const { handler, metrics } = await started;
    try {
      return await handler(event, context);
    } finally {
      metrics.flush();
    }
  };
}
