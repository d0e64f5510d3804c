import * as z from '../shared/zod-mini';
import { createInternalHttpClient, type InternalAnswer } from '../shared/http-client';

/**
 * The proxy's client of the credits service (inside the VPC, with the proxy's service key), over
 * keep-alive connections. Every call has a deadline; an unreachable or failing service is
 * CreditsUnavailableError, which the proxy answers with 503 before any provider call (fail
 * closed). Answers are parsed with schemas: a credits service of another version fails loudly.
 * Each call sends the proxy's request id, which the credits service logs as `client_request_id`.
 */

export class CreditsUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CreditsUnavailableError';
  }
}

export type RateOutcome =
  | { allowed: true; limit: number; remaining: number; resetSeconds: number }
  | { allowed: false; limit: number; retryAfterSeconds: number };
export type HoldOutcome =
  | { kind: 'held'; holdId: string; amountMicros: bigint; expiresAtMilliseconds: number }
  | { kind: 'insufficient'; availableMicros: bigint };
export type AdmissionOutcome =
  | (HoldOutcome & { rate?: Extract<RateOutcome, { allowed: true }> })
  | { kind: 'rate_limited'; rate: Extract<RateOutcome, { allowed: false }> };

/** Optional context of a call: the user (settling in one ledger round trip) and our request id (log correlation). */
export interface CallScope {
  readonly userId?: string;
  readonly requestId?: string;
}

export interface AdmissionInput {
  readonly userId: string;
  readonly amountMicros: bigint;
  readonly timeoutSeconds: number;
  /** Unique per request (the proxy generates it); a replay of it is our own retry. */
  readonly holdKey: string;
  /** The per-key rate-limit unit taken with the hold, both or neither. */
  readonly rate?: { readonly subject: string; readonly limitPerMinute: number };
  readonly requestId?: string;
  /** Written into the hold's user data: the receipt of this request (lambda/shared/receipts.ts). */
  readonly receipt?: {
    readonly requestId: string;
    readonly keyId: string;
    readonly modelCode: number;
  };
}

/** A request's receipt as the credits service answers it. */
export interface CreditsReceipt {
  readonly requestId: string | null;
  readonly holdId: string;
  readonly keyReference: string | null;
  readonly modelCode: number | null;
  readonly status: 'pending' | 'settled' | 'released';
  readonly expired: boolean;
  readonly heldMicros: bigint;
  readonly chargedMicros: bigint;
  /** Ledger timestamp (ns), the cursor of a page. */
  readonly timestamp: string;
  readonly createdAt: string;
  readonly resolvedAt: string | null;
}

export interface ReceiptQuery {
  readonly limit: number;
  readonly before?: string;
  readonly keyId?: string;
  readonly modelCode?: number;
}

export interface CreditsClient {
  /** One call: the rate-limit unit (if any) and the hold. */
  admit(input: AdmissionInput): Promise<AdmissionOutcome>;
  hold(input: Omit<AdmissionInput, 'rate'>): Promise<HoldOutcome>;
  /** Charges at most the hold; idempotent (a retry returns the same outcome). */
  settle(
    holdId: string,
    amountMicros: bigint,
    scope?: CallScope,
  ): Promise<{ chargedMicros: bigint; availableMicros: bigint }>;
  release(holdId: string, scope?: CallScope): Promise<{ availableMicros: bigint }>;
  balance(userId: string, scope?: CallScope): Promise<{ availableMicros: bigint } | undefined>;
  rateLimit(subject: string, limitPerMinute: number, scope?: CallScope): Promise<RateOutcome>;
  /** A user's receipts, newest first. */
  receipts(
    userId: string,
    query: ReceiptQuery,
    scope?: CallScope,
  ): Promise<{ receipts: CreditsReceipt[]; nextBefore: string | null }>;
  /** One receipt of this user, or undefined (none, or another user's). */
  receipt(
    userId: string,
    requestId: string,
    scope?: CallScope,
  ): Promise<CreditsReceipt | undefined>;
  ready(): Promise<boolean>;
}

export interface CreditsClientOptions {
  readonly baseUrl: string;
  /** The proxy's service key, read per call so a rotation is picked up. */
  readonly key: () => string | Promise<string>;
  readonly requestTimeoutMilliseconds: number;
}

/** Largest answer of the credits service the proxy reads: its answers are a few hundred bytes. */
export const creditsAnswerBytesMax = 64 * 1024;

