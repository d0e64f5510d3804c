import { Hono } from 'hono';
import { ApiError, invalidParameter, readJsonBody } from '../../../runtime/http';
import { audit, pseudonymize } from '../../../runtime/logger';
import {
  admissionRequestSchema,
  holdRequestSchema,
  releaseRequestSchema,
  settleRequestSchema,
  type HoldAnswer,
  type ReleasedAnswer,
  type SettledAnswer,
} from '../contract';
import type { CreditsContext, CreditsEnv, CreditsRouteDependencies } from '../context';
import { formatMicros } from '../../shared/money';
import { keyReference, requestIdToUserData } from '../../shared/receipts';
import type * as z from '../../../runtime/zod-mini';
import { ledgerAmountMax } from '../domain/amount';
import type { HoldResult, ReceiptData, ResolveResult } from '../domain/credits';
import type { RateVerdict } from '../domain/rate-limit';
import { requireRole } from '../middleware';
import { holdJson, rateAllowanceJson } from '../presenters';
import {
  amountMicros,
  holdIdParam,
  holdTimeoutSeconds,
  idempotencyKey,
  parseWith,
} from '../requests';

/**
 * The proxy's billing routes (role `proxy`): admission (the rate-limit unit and the hold, both or
 * neither, in one call and one ledger round trip), a hold alone, and its settle or release.
 */
export function holdRoutes(dependencies: CreditsRouteDependencies): Hono<CreditsEnv> {
  const { credits, limiter, config } = dependencies;
  const app = new Hono<CreditsEnv>();

  app.post('/holds', requireRole('proxy'), async (c) => {
    const body = parseWith(holdRequestSchema, await readJsonBody(c));
    const key = idempotencyKey(c, body.request_id);
    const timeoutSeconds = holdTimeoutSeconds(body.timeout_seconds, config);
    const micros = amountMicros(body, { allowZero: false, microsMax: config.holdMicrosMax });
    const result = await credits.hold({
      userId: body.user_id,
      amountMicros: micros,
      timeoutSeconds,
      idempotencyKey: key,
      receipt: receiptData(body.receipt),
    });
    return holdResponse(c, dependencies, body.user_id, micros, result, undefined);
  });

  /** 429 over the rate limit, 402 without the credits. */
  app.post('/admissions', requireRole('proxy'), async (c) => {
    const body = parseWith(admissionRequestSchema, await readJsonBody(c));
    const key = idempotencyKey(c, body.request_id);
    const timeoutSeconds = holdTimeoutSeconds(body.timeout_seconds, config);
    const micros = amountMicros(body, { allowZero: false, microsMax: config.holdMicrosMax });
    const rate = body.rate
      ? { limiter, subject: body.rate.subject, limit: body.rate.limit_per_minute }
      : undefined;
    const result = await credits.admit(
      {
        userId: body.user_id,
        amountMicros: micros,
        timeoutSeconds,
        idempotencyKey: key,
        receipt: receiptData(body.receipt),
      },
      rate,
    );
    if (result.kind === 'rate_limited') throw rateLimited(c, result.verdict);
    return holdResponse(c, dependencies, body.user_id, micros, result, result.rate);
  });

  app.post('/holds/:id/settle', requireRole('proxy'), async (c) => {
    const holdId = holdIdParam(c);
    const body = parseWith(settleRequestSchema, await readJsonBody(c));
    const micros = amountMicros(body, { allowZero: true, microsMax: ledgerAmountMax });
    const result = await credits.settle(holdId, micros, body.user_id);
    return resolved(c, dependencies, holdId, 'settle', result);
  });

  app.post('/holds/:id/release', requireRole('proxy'), async (c) => {
    const holdId = holdIdParam(c);
    // The body is optional here: a release names nothing but the hold (and, for one round trip, its user).
    const body =
      c.req.header('content-type') === undefined
        ? {}
        : parseWith(releaseRequestSchema, await readJsonBody(c));
    const result = await credits.release(holdId, body.user_id);
    return resolved(c, dependencies, holdId, 'release', result);
  });
  return app;
}

/** The ledger form of a hold's receipt (lambda/shared/receipts.ts): what its user data say. */
function receiptData(
  receipt: z.output<typeof holdRequestSchema>['receipt'],
): ReceiptData | undefined {
  if (!receipt) return undefined;
  const requestId = requestIdToUserData(receipt.request_id);
  if (requestId === undefined)
    throw invalidParameter('receipt.request_id', 'receipt.request_id must be a UUID');
  return { requestId, keyReference: keyReference(receipt.key_id), modelCode: receipt.model_code };
}

