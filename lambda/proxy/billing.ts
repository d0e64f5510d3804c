import { randomUUID } from 'node:crypto';
import type { Context } from 'hono';
import type { ModelConfig } from '../../lib/config/schema';
import { formatMicros } from '../shared/money';
import { ApiError } from '../../runtime/http';
import { audit, pseudonymize } from '../../runtime/logger';
import type { ChatOutcome } from '../shared/metrics';
import type { ProxyAppDependencies, ProxyEnv, ProxyPrincipal } from './context';
import { settlementBackoffMillisecondsBase, settlementInlineAttemptsMax } from './config';
import { CreditsUnavailableError, type AdmissionOutcome, type RateOutcome } from './credits-client';
import { idempotentHoldKey } from './idempotency';
import { unsettled } from './settlement-queue';

/*
 * Admission and settlement of a billable request, one credits call each. The streaming path calls
 * only `placeHold` and `resolveHold`; their signatures are the seam with chat.ts.
 */

/** What placeHold admitted: the hold to settle or release, and whose it is. */
export interface Billing {
  readonly holdId: string;
  readonly heldMicros: bigint;
  /** The user the hold is on: settlement names it, so credits needs one ledger round trip. */
  readonly userId: string;
  /** Our request id, sent along so the credits service's logs correlate. */
  readonly requestId: string;
  /** When the hold expires: a deferred settlement must land before. */
  readonly expiresAtMilliseconds: number;
}

type ProxyContext = Context<ProxyEnv>;

/** The rate-limit subject of a key. */
export const rateSubject = (principal: ProxyPrincipal): string => `key:${principal.keyId}`;

/** RateLimit headers for an admitted request, or 429 with Retry-After (RATE-04). */
export function applyRateVerdict(
  c: ProxyContext,
  dependencies: ProxyAppDependencies,
  principal: ProxyPrincipal,
  verdict: RateOutcome,
): void {
  if (!verdict.allowed) throw rateLimited(c, dependencies, principal, verdict);
  c.header('ratelimit-limit', String(verdict.limit));
  c.header('ratelimit-remaining', String(verdict.remaining));
  c.header('ratelimit-reset', String(verdict.resetSeconds));
}

/** The 429 of a refused verdict, with its headers set, logged (LOG-05) and counted. */
function rateLimited(
  c: ProxyContext,
  dependencies: ProxyAppDependencies,
  principal: ProxyPrincipal,
  verdict: Extract<RateOutcome, { allowed: false }>,
): ApiError {
  c.header('ratelimit-limit', String(verdict.limit));
  c.header('ratelimit-remaining', '0');
  c.header('ratelimit-reset', String(verdict.retryAfterSeconds));
  c.header('retry-after', String(verdict.retryAfterSeconds));
  audit(dependencies.logger, 'rate_limited', {
    request_id: c.get('requestId'),
    key_id: principal.keyId,
    user: pseudonymize(principal.userId),
  });
  dependencies.metrics.record('RateLimitRefusals', 1, {});
  return new ApiError(
    429,
    'rate_limit_error',
    'rate_limit_exceeded',
    `Rate limit of ${verdict.limit} requests per minute exceeded; retry after ${verdict.retryAfterSeconds} s`,
  );
}

function countCompletion(
  dependencies: ProxyAppDependencies,
  model: Pick<ModelConfig, 'id'>,
  outcome: ChatOutcome,
): void {
  dependencies.metrics.record('ChatCompletions', 1, { model: model.id, outcome });
}

/** The smallest hold placed, for a request that may cost nothing. */
const holdMicrosMin = 1n;

/** What a billable request brings to its admission besides its cost. */
export interface AdmissionRequest {
  /** Which route: chat completions are counted by outcome (ChatCompletions); embeddings are not. */
  readonly kind: 'chat' | 'embeddings';
  /** The client's Idempotency-Key (idempotency.ts): the hold's id derives from it and the caller. */
  readonly idempotencyKey?: string;
}

/**
 * Admits a billable request in one credits call: the key's rate-limit unit (when rate limiting is
 * on) and the hold of its maximum cost, both or neither. 429 over the limit, 402 without credits,
 * 503 (CreditsUnavailableError) when the credits service cannot answer: no provider call then.
 * With a client's Idempotency-Key, a hold that already exists is a retry: 409, nothing charged again.
 */
