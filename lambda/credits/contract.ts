import { u32Max } from '../../tigerbeetle/limits';
import * as z from '../../runtime/zod-mini';

/**
 * The credits service's HTTP API (docs/credits-api.md) as schemas: the credits app parses its
 * requests with them and presents its answers as their types; the proxy's client, the settle
 * function and the operator CLI parse the answers with them. Both ends agree by construction, as
 * the gateway's protocol.ts makes the ledger gateway and its client agree.
 *
 * On zod/mini (runtime/zod-mini.ts), so the proxy's bundle can import it without the classic
 * API. Requests are strict (an unknown field is a 400 naming it); answers are read tolerantly
 * (unknown fields are dropped): the proxy and the credits function deploy one after the other, so
 * for a while one of them is a version ahead, and a field added to an answer must not fail the other.
 */

/** Every route's path, below the service's base URL. */
export const creditsRoutes = {
  health: '/api/v1/health',
  ready: '/api/v1/ready',
  topUp: '/api/v1/topup',
  adjustments: '/api/v1/adjustments',
  balance: (userId: string) => `/api/v1/balance/${encodeURIComponent(userId)}`,
  transfers: (userId: string) => `/api/v1/transfers/${encodeURIComponent(userId)}`,
  holds: '/api/v1/holds',
  settle: (holdId: string) => `/api/v1/holds/${holdId}/settle`,
  release: (holdId: string) => `/api/v1/holds/${holdId}/release`,
  admissions: '/api/v1/admissions',
  rateLimit: '/api/v1/rate-limit',
  /** A user's receipts (`?limit=&before=&key_id=&model_code=`), and one of them by request id. */
  usage: (userId: string) => `/api/v1/usage/${encodeURIComponent(userId)}`,
  receipt: (userId: string, requestId: string) =>
    `/api/v1/usage/${encodeURIComponent(userId)}/${encodeURIComponent(requestId)}`,
  /** The operators' export: every settled or released request of a period (`?from=&to=&limit=`). */
  charges: '/api/v1/charges',
} as const;

// Fields

export const userIdSchema = z
  .string()
  .check(
    z.regex(
      /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/,
      'user_id must be 1 to 128 characters: letters, digits and . _ : @ -',
    ),
  );
/** The Idempotency-Key header of writes (a hold may name its `request_id` instead). */
export const idempotencyKeyPattern = /^[A-Za-z0-9._:-]{8,128}$/;
/** A hold id in a path: the decimal id the hold was placed with (a u128, never 0). */
export const holdIdPattern = /^[1-9][0-9]{0,38}$/;
/** A transfer's ledger timestamp (nanoseconds, a u64), as `before` of a history page. */
export const timestampPattern = /^[1-9][0-9]{0,19}$/;
/** A request id of a receipt: our x-request-id, a UUID (lambda/shared/receipts.ts). */
export const requestIdPattern =
  /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** A client key's public id (lambda/shared/client-keys.ts). */
export const keyIdPattern = /^key_[A-Za-z0-9]{8,32}$/;
/** A key reference in an answer: 64 bits as 16 hex digits. */
export const keyReferencePattern = /^[0-9a-f]{16}$/;
/** The largest per-minute limit a rate-limit subject may ask for. */
export const rateLimitPerMinuteMax = 1_000_000;

/** An amount of a request: exactly one of `amount` (decimal string) or `amount_micros`; domain/amount.ts reads it. */
const amountFields = {
  amount: z.optional(z.unknown()),
  amount_micros: z.optional(z.unknown()),
};
const rateSubjectSchema = (name: string) =>
  z
    .string()
    .check(
      z.regex(
        /^[A-Za-z0-9._:@-]{1,160}$/,
        `${name} must be 1 to 160 characters: letters, digits and . _ : @ -`,
      ),
    );

/** A micros amount in an answer: a decimal string of a u128 (JSON numbers lose precision above 2^53), read as a bigint. */
const micros = z.pipe(
  z.string().check(z.regex(/^(0|[1-9][0-9]{0,38})$/)),
  z.transform((text) => BigInt(text)),
);
const decimalAmount = z.string().check(z.regex(/^(0|[1-9][0-9]*)\.[0-9]{6}$/));
const wholeNumber = () => z.number().check(z.int());

// Requests

