import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { secureHeaders } from 'hono/secure-headers';
import {
  ApiError,
  errorHandler,
  errorResponse,
  notFoundHandler,
  requestIdMiddleware,
} from '../../runtime/http';
import { presentedKey } from '../../runtime/keys';
import { audit, type AppLogger } from '../../runtime/logger';
import { requestMetrics, type AppMetrics } from '../shared/metrics';
import { formatMicros } from '../shared/money';
import { applyRateVerdict, rateSubject } from './billing';
import { handleChatCompletion } from './chat';
import { handleEmbeddings } from './embeddings';
import { registerModelRoutes } from './models';
import { AuthFailureThrottle } from './auth-failures';
import { proxyConfigProblems } from './config';
import type { ProxyAppDependencies, ProxyEnv } from './context';
import { CreditsUnavailableError } from './credits-client';
import { usageRoutes } from './usage';

/**
 * The public API: OpenAI-compatible chat completions in front of the configured providers, billed
 * in prepaid credits. Middleware in this order: request id, secure headers (NET-05), CORS allow-list
 * (NET-01, NET-02), body limit (NET-12), API key auth (AUTH-01, AUTH-06), per-key rate limit on the
 * ledger (RATE-01, RATE-02, RATE-04), and JSON errors with the request id (LOG-02). Every request
 * and every billing, auth, rate-limit and provider event is counted in `metrics` (MON-02).
 */

export type { ProxyAppDependencies, ProxyEnv, ProxyPrincipal } from './context';

const exposedHeaders = [
  'x-request-id',
  'x-credits-charged',
  'x-credits-charged-micros',
  'x-credits-remaining',
  'x-credits-remaining-micros',
  'retry-after',
  'x-should-retry',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
];

/**
 * The client's address as the public ALB saw it. The ALB appends the client's address to
 * X-Forwarded-For; behind it, API Gateway may append the address of the ALB node that called the
 * private API (a VPC address). Entries to the right of the ALB's can only be added by our own hops,
 * so the client is the rightmost entry outside the internal ranges (RFC 1918, shared, loopback,
 * link-local, unique-local); entries a client forged sit to its left and are never read. An address
 * that is internal throughout (a caller inside the network) is taken as the ALB saw it: the
 * leftmost of the internal run at the right end.
 */
function sourceAddress(c: Context): string {
  const internal =
    /^(10\.|172\.(1[6-9]|2\d|3[01])\.|192\.168\.|100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.|127\.|169\.254\.|::1$|f[cd][0-9a-f]{2}:|fe80:)/i;
  const entries = (c.req.header('x-forwarded-for') ?? '').split(',').map((entry) => entry.trim());
  let candidate: string | undefined;
  for (let index = entries.length - 1; index >= 0; index -= 1) {
    const entry = entries[index];
    if (!/^[0-9a-fA-F:.]{2,45}$/.test(entry)) break;
    candidate = entry;
    if (!internal.test(entry)) break;
  }
  return candidate ?? 'unknown';
}

function securityHeaders(): MiddlewareHandler<ProxyEnv> {
  return secureHeaders({
    strictTransportSecurity: 'max-age=31536000; includeSubDomains',
    xFrameOptions: 'DENY',
    xContentTypeOptions: 'nosniff',
    referrerPolicy: 'no-referrer',
    contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
    crossOriginResourcePolicy: 'same-origin',
    removePoweredBy: true,
  });
}

/**
 * Request headers a browser may send on a cross-origin call (NET-02): ours, and what the official
 * OpenAI SDKs add to every request (the `x-stainless-*` platform and retry headers, the organization
 * and project, the idempotency key), so a browser client built on them passes the preflight.
 */
export const corsAllowedHeaders = [
  'authorization',
  'content-type',
  'x-api-key',
  'x-request-id',
  'idempotency-key',
  'openai-organization',
  'openai-project',
  'openai-beta',
  'x-stainless-arch',
  'x-stainless-lang',
  'x-stainless-os',
  'x-stainless-package-version',
  'x-stainless-retry-count',
  'x-stainless-runtime',
  'x-stainless-runtime-version',
  'x-stainless-timeout',
  'x-stainless-helper-method',
  'x-stainless-poll-helper',
  'x-stainless-custom-poll-interval',
] as const;

