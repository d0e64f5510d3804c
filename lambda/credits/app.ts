import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { secureHeaders } from 'hono/secure-headers';
import * as z from 'zod';
import { LedgerUnavailableError, type LedgerClient } from '../../tigerbeetle/ledger/client';
import {
  ApiError,
  errorHandler,
  errorResponse,
  notFoundHandler,
  readJsonBody,
  requestIdMiddleware,
  type RequestIdVariables,
} from '../shared/http';
import { presentedKey } from '../shared/keys';
import type { KeyVerifier } from '../shared/secret-keyring';
import { audit, pseudonymize, type AppLogger } from '../shared/logger';
import { requestMetrics, type AppMetrics } from '../shared/metrics';
import { creditsConfigDefaults, type CreditsConfig } from './config';
import { formatMicros, parseAmount } from './domain/amount';
import {
  Credits,
  type Balance,
  type Hold,
  type HistoryEntry,
  type HoldResult,
  type ReceiptData,
  type ResolveResult,
} from './domain/credits';
import { keyReference, requestIdToUserData } from '../shared/receipts';
import { createUsageRoutes } from './usage-routes';
import { randomId, type Role } from './domain/ids';
import { RateLimiter, type RateVerdict } from './domain/rate-limit';

/**
 * The credits service: prepaid balances on the ledger, reachable only inside the VPC. Keys of its
 * own (AUTH-05) in two roles: `proxy` places, settles and releases holds and reads balances;
 * `admin` tops up, adjusts and reads balances and history. Holds, settles, releases, top-ups,
 * refusals, auth failures and ledger outages are counted in `metrics` (MON-02).
 */

export interface CreditsPrincipal {
  readonly keyId: string;
  readonly role: Role;
}

export interface CreditsAppDependencies {
  readonly ledger: LedgerClient;
  /** A Keyring (local) or rotating keyrings fed by Secrets Manager (AWS). */
  readonly keys: KeyVerifier<CreditsPrincipal>;
  readonly logger: AppLogger;
  readonly metrics: AppMetrics;
  readonly config?: Partial<CreditsConfig>;
  /**
   * The ledger's time (a receipt whose hold passed its timeout has expired): the wall clock, which
   * a TigerBeetle cluster's time follows; tests pass the embedded ledger's clock. Default: Date.now.
   */
  readonly clock?: { nowNanoseconds(): bigint };
}

export type CreditsEnv = { Variables: RequestIdVariables & { principal: CreditsPrincipal } };
type CreditsContext = Context<CreditsEnv>;

export const userIdSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/,
    'user_id must be 1 to 128 characters: letters, digits and . _ : @ -',
  );
const idempotencyKeyPattern = /^[A-Za-z0-9._:-]{8,128}$/;
const holdIdPattern = /^[1-9][0-9]{0,38}$/;
const u128Max = (1n << 128n) - 1n;
const timestampPattern = /^[1-9][0-9]{0,19}$/;

export function invalid(message: string, code = 'invalid_request'): ApiError {
  return new ApiError(400, 'invalid_request_error', code, message);
}

export function parseWith<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  throw invalid(`${where}${issue.message}`);
}

function idempotencyKey(c: CreditsContext, fallback?: string): string {
  const key = c.req.header('idempotency-key') ?? fallback;
  if (key === undefined)
    throw invalid('Idempotency-Key header is required on this request', 'idempotency_key_required');
  if (!idempotencyKeyPattern.test(key))
    throw invalid(
      'Idempotency-Key must be 8 to 128 characters: letters, digits and . _ : -',
      'invalid_idempotency_key',
    );
  return key;
}

function holdIdParam(c: CreditsContext): bigint {
  const text = c.req.param('id') ?? '';
  const id = holdIdPattern.test(text) ? BigInt(text) : 0n;
  if (id === 0n || id > u128Max)
    throw invalid(
      'hold id must be the decimal id returned when the hold was placed',
      'invalid_hold_id',
    );
  return id;
}

