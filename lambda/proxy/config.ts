import type { EmbeddingModelConfig, ModelConfig } from '../../lib/config/schema';
import { u32Max } from '../../tigerbeetle/limits';
import * as z from '../../runtime/zod-mini';

/** Settings of the proxy; every limit carries its unit. Built from the stage config (lib/config). */
export interface ProxyConfig {
  readonly models: readonly ModelConfig[];
  readonly embeddingModels: readonly EmbeddingModelConfig[];
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
  /** Texts in one embeddings request (`input` as an array); above it, 400. */
  readonly embeddingInputsPerRequestMax: number;
  /** Characters of one embeddings input; above it, 400 (models take a few thousand tokens). */
  readonly embeddingInputCharactersMax: number;
}

/** Gemini's batchEmbedContents takes at most this many requests in one call. */
export const geminiBatchEmbedRequestsMax = 100;

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
  // One provider call per request: Gemini's batch bound (geminiBatchEmbedRequestsMax).
  embeddingInputsPerRequestMax: 100,
  // 8,192 tokens (OpenAI's per-input limit) of ordinary text is about 32,000 characters.
  embeddingInputCharactersMax: 32_768,
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
  embeddingModels: readonly EmbeddingModelConfig[];
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
    embeddingModels: stage.embeddingModels,
    currency: stage.currency,
    allowedOrigins: stage.cors.allowedOrigins,
    rateLimit: stage.rateLimit,
    requestBodyBytesMax: stage.requestBodyBytesMax,
    httpsOnly: stage.certificate !== undefined,
  };
}

/**
 * The model catalogue: the part of the config that grows with every model a stage offers. The CDK
 * app bakes it into the function's code at synth (esbuild define, lib/stacks/api-stack.ts) instead of
 * the environment, whose 4 KB Lambda limit a few dozen models would exceed.
 */
export type ProxyModelCatalogue = Pick<ProxyConfig, 'models' | 'embeddingModels'>;
/** The rest: small settings the function's environment carries (PROXY_CONFIG), which the audit reads. */
export type ProxyEnvironmentSettings = Omit<ProxyConfig, keyof ProxyModelCatalogue>;

/** The config as the CDK app ships it: the catalogue for the bundle, the settings for the environment. */
export function splitProxyConfig(config: ProxyConfig): {
  catalogue: ProxyModelCatalogue;
  settings: ProxyEnvironmentSettings;
} {
  const { models, embeddingModels, ...settings } = config;
  return { catalogue: { models, embeddingModels }, settings };
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
  if (config.embeddingInputsPerRequestMax > geminiBatchEmbedRequestsMax) {
    problems.push(
      `embeddingInputsPerRequestMax (${config.embeddingInputsPerRequestMax}) must not exceed Gemini's batch of ${geminiBatchEmbedRequestsMax}: one request is one provider call`,
    );
  }
  return problems;
}

const whole = (minimum: number, maximum: number) =>
  z.number().check(z.int(), z.gte(minimum), z.lte(maximum));
const modelSchema = z.strictObject({
  id: z.string().check(z.minLength(1), z.maxLength(64)),
  // Which providers exist is checked at synth (lib/config/schema.ts, where the list lives; importing
  // it here would bring the classic zod API into the bundle) and by the provider registry.
  provider: z.custom<ModelConfig['provider']>(
    (value) => typeof value === 'string' && value.length > 0,
    'must name a provider',
  ),
  upstreamModel: z.string().check(z.minLength(1), z.maxLength(128)),
  inferenceProfileRegions: z.optional(z.array(z.string())),
  inputMicrosPerMillionTokens: whole(0, Number.MAX_SAFE_INTEGER),
  outputMicrosPerMillionTokens: whole(0, Number.MAX_SAFE_INTEGER),
  cachedInputMicrosPerMillionTokens: z.optional(whole(0, Number.MAX_SAFE_INTEGER)),
  cacheCreationInputMicrosPerMillionTokens: z.optional(whole(0, Number.MAX_SAFE_INTEGER)),
  reasoningMicrosPerMillionTokens: z.optional(whole(0, Number.MAX_SAFE_INTEGER)),
  defaultMaxOutputTokens: whole(1, Number.MAX_SAFE_INTEGER),
  outputTokensMax: whole(1, Number.MAX_SAFE_INTEGER),
  fallbacks: z.optional(z.array(z.string().check(z.minLength(1), z.maxLength(64)))),
  /** The model's number in its receipts' user_data_32 (lambda/shared/receipts.ts checks the set). */
  ledgerCode: whole(1, u32Max),
});
const embeddingModelSchema = z.strictObject({
  id: z.string().check(z.minLength(1), z.maxLength(64)),
  provider: z.custom<EmbeddingModelConfig['provider']>(
    (value) => typeof value === 'string' && value.length > 0,
    'must name a provider',
  ),
  upstreamModel: z.string().check(z.minLength(1), z.maxLength(128)),
  inputMicrosPerMillionTokens: whole(0, Number.MAX_SAFE_INTEGER),
  dimensions: whole(1, Number.MAX_SAFE_INTEGER),
  dimensionsConfigurable: z.boolean(),
  ledgerCode: whole(1, u32Max),
});

/** The model catalogue as the proxy function reads it at start (baked into its bundle at synth). */
export const proxyModelCatalogueSchema = z.strictObject({
  models: z.array(modelSchema).check(z.minLength(1)),
  embeddingModels: z.array(embeddingModelSchema),
});

/**
 * PROXY_CONFIG as the proxy function reads it at start (synth writes it from the stage config,
 * proxyConfigFromStage and splitProxyConfig): a variable that does not match refuses the start and
 * names the field, instead of a proxy running on a half-read configuration. Strict, so a field the
 * build adds and this schema does not know fails loudly too. On zod/mini, like everything on the
 * request path.
 */
export const proxyEnvironmentSettingsSchema = z.strictObject({
  currency: z.string().check(z.regex(/^[A-Z]{3}$/)),
  allowedOrigins: z.array(z.string()),
  rateLimit: z.strictObject({ enabled: z.boolean(), requestsPerMinute: whole(1, 1_000_000) }),
  authFailuresPerMinute: whole(1, Number.MAX_SAFE_INTEGER),
  requestBodyBytesMax: whole(1, Number.MAX_SAFE_INTEGER),
  providerAttemptTimeoutMilliseconds: whole(1, Number.MAX_SAFE_INTEGER),
  providerBudgetMilliseconds: whole(1, Number.MAX_SAFE_INTEGER),
  holdTimeoutSeconds: whole(1, Number.MAX_SAFE_INTEGER),
  slowRequestMilliseconds: whole(1, Number.MAX_SAFE_INTEGER),
  httpsOnly: z.boolean(),
  providerResponseBytesMax: whole(1, Number.MAX_SAFE_INTEGER),
  streamKeepAliveIntervalMilliseconds: whole(1, Number.MAX_SAFE_INTEGER),
  echoChunkDelayMilliseconds: whole(0, Number.MAX_SAFE_INTEGER),
  embeddingInputsPerRequestMax: whole(1, Number.MAX_SAFE_INTEGER),
  embeddingInputCharactersMax: whole(1, Number.MAX_SAFE_INTEGER),
});
