/**
 * The proxy's client of the credits service (inside the VPC, with the proxy's service key). Every
 * call has a deadline; an unreachable or failing service is CreditsUnavailableError, which the proxy
 * answers with 503 before any provider call (fail closed).
 */

export class CreditsUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CreditsUnavailableError';
  }
}

export type HoldOutcome = { kind: 'held'; holdId: string; amountMicros: bigint } | { kind: 'insufficient'; availableMicros: bigint };
export type RateOutcome = { allowed: true; limit: number; remaining: number; resetSeconds: number } | { allowed: false; limit: number; retryAfterSeconds: number };

export interface CreditsClient {
  /** `holdKey` must be unique per request (the proxy generates it); a replay of an existing hold is an error. */
  hold(input: { userId: string; amountMicros: bigint; timeoutSeconds: number; holdKey: string }): Promise<HoldOutcome>;
  /** Charges at most the hold; idempotent (a retry returns the same outcome). */
  settle(holdId: string, amountMicros: bigint): Promise<{ chargedMicros: bigint; availableMicros: bigint }>;
  release(holdId: string): Promise<{ availableMicros: bigint }>;
  balance(userId: string): Promise<{ availableMicros: bigint } | undefined>;
  rateLimit(subject: string, limitPerMinute: number): Promise<RateOutcome>;
  ready(): Promise<boolean>;
}

export interface CreditsClientOptions {
  readonly baseUrl: string;
  /** The proxy's service key, read per call so a rotation is picked up. */
  readonly key: () => string | Promise<string>;
  readonly requestTimeoutMilliseconds: number;
}

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

export function createCreditsClient(options: CreditsClientOptions): CreditsClient {
  const base = options.baseUrl.replace(/\/+$/, '');

  async function call(method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    const signal = AbortSignal.timeout(options.requestTimeoutMilliseconds);
    let response: Response;
    try {
      const key = await options.key();
      response = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (error) {
      throw new CreditsUnavailableError(`credits service unreachable: ${signal.aborted ? 'timed out' : (error as Error).message}`);
    }
    const text = await response.text().catch(() => '');
    if (response.status >= 500) throw new CreditsUnavailableError(`credits service answered ${response.status}`);
    let parsed: Record<string, unknown> = {};
    try {
      parsed = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
    } catch {
      throw new CreditsUnavailableError(`credits service answered ${response.status} with a body that is not JSON`);
    }
    return { status: response.status, body: parsed };
  }

  function unexpected(what: string, answer: Answer): Error {
    const message = (answer.body.error as { message?: string } | undefined)?.message ?? 'no message';
    return new Error(`credits ${what} answered ${answer.status}: ${message}`);
  }

  async function withOneRetry<T>(action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (error) {
      if (!(error instanceof CreditsUnavailableError)) throw error;
      return action(); // settle and release are idempotent: one retry is safe
    }
  }

  return {
    async hold({ userId, amountMicros, timeoutSeconds, holdKey }) {
      const answer = await call('POST', '/api/v1/holds', { user_id: userId, amount_micros: amountMicros.toString(), timeout_seconds: timeoutSeconds }, { 'idempotency-key': holdKey });
      if (answer.status === 201) return { kind: 'held', holdId: String(answer.body.hold_id), amountMicros };
      // 200 is a replay of an existing hold: never a licence to call the provider again.
      if (answer.status === 200) throw new Error('credits hold answered a replay for a new hold key');
      if (answer.status === 402) {
        const available = (answer.body.error as { available_micros?: string } | undefined)?.available_micros ?? '0';
        return { kind: 'insufficient', availableMicros: BigInt(available) };
      }
      throw unexpected('hold', answer);
    },
    settle: (holdId, amountMicros) =>
      withOneRetry(async () => {
        const answer = await call('POST', `/api/v1/holds/${holdId}/settle`, { amount_micros: amountMicros.toString() });
        if (answer.status !== 200) throw unexpected('settle', answer);
        return { chargedMicros: BigInt(String(answer.body.charged_micros)), availableMicros: BigInt(String(answer.body.available_micros)) };
      }),
    release: (holdId) =>
      withOneRetry(async () => {
        const answer = await call('POST', `/api/v1/holds/${holdId}/release`);
        if (answer.status !== 200) throw unexpected('release', answer);
        return { availableMicros: BigInt(String(answer.body.available_micros)) };
      }),
    async balance(userId) {
      const answer = await call('GET', `/api/v1/balance/${encodeURIComponent(userId)}`);
      if (answer.status === 404) return undefined;
      if (answer.status !== 200) throw unexpected('balance', answer);
      return { availableMicros: BigInt(String(answer.body.available_micros)) };
    },
    async rateLimit(subject, limitPerMinute) {
      const answer = await call('POST', '/api/v1/rate-limit', { subject, limit_per_minute: limitPerMinute });
      if (answer.status !== 200) throw unexpected('rate-limit', answer);
      const body = answer.body as { allowed: boolean; limit: number; remaining: number; reset_seconds?: number; retry_after_seconds?: number };
      return body.allowed
        ? { allowed: true, limit: body.limit, remaining: body.remaining, resetSeconds: body.reset_seconds ?? 60 }
        : { allowed: false, limit: body.limit, retryAfterSeconds: body.retry_after_seconds ?? 60 };
    },
    async ready() {
      try {
        return (await call('GET', '/api/v1/ready')).status === 200;
      } catch {
        return false;
      }
    },
  };
}