export const topUpRequestSchema = z.strictObject({ user_id: userIdSchema, ...amountFields });
export const adjustmentRequestSchema = z.extend(topUpRequestSchema, {
  direction: z.enum(['credit', 'debit']),
  reason: z.string().check(z.minLength(3), z.maxLength(200)),
});
export const historyQuerySchema = z.strictObject({
  limit: z.optional(
    z.string().check(z.regex(/^[1-9][0-9]{0,3}$/, 'limit must be a positive integer')),
  ),
  before: z.optional(
    z
      .string()
      .check(
        z.regex(
          timestampPattern,
          'before must be the timestamp of a transfer from a previous page',
        ),
      ),
  ),
});
export const holdRequestSchema = z.strictObject({
  user_id: userIdSchema,
  ...amountFields,
  timeout_seconds: z
    .number()
    .check(
      z.int('timeout_seconds must be a whole number of seconds'),
      z.positive('timeout_seconds must be positive'),
    ),
  request_id: z.optional(z.string()),
  /** Who and what the hold is for, written into its user data (docs/credits-api.md, "Receipts"). */
  receipt: z.optional(
    z.strictObject({
      request_id: z.string().check(z.regex(requestIdPattern, 'receipt.request_id must be a UUID')),
      key_id: z.string().check(z.regex(keyIdPattern, 'receipt.key_id must be a key id')),
      model_code: z.number().check(z.int(), z.gte(1), z.lte(u32Max)),
    }),
  ),
});
export const admissionRequestSchema = z.extend(holdRequestSchema, {
  rate: z.optional(
    z.strictObject({
      subject: rateSubjectSchema('rate.subject'),
      limit_per_minute: z.number().check(z.int(), z.gte(1), z.lte(rateLimitPerMinuteMax)),
    }),
  ),
});
export const settleRequestSchema = z.strictObject({
  ...amountFields,
  user_id: z.optional(userIdSchema),
});
export const releaseRequestSchema = z.strictObject({ user_id: z.optional(userIdSchema) });
export const rateLimitRequestSchema = z.strictObject({
  subject: rateSubjectSchema('subject'),
  limit_per_minute: z
    .number()
    .check(
      z.int('limit_per_minute must be a whole number'),
      z.gte(1),
      z.lte(rateLimitPerMinuteMax),
    ),
});

const pageLimit = z.optional(
  z.string().check(z.regex(/^[1-9][0-9]{0,3}$/, 'limit must be a positive integer')),
);
const timestampField = (name: string) =>
  z.string().check(z.regex(timestampPattern, `${name} must be a ledger timestamp (nanoseconds)`));
export const receiptsQuerySchema = z.strictObject({
  limit: pageLimit,
  before: z.optional(timestampField('before')),
  key_id: z.optional(z.string().check(z.regex(keyIdPattern, 'key_id must be a key id'))),
  model_code: z.optional(
    z.string().check(z.regex(/^[1-9][0-9]{0,9}$/, 'model_code must be a positive integer')),
  ),
});
export const chargesQuerySchema = z.strictObject({
  from: timestampField('from'),
  to: timestampField('to'),
  limit: pageLimit,
});

export type TopUpRequest = z.input<typeof topUpRequestSchema>;
export type AdjustmentRequest = z.input<typeof adjustmentRequestSchema>;
export type AdmissionRequest = z.input<typeof admissionRequestSchema>;
export type SettleRequest = z.input<typeof settleRequestSchema>;
export type ReleaseRequest = z.input<typeof releaseRequestSchema>;
export type RateLimitRequest = z.input<typeof rateLimitRequestSchema>;

// Answers

export const healthAnswerSchema = z.object({ status: z.literal('ok'), service: z.string() });
export const readyAnswerSchema = z.object({
  status: z.enum(['ready', 'not_ready']),
  service: z.string(),
});

export const balanceAnswerSchema = z.object({
  user_id: z.string(),
  currency: z.string(),
  available: decimalAmount,
  available_micros: micros,
  held_micros: micros,
  credited_micros: micros,
  spent_micros: micros,
});

/**
 * A top-up or an adjustment: 201 applied, 200 replayed (`idempotent-replayed: true`). Its
 * refusals: 402 `insufficient_credits` (insufficientCreditsAnswerSchema) for a debit over the
 * available balance, 409 `idempotency_conflict` for a key already used for a different request.
 */
export const movedAnswerSchema = z.object({
  transfer_id: z.string().check(z.regex(holdIdPattern)),
  user_id: z.string(),
  amount: decimalAmount,
  amount_micros: micros,
  balance: balanceAnswerSchema,
});

export const historyAnswerSchema = z.object({
  user_id: z.string(),
  transfers: z.array(
    z.object({
      transfer_id: z.string().check(z.regex(holdIdPattern)),
      kind: z.enum(['top_up', 'hold', 'settle', 'release', 'adjustment']),
      direction: z.enum(['credit', 'debit']),
      amount: decimalAmount,
      amount_micros: micros,
      pending: z.boolean(),
      hold_id: z.optional(z.string().check(z.regex(holdIdPattern))),
      timestamp: z.string().check(z.regex(timestampPattern)),
    }),
  ),
  next_before: z.nullable(z.string().check(z.regex(timestampPattern))),
});

export const rateAllowanceSchema = z.object({
  limit: wholeNumber(),
  remaining: wholeNumber(),
  reset_seconds: wholeNumber(),
});

/** A hold or an admission: 201 placed, 200 replayed; an admission with a rate unit carries its allowance. */
export const holdAnswerSchema = z.object({
  hold_id: z.string().check(z.regex(holdIdPattern)),
  /** Absent on a replay the ledger answered without the user (a hold names its account, not the user). */
  user_id: z.optional(z.string()),
  amount: decimalAmount,
  amount_micros: micros,
  timeout_seconds: wholeNumber(),
  expires_at: z.iso.datetime(),
  /** On a replay for another request under the same key: the request id that placed the hold. */
  request_id: z.optional(z.string().check(z.regex(requestIdPattern))),
  rate: z.optional(rateAllowanceSchema),
});

