import type { Context } from 'hono';
import type { ModelConfig } from '../../lib/config/schema';
import { formatMicros } from '../shared/money';
import { ApiError, invalidRequestFromSchema, readJsonBody } from '../../runtime/http';
import { audit, pseudonymize } from '../../runtime/logger';
import type { ChatOutcome } from '../shared/metrics';
import { completionIdPrefix, type ProxyAppDependencies, type ProxyEnv } from './context';
import { placeHold, resolveHold, type Billing } from './billing';
import { costMicros, holdMicros, usageFields } from './pricing';
import { Deadline } from './deadline';
import { clientIdempotencyKey } from './idempotency';
import { streamChatCompletion } from './chat-stream';
import { assertServable } from './capabilities';
import { absent, normalizeChatRequest } from './chat-request';
import {
  chatRequestSchema,
  completionBody,
  unrecognizedArgumentsMessage,
  type ChatRequest,
  type Completion,
} from './openai';
import {
  AttemptsFailed,
  answeringFields,
  attemptsOf,
  candidatesFor,
  mayTryNext,
  recordNextAttempt,
  type Candidate,
} from './fallbacks';
import {
  ProviderError,
  type ChatProvider,
  type ProviderRequest,
  type ProviderResponse,
} from './providers/types';

/**
 * One billed chat completion: validate, hold the maximum cost (of the dearest model that may answer),
 * call the provider (one retry on a retryable error, or the model's fallbacks in order), settle the
 * actual cost at the price of the model that answered (never more than the hold) or release the hold. The
 * credits service refusing the hold stops the request before any provider call (402); the credits
 * service down stops it too (503): fail closed. Prompts and completions are never logged (DATA-07).
 * Each completion is counted by model and outcome, with its tokens and cost by model (MON-02).
 */

type ProxyContext = Context<ProxyEnv>;

function parseRequest(body: unknown): ChatRequest {
  const parsed = chatRequestSchema.safeParse(body);
  if (parsed.success) return parsed.data;
  throw invalidRequestFromSchema(parsed.error.issues, unrecognizedArgumentsMessage);
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
      { param: absent(request.max_completion_tokens) ? 'max_tokens' : 'max_completion_tokens' },
    );
  }
  return { model, provider, maxOutputTokens };
}

const providerStatus = {
  not_configured: 503,
  blocked: 400,
  rejected: 400,
  unavailable: 503,
  bad_gateway: 502,
  timeout: 504,
  too_large: 502,
} as const;
const providerCodes = {
  not_configured: 'provider_not_configured',
  blocked: 'content_blocked',
  rejected: 'provider_rejected_request',
  unavailable: 'provider_unavailable',
  bad_gateway: 'provider_error',
  timeout: 'provider_timeout',
  too_large: 'provider_response_too_large',
} as const;

/** A provider failure as the client sees it (status, type, code), for JSON errors and stream error events. */
export function providerApiError(error: ProviderError): ApiError {
  return new ApiError(
    providerStatus[error.kind],
    error.kind === 'blocked' || error.kind === 'rejected' ? 'invalid_request_error' : 'api_error',
    providerCodes[error.kind],
    error.message,
  );
}

/**
 * Calls the candidates in turn (fallbacks.ts: each once, or the model alone twice) until one
 * answers, while the budget lasts. Aborts with the client, the attempt's deadline or the budget;
 * every deadline is a Deadline, so none can be collected unfired. Throws AttemptsFailed with the last
 * failure and the candidate that failed.
 */
