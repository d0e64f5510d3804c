import type { Hono } from 'hono';
import { handle, type LambdaEvent } from 'hono/aws-lambda';

export type LambdaHandler = (event: LambdaEvent, context?: unknown) => Promise<unknown>;

/**
 * A Lambda handler for a hono app built once per execution environment (the cold start: reading
 * secrets, opening clients). A start that fails (a secret unreadable) is retried on the next event
 * instead of poisoning the environment.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any app's environment
export function coldStartHandler(build: () => Promise<Hono<any>>): LambdaHandler {
  let started: Promise<LambdaHandler> | undefined;
  return async (event, context) => {
    started ??= build()
      .then((app) => handle(app) as LambdaHandler)
      .catch((error: unknown) => {
        started = undefined;
        throw error;
      });
    return (await started)(event, context);
  };
}