export async function placeHold(
  c: ProxyContext,
  dependencies: ProxyAppDependencies,
  principal: ProxyPrincipal,
  model: Pick<ModelConfig, 'id' | 'ledgerCode'>,
  heldMicros: bigint,
  request: AdmissionRequest = { kind: 'chat' },
): Promise<Billing> {
  // The ledger takes no empty hold: a free model (a local one, priced 0) holds one micro, settles 0.
  heldMicros = heldMicros > 0n ? heldMicros : holdMicrosMin;
  const requestId = c.get('requestId');
  const count = (outcome: ChatOutcome) => {
    if (request.kind === 'chat') countCompletion(dependencies, model, outcome);
  };
  let admission: AdmissionOutcome;
  try {
    admission = await admit(c, dependencies, principal, model, heldMicros, request.idempotencyKey);
  } catch (error) {
    if (error instanceof CreditsUnavailableError) count('credits_unavailable');
    throw error;
  }
  if (admission.kind === 'rate_limited')
    throw rateLimited(c, dependencies, principal, admission.rate);
  if (admission.rate) applyRateVerdict(c, dependencies, principal, admission.rate);
  if (admission.kind === 'insufficient') {
    dependencies.metrics.record('InsufficientBalanceRefusals', 1, {});
    count('insufficient_credits');
    audit(dependencies.logger, 'insufficient_balance', {
      request_id: requestId,
      key_id: principal.keyId,
      user: pseudonymize(principal.userId),
      required_micros: heldMicros.toString(),
    });
    // TigerBeetle keeps the refused id: the same Idempotency-Key is refused again, even after a top-up.
    const keyNote =
      request.idempotencyKey === undefined
        ? ''
        : '; this Idempotency-Key stays refused: retry with a new key after a top-up';
    throw new ApiError(
      402,
      'insufficient_credits',
      'insufficient_credits',
      `Insufficient credits: this request may cost up to ${formatMicros(heldMicros)}${keyNote}`,
      {
        available: formatMicros(admission.availableMicros),
        available_micros: admission.availableMicros.toString(),
        required_micros: heldMicros.toString(),
      },
    );
  }
  if (admission.kind === 'conflict' || admission.replayed)
    throw idempotencyKeyReused(c, dependencies, principal, admission);
  return {
    holdId: admission.holdId,
    heldMicros,
    userId: principal.userId,
    requestId,
    expiresAtMilliseconds: admission.expiresAtMilliseconds,
  };
}

/**
 * The credits call of an admission. Every request without an Idempotency-Key gets a hold key of its
 * own, generated here, never taken from the client (a client-chosen x-request-id reused as the key
 * would replay an earlier hold for free). With one, the hold key derives from it and the caller, and
 * the rate-limit unit is taken in a call of its own: linked to the hold, its id would follow the
 * hold's, and TigerBeetle would keep a unit refused with 429 refused for every retry of that key.
 */
async function admit(
  c: ProxyContext,
  dependencies: ProxyAppDependencies,
  principal: ProxyPrincipal,
  model: Pick<ModelConfig, 'ledgerCode'>,
  heldMicros: bigint,
  idempotencyKey: string | undefined,
): Promise<AdmissionOutcome> {
  const { enabled, requestsPerMinute } = dependencies.config.rateLimit;
  const requestId = c.get('requestId');
  const hold = {
    userId: principal.userId,
    amountMicros: heldMicros,
    timeoutSeconds: dependencies.config.holdTimeoutSeconds,
    requestId,
    // The receipt: this request id, key and model in the hold's user data (issue 15).
    receipt: { requestId, keyId: principal.keyId, modelCode: model.ledgerCode },
  };
  if (idempotencyKey === undefined)
    return dependencies.credits.admit({
      ...hold,
      holdKey: `hold:${principal.keyId}:${randomUUID()}`,
      rate: enabled
        ? { subject: rateSubject(principal), limitPerMinute: requestsPerMinute }
        : undefined,
    });
  if (enabled) {
    const rate = await dependencies.credits.rateLimit(rateSubject(principal), requestsPerMinute, {
      requestId,
    });
    if (!rate.allowed) return { kind: 'rate_limited', rate };
    applyRateVerdict(c, dependencies, principal, rate);
  }
  return dependencies.credits.hold({
    ...hold,
    holdKey: idempotentHoldKey(principal, idempotencyKey),
  });
}

