import {
  balanceAnswerSchema,
  creditsRoutes,
  errorAnswerSchema,
  holdAnswerSchema,
  insufficientCreditsAnswerSchema,
  rateLimitedAnswerSchema,
  rateVerdictAnswerSchema,
  receiptAnswerSchema,
  receiptsAnswerSchema,
  releasedAnswerSchema,
  settledAnswerSchema,
} from '../credits/contract';
import { createInternalHttpClient, type InternalAnswer } from '../../runtime/http-client';
import type * as z from '../../runtime/zod-mini';

/**
 * The proxy's client of the credits service (inside the VPC, with the proxy's service key), over
 * keep-alive connections. Every call has a deadline; an unreachable or failing service is
 * CreditsUnavailableError, which the proxy answers with 503 before any provider call (fail
 * closed). Answers are parsed with the credits contract (lambda/credits/contract.ts): an answer
 * outside it is CreditsAnswerError, an unavailable service too (503, a settlement retried later),
 * never a crash. Each call sends the proxy's request id, which the credits service logs as
 * `client_request_id`.
 */

export class CreditsUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CreditsUnavailableError';
  }
}

/**
 * An answer the contract does not describe (a credits service of another version, a proxy in
 * between): the service is unusable for this call, as if unavailable. Settle and release are
 * idempotent, so retrying one whose answer could not be read is safe.
 */
export class CreditsAnswerError extends CreditsUnavailableError {
  constructor(
    readonly what: string,
    readonly status: number,
  ) {
    super(`credits ${what} answered ${status} with a body outside the credits contract`);
    this.name = 'CreditsAnswerError';
  }
}

/** A well-formed refusal this call does not expect (a 404 of an unknown hold, a 409): retrying changes nothing. */
export class CreditsRefusedError extends Error {
  constructor(
    readonly what: string,
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(`credits ${what} answered ${status}: ${message}`);
    this.name = 'CreditsRefusedError';
  }
}

export type RateOutcome =
  | { allowed: true; limit: number; remaining: number; resetSeconds: number }
  | { allowed: false; limit: number; retryAfterSeconds: number };
export type HoldOutcome =
  | {
      kind: 'held';
      holdId: string;
      amountMicros: bigint;
      expiresAtMilliseconds: number;
      /** The hold key was already used: this is the earlier hold, not a new one. */
      replayed: boolean;
      /** On such a replay, the request that placed the hold (its receipt id), when the ledger has it. */
      originalRequestId?: string;
    }
  | { kind: 'insufficient'; availableMicros: bigint }
  /** The hold key was already used for a hold of another amount or timeout. */
  | { kind: 'conflict' };
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
  /** Unique per request (the proxy generates it), or derived from a client's Idempotency-Key. */
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
  /** In currency units (a decimal string with 6 places), and in micros. */
  readonly held: string;
  readonly heldMicros: bigint;
  readonly charged: string;
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

function receiptOf(wire: z.output<typeof receiptAnswerSchema>): CreditsReceipt {
  return {
    requestId: wire.request_id,
    holdId: wire.hold_id,
    keyReference: wire.key_ref,
    modelCode: wire.model_code,
    status: wire.status,
    expired: wire.expired,
    held: wire.held,
    heldMicros: wire.held_micros,
    charged: wire.charged,
    chargedMicros: wire.charged_micros,
    timestamp: wire.timestamp,
    createdAt: wire.created_at,
    resolvedAt: wire.resolved_at,
  };
}

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
    if (!parsed.success) throw new CreditsAnswerError(what, answer.status);
    return parsed.data;
  }

  function unexpected(what: string, answer: Answer): Error {
    const parsed = errorAnswerSchema.safeParse(answer.body);
    if (!parsed.success) return new CreditsAnswerError(what, answer.status);
    const { code, message } = parsed.data.error;
    return new CreditsRefusedError(what, answer.status, code, message);
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
    const answer = await call('POST', creditsRoutes.admissions, body, {
      requestId: input.requestId,
      idempotencyKey: input.holdKey,
    });
    // 200 replays a hold of this key: a key of our own is new per request, a client's may be reused.
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
        replayed: answer.status === 200,
        originalRequestId: held.request_id,
        rate,
      };
    }
    if (answer.status === 409) return { kind: 'conflict' };
    if (answer.status === 402)
      return {
        kind: 'insufficient',
        availableMicros: parse('admission', insufficientCreditsAnswerSchema, answer).error
          .available_micros,
      };
    if (answer.status === 429) {
      const { error } = parse('admission', rateLimitedAnswerSchema, answer);
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
            replayed: outcome.replayed,
            // The 409 of a retried Idempotency-Key names the request that placed the hold.
            ...(outcome.originalRequestId === undefined
              ? {}
              : { originalRequestId: outcome.originalRequestId }),
          }
        : outcome;
    },
    // Settle and release are idempotent; billing.ts retries them with backoff.
    async settle(holdId, amountMicros, scope = {}) {
      const body = {
        amount_micros: amountMicros.toString(),
        ...(scope.userId ? { user_id: scope.userId } : {}),
      };
      const answer = await call('POST', creditsRoutes.settle(holdId), body, scope);
      if (answer.status !== 200) throw unexpected('settle', answer);
      const settled = parse('settle', settledAnswerSchema, answer);
      return { chargedMicros: settled.charged_micros, availableMicros: settled.available_micros };
    },
    async release(holdId, scope = {}) {
      const answer = await call(
        'POST',
        creditsRoutes.release(holdId),
        scope.userId ? { user_id: scope.userId } : undefined,
        scope,
      );
      if (answer.status !== 200) throw unexpected('release', answer);
      return { availableMicros: parse('release', releasedAnswerSchema, answer).available_micros };
    },
    async balance(userId, scope = {}) {
      const answer = await call('GET', creditsRoutes.balance(userId), undefined, scope);
      if (answer.status === 404) return undefined;
      if (answer.status !== 200) throw unexpected('balance', answer);
      return { availableMicros: parse('balance', balanceAnswerSchema, answer).available_micros };
    },
    async rateLimit(subject, limitPerMinute, scope = {}) {
      const answer = await call(
        'POST',
        creditsRoutes.rateLimit,
        { subject, limit_per_minute: limitPerMinute },
        scope,
      );
      if (answer.status !== 200) throw unexpected('rate-limit', answer);
      const verdict = parse('rate-limit', rateVerdictAnswerSchema, answer);
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
        `${creditsRoutes.usage(userId)}?${parameters.toString()}`,
        undefined,
        scope,
      );
      if (answer.status !== 200) throw unexpected('usage', answer);
      const page = parse('usage', receiptsAnswerSchema, answer);
      return { receipts: page.receipts.map(receiptOf), nextBefore: page.next_before };
    },
    async receipt(userId, requestId, scope = {}) {
      const answer = await call('GET', creditsRoutes.receipt(userId, requestId), undefined, scope);
      if (answer.status === 404) return undefined;
      if (answer.status !== 200) throw unexpected('receipt', answer);
      return receiptOf(parse('receipt', receiptAnswerSchema, answer));
    },
    async ready() {
      try {
        return (await call('GET', creditsRoutes.ready, undefined)).status === 200;
      } catch {
        return false;
      }
    },
  };
}