const decimal = z.pipe(
  z.string().check(z.regex(/^(0|[1-9][0-9]{0,38})$/)),
  z.transform((text) => BigInt(text)),
);
const integer = () => z.number().check(z.int());
const rateSchema = z.object({ limit: integer(), remaining: integer(), reset_seconds: integer() });
const holdAnswerSchema = z.object({
  hold_id: z.string().check(z.regex(/^[1-9][0-9]{0,38}$/)),
  expires_at: z.iso.datetime(),
  rate: z.optional(rateSchema),
});
const insufficientSchema = z.object({ error: z.object({ available_micros: decimal }) });
const rateRefusedSchema = z.object({
  error: z.object({ limit: integer(), retry_after_seconds: integer() }),
});
const settledSchema = z.object({ charged_micros: decimal, available_micros: decimal });
const availableSchema = z.object({ available_micros: decimal });
const rateVerdictSchema = z.discriminatedUnion('allowed', [
  z.object({
    allowed: z.literal(true),
    limit: integer(),
    remaining: integer(),
    reset_seconds: integer(),
  }),
  z.object({ allowed: z.literal(false), limit: integer(), retry_after_seconds: integer() }),
]);
const receiptSchema = z.object({
  request_id: z.nullable(z.string()),
  hold_id: z.string().check(z.regex(/^[1-9][0-9]{0,38}$/)),
  key_ref: z.nullable(z.string().check(z.regex(/^[0-9a-f]{16}$/))),
  model_code: z.nullable(integer()),
  status: z.enum(['pending', 'settled', 'released']),
  expired: z.boolean(),
  held_micros: decimal,
  charged_micros: decimal,
  timestamp: z.string().check(z.regex(/^[1-9][0-9]{0,19}$/)),
  created_at: z.iso.datetime(),
  resolved_at: z.nullable(z.iso.datetime()),
});
const receiptsSchema = z.object({
  receipts: z.array(receiptSchema),
  next_before: z.nullable(z.string().check(z.regex(/^[1-9][0-9]{0,19}$/))),
});

function receiptOf(wire: z.output<typeof receiptSchema>): CreditsReceipt {
  return {
    requestId: wire.request_id,
    holdId: wire.hold_id,
    keyReference: wire.key_ref,
    modelCode: wire.model_code,
    status: wire.status,
    expired: wire.expired,
    heldMicros: wire.held_micros,
    chargedMicros: wire.charged_micros,
    timestamp: wire.timestamp,
    createdAt: wire.created_at,
    resolvedAt: wire.resolved_at,
  };
}

const errorMessageSchema = z.object({ error: z.object({ message: z.string() }) });

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