function balanceJson(balance: Balance, currency: string) {
  return {
    user_id: balance.userId,
    currency,
    available: formatMicros(balance.availableMicros),
    available_micros: balance.availableMicros.toString(),
    held_micros: balance.heldMicros.toString(),
    credited_micros: balance.creditedMicros.toString(),
    spent_micros: balance.spentMicros.toString(),
  };
}

function holdJson(hold: Hold) {
  const expiresAtMilliseconds =
    (hold.timestamp + BigInt(hold.timeoutSeconds) * 1_000_000_000n) / 1_000_000n;
  return {
    hold_id: hold.holdId.toString(),
    user_id: hold.userId,
    amount: formatMicros(hold.amountMicros),
    amount_micros: hold.amountMicros.toString(),
    timeout_seconds: hold.timeoutSeconds,
    expires_at: new Date(Number(expiresAtMilliseconds)).toISOString(),
  };
}

function historyJson(entry: HistoryEntry) {
  return {
    transfer_id: entry.transferId.toString(),
    kind: entry.kind,
    direction: entry.direction,
    amount: formatMicros(entry.amountMicros),
    amount_micros: entry.amountMicros.toString(),
    pending: entry.pending,
    hold_id: entry.holdId?.toString(),
    timestamp: entry.timestamp.toString(),
  };
}

function authenticate(
  keys: KeyVerifier<CreditsPrincipal>,
  logger: AppLogger,
  metrics: AppMetrics,
): MiddlewareHandler<CreditsEnv> {
  return async (c, next) => {
    const key = presentedKey(c.req.header('authorization'), c.req.header('x-api-key'));
    const principal = key === undefined ? undefined : await keys.verify(key);
    if (principal === undefined) {
      metrics.record('AuthFailures', 1, {});
      audit(logger, 'auth_failure', {
        request_id: c.get('requestId'),
        path: c.req.path,
        key_presented: key !== undefined,
      });
      throw new ApiError(
        401,
        'authentication_error',
        'invalid_api_key',
        'Missing or invalid API key',
      );
    }
    c.set('principal', principal);
    await next();
  };
}

/** One line per request, with the caller's own request id (the proxy's) as a separate field. */
function requestLog(logger: AppLogger): MiddlewareHandler<CreditsEnv> {
  return async (c, next) => {
    const started = performance.now();
    await next();
    logger.info('request', {
      request_id: c.get('requestId'),
      client_request_id: c.get('clientRequestId'),
      method: c.req.method,
      route: c.req.routePath,
      status: c.res.status,
      duration_milliseconds: Math.round(performance.now() - started),
    });
  };
}

export function requireRole(...roles: Role[]): MiddlewareHandler<CreditsEnv> {
  return async (c, next) => {
    if (!roles.includes(c.get('principal').role)) {
      throw new ApiError(
        403,
        'permission_error',
        'forbidden',
        `This key may not call ${c.req.method} ${c.req.routePath}`,
      );
    }
    await next();
  };
}

/** Ledger outages are 503s the client may retry, never 500s. */
function withLedgerErrors(logger: AppLogger, metrics: AppMetrics) {
  const handle = errorHandler(logger);
  return (error: Error, c: Context) => {
    if (error instanceof LedgerUnavailableError) {
      metrics.record('LedgerUnavailable', 1, {});
      logger.warn('ledger unavailable', {
        request_id: c.get('requestId') as string,
        error_message: error.message,
      });
      return errorResponse(
        c,
        new ApiError(
          503,
          'service_unavailable',
          'ledger_unavailable',
          'The ledger is unavailable; retry with the same Idempotency-Key',
        ),
      );
    }
    return handle(error, c);
  };
}