function corsAllowList(allowedOrigins: readonly string[]): MiddlewareHandler<ProxyEnv> {
  const allowed = new Set(allowedOrigins);
  return cors({
    origin: (origin) => (allowed.has(origin) ? origin : null),
    allowMethods: ['GET', 'POST', 'OPTIONS'],
    allowHeaders: [...corsAllowedHeaders],
    exposeHeaders: exposedHeaders,
    maxAge: 600,
  });
}

const authMessages = {
  missing: 'Missing API key: send Authorization: Bearer <key> or X-API-Key: <key>',
  unknown: 'Invalid API key',
  expired: 'This API key has expired; ask for a new key',
  disabled: 'This API key was revoked',
} as const;

/**
 * A failed authentication, counted against its source (RATE-05). What is throttled is failing: a
 * source over its limit gets 429 instead of 401 for every further failure, whatever key it rotates
 * to, while a valid key from the same address (another client behind the same NAT) still passes.
 */
function refuseAuthentication(
  c: Context<ProxyEnv>,
  dependencies: ProxyAppDependencies,
  throttle: AuthFailureThrottle,
  reason: keyof typeof authMessages,
  keyId?: string,
): never {
  const source = sourceAddress(c);
  const now = (dependencies.clock ?? Date.now)();
  const retryAfter = throttle.retryAfterSeconds(source, now);
  throttle.record(source, now);
  dependencies.metrics.record('AuthFailures', 1, {});
  audit(dependencies.logger, 'auth_failure', {
    request_id: c.get('requestId'),
    reason,
    key_id: keyId,
    source_address: source,
    path: c.req.path,
    throttled: retryAfter !== undefined,
  });
  if (retryAfter !== undefined) {
    audit(dependencies.logger, 'rate_limited', {
      request_id: c.get('requestId'),
      subject: 'auth_failures',
      source_address: source,
    });
    dependencies.metrics.record('RateLimitRefusals', 1, {});
    c.header('retry-after', String(retryAfter));
    throw new ApiError(
      429,
      'rate_limit_error',
      'too_many_auth_failures',
      'Too many failed authentications from this address; retry later',
    );
  }
  throw new ApiError(
    401,
    'authentication_error',
    reason === 'expired'
      ? 'expired_api_key'
      : reason === 'disabled'
        ? 'revoked_api_key'
        : 'invalid_api_key',
    authMessages[reason],
  );
}

function authenticate(dependencies: ProxyAppDependencies): MiddlewareHandler<ProxyEnv> {
  const now = dependencies.clock ?? Date.now;
  const throttle = new AuthFailureThrottle(dependencies.config.authFailuresPerMinute);
  return async (c, next) => {
    const key = presentedKey(c.req.header('authorization'), c.req.header('x-api-key'));
    if (key === undefined) return refuseAuthentication(c, dependencies, throttle, 'missing');
    const verdict = (await dependencies.keys.verifier()).verify(key, now());
    if (verdict.status === 'unknown')
      return refuseAuthentication(c, dependencies, throttle, 'unknown');
    if (verdict.status !== 'valid')
      return refuseAuthentication(c, dependencies, throttle, verdict.status, verdict.keyId);
    c.set('principal', { keyId: verdict.keyId, userId: verdict.userId });
    await next();
  };
}

/**
 * Exact per-key limits across every instance, on the ledger (RATE-02); 429 with Retry-After
 * (RATE-04). Billable routes take their unit in the same credits call as their hold (billing.ts);
 * every other route takes it here, in one call.
 */
function rateLimit(
  dependencies: ProxyAppDependencies,
  admittedWithHold: (c: Context<ProxyEnv>) => boolean,
): MiddlewareHandler<ProxyEnv> {
  const { enabled, requestsPerMinute } = dependencies.config.rateLimit;
  return async (c, next) => {
    if (!enabled || admittedWithHold(c)) return next();
    const principal = c.get('principal');
    applyRateVerdict(
      c,
      dependencies,
      principal,
      await dependencies.credits.rateLimit(rateSubject(principal), requestsPerMinute),
    );
    await next();
  };
}