export function createCreditsClient(options: CreditsClientOptions): CreditsClient {
  const base = options.baseUrl.replace(/\/+$/, '');
  const http = createInternalHttpClient();

  async function call(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    scope: CallScope & { idempotencyKey?: string } = {},
  ): Promise<Answer> {
    const signal = AbortSignal.timeout(options.requestTimeoutMilliseconds);
    let answer: InternalAnswer;
    try {
      const headers: Record<string, string> = { authorization: `Bearer ${await options.key()}` };
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (scope.requestId !== undefined) headers['x-request-id'] = scope.requestId;
      if (scope.idempotencyKey !== undefined) headers['idempotency-key'] = scope.idempotencyKey;
      answer = await http.request({
        method,
        url: new URL(`${base}${path}`),
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        responseBytesMax: creditsAnswerBytesMax,
      });
    } catch (error) {
      throw new CreditsUnavailableError(
        `credits service unreachable: ${signal.aborted ? 'timed out' : (error as Error).message}`,
      );
    }
    if (answer.status >= 500)
      throw new CreditsUnavailableError(`credits service answered ${answer.status}`);
    try {
      return {
        status: answer.status,
        body: answer.text === '' ? {} : (JSON.parse(answer.text) as unknown),
      };
    } catch {
      throw new CreditsUnavailableError(
        `credits service answered ${answer.status} with a body that is not JSON`,
      );
    }
  }

  function parse<T extends z.ZodMiniType>(what: string, schema: T, answer: Answer): z.output<T> {
    const parsed = schema.safeParse(answer.body);
    if (!parsed.success)
      throw new Error(`credits ${what} answered ${answer.status} with an unexpected body`);
    return parsed.data;
  }

  function unexpected(what: string, answer: Answer): Error {
    const parsed = errorMessageSchema.safeParse(answer.body);
    return new Error(
      `credits ${what} answered ${answer.status}: ${parsed.success ? parsed.data.error.message : 'no message'}`,
    );
  }

  async function admit(input: AdmissionInput): Promise<AdmissionOutcome> {
    const body = {
      user_id: input.userId,
      amount_micros: input.amountMicros.toString(),
      timeout_seconds: input.timeoutSeconds,
      ...(input.rate
        ? { rate: { subject: input.rate.subject, limit_per_minute: input.rate.limitPerMinute } }
        : {}),
      ...(input.receipt
        ? {
            receipt: {
              request_id: input.receipt.requestId,
              key_id: input.receipt.keyId,
              model_code: input.receipt.modelCode,
            },
          }
        : {}),
    };
    const answer = await call('POST', '/api/v1/admissions', body, {
      requestId: input.requestId,
      idempotencyKey: input.holdKey,
    });
    // 200 replays a hold of this key: the key is ours and new per request, so only our own retry can replay it.
    if (answer.status === 201 || answer.status === 200) {
      const held = parse('admission', holdAnswerSchema, answer);
      const rate = held.rate
        ? {
            allowed: true as const,
            limit: held.rate.limit,
            remaining: held.rate.remaining,
            resetSeconds: held.rate.reset_seconds,
          }
        : undefined;
      return {
        kind: 'held',
        holdId: held.hold_id,
        amountMicros: input.amountMicros,
        expiresAtMilliseconds: Date.parse(held.expires_at),
        rate,
      };
    }
    if (answer.status === 402)
      return {
        kind: 'insufficient',
        availableMicros: parse('admission', insufficientSchema, answer).error.available_micros,
      };
    if (answer.status === 429) {
      const { error } = parse('admission', rateRefusedSchema, answer);
      return {
        kind: 'rate_limited',
        rate: { allowed: false, limit: error.limit, retryAfterSeconds: error.retry_after_seconds },
      };
    }
    throw unexpected('admission', answer);
  }

  return {
    admit,
    async hold(input) {
      const outcome = await admit(input);
      if (outcome.kind === 'rate_limited')
        throw new Error('credits refused a hold without a rate unit for its rate');
      return outcome.kind === 'held'
        ? {
            kind: 'held',
            holdId: outcome.holdId,
            amountMicros: outcome.amountMicros,
            expiresAtMilliseconds: outcome.expiresAtMilliseconds,
          }
        : outcome;
    },
    // Settle and release are idempotent; billing.ts retries them with backoff.
    async settle(holdId, amountMicros, scope = {}) {
      const body = {
        amount_micros: amountMicros.toString(),
        ...(scope.userId ? { user_id: scope.userId } : {}),
      };
      const answer = await call('POST', `/api/v1/holds/${holdId}/settle`, body, scope);
      if (answer.status !== 200) throw unexpected('settle', answer);
      const settled = parse('settle', settledSchema, answer);
      return { chargedMicros: settled.charged_micros, availableMicros: settled.available_micros };
    },
    async release(holdId, scope = {}) {
      const answer = await call(
        'POST',
        `/api/v1/holds/${holdId}/release`,
        scope.userId ? { user_id: scope.userId } : undefined,
        scope,
      );
      if (answer.status !== 200) throw unexpected('release', answer);
      return { availableMicros: parse('release', availableSchema, answer).available_micros };
    },
    async balance(userId, scope = {}) {
      const answer = await call(
        'GET',
        `/api/v1/balance/${encodeURIComponent(userId)}`,
        undefined,
        scope,
      );
      if (answer.status === 404) return undefined;
      if (answer.status !== 200) throw unexpected('balance', answer);
      return { availableMicros: parse('balance', availableSchema, answer).available_micros };
    },
    async rateLimit(subject, limitPerMinute, scope = {}) {
      const answer = await call(
        'POST',
        '/api/v1/rate-limit',
        { subject, limit_per_minute: limitPerMinute },
        scope,
      );
      if (answer.status !== 200) throw unexpected('rate-limit', answer);
      const verdict = parse('rate-limit', rateVerdictSchema, answer);
      return verdict.allowed
        ? {
            allowed: true,
            limit: verdict.limit,
            remaining: verdict.remaining,
            resetSeconds: verdict.reset_seconds,
          }
        : { allowed: false, limit: verdict.limit, retryAfterSeconds: verdict.retry_after_seconds };
    },
    async receipts(userId, query, scope = {}) {
      const parameters = new URLSearchParams({ limit: String(query.limit) });
      if (query.before !== undefined) parameters.set('before', query.before);
      if (query.keyId !== undefined) parameters.set('key_id', query.keyId);
      if (query.modelCode !== undefined) parameters.set('model_code', String(query.modelCode));
      const answer = await call(
        'GET',
        `/api/v1/usage/${encodeURIComponent(userId)}?${parameters.toString()}`,
        undefined,
        scope,
      );
      if (answer.status !== 200) throw unexpected('usage', answer);
      const page = parse('usage', receiptsSchema, answer);
      return { receipts: page.receipts.map(receiptOf), nextBefore: page.next_before };
    },
    async receipt(userId, requestId, scope = {}) {
      const answer = await call(
        'GET',
        `/api/v1/usage/${encodeURIComponent(userId)}/${encodeURIComponent(requestId)}`,
        undefined,
        scope,
      );
      if (answer.status === 404) return undefined;
      if (answer.status !== 200) throw unexpected('receipt', answer);
      return receiptOf(parse('receipt', receiptSchema, answer));
    },
    async ready() {
      try {
        return (await call('GET', '/api/v1/ready', undefined)).status === 200;
      } catch {
        return false;
      }
    },
  };
}