export function createCreditsApp(dependencies: CreditsAppDependencies): Hono<CreditsEnv> {
  const config: CreditsConfig = { ...creditsConfigDefaults, ...dependencies.config };
  const { logger, metrics } = dependencies;
  const credits = new Credits(dependencies.ledger, config.ledgerId);
  const app = new Hono<CreditsEnv>();

  app.use(requestIdMiddleware());
  app.use(requestLog(logger));
  app.use(requestMetrics(metrics));
  app.use(secureHeaders());
  app.use(
    bodyLimit({
      maxSize: config.bodyBytesMax,
      onError: () => {
        throw new ApiError(
          413,
          'invalid_request_error',
          'request_too_large',
          `Request body over ${config.bodyBytesMax} bytes`,
        );
      },
    }),
  );
  app.onError(withLedgerErrors(logger, metrics));
  app.notFound(notFoundHandler);

  app.get('/api/v1/health', (c) => c.json({ status: 'ok', service: 'credits' }));
  app.get('/api/v1/ready', async (c) => {
    try {
      await credits.checkReady();
    } catch (error) {
      // Any failure means "do not send me traffic": 503, never a 500 (the load balancer reads it).
      logger.warn('not ready', {
        request_id: c.get('requestId'),
        error_message: (error as Error).message,
      });
      return c.json({ status: 'not_ready', service: 'credits' }, 503);
    }
    return c.json({ status: 'ready', service: 'credits' });
  });

  app.use('/api/v1/*', authenticate(dependencies.keys, logger, metrics));
  registerAdminRoutes(app, credits, config, logger, metrics);
  const limiter = new RateLimiter(dependencies.ledger, config.rateLedgerId, randomId);
  registerHoldRoutes(app, credits, config, logger, metrics);
  registerAdmissionRoute(app, credits, limiter, config, logger, metrics);
  registerRateLimitRoute(app, limiter);
  app.route('/api/v1', createUsageRoutes(dependencies.ledger, config, dependencies.clock));

  app.get('/api/v1/balance/:user_id', requireRole('proxy', 'admin'), async (c) => {
    const userId = parseWith(userIdSchema, c.req.param('user_id'));
    const balance = await credits.balance(userId);
    if (!balance)
      throw new ApiError(
        404,
        'not_found_error',
        'user_not_found',
        'No credits account for this user; it is created by the first top-up',
      );
    return c.json(balanceJson(balance, config.currency));
  });
  return app;
}

const topUpSchema = z.strictObject({
  user_id: userIdSchema,
  amount: z.unknown().optional(),
  amount_micros: z.unknown().optional(),
});
const adjustmentSchema = topUpSchema.extend({
  direction: z.enum(['credit', 'debit']),
  reason: z.string().min(3).max(200),
});
const historyQuerySchema = z.strictObject({
  limit: z
    .string()
    .regex(/^[1-9][0-9]{0,3}$/, 'limit must be a positive integer')
    .optional(),
  before: z
    .string()
    .regex(timestampPattern, 'before must be the timestamp of a transfer from a previous page')
    .optional(),
});

function registerAdminRoutes(
  app: Hono<CreditsEnv>,
  credits: Credits,
  config: CreditsConfig,
  logger: AppLogger,
  metrics: AppMetrics,
): void {
  app.post('/api/v1/topup', requireRole('admin'), async (c) => {
    const body = parseWith(topUpSchema, await readJsonBody(c));
    const response = await moveCredits(c, credits, config, logger, body, undefined);
    // Applied top-ups only: a replay (200) moved nothing.
    if (response.status === 201) metrics.record('TopUps', 1, {});
    return response;
  });

  app.post('/api/v1/adjustments', requireRole('admin'), async (c) => {
    const body = parseWith(adjustmentSchema, await readJsonBody(c));
    return moveCredits(c, credits, config, logger, body, body.direction);
  });

  app.get('/api/v1/transfers/:user_id', requireRole('admin'), async (c) => {
    const userId = parseWith(userIdSchema, c.req.param('user_id'));
    const query = parseWith(historyQuerySchema, c.req.query());
    const limit = query.limit === undefined ? config.historyLimitDefault : Number(query.limit);
    if (limit > config.historyLimitMax)
      throw invalid(`limit must be at most ${config.historyLimitMax}`);
    const entries = await credits.history(
      userId,
      limit,
      query.before === undefined ? undefined : BigInt(query.before),
    );
    if (!entries)
      throw new ApiError(
        404,
        'not_found_error',
        'user_not_found',
        'No credits account for this user',
      );
    const last = entries.at(-1);
    return c.json({
      user_id: userId,
      transfers: entries.map(historyJson),
      next_before: entries.length === limit && last ? last.timestamp.toString() : null,
    });
  });
}

