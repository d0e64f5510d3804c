import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { LedgerUnavailableError } from '../../tigerbeetle/ledger/client';
import { ApiError, errorHandler, errorResponse } from '../../runtime/http';
import { presentedKey } from '../../runtime/keys';
import { audit, type AppLogger } from '../../runtime/logger';
import type { AppMetrics } from '../shared/metrics';
import type { KeyVerifier } from '../../runtime/secret-keyring';
import type { CreditsEnv, CreditsPrincipal } from './context';
import type { Role } from './domain/ids';

/** The credits app's cross-cutting concerns: authentication, roles, the request log, body size, ledger outages. */

/** A key of the credits service's own (AUTH-05), else 401 with an audit record that never holds the key. */
export function authenticate(
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

/** One line per request, with the caller's own request id (the proxy's) as a separate field. */
export function requestLog(logger: AppLogger): MiddlewareHandler<CreditsEnv> {
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

/** A body over the limit is a 413 that names the limit. */
export function requestBodyLimit(bodyBytesMax: number): MiddlewareHandler<CreditsEnv> {
  return bodyLimit({
    maxSize: bodyBytesMax,
    onError: () => {
      throw new ApiError(
        413,
        'invalid_request_error',
        'request_too_large',
        `Request body over ${bodyBytesMax} bytes`,
      );
    },
  });
}

/** Ledger outages are 503s the client may retry, never 500s. */
export function withLedgerErrors(logger: AppLogger, metrics: AppMetrics) {
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
