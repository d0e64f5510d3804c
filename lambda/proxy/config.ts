import type { ModelConfig } from '../../lib/config/schema';

/** Settings of the proxy; every limit carries its unit. Built from the stage config (lib/config). */
export interface ProxyConfig {
  readonly models: readonly ModelConfig[];
  readonly currency: string;
  readonly allowedOrigins: readonly string[];
  readonly rateLimit: { readonly enabled: boolean; readonly requestsPerMinute: number };
  /** Failed authentications per source address per minute before 429 (RATE-05). */
  readonly authFailuresPerMinute: number;
  readonly requestBodyBytesMax: number;
  /** One provider attempt; a retry gets a second attempt within the total budget. */
  readonly providerAttemptTimeoutMilliseconds: number;
  /** Both attempts together; the function's timeout is longer. */
  readonly providerBudgetMilliseconds: number;
  /** A hold outlives the longest request; if nobody settles it, it expires by itself. */
  readonly holdTimeoutSeconds: number;
  /** Requests slower than this are logged as slow (LOG-06). */
  readonly slowRequestMilliseconds: number;
  /** Whether clients reach the proxy over HTTPS only (reported by /health, CFG-03). */
  readonly httpsOnly: boolean;
  /** The most bytes read from one provider response, streamed or not: above it, 502 and the hold released. */
  readonly providerResponseBytesMax: number;
  /** A stream silent this long gets an SSE comment (keeps idle timeouts from cutting slow models). */
  readonly streamKeepAliveIntervalMilliseconds: number;
  /** The echo model's wait between streamed words (so streaming is visible locally). */
  readonly echoChunkDelayMilliseconds: number;
}

export const proxyConfigDefaults = {
  authFailuresPerMinute: 10,
  providerAttemptTimeoutMilliseconds: 60_000,
  providerBudgetMilliseconds: 110_000,
  holdTimeoutSeconds: 300,
  slowRequestMilliseconds: 10_000,
  // 32 MiB: thousands of times the largest completion a model here may produce (65,536 tokens as
  // OpenAI-style chunks of a few hundred bytes each is about 20 MiB), far below the function's memory.
  providerResponseBytesMax: 32 * 1024 * 1024,
  // Below every idle timeout on the path (ALB, API Gateway, clients' read timeouts of 30 s and more).
  streamKeepAliveIntervalMilliseconds: 15_000,
  echoChunkDelayMilliseconds: 20,
} as const;

/** Receipts per page of `GET /v1/usage` (within the credits service's own maximum of 100). */
export const usagePageLimitDefault = 20;
export const usagePageLimitMax = 100;

/** Deadline of one call to the credits service (admission, settlement), proxy and settle function alike. */
export const creditsRequestTimeoutMilliseconds = 5_000;
/** Deadline of handing one settlement to the durable retry path (one SQS SendMessage). */
export const settlementEnqueueTimeoutMilliseconds = 5_000;
/** Inline settlement attempts before the job goes to the durable retry path. */
export const settlementInlineAttemptsMax = 3;
/** The wait before the second attempt; each later one waits four times longer (50 ms, 200 ms). */
export const settlementBackoffMillisecondsBase = 50;

/**
 * The longest one request keeps the proxy busy: admission, the provider budget (which bounds a whole
 * stream), every inline settlement attempt with its backoff, and the hand-off to the retry queue.
 * The function's timeout must exceed it, or a settlement could be cut off before it is queued.
 */
export function proxyRequestMillisecondsMax(config: {
  readonly providerBudgetMilliseconds: number;
}): number {
  let backoffMilliseconds = 0;
  for (let attempt = 1; attempt < settlementInlineAttemptsMax; attempt += 1)
    backoffMilliseconds += settlementBackoffMillisecondsBase * 4 ** (attempt - 1);
  const settlementMilliseconds =
    settlementInlineAttemptsMax * creditsRequestTimeoutMilliseconds +
    backoffMilliseconds +
    settlementEnqueueTimeoutMilliseconds;
  return (
    creditsRequestTimeoutMilliseconds + config.providerBudgetMilliseconds + settlementMilliseconds
  );
}

/** The proxy's settings from a stage's config: what the CDK app passes to the function (no secrets). */
export function proxyConfigFromStage(stage: {
  models: readonly ModelConfig[];
  currency: string;
  cors: { allowedOrigins: readonly string[] };
  rateLimit: { enabled: boolean; requestsPerMinute: number };
  requestBodyBytesMax: number;
  certificate?: unknown;
  proxy?: Partial<
    Pick<
      ProxyConfig,
      | 'providerResponseBytesMax'
      | 'streamKeepAliveIntervalMilliseconds'
      | 'echoChunkDelayMilliseconds'
    >
  >;
}): ProxyConfig {
  return {
    ...proxyConfigDefaults,
    ...stage.proxy,
    models: stage.models,
    currency: stage.currency,
    allowedOrigins: stage.cors.allowedOrigins,
    rateLimit: stage.rateLimit,
    requestBodyBytesMax: stage.requestBodyBytesMax,
    httpsOnly: stage.certificate !== undefined,
  };
}

/**
 * How the limits must relate; the app refuses to start otherwise. An attempt fits in the budget,
 * and a hold outlives the longest request it pays for (a hold that expired mid-stream could no
 * longer be settled). The function's and the edge's timeouts above the budget are asserted at synth.
 */
export function proxyConfigProblems(config: ProxyConfig): string[] {
  const problems: string[] = [];
  if (config.providerAttemptTimeoutMilliseconds > config.providerBudgetMilliseconds) {
    problems.push(
      `providerAttemptTimeoutMilliseconds (${config.providerAttemptTimeoutMilliseconds}) must not exceed providerBudgetMilliseconds (${config.providerBudgetMilliseconds})`,
    );
  }
  if (config.providerBudgetMilliseconds >= config.holdTimeoutSeconds * 1000) {
    problems.push(
      `holdTimeoutSeconds (${config.holdTimeoutSeconds}) must outlast providerBudgetMilliseconds (${config.providerBudgetMilliseconds})`,
    );
  }
  return problems;
}
