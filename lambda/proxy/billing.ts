import { randomUUID } from 'node:crypto';
import type { Context } from 'hono';
import type { ModelConfig } from '../../lib/config/schema';
import { formatMicros } from '../shared/money';
import { ApiError } from '../shared/http';
import { audit, pseudonymize } from '../shared/logger';
import type { ChatOutcome } from '../shared/metrics';
import type { ProxyAppDependencies, ProxyEnv, ProxyPrincipal } from './context';
import { settlementBackoffMillisecondsBase, settlementInlineAttemptsMax } from './config';
import { CreditsUnavailableError, type AdmissionOutcome, type RateOutcome } from './credits-client';
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
  model: ModelConfig,
  outcome: ChatOutcome,
): void {
  dependencies.metrics.record('ChatCompletions', 1, { model: model.id, outcome });
}

/**
 * Admits a billable request in one credits call: the key's rate-limit unit (when rate limiting is
 * on) and the hold of its maximum cost, both or neither. 429 over the limit, 402 without credits,
 * 503 (CreditsUnavailableError) when the credits service cannot answer: no provider call then.
 */
export async function placeHold(
  c: ProxyContext,
  dependencies: ProxyAppDependencies,
  principal: ProxyPrincipal,
  model: ModelConfig,
  heldMicros: bigint,
): Promise<Billing> {
  const requestId = c.get('requestId');
  const { enabled, requestsPerMinute } = dependencies.config.rateLimit;
  let admission: AdmissionOutcome;
  try {
    // Every request gets a hold of its own: the key is generated here, never taken from the client
    // (a client-chosen x-request-id reused as the key would replay an earlier hold for free).
    admission = await dependencies.credits.admit({
      userId: principal.userId,
      amountMicros: heldMicros,
      timeoutSeconds: dependencies.config.holdTimeoutSeconds,
      holdKey: `hold:${principal.keyId}:${randomUUID()}`,
      rate: enabled
        ? { subject: rateSubject(principal), limitPerMinute: requestsPerMinute }
        : undefined,
      requestId,
      // The receipt: this request id, key and model in the hold's user data (issue 15).
      receipt: { requestId, keyId: principal.keyId, modelCode: model.ledgerCode },
    });
  } catch (error) {
    if (error instanceof CreditsUnavailableError)
      countCompletion(dependencies, model, 'credits_unavailable');
    throw error;
  }
  if (admission.kind === 'rate_limited')
    throw rateLimited(c, dependencies, principal, admission.rate);
  if (admission.rate) applyRateVerdict(c, dependencies, principal, admission.rate);
  if (admission.kind === 'insufficient') {
    dependencies.metrics.record('InsufficientBalanceRefusals', 1, {});
    countCompletion(dependencies, model, 'insufficient_credits');
    audit(dependencies.logger, 'insufficient_balance', {
      request_id: requestId,
      key_id: principal.keyId,
      user: pseudonymize(principal.userId),
      required_micros: heldMicros.toString(),
    });
    throw new ApiError(
      402,
      'insufficient_credits',
      'insufficient_credits',
      `Insufficient credits: this request may cost up to ${formatMicros(heldMicros)}`,
      {
        available: formatMicros(admission.availableMicros),
        available_micros: admission.availableMicros.toString(),
        required_micros: heldMicros.toString(),
      },
    );
  }
  return {
    holdId: admission.holdId,
    heldMicros,
    userId: principal.userId,
    requestId,
    expiresAtMilliseconds: admission.expiresAtMilliseconds,
  };
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