async function callProvider(
  candidates: readonly Candidate[],
  dependencies: ProxyAppDependencies,
  clientSignal: AbortSignal,
  logFields: Record<string, unknown>,
): Promise<{ response: ProviderResponse; candidate: Candidate }> {
  const budget = new Deadline(dependencies.config.providerBudgetMilliseconds);
  const attempts = attemptsOf(candidates);
  try {
    for (let index = 0; ; index += 1) {
      const candidate = attempts[index];
      const attempt = new Deadline(dependencies.config.providerAttemptTimeoutMilliseconds);
      const signal = AbortSignal.any([clientSignal, budget.signal, attempt.signal]);
      const started = performance.now();
      const latency = () =>
        dependencies.metrics.record('ProviderLatency', Math.round(performance.now() - started), {
          provider: candidate.provider.name,
        });
      try {
        const response = await candidate.provider.complete(candidate.request, {
          signal,
          responseBytesMax: dependencies.config.providerResponseBytesMax,
        });
        latency();
        return { response, candidate };
      } catch (error) {
        latency();
        dependencies.metrics.record('ProviderErrors', 1, {
          provider: candidate.provider.name,
          kind: error instanceof ProviderError ? error.kind : 'bad_gateway',
        });
        const next = attempts[index + 1];
        if (!mayTryNext(error, candidate, next, { budget, attempt, client: clientSignal }))
          throw new AttemptsFailed(error, candidate);
        recordNextAttempt(dependencies, error as ProviderError, candidate, next, logFields);
      } finally {
        attempt.clear();
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

export function setBillingHeaders(
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
  const idempotencyKey = clientIdempotencyKey(c);
  const request = parseRequest(await readJsonBody(c));
  const { model, provider, maxOutputTokens } = resolveModel(request, dependencies);
  const principal = c.get('principal');
  const providerRequest: ProviderRequest = {
    ...normalizeChatRequest(request),
    model: model.upstreamModel,
    maxOutputTokens,
  };
  assertServable(provider, providerRequest, model.id);
  const candidates = candidatesFor(
    { model, provider, request: providerRequest },
    dependencies,
    maxOutputTokens,
  );
  const billing = await placeHold(
    c,
    dependencies,
    principal,
    model,
    holdMicros(
      candidates.map((candidate) => candidate.model),
      providerRequest,
      maxOutputTokens,
    ),
    { kind: 'chat', idempotencyKey },
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
  if (request.stream)
    return streamCompletion(c, dependencies, { request, model, candidates, billing, logFields });
  let answered: { response: ProviderResponse; candidate: Candidate };
  try {
    answered = await callProvider(candidates, dependencies, c.req.raw.signal, logFields);
    const { response, candidate } = answered;
    if (!candidate.request.tools && (response.toolCalls ?? []).length > 0)
      throw new AttemptsFailed(
        new ProviderError(
          'bad_gateway',
          `${candidate.provider.name} sent an unrequested tool call`,
          false,
          response.usage,
        ),
        candidate,
      );
  } catch (error) {
    return providerFailed(c, dependencies, billing, model, error, logFields);
  }
  const { response, candidate } = answered;
  // Billed at the price of the model that answered; the response names it.
  const fields = answeringFields(logFields, model, candidate);
  const chargeMicros = costMicros(candidate.model, response.usage);
  const outcome = await resolveHold(dependencies, billing, chargeMicros, fields);
  setBillingHeaders(c, outcome);
  countCompletion(dependencies, candidate.model, 'completed');
  countUsage(dependencies, candidate.model, response.usage, outcome?.chargedMicros);
  audit(dependencies.logger, 'chat_completion', {
    ...fields,
    ...usageFields(response.usage),
    held_micros: billing.heldMicros.toString(),
    charged_micros: outcome?.chargedMicros.toString(),
    finish_reason: response.finishReason,
    stream: false,
  });
  const completion: Completion = {
    ...completionIdentity(c, dependencies, candidate.model),
    text: response.text,
    toolCalls: response.toolCalls,
    finishReason: response.finishReason,
    promptTokens: response.usage.promptTokens,
    completionTokens: response.usage.completionTokens,
    cachedPromptTokens: response.usage.cachedPromptTokens,
    reasoningTokens: response.usage.reasoningTokens,
  };
  return c.json(completionBody(completion));
}

function completionIdentity(
  c: ProxyContext,
  dependencies: ProxyAppDependencies,
  model: ModelConfig,
) {
  return {
    id: `${completionIdPrefix}${c.get('requestId')}`,
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
    candidates: readonly Candidate[];
    billing: Billing;
    logFields: Record<string, unknown>;
  },
): Promise<Response> {
  const { billing, model, logFields } = prepared;
  return streamChatCompletion(c, dependencies, {
    model,
    candidates: prepared.candidates,
    identity: (answering) => completionIdentity(c, dependencies, answering),
    includeUsage: prepared.request.stream_options?.include_usage === true,
    heldMicros: billing.heldMicros,
    logFields,
    settle: (chargeMicros, fields) => resolveHold(dependencies, billing, chargeMicros, fields),
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

/**
 * What a provider call failed with, as a ProviderError: anything else it threw (a defect, never
 * shown to the client) is logged with `message` and answered as a bad gateway.
 */
export function providerErrorOf(
  error: unknown,
  dependencies: ProxyAppDependencies,
  message: string,
  fields: Record<string, unknown>,
): ProviderError {
  if (error instanceof ProviderError) return error;
  dependencies.logger.error(message, { ...fields, error_message: (error as Error).message });
  return new ProviderError('bad_gateway', 'the provider call failed', false);
}

/**
 * The last attempt failed before any answer: what its provider reports it used is billed at that
 * candidate's price (a safety block after reading the prompt); otherwise the hold is released.
 */
async function providerFailed(
  c: ProxyContext,
  dependencies: ProxyAppDependencies,
  billing: Billing,
  requested: ModelConfig,
  thrown: unknown,
  logFields: Record<string, unknown>,
): Promise<Response> {
  const error = thrown instanceof AttemptsFailed ? thrown.failure : thrown;
  const model = thrown instanceof AttemptsFailed ? thrown.candidate.model : requested;
  const fields =
    thrown instanceof AttemptsFailed
      ? answeringFields(logFields, requested, thrown.candidate)
      : logFields;
  const providerError = providerErrorOf(error, dependencies, 'provider call threw', fields);
  const usage = providerError.usage;
  const outcome = await resolveHold(
    dependencies,
    billing,
    usage ? costMicros(model, usage) : undefined,
    fields,
  );
  setBillingHeaders(c, outcome);
  countCompletion(dependencies, requested, 'provider_error');
  if (usage) countUsage(dependencies, model, usage, outcome?.chargedMicros);
  audit(dependencies.logger, 'provider_failure', {
    ...fields,
    error_kind: providerError.kind,
    prompt_tokens: usage?.promptTokens,
    completion_tokens: usage?.completionTokens,
    charged_micros: outcome?.chargedMicros.toString(),
  });
  throw providerApiError(providerError);
}