async function moveCredits(
  c: CreditsContext,
  credits: Credits,
  config: CreditsConfig,
  logger: AppLogger,
  body: z.infer<typeof topUpSchema>,
  adjustment: 'credit' | 'debit' | undefined,
): Promise<Response> {
  const key = idempotencyKey(c);
  const amount = parseAmount(body, { allowZero: false, microsMax: config.topUpMicrosMax });
  if (!amount.ok) throw invalid(amount.message, 'invalid_amount');
  const principal = c.get('principal');
  const result = await credits.topUp({
    userId: body.user_id,
    amountMicros: amount.micros,
    idempotencyKey: key,
    role: principal.role,
    adjustment,
  });
  const event = adjustment ? 'adjustment' : 'top_up';
  const fields = {
    request_id: c.get('requestId'),
    key_id: principal.keyId,
    user: pseudonymize(body.user_id),
    amount_micros: amount.micros.toString(),
  };
  if (result.kind === 'conflict') {
    audit(logger, `${event}_refused`, {
      ...fields,
      reason: adjustment === 'debit' ? 'conflict_or_insufficient' : 'idempotency_conflict',
    });
    throw new ApiError(
      409,
      'conflict_error',
      'idempotency_conflict',
      adjustment === 'debit'
        ? 'This Idempotency-Key was used for a different request, or the debit exceeds the available balance'
        : 'This Idempotency-Key was already used for a different request',
    );
  }
  audit(logger, event, {
    ...fields,
    transfer_id: result.transferId.toString(),
    replayed: result.kind === 'replayed',
  });
  if (result.kind === 'replayed') c.header('idempotent-replayed', 'true');
  return c.json(
    {
      transfer_id: result.transferId.toString(),
      user_id: body.user_id,
      amount: formatMicros(result.amountMicros),
      amount_micros: result.amountMicros.toString(),
      balance: balanceJson(result.balance, config.currency),
    },
    result.kind === 'created' ? 201 : 200,
  );
}

const holdSchema = z.strictObject({
  user_id: userIdSchema,
  amount: z.unknown().optional(),
  amount_micros: z.unknown().optional(),
  timeout_seconds: z
    .number()
    .int('timeout_seconds must be a whole number of seconds')
    .positive('timeout_seconds must be positive'),
  request_id: z.string().optional(),
  /** Who and what the hold is for, written into its user data (docs/credits-api.md, "Receipts"). */
  receipt: z
    .strictObject({
      request_id: z
        .string()
        .refine(
          (text) => requestIdToUserData(text) !== undefined,
          'receipt.request_id must be a UUID',
        ),
      key_id: z.string().regex(/^key_[A-Za-z0-9]{8,32}$/, 'receipt.key_id must be a key id'),
      model_code: z.number().int().min(1).max(0xffff_ffff),
    })
    .optional(),
});
const settleSchema = z.strictObject({
  amount: z.unknown().optional(),
  amount_micros: z.unknown().optional(),
  user_id: userIdSchema.optional(),
});
const releaseSchema = z.strictObject({ user_id: userIdSchema.optional() });

/** The ledger form of a hold's receipt (lambda/shared/receipts.ts). */
function receiptData(receipt: z.infer<typeof holdSchema>['receipt']): ReceiptData | undefined {
  if (!receipt) return undefined;
  const requestId = requestIdToUserData(receipt.request_id);
  if (requestId === undefined) throw invalid('receipt.request_id must be a UUID');
  return {
    requestId,
    keyReference: keyReference(receipt.key_id),
    modelCode: receipt.model_code,
  };
}

