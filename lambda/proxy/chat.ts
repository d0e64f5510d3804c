import type { Context } from 'hono';
import type { ModelConfig } from '../../lib/config/schema';
import { formatMicros } from '../shared/money';
import { ApiError, readJsonBody } from '../shared/http';
import { audit, pseudonymize } from '../shared/logger';
import type { ChatOutcome } from '../shared/metrics';
import type { ProxyAppDependencies, ProxyEnv } from './context';
import { placeHold, resolveHold, type Billing } from './billing';
import { costMicros, holdMicros } from './pricing';
import { Deadline } from './deadline';
import { streamChatCompletion } from './chat-stream';
import {
  chatRequestSchema,
  completionBody,
  normalizeMessages,
  stopSequences,
  type ChatRequest,
  type Completion,
} from './openai';
import {
  ProviderError,
  type ChatProvider,
  type ProviderRequest,
  type ProviderResponse,
} from './providers/types';

/**
 * One billed chat completion: validate, hold the maximum cost, call the provider (one retry on a
 * retryable error), settle the actual cost (never more than the hold) or release the hold. The
 * credits service refusing the hold stops the request before any provider call (402); the credits
 * service down stops it too (503): fail closed. Prompts and completions are never logged (DATA-07).
 * Each completion is counted by model and outcome, with its tokens and cost by model (MON-02).
 */

type ProxyContext = Context<ProxyEnv>;

function parseRequest(body: unknown): ChatRequest {
  const parsed = chatRequestSchema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  throw new ApiError(400, 'invalid_request_error', 'invalid_request', `${where}${issue.message}`);
}

function resolveModel(
  request: ChatRequest,
  dependencies: ProxyAppDependencies,
): { model: ModelConfig; provider: ChatProvider; maxOutputTokens: number } {
  const model = dependencies.config.models.find((candidate) => candidate.id === request.model);
  if (!model)
    throw new ApiError(
      404,
      'not_found_error',
      'model_not_found',
      'Unknown model; GET /v1/models lists the available models',
    );
  const provider = dependencies.providers.get(model.provider);
  if (!provider)
    throw new ApiError(
      503,
      'service_unavailable',
      'provider_not_configured',
      'provider not configured for this model',
    );
  const maxOutputTokens =
    request.max_completion_tokens ?? request.max_tokens ?? model.defaultMaxOutputTokens;
  if (maxOutputTokens > model.outputTokensMax) {
    throw new ApiError(
      400,
      'invalid_request_error',
      'max_tokens_too_large',
      `max_tokens must be at most ${model.outputTokensMax} for ${model.id}`,
    );
  }
  return { model, provider, maxOutputTokens };
}

const providerStatus = {
  not_configured: 503,
  blocked: 400,
  unavailable: 503,
  bad_gateway: 502,
  timeout: 504,
  too_large: 502,
} as const;
const providerCodes = {
  not_configured: 'provider_not_configured',
  blocked: 'content_blocked',
  unavailable: 'provider_unavailable',
  bad_gateway: 'provider_error',
  timeout: 'provider_timeout',
  too_large: 'provider_response_too_large',
} as const;

/** A provider failure as the client sees it (status, type, code), for JSON errors and stream error events. */
function providerApiError(error: ProviderError): ApiError {
  return new ApiError(
    providerStatus[error.kind],
    error.kind === 'blocked' ? 'invalid_request_error' : 'api_error',
    providerCodes[error.kind],
    error.message,
  );
}

/**
 * Calls the provider; one retry on a retryable error while the budget lasts. Aborts with the client,
 * the attempt's deadline or the budget; every deadline is a Deadline, so none can be collected unfired.
 */
async function callProvider(
  provider: ChatProvider,
  request: ProviderRequest,
  dependencies: ProxyAppDependencies,
  clientSignal: AbortSignal,
): Promise<ProviderResponse> {
  const budget = new Deadline(dependencies.config.providerBudgetMilliseconds);
  try {
    for (let attempt = 1; ; attempt += 1) {
      const attemptDeadline = new Deadline(dependencies.config.providerAttemptTimeoutMilliseconds);
      const signal = AbortSignal.any([clientSignal, budget.signal, attemptDeadline.signal]);
      const started = performance.now();
      try {
        const response = await provider.complete(request, {
          signal,
          responseBytesMax: dependencies.config.providerResponseBytesMax,
        });
        dependencies.metrics.record('ProviderLatency', Math.round(performance.now() - started), {
          provider: provider.name,
        });
        return response;
      } catch (error) {
        dependencies.metrics.record('ProviderLatency', Math.round(performance.now() - started), {
          provider: provider.name,
        });
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
        dependencies.logger.warn('provider error; retrying once', {
          provider: provider.name,
          error_kind: error.kind,
        });
      } finally {
        attemptDeadline.clear();
      }
    }
  } finally {
    budget.clear();
  }
}

function countCompletion(
  dependencies: ProxyAppDependencies,
  model: ModelConfig,
  outcome: ChatOutcome,
): void {
  dependencies.metrics.record('ChatCompletions', 1, { model: model.id, outcome });
}

/** Tokens the provider reported and what was charged for them, by model. */
function countUsage(
  dependencies: ProxyAppDependencies,
  model: ModelConfig,
  usage: ProviderResponse['usage'],
  chargedMicros: bigint | undefined,
): void {
  dependencies.metrics.record('PromptTokens', usage.promptTokens, { model: model.id });
  dependencies.metrics.record('CompletionTokens', usage.completionTokens, { model: model.id });
  if (chargedMicros !== undefined)
    dependencies.metrics.record('CostChargedMicros', Number(chargedMicros), { model: model.id });
}

