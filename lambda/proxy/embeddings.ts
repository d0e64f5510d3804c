import type { Context } from 'hono';
import type { EmbeddingModelConfig } from '../../lib/config/schema';
import {
  ApiError,
  invalidParameter,
  invalidRequestFromSchema,
  readJsonBody,
} from '../../runtime/http';
import { audit, pseudonymize } from '../../runtime/logger';
import * as z from '../../runtime/zod-mini';
import type { ProxyAppDependencies, ProxyEnv } from './context';
import { placeHold, resolveHold, type Billing } from './billing';
import { providerApiError, providerErrorOf, setBillingHeaders } from './chat';
import type { ProxyConfig } from './config';
import { Deadline } from './deadline';
import { costMicros } from './pricing';
import { clientIdempotencyKey } from './idempotency';
import { unrecognizedArgumentsMessage } from './openai';
import type {
  EmbeddingProvider,
  EmbeddingRequest,
  EmbeddingResponse,
} from './providers/embedding-types';
import { ProviderError } from './providers/types';

/**
 * `POST /v1/embeddings`, OpenAI's request and response: `input` (a string or an array of strings),
 * `model`, `encoding_format` (`float`, or `base64`: little-endian float32, what the official SDKs
 * ask for by default), `dimensions` (for a model that honours it), `user`. Billed per input token
 * through the chat route's admission and settlement: a hold of one token per UTF-8 byte of input
 * (an upper bound for any tokenizer), settled at the provider's count (Gemini reports none: an
 * estimate, logged as one), released on failure. Token arrays as input are refused with a 400.
 */

type ProxyContext = Context<ProxyEnv>;

/** `null` for an optional field means absent, as the SDKs and Python callers send it. */
const optional = <T extends z.ZodMiniType>(schema: T) => z.optional(z.nullable(schema));

/** Unknown top-level parameters are a 400 naming them, as OpenAI answers (never a silent drop). */
const embeddingRequestSchema = z.strictObject({
  model: z.string({ message: 'model is required' }).check(z.minLength(1), z.maxLength(128)),
  input: z.union([z.string(), z.array(z.unknown())], {
    message: 'input must be a string or an array of strings',
  }),
  encoding_format: optional(
    z.enum(['float', 'base64'], { message: 'encoding_format must be float or base64' }),
  ),
  dimensions: optional(
    z
      .number()
      .check(z.int('dimensions must be an integer'), z.positive('dimensions must be positive')),
  ),
  user: optional(z.string().check(z.maxLength(256))),
});
type EmbeddingBody = z.infer<typeof embeddingRequestSchema>;

/** A 400 naming the field (`param`, as OpenAI's errors do). */
function parseBody(body: unknown): EmbeddingBody {
  const parsed = embeddingRequestSchema.safeParse(body);
  if (parsed.success) return parsed.data;
  throw invalidRequestFromSchema(parsed.error.issues, unrecognizedArgumentsMessage);
}

/** The texts, each checked against the named limits (inputs per request, characters per input). */
function inputTexts(input: EmbeddingBody['input'], config: ProxyConfig): string[] {
  const items = typeof input === 'string' ? [input] : input;
  if (items.length === 0) throw invalidParameter('input', 'input must not be empty');
  if (items.length > config.embeddingInputsPerRequestMax)
    throw invalidParameter(
      'input',
      `input: at most ${config.embeddingInputsPerRequestMax} inputs per request (got ${items.length})`,
      'too_many_inputs',
    );
  return items.map((item, index) => {
    const field = typeof input === 'string' ? 'input' : `input[${index}]`;
    if (typeof item === 'number' || Array.isArray(item))
      throw invalidParameter(
        field,
        `${field}: token arrays are not supported; send text`,
        'unsupported_input',
      );
    if (typeof item !== 'string') throw invalidParameter(field, `${field} must be a string`);
    if (item === '') throw invalidParameter(field, `${field} must not be empty`);
    if (item.length > config.embeddingInputCharactersMax)
      throw invalidParameter(
        field,
        `${field}: at most ${config.embeddingInputCharactersMax} characters per input`,
        'input_too_long',
      );
    return item;
  });
}

function resolveModel(
  body: EmbeddingBody,
  dependencies: ProxyAppDependencies,
): { model: EmbeddingModelConfig; provider: EmbeddingProvider } {
  const model = dependencies.config.embeddingModels.find(
    (candidate) => candidate.id === body.model,
  );
  if (!model)
    throw new ApiError(
      404,
      'not_found_error',
      'model_not_found',
      'Unknown embedding model; GET /v1/models lists the available models',
    );
  const dimensions = body.dimensions ?? undefined;
  if (dimensions !== undefined && !model.dimensionsConfigurable)
    throw invalidParameter(
      'dimensions',
      `dimensions is not supported by ${model.id}`,
      'unsupported_parameter',
    );
  if (dimensions !== undefined && dimensions > model.dimensions)
    throw invalidParameter(
      'dimensions',
      `dimensions must be at most ${model.dimensions} for ${model.id}`,
    );
  const provider = dependencies.embeddingProviders?.get(model.provider);
  if (!provider)
    throw new ApiError(
      503,
      'service_unavailable',
      'provider_not_configured',
      'provider not configured for this model',
    );
  return { model, provider };
}