function registerHoldRoutes(
  app: Hono<CreditsEnv>,
  credits: Credits,
  config: CreditsConfig,
  logger: AppLogger,
  metrics: AppMetrics,
): void {
  app.post('/api/v1/holds', requireRole('proxy'), async (c) => {
    const body = parseWith(holdSchema, await readJsonBody(c));
    const key = idempotencyKey(c, body.request_id);
    if (body.timeout_seconds > config.holdTimeoutSecondsMax)
      throw invalid(`timeout_seconds must be at most ${config.holdTimeoutSecondsMax}`);
    const amount = parseAmount(body, { allowZero: false, microsMax: config.holdMicrosMax });
    if (!amount.ok) throw invalid(amount.message, 'invalid_amount');
    const result = await credits.hold({
      userId: body.user_id,
      amountMicros: amount.micros,
      timeoutSeconds: body.timeout_seconds,
      idempotencyKey: key,
      receipt: receiptData(body.receipt),
    });
    return holdResponse(c, logger, metrics, body.user_id, amount.micros, result, undefined);
  });

  app.post('/api/v1/holds/:id/settle', requireRole('proxy'), async (c) => {
    const holdId = holdIdParam(c);
    const body = parseWith(settleSchema, await readJsonBody(c));
    const amount = parseAmount(body, { allowZero: true, microsMax: u128Max });
    if (!amount.ok) throw invalid(amount.message, 'invalid_amount');
    return resolved(
      c,
      logger,
      metrics,
      holdId,
      'settle',
      await credits.settle(holdId, amount.micros, body.user_id),
    );
  });

  app.post('/api/v1/holds/:id/release', requireRole('proxy'), async (c) => {
    const holdId = holdIdParam(c);
    // The body is optional here: a release names nothing but the hold (and, for one round trip, its user).
    const body =
      c.req.header('content-type') === undefined
        ? {}
        : parseWith(releaseSchema, await readJsonBody(c));
    return resolved(
      c,
      logger,
      metrics,
      holdId,
      'release',
      await credits.release(holdId, body.user_id),
    );
  });
}

/** The answer to a hold (and to an admission, with its rate-limit verdict): 201 new, 200 replayed, 402, 409. */
function holdResponse(
  c: CreditsContext,
  logger: AppLogger,
  metrics: AppMetrics,
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
    default:
      if (result.kind === 'created') metrics.record('Holds', 1, {});
      audit(logger, 'hold', {
        ...fields,
        hold_id: result.hold.holdId.toString(),
        replayed: result.kind === 'replayed',
      });
      if (result.kind === 'replayed') c.header('idempotent-replayed', 'true');
      return c.json(
        { ...holdJson(result.hold), ...(rate?.allowed ? { rate: rateJson(rate) } : {}) },
        result.kind === 'created' ? 201 : 200,
      );
  }
}

const admissionSchema = holdSchema.extend({
  rate: z
    .strictObject({
      subject: z
        .string()
        .regex(
          /^[A-Za-z0-9._:@-]{1,160}$/,
          'rate.subject must be 1 to 160 characters: letters, digits and . _ : @ -',
        ),
      limit_per_minute: z.number().int().min(1).max(1_000_000),
    })
    .optional(),
});

/**
 * Admission of a billable request: the per-key rate-limit unit and the credit hold, both or
 * neither, in one call and one ledger round trip. 429 over the rate limit, 402 without the credits.
 */
function registerAdmissionRoute(
  app: Hono<CreditsEnv>,
  credits: Credits,
  limiter: RateLimiter,
  config: CreditsConfig,
  logger: AppLogger,
  metrics: AppMetrics,
): void {
  app.post('/api/v1/admissions', requireRole('proxy'), async (c) => {
    const body = parseWith(admissionSchema, await readJsonBody(c));
    const key = idempotencyKey(c, body.request_id);
    if (body.timeout_seconds > config.holdTimeoutSecondsMax)
      throw invalid(`timeout_seconds must be at most ${config.holdTimeoutSecondsMax}`);
    const amount = parseAmount(body, { allowZero: false, microsMax: config.holdMicrosMax });
    if (!amount.ok) throw invalid(amount.message, 'invalid_amount');
    const rate = body.rate
      ? { limiter, subject: body.rate.subject, limit: body.rate.limit_per_minute }
      : undefined;
    const result = await credits.admit(
      {
        userId: body.user_id,
        amountMicros: amount.micros,
        timeoutSeconds: body.timeout_seconds,
        idempotencyKey: key,
        receipt: receiptData(body.receipt),
      },
      rate,
    );
    if (result.kind === 'rate_limited') {
      const { verdict } = result;
      if (verdict.allowed) throw new Error('a refused admission carries a refusing verdict');
      c.header('retry-after', String(verdict.retryAfterSeconds));
      throw new ApiError(
        429,
        'rate_limit_error',
        'rate_limit_exceeded',
        `Rate limit of ${verdict.limit} requests per minute exceeded`,
        {
          limit: verdict.limit,
          retry_after_seconds: verdict.retryAfterSeconds,
        },
      );
    }
    return holdResponse(c, logger, metrics, body.user_id, amount.micros, result, result.rate);
  });
}