/** 409 for a retried Idempotency-Key: the first request's hold is the only charge. */
function idempotencyKeyReused(
  c: ProxyContext,
  dependencies: ProxyAppDependencies,
  principal: ProxyPrincipal,
  admission: Extract<AdmissionOutcome, { kind: 'held' | 'conflict' }>,
): ApiError {
  const holdId = admission.kind === 'held' ? admission.holdId : undefined;
  // The official SDKs retry a 409 unless told not to; no retry of this key can ever succeed.
  c.header('x-should-retry', 'false');
  audit(dependencies.logger, 'idempotency_key_reused', {
    request_id: c.get('requestId'),
    key_id: principal.keyId,
    user: pseudonymize(principal.userId),
    hold_id: holdId,
    conflict: admission.kind === 'conflict',
  });
  if (admission.kind === 'conflict')
    return new ApiError(
      409,
      'conflict_error',
      'idempotency_key_conflict',
      'This Idempotency-Key was already used for a different request; send a new key for a new request',
    );
  return new ApiError(
    409,
    'conflict_error',
    'idempotency_key_reused',
    'This Idempotency-Key was already used by an earlier request (in flight or finished), which is the only one charged; send a new key for a new request',
    {
      original_hold_id: admission.holdId,
      ...(admission.kind === 'held' && admission.originalRequestId
        ? { original_request_id: admission.originalRequestId }
        : {}),
    },
  );
}

const sleepFor = (milliseconds: number) =>
  new Promise<void>((resolve) => setTimeout(resolve, milliseconds));

/**
 * Settles what the provider reports (capped at the hold) or releases: one credits call, retried
 * with backoff while the credits service is unavailable. If it still fails, the settlement is
 * handed to the durable retry path, which applies it before the hold expires; a completion is never
 * delivered unbilled without that being counted (BillingFailures, SettlementsDeferred, UnsettledHolds).
 */
export async function resolveHold(
  dependencies: ProxyAppDependencies,
  billing: Billing,
  chargeMicros: bigint | undefined,
  logFields: Record<string, unknown>,
) {
  const scope = { userId: billing.userId, requestId: billing.requestId };
  const charge =
    chargeMicros === undefined
      ? undefined
      : chargeMicros > billing.heldMicros
        ? billing.heldMicros
        : chargeMicros;
  const sleep = dependencies.sleep ?? sleepFor;
  let lastError: unknown;
  for (let attempt = 1; attempt <= settlementInlineAttemptsMax; attempt += 1) {
    try {
      if (charge === undefined) {
        const released = await dependencies.credits.release(billing.holdId, scope);
        return { chargedMicros: 0n, availableMicros: released.availableMicros };
      }
      return await dependencies.credits.settle(billing.holdId, charge, scope);
    } catch (error) {
      lastError = error;
      // Only an unavailable service may answer differently later; a refusal stays a refusal.
      if (!(error instanceof CreditsUnavailableError) || attempt === settlementInlineAttemptsMax)
        break;
      await sleep(settlementBackoffMillisecondsBase * 4 ** (attempt - 1));
    }
  }
  dependencies.metrics.record('BillingFailures', 1, {});
  const action = charge === undefined ? 'release' : 'settle';
  audit(dependencies.logger, 'billing_failure', {
    ...logFields,
    hold_id: billing.holdId,
    action,
    error_message: (lastError as Error).message,
  });
  if (lastError instanceof CreditsUnavailableError)
    await deferSettlement(dependencies, billing, action, charge ?? 0n, logFields);
  // A refused settlement stays refused (e.g. the hold expired): the completion was delivered unbilled.
  else if (action === 'settle')
    unsettled(
      dependencies.logger,
      dependencies.metrics,
      { ...logFields, hold_id: billing.holdId, action },
      'settle_refused',
    );
  return undefined;
}

async function deferSettlement(
  dependencies: ProxyAppDependencies,
  billing: Billing,
  action: 'settle' | 'release',
  amountMicros: bigint,
  logFields: Record<string, unknown>,
): Promise<void> {
  const queue = dependencies.settlementQueue;
  const fields = { ...logFields, hold_id: billing.holdId, action };
  if (!queue)
    return void unsettled(
      dependencies.logger,
      dependencies.metrics,
      fields,
      'no_durable_retry_path',
    );
  try {
    await queue.enqueue({
      hold_id: billing.holdId,
      user_id: billing.userId,
      action,
      amount_micros: amountMicros.toString(),
      request_id: billing.requestId,
      expires_at_milliseconds: billing.expiresAtMilliseconds,
    });
  } catch (error) {
    return void unsettled(
      dependencies.logger,
      dependencies.metrics,
      { ...fields, error_message: (error as Error).message },
      'durable_retry_path_failed',
    );
  }
  dependencies.metrics.record('SettlementsDeferred', 1, {});
  audit(dependencies.logger, 'settlement_deferred', { ...fields, queue: queue.description });
}