export const settledAnswerSchema = z.object({
  hold_id: z.string().check(z.regex(holdIdPattern)),
  status: z.literal('settled'),
  charged_micros: micros,
  released_micros: micros,
  available_micros: micros,
});

/** A release: `expired` when the hold had already voided itself (nothing was charged either way). */
export const releasedAnswerSchema = z.object({
  hold_id: z.string().check(z.regex(holdIdPattern)),
  status: z.enum(['released', 'expired']),
  released_micros: micros,
  available_micros: micros,
});

export const rateVerdictAnswerSchema = z.discriminatedUnion('allowed', [
  z.object({
    allowed: z.literal(true),
    limit: wholeNumber(),
    remaining: wholeNumber(),
    reset_seconds: wholeNumber(),
  }),
  z.object({
    allowed: z.literal(false),
    limit: wholeNumber(),
    remaining: z.literal(0),
    retry_after_seconds: wholeNumber(),
  }),
]);

/** One request's receipt: its hold and what became of it, from the ledger's user data. */
export const receiptAnswerSchema = z.object({
  request_id: z.nullable(z.string().check(z.regex(requestIdPattern))),
  hold_id: z.string().check(z.regex(holdIdPattern)),
  key_ref: z.nullable(z.string().check(z.regex(keyReferencePattern))),
  model_code: z.nullable(wholeNumber()),
  status: z.enum(['pending', 'settled', 'released']),
  /** Released because the hold's timeout passed unresolved (nothing was charged). */
  expired: z.boolean(),
  held: decimalAmount,
  held_micros: micros,
  charged: decimalAmount,
  charged_micros: micros,
  /** The hold's ledger timestamp: a page's `next_before` is one of these. */
  timestamp: z.string().check(z.regex(timestampPattern)),
  created_at: z.iso.datetime(),
  resolved_at: z.nullable(z.iso.datetime()),
});
export const receiptsAnswerSchema = z.object({
  user_id: z.string(),
  receipts: z.array(receiptAnswerSchema),
  next_before: z.nullable(z.string().check(z.regex(timestampPattern))),
});

/** A settled or released request of the export: the user as its account id (the key set names it). */
export const chargeAnswerSchema = z.object({
  request_id: z.nullable(z.string().check(z.regex(requestIdPattern))),
  hold_id: z.string().check(z.regex(holdIdPattern)),
  account_id: z.string().check(z.regex(holdIdPattern)),
  key_ref: z.nullable(z.string().check(z.regex(keyReferencePattern))),
  model_code: z.nullable(wholeNumber()),
  status: z.enum(['settled', 'released']),
  charged_micros: micros,
  timestamp: z.string().check(z.regex(timestampPattern)),
});
export const chargesAnswerSchema = z.object({
  charges: z.array(chargeAnswerSchema),
  /** Where the next page starts (`from`), or null at the end of the period. */
  next_from: z.nullable(z.string().check(z.regex(timestampPattern))),
});

/** Every refusal (runtime/http.ts): `{ error: { message, type, code, ...details }, request_id }`. */
export const errorAnswerSchema = z.object({
  error: z.object({ message: z.string(), type: z.string(), code: z.string() }),
  request_id: z.string(),
});
/** 402: the hold, or a debit adjustment, is more than the user's available balance. */
export const insufficientCreditsAnswerSchema = z.object({
  error: z.object({
    code: z.literal('insufficient_credits'),
    available: decimalAmount,
    available_micros: micros,
  }),
});
/** 429 of an admission: the rate-limit unit was refused (and nothing was held). */
export const rateLimitedAnswerSchema = z.object({
  error: z.object({
    code: z.literal('rate_limit_exceeded'),
    limit: wholeNumber(),
    retry_after_seconds: wholeNumber(),
  }),
});

/** What the credits app answers, as it writes it (bigints already decimal strings). */
export type HealthAnswer = z.input<typeof healthAnswerSchema>;
export type ReadyAnswer = z.input<typeof readyAnswerSchema>;
export type BalanceAnswer = z.input<typeof balanceAnswerSchema>;
export type MovedAnswer = z.input<typeof movedAnswerSchema>;
export type HistoryAnswer = z.input<typeof historyAnswerSchema>;
export type HistoryEntryAnswer = HistoryAnswer['transfers'][number];
export type RateAllowanceAnswer = z.input<typeof rateAllowanceSchema>;
export type HoldAnswer = z.input<typeof holdAnswerSchema>;
export type SettledAnswer = z.input<typeof settledAnswerSchema>;
export type ReleasedAnswer = z.input<typeof releasedAnswerSchema>;
export type RateVerdictAnswer = z.input<typeof rateVerdictAnswerSchema>;
export type ReceiptAnswer = z.input<typeof receiptAnswerSchema>;
export type ReceiptsAnswer = z.input<typeof receiptsAnswerSchema>;
export type ChargeAnswer = z.input<typeof chargeAnswerSchema>;
export type ChargesAnswer = z.input<typeof chargesAnswerSchema>;