function rateJson(verdict: Extract<RateVerdict, { allowed: true }>) {
  return {
    limit: verdict.limit,
    remaining: verdict.remaining,
    reset_seconds: verdict.resetSeconds,
  };
}

const rateLimitSchema = z.strictObject({
  subject: z
    .string()
    .regex(
      /^[A-Za-z0-9._:@-]{1,160}$/,
      'subject must be 1 to 160 characters: letters, digits and . _ : @ -',
    ),
  limit_per_minute: z.number().int('limit_per_minute must be a whole number').min(1).max(1_000_000),
});

/** One request of a subject against its per-minute limit, exact across every caller (RATE-02). */
function registerRateLimitRoute(app: Hono<CreditsEnv>, limiter: RateLimiter): void {
  app.post('/api/v1/rate-limit', requireRole('proxy'), async (c) => {
    const body = parseWith(rateLimitSchema, await readJsonBody(c));
    const verdict = await limiter.consume(body.subject, body.limit_per_minute);
    return c.json(
      verdict.allowed
        ? {
            allowed: true,
            limit: verdict.limit,
            remaining: verdict.remaining,
            reset_seconds: verdict.resetSeconds,
          }
        : {
            allowed: false,
            limit: verdict.limit,
            remaining: 0,
            retry_after_seconds: verdict.retryAfterSeconds,
          },
    );
  });
}

function resolved(
  c: CreditsContext,
  logger: AppLogger,
  metrics: AppMetrics,
  holdId: bigint,
  action: 'settle' | 'release',
  result: ResolveResult,
): Response {
  const fields = { request_id: c.get('requestId'), hold_id: holdId.toString(), action };
  switch (result.kind) {
    case 'settled':
      if (!result.replayed) metrics.record('Settles', 1, {});
      audit(logger, 'settle', {
        ...fields,
        charged_micros: result.chargedMicros.toString(),
        released_micros: result.releasedMicros.toString(),
        replayed: result.replayed,
      });
      return c.json({
        hold_id: holdId.toString(),
        status: 'settled',
        charged_micros: result.chargedMicros.toString(),
        released_micros: result.releasedMicros.toString(),
        available_micros: result.availableMicros.toString(),
      });
    case 'released':
    case 'expired':
      if (action === 'settle') break;
      if (result.kind === 'released' && !result.replayed) metrics.record('Releases', 1, {});
      audit(logger, 'release', {
        ...fields,
        outcome: result.kind,
        released_micros: result.releasedMicros.toString(),
      });
      return c.json({
        hold_id: holdId.toString(),
        status: result.kind,
        released_micros: result.releasedMicros.toString(),
        available_micros: result.availableMicros.toString(),
      });
    case 'not_found':
      throw new ApiError(404, 'not_found_error', 'hold_not_found', 'No hold with this id');
    case 'exceeds_hold':
      throw invalid(
        `settle amount exceeds the hold of ${formatMicros(result.heldMicros)}`,
        'exceeds_hold',
      );
    default:
      break;
  }
  audit(logger, 'billing_failure', { ...fields, reason: result.kind });
  const messages: Record<string, string> = {
    expired: 'The hold expired before it was settled; nothing was charged',
    already_settled: 'The hold was already settled',
    already_released: 'The hold was already released; nothing was charged',
    conflict: 'The hold was already settled with a different amount',
  };
  throw new ApiError(
    409,
    'conflict_error',
    result.kind === 'expired' ? 'hold_expired' : `hold_${result.kind}`,
    messages[result.kind] ?? 'The hold cannot be resolved',
  );
}