/** The 429 of a refused rate-limit unit, with Retry-After. */
function rateLimited(c: CreditsContext, verdict: RateVerdict): ApiError {
  if (verdict.allowed) throw new Error('a refused admission carries a refusing verdict');
  c.header('retry-after', String(verdict.retryAfterSeconds));
  return new ApiError(
    429,
    'rate_limit_error',
    'rate_limit_exceeded',
    `Rate limit of ${verdict.limit} requests per minute exceeded`,
    { limit: verdict.limit, retry_after_seconds: verdict.retryAfterSeconds },
  );
}

/** The answer to a hold (and to an admission, with its rate-limit verdict): 201 new, 200 replayed, 402, 409. */
function holdResponse(
  c: CreditsContext,
  { logger, metrics }: CreditsRouteDependencies,
  userId: string,
  amountMicros: bigint,
  result: HoldResult,
  rate: RateVerdict | undefined,
): Response {
  const fields = {
    request_id: c.get('requestId'),
    user: pseudonymize(userId),
    amount_micros: amountMicros.toString(),
  };
  switch (result.kind) {
    case 'insufficient':
      metrics.record('InsufficientBalanceRefusals', 1, {});
      audit(logger, 'insufficient_balance', {
        ...fields,
        available_micros: result.availableMicros.toString(),
      });
      throw new ApiError(
        402,
        'insufficient_credits',
        'insufficient_credits',
        result.keyAlreadyRefused
          ? 'This Idempotency-Key was already refused for insufficient credits; retry with a new key after a top-up'
          : 'Insufficient credits for this request',
        {
          available: formatMicros(result.availableMicros),
          available_micros: result.availableMicros.toString(),
        },
      );
    case 'conflict':
      throw new ApiError(
        409,
        'conflict_error',
        'idempotency_conflict',
        'This Idempotency-Key was already used for a different hold',
      );
    default: {
      if (result.kind === 'created') metrics.record('Holds', 1, {});
      audit(logger, 'hold', {
        ...fields,
        hold_id: result.hold.holdId.toString(),
        replayed: result.kind === 'replayed',
      });
      if (result.kind === 'replayed') c.header('idempotent-replayed', 'true');
      const answer: HoldAnswer = {
        ...holdJson(result.hold),
        ...(rate?.allowed ? { rate: rateAllowanceJson(rate) } : {}),
      };
      return c.json(answer, result.kind === 'created' ? 201 : 200);
    }
  }
}

const refusalMessages: Record<string, string> = {
  expired: 'The hold expired before it was settled; nothing was charged',
  already_settled: 'The hold was already settled',
  already_released: 'The hold was already released; nothing was charged',
  conflict: 'The hold was already settled with a different amount',
};

/** The answer to a settle or a release: 200 with what moved, or 404, 400, 409 naming why not. */
function resolved(
  c: CreditsContext,
  { logger, metrics }: CreditsRouteDependencies,
  holdId: bigint,
  action: 'settle' | 'release',
  result: ResolveResult,
): Response {
  const fields = { request_id: c.get('requestId'), hold_id: holdId.toString(), action };
  switch (result.kind) {
    case 'settled': {
      if (!result.replayed) metrics.record('Settles', 1, {});
      audit(logger, 'settle', {
        ...fields,
        charged_micros: result.chargedMicros.toString(),
        released_micros: result.releasedMicros.toString(),
        replayed: result.replayed,
      });
      const answer: SettledAnswer = {
        hold_id: holdId.toString(),
        status: 'settled',
        charged_micros: result.chargedMicros.toString(),
        released_micros: result.releasedMicros.toString(),
        available_micros: result.availableMicros.toString(),
      };
      return c.json(answer);
    }
    case 'released':
    case 'expired': {
      if (action === 'settle') break;
      if (result.kind === 'released' && !result.replayed) metrics.record('Releases', 1, {});
      audit(logger, 'release', {
        ...fields,
        outcome: result.kind,
        released_micros: result.releasedMicros.toString(),
      });
      const answer: ReleasedAnswer = {
        hold_id: holdId.toString(),
        status: result.kind,
        released_micros: result.releasedMicros.toString(),
        available_micros: result.availableMicros.toString(),
      };
      return c.json(answer);
    }
    case 'not_found':
      throw new ApiError(404, 'not_found_error', 'hold_not_found', 'No hold with this id');
    case 'exceeds_hold':
      throw new ApiError(
        400,
        'invalid_request_error',
        'exceeds_hold',
        `settle amount exceeds the hold of ${formatMicros(result.heldMicros)}`,
      );
    default:
      break;
  }
  audit(logger, 'billing_failure', { ...fields, reason: result.kind });
  throw new ApiError(
    409,
    'conflict_error',
    result.kind === 'expired' ? 'hold_expired' : `hold_${result.kind}`,
    refusalMessages[result.kind] ?? 'The hold cannot be resolved',
  );
}
