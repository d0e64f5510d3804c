import type { ModelConfig } from '../../lib/config/schema';
import { audit } from '../../runtime/logger';
import type { ProxyAppDependencies } from './context';
import { assertServable } from './capabilities';
import type { Deadline } from './deadline';
import { ProviderError, type ChatProvider, type ProviderRequest } from './providers/types';

/**
 * Which models a request may be answered by, and when the next one is tried. A model's candidates
 * are the model itself, then its configured fallbacks in order (a flat list, checked at synth: known
 * ids, no cycles). A fallback that cannot serve the request as asked (its provider lacks a feature
 * the request uses, or the request's max_tokens is above its limit) is left out before admission,
 * so the hold covers exactly the candidates that may answer.
 *
 * Attempts: every candidate once, in order. A model without fallbacks keeps its one retry (its
 * attempts are itself twice). The next attempt happens only before anything was sent to the client,
 * while the provider budget and the client last, after a failure that another attempt may not
 * repeat: a retryable error (429, 5xx, a network failure) or, when the next attempt is another
 * model, the attempt's own deadline (a provider that hangs). A client's 4xx, a safety block or a
 * too-large answer is final: another model would not make the request valid.
 */

export interface Candidate {
  readonly model: ModelConfig;
  readonly provider: ChatProvider;
  /** The request with this candidate's upstream model name. */
  readonly request: ProviderRequest;
}

function servable(candidate: Candidate, maxOutputTokens: number): boolean {
  if (maxOutputTokens > candidate.model.outputTokensMax) return false;
  try {
    assertServable(candidate.provider, candidate.request, candidate.model.id);
    return true;
  } catch {
    return false;
  }
}

/** The model first (already checked servable), then each fallback that can serve this request. */
export function candidatesFor(
  primary: Candidate,
  dependencies: ProxyAppDependencies,
  maxOutputTokens: number,
): Candidate[] {
  const candidates: Candidate[] = [primary];
  for (const id of primary.model.fallbacks ?? []) {
    const model = dependencies.config.models.find((each) => each.id === id);
    const provider = model && dependencies.providers.get(model.provider);
    if (!model || !provider) continue;
    const candidate = {
      model,
      provider,
      request: { ...primary.request, model: model.upstreamModel },
    };
    if (servable(candidate, maxOutputTokens)) candidates.push(candidate);
  }
  return candidates;
}

/** The attempts in order: each candidate once; a model alone is tried twice (its one retry). */
export function attemptsOf(candidates: readonly Candidate[]): Candidate[] {
  return candidates.length === 1 ? [candidates[0], candidates[0]] : [...candidates];
}

/** Whether the attempt after this failure may be made (nothing has been sent to the client yet). */
export function mayTryNext(
  error: unknown,
  current: Candidate,
  next: Candidate | undefined,
  deadlines: { budget: Deadline; attempt: Deadline; client: AbortSignal },
): next is Candidate {
  if (!next || !(error instanceof ProviderError)) return false;
  if (deadlines.budget.passed || deadlines.client.aborted) return false;
  if (error.retryable) return true;
  // A hang is worth another model, not the same one again.
  return next.model.id !== current.model.id && error.kind === 'timeout' && deadlines.attempt.passed;
}

/** Logs and counts a move to the next attempt: a retry of the same model, or a fallback. */
export function recordNextAttempt(
  dependencies: ProxyAppDependencies,
  error: ProviderError,
  current: Candidate,
  next: Candidate,
  logFields: Record<string, unknown>,
): void {
  if (next.model.id === current.model.id) {
    dependencies.logger.warn('provider error; retrying once', {
      provider: current.provider.name,
      error_kind: error.kind,
    });
    return;
  }
  dependencies.metrics.record('ModelFallbacks', 1, {
    model: current.model.id,
    fallback: next.model.id,
  });
  audit(dependencies.logger, 'model_fallback', {
    ...logFields,
    model: current.model.id,
    provider: current.provider.name,
    fallback_model: next.model.id,
    fallback_provider: next.provider.name,
    error_kind: error.kind,
  });
}

/** The last failure of a request's attempts, with the candidate that failed (its price bills any usage it reported). */
export class AttemptsFailed extends Error {
  constructor(
    readonly failure: unknown,
    readonly candidate: Candidate,
  ) {
    super(failure instanceof Error ? failure.message : 'the provider call failed');
    this.name = 'AttemptsFailed';
  }
}

/** The audit and log fields of the candidate that answered (or failed last), naming the requested model when they differ. */
export function answeringFields(
  logFields: Record<string, unknown>,
  requested: ModelConfig,
  candidate: Candidate,
): Record<string, unknown> {
  if (candidate.model.id === requested.id) return logFields;
  return {
    ...logFields,
    model: candidate.model.id,
    provider: candidate.provider.name,
    fallback_from: requested.id,
  };
}
