import type { Context as LambdaContext } from 'aws-lambda';
import type { Hono } from 'hono';
import { handle, streamHandle, type LambdaEvent } from 'hono/aws-lambda';
import type { AppMetrics } from './metrics';

export type LambdaHandler = (event: LambdaEvent, context?: unknown) => Promise<unknown>;

/** A response-streaming handler, as `awslambda.streamifyResponse` takes and returns it. */
export type StreamingLambdaHandler = (
  event: LambdaEvent,
  responseStream: awslambda.HttpResponseStream,
  context: LambdaContext,
) => Promise<void>;

export interface LambdaApp {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any app's environment
  readonly app: Hono<any>;
  /** Flushed after every invocation (MON-02): what one request recorded is emitted with it. */
  readonly metrics: AppMetrics;
}

/** Builds once per execution environment; a failed start is retried on the next event instead of poisoning the environment. */
function once<T>(build: () => Promise<T>): () => Promise<T> {
  let started: Promise<T> | undefined;
  return () => {
    started ??= build().catch((error: unknown) => {
      started = undefined;
      throw error;
    });
    return started;
  };
}

/**
 * A Lambda handler for a hono app built once per execution environment (the cold start: reading
 * secrets, opening clients). A start that fails (a secret unreadable) is retried on the next event
 * instead of poisoning the environment. The app's metrics are flushed after every invocation, even
 * a failed one, so none are lost when the environment is frozen or recycled.
 */
export function coldStartHandler(build: () => Promise<LambdaApp>): LambdaHandler {
  const started = once(async () => {
    const { app, metrics } = await build();
    return { handler: handle(app) as LambdaHandler, metrics };
  });
  return async (event, context) => {
    const { handler, metrics } = await started();
    try {
      return await handler(event, context);
    } finally {
      metrics.flush();
    }
  };
}

/**
 * The same, as a response-streaming handler (`awslambda.streamifyResponse`), for an API Gateway REST
 * API whose Lambda proxy integration is in STREAM transfer mode (events in format 1.0). hono's
 * `streamHandle` writes the status and headers with `awslambda.HttpResponseStream.from` (the JSON
 * metadata and the delimiter API Gateway reads first), then pipes the body as the app produces it.
 * The runtime's `streamifyResponse` only marks the function it is given and returns it, so the
 * adapter is built after the app, once, and called with this invocation's stream. Metrics are
 * flushed when the body has ended.
 */
export function coldStartStreamingHandler(build: () => Promise<LambdaApp>): StreamingLambdaHandler {
  const started = once(async () => {
    const { app, metrics } = await build();
    return { handler: streamHandle(app) as unknown as StreamingLambdaHandler, metrics };
  });
  const streaming: StreamingLambdaHandler = async (event, responseStream, context) => {
    const { handler, metrics } = await started();
    try {
      await handler(event, responseStream, context);
    } finally {
      metrics.flush();
    }
  };
  // Outside the Lambda runtime (tests of other exports, bundle checks) there is no
  // `streamifyResponse` (an `awslambda` object may still exist: @aws/lambda-invoke-store creates one
  // for its store): the function is then unmarked, and invoking it there fails on hono's own
  // `awslambda` reference.
  const runtime = (globalThis as { awslambda?: Partial<typeof awslambda> }).awslambda;
  return typeof runtime?.streamifyResponse === 'function'
    ? (runtime.streamifyResponse(streaming) as StreamingLambdaHandler)
    : streaming;
}