function setBillingHeaders(
  c: ProxyContext,
  outcome: { chargedMicros: bigint; availableMicros: bigint } | undefined,
): void {
  if (!outcome) return;
  c.header('x-credits-charged', formatMicros(outcome.chargedMicros));
  c.header('x-credits-charged-micros', outcome.chargedMicros.toString());
  c.header('x-credits-remaining', formatMicros(outcome.availableMicros));
  c.header('x-credits-remaining-micros', outcome.availableMicros.toString());
}

export async function handleChatCompletion(
  c: ProxyContext,
  dependencies: ProxyAppDependencies,
): Promise<Response> {
  const request = parseRequest(await readJsonBody(c));
  const { model, provider, maxOutputTokens } = resolveModel(request, dependencies);
  const principal = c.get('principal');
  const messages = normalizeMessages(request.messages);
  const billing = await placeHold(
    c,
    dependencies,
    principal,
    model,
    holdMicros(model, messages, maxOutputTokens),
  );
  // The receipt's ids (issue 15): the request id, key and model the ledger holds, and the hold itself.
  const logFields = {
    request_id: c.get('requestId'),
    key_id: principal.keyId,
    user: pseudonymize(principal.userId),
    model: model.id,
    model_code: model.ledgerCode,
    provider: provider.name,
    hold_id: billing.holdId,
    held_micros: billing.heldMicros.toString(),
  };
  const providerRequest: ProviderRequest = {
    model: model.upstreamModel,
    messages,
    maxOutputTokens,
    temperature: request.temperature,
    topP: request.top_p,
    stop: stopSequences(request.stop),
  };
  if (request.stream)
    return streamCompletion(c, dependencies, {
      request,
      model,
      provider,
      providerRequest,
      billing,
      logFields,
    });
  let response: ProviderResponse;
  try {
    response = await callProvider(provider, providerRequest, dependencies, c.req.raw.signal);
  } catch (error) {
    return providerFailed(c, dependencies, billing, model, error, logFields);
  }
  const chargeMicros = costMicros(
    model,
    response.usage.promptTokens,
    response.usage.completionTokens,
  );
  const outcome = await resolveHold(dependencies, billing, chargeMicros, logFields);
  setBillingHeaders(c, outcome);
  countCompletion(dependencies, model, 'completed');
  countUsage(dependencies, model, response.usage, outcome?.chargedMicros);
  audit(dependencies.logger, 'chat_completion', {
    ...logFields,
    prompt_tokens: response.usage.promptTokens,
    completion_tokens: response.usage.completionTokens,
    held_micros: billing.heldMicros.toString(),
    charged_micros: outcome?.chargedMicros.toString(),
    finish_reason: response.finishReason,
    stream: false,
  });
  const completion: Completion = {
    ...completionIdentity(c, dependencies, model),
    text: response.text,
    finishReason: response.finishReason,
    promptTokens: response.usage.promptTokens,
    completionTokens: response.usage.completionTokens,
  };
  return c.json(completionBody(completion));
}

function completionIdentity(
  c: ProxyContext,
  dependencies: ProxyAppDependencies,
  model: ModelConfig,
) {
  return {
    id: `chatcmpl-${c.get('requestId')}`,
    created: Math.floor((dependencies.clock ?? Date.now)() / 1000),
    model: model.id,
  };
}

/** Streams the completion (chat-stream.ts); billing goes through the same hold and resolveHold. */
function streamCompletion(
  c: ProxyContext,
  dependencies: ProxyAppDependencies,
  prepared: {
    request: ChatRequest;
    model: ModelConfig;
    provider: ChatProvider;
    providerRequest: ProviderRequest;
    billing: Billing;
    logFields: Record<string, unknown>;
  },
): Promise<Response> {
  const { billing, model, logFields } = prepared;
  return streamChatCompletion(c, dependencies, {
    model,
    provider: prepared.provider,
    request: prepared.providerRequest,
    identity: completionIdentity(c, dependencies, model),
    includeUsage: prepared.request.stream_options?.include_usage === true,
    heldMicros: billing.heldMicros,
    logFields,
    settle: (chargeMicros) => resolveHold(dependencies, billing, chargeMicros, logFields),
    failBeforeFirstByte: (error) =>
      providerFailed(c, dependencies, billing, model, error, logFields),
    errorBody: (error) => {
      const apiError = providerApiError(error);
      return {
        error: { message: apiError.message, type: apiError.type, code: apiError.code },
        request_id: c.get('requestId'),
      };
    },
  });
}

async function providerFailed(
  c: ProxyContext,
  dependencies: ProxyAppDependencies,
  billing: Billing,
  model: ModelConfig,
  error: unknown,
  logFields: Record<string, unknown>,
): Promise<Response> {
  const providerError =
    error instanceof ProviderError
      ? error
      : new ProviderError('bad_gateway', 'the provider call failed', false);
  if (!(error instanceof ProviderError))
    dependencies.logger.error('provider call threw', {
      ...logFields,
      error_message: (error as Error).message,
    });
  // What the provider reports it used is billed (a safety block after reading the prompt); otherwise the hold is released.
  const usage = providerError.usage;
  const outcome = await resolveHold(
    dependencies,
    billing,
    usage ? costMicros(model, usage.promptTokens, usage.completionTokens) : undefined,
    logFields,
  );
  setBillingHeaders(c, outcome);
  countCompletion(dependencies, model, 'provider_error');
  if (usage) countUsage(dependencies, model, usage, outcome?.chargedMicros);
  audit(dependencies.logger, 'provider_failure', {
    ...logFields,
    error_kind: providerError.kind,
    prompt_tokens: usage?.promptTokens,
    completion_tokens: usage?.completionTokens,
    charged_micros: outcome?.chargedMicros.toString(),
  });
  throw providerApiError(providerError);
}