/** One token per UTF-8 byte: tokenizers never produce more, so the hold covers any script. */
function inputTokensMax(inputs: readonly string[]): number {
  return inputs.reduce((sum, input) => sum + Buffer.byteLength(input, 'utf8'), 0);
}

const inputCostMicros = (model: EmbeddingModelConfig, tokens: number) =>
  costMicros(
    { ...model, outputMicrosPerMillionTokens: 0 },
    { promptTokens: tokens, completionTokens: 0 },
  );

/** One retry on a retryable error while the budget lasts, as for chat; every deadline a Deadline. */
async function callProvider(
  provider: EmbeddingProvider,
  request: EmbeddingRequest,
  dependencies: ProxyAppDependencies,
  clientSignal: AbortSignal,
): Promise<EmbeddingResponse> {
  const budget = new Deadline(dependencies.config.providerBudgetMilliseconds);
  try {
    for (let attempt = 1; ; attempt += 1) {
      const attemptDeadline = new Deadline(dependencies.config.providerAttemptTimeoutMilliseconds);
      const signal = AbortSignal.any([clientSignal, budget.signal, attemptDeadline.signal]);
      try {
        return await provider.embed(request, {
          signal,
          responseBytesMax: dependencies.config.providerResponseBytesMax,
        });
      } catch (error) {
        dependencies.metrics.record('ProviderErrors', 1, {
          provider: provider.name,
          kind: error instanceof ProviderError ? error.kind : 'bad_gateway',
        });
        const retry =
          error instanceof ProviderError &&
          error.retryable &&
          attempt === 1 &&
          !budget.passed &&
          !clientSignal.aborted;
        if (!retry) throw error;
      } finally {
        attemptDeadline.clear();
      }
    }
  } finally {
    budget.clear();
  }
}

/** A vector as OpenAI's base64: the float32 values, little-endian, in one buffer. */
function base64Vector(vector: readonly number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((value, index) => bytes.writeFloatLE(value, index * 4));
  return bytes.toString('base64');
}

function embeddingsBody(
  model: EmbeddingModelConfig,
  response: EmbeddingResponse,
  encoding: 'float' | 'base64',
) {
  return {
    object: 'list',
    data: response.vectors.map((vector, index) => ({
      object: 'embedding',
      index,
      embedding: encoding === 'base64' ? base64Vector(vector) : vector,
    })),
    model: model.id,
    usage: { prompt_tokens: response.usage.inputTokens, total_tokens: response.usage.inputTokens },
  };
}

export async function handleEmbeddings(
  c: ProxyContext,
  dependencies: ProxyAppDependencies,
): Promise<Response> {
  const idempotencyKey = clientIdempotencyKey(c);
  const body = parseBody(await readJsonBody(c));
  const inputs = inputTexts(body.input, dependencies.config);
  const { model, provider } = resolveModel(body, dependencies);
  const principal = c.get('principal');
  const billing = await placeHold(
    c,
    dependencies,
    principal,
    model,
    inputCostMicros(model, inputTokensMax(inputs)),
    { kind: 'embeddings', idempotencyKey },
  );
  const logFields = {
    request_id: c.get('requestId'),
    key_id: principal.keyId,
    user: pseudonymize(principal.userId),
    model: model.id,
    provider: provider.name,
  };
  const request: EmbeddingRequest = {
    model: model.upstreamModel,
    inputs,
    dimensions: body.dimensions ?? model.dimensions,
    dimensionsRequested: body.dimensions !== undefined && body.dimensions !== null,
    user: body.user ?? undefined,
  };
  let response: EmbeddingResponse;
  try {
    response = await callProvider(provider, request, dependencies, c.req.raw.signal);
  } catch (error) {
    return providerFailed(c, dependencies, billing, error, logFields);
  }
  const outcome = await resolveHold(
    dependencies,
    billing,
    inputCostMicros(model, response.usage.inputTokens),
    logFields,
  );
  setBillingHeaders(c, outcome);
  dependencies.metrics.record('PromptTokens', response.usage.inputTokens, { model: model.id });
  if (outcome)
    dependencies.metrics.record('CostChargedMicros', Number(outcome.chargedMicros), {
      model: model.id,
    });
  audit(dependencies.logger, 'embeddings', {
    ...logFields,
    inputs: inputs.length,
    prompt_tokens: response.usage.inputTokens,
    usage_source: response.usage.source,
    held_micros: billing.heldMicros.toString(),
    charged_micros: outcome?.chargedMicros.toString(),
  });
  return c.json(embeddingsBody(model, response, body.encoding_format ?? 'float'));
}

/** The hold is released (embeddings report no partial usage), and the failure mapped as for chat. */
async function providerFailed(
  c: ProxyContext,
  dependencies: ProxyAppDependencies,
  billing: Billing,
  error: unknown,
  logFields: Record<string, unknown>,
): Promise<never> {
  const providerError = providerErrorOf(
    error,
    dependencies,
    'embedding provider call threw',
    logFields,
  );
  const outcome = await resolveHold(dependencies, billing, undefined, logFields);
  setBillingHeaders(c, outcome);
  audit(dependencies.logger, 'provider_failure', { ...logFields, error_kind: providerError.kind });
  throw providerApiError(providerError);
}