/** The credits service down is a 503: fail closed, never a free request (DR-03). */
function proxyErrorHandler(logger: AppLogger, metrics: AppMetrics) {
  const fallback = errorHandler(logger);
  return (error: Error, c: Context) => {
    if (error instanceof CreditsUnavailableError) {
      metrics.record('CreditsUnavailable', 1, {});
      logger.error('credits unavailable', {
        request_id: c.get('requestId') as string,
        error_message: error.message,
      });
      return errorResponse(
        c,
        new ApiError(
          503,
          'service_unavailable',
          'credits_unavailable',
          'Billing is temporarily unavailable; nothing was charged. Retry shortly.',
        ),
      );
    }
    return fallback(error, c);
  };
}

/**
 * Probes a supervisor or load balancer sends over and over: answered OK, they are logged at DEBUG
 * only, so the log shows one line per client request (a failing or slow probe still shows).
 */
const probePaths: ReadonlySet<string> = new Set(['/health', '/ready']);

/** Logs every request with its duration; slow ones as warnings (LOG-06). Never bodies or keys. */
function accessLog(dependencies: ProxyAppDependencies): MiddlewareHandler<ProxyEnv> {
  return async (c, next) => {
    const started = Date.now();
    await next();
    const durationMilliseconds = Date.now() - started;
    const slow = durationMilliseconds >= dependencies.config.slowRequestMilliseconds;
    const fields = {
      request_id: c.get('requestId'),
      client_request_id: c.get('clientRequestId'),
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      duration_milliseconds: durationMilliseconds,
      slow,
    };
    if (slow) dependencies.logger.warn('slow request', fields);
    else if (probePaths.has(c.req.path) && c.res.ok) dependencies.logger.debug('request', fields);
    else dependencies.logger.info('request', fields);
  };
}

export function createProxyApp(dependencies: ProxyAppDependencies): Hono<ProxyEnv> {
  const { config } = dependencies;
  const problems = proxyConfigProblems(config);
  if (problems.length > 0)
    throw new Error(`proxy: refusing to start, inconsistent limits: ${problems.join('; ')}`);
  const app = new Hono<ProxyEnv>();
  app.use(requestIdMiddleware());
  app.use(requestMetrics(dependencies.metrics));
  app.use(accessLog(dependencies));
  app.use(securityHeaders());
  app.use(corsAllowList(config.allowedOrigins));
  app.use(
    bodyLimit({
      maxSize: config.requestBodyBytesMax,
      onError: () => {
        throw new ApiError(
          413,
          'invalid_request_error',
          'request_too_large',
          `Request body over ${config.requestBodyBytesMax} bytes`,
        );
      },
    }),
  );
  app.onError(proxyErrorHandler(dependencies.logger, dependencies.metrics));
  app.notFound(notFoundHandler);

  app.get('/health', (c) =>
    c.json({
      status: 'ok',
      service: 'proxy',
      // The security posture, never a secret (CFG-03).
      security: {
        auth_required: true,
        https_only: config.httpsOnly,
        rate_limiting: {
          enabled: config.rateLimit.enabled,
          requests_per_minute: config.rateLimit.requestsPerMinute,
        },
        pii_masking: true,
        prompts_logged: false,
        cors_allowed_origins: config.allowedOrigins.length,
      },
    }),
  );
  app.get('/ready', async (c) => {
    const ready = await dependencies.credits.ready();
    return c.json(
      { status: ready ? 'ready' : 'not_ready', credits: ready ? 'ok' : 'unavailable' },
      ready ? 200 : 503,
    );
  });

  const billable = (c: Context<ProxyEnv>) =>
    c.req.method === 'POST' &&
    (c.req.path === '/v1/chat/completions' || c.req.path === '/v1/embeddings');
  app.use('/v1/*', authenticate(dependencies), rateLimit(dependencies, billable));
  registerModelRoutes(app, config);
  app.get('/v1/balance', async (c) => {
    const balance = await dependencies.credits.balance(c.get('principal').userId);
    const available = balance?.availableMicros ?? 0n;
    return c.json({
      object: 'balance',
      currency: config.currency,
      available: formatMicros(available),
      available_micros: available.toString(),
    });
  });
  app.post('/v1/chat/completions', (c) => handleChatCompletion(c, dependencies));
  app.post('/v1/embeddings', (c) => handleEmbeddings(c, dependencies));
  const usage = usageRoutes(dependencies);
  app.get('/v1/usage', (c) => usage.list(c));
  app.get('/v1/usage/:request_id', (c) => usage.one(c));
  return app;
}
