import { Hono } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import type { LedgerClient } from '../../tigerbeetle/ledger/client';
import { notFoundHandler, requestIdMiddleware } from '../../runtime/http';
import type { AppLogger } from '../../runtime/logger';
import { requestMetrics, type AppMetrics } from '../shared/metrics';
import type { KeyVerifier } from '../../runtime/secret-keyring';
import { creditsConfigDefaults, type CreditsConfig } from './config';
import type { CreditsEnv, CreditsPrincipal, CreditsRouteDependencies } from './context';
import { Credits } from './domain/credits';
import { randomId } from './domain/ids';
import { RateLimiter } from './domain/rate-limit';
import { Receipts } from './domain/receipts';
import { authenticate, requestBodyLimit, requestLog, withLedgerErrors } from './middleware';
import { adminRoutes } from './routes/admin';
import { balanceRoutes } from './routes/balance';
import { healthRoutes } from './routes/health';
import { holdRoutes } from './routes/holds';
import { rateLimitRoutes } from './routes/rate-limit';
import { usageRoutes } from './routes/usage';

export type { CreditsPrincipal } from './context';

/**
 * The credits service: prepaid balances on the ledger, reachable only inside the VPC. Keys of its
 * own (AUTH-05) in two roles: `proxy` places, settles and releases holds and reads balances;
 * `admin` tops up, adjusts and reads balances and history. Holds, settles, releases, top-ups,
 * refusals, auth failures and ledger outages are counted in `metrics` (MON-02). The routes
 * (routes/, one sub-app per group) speak the contract in contract.ts.
 */

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

const wallClock = { nowNanoseconds: () => BigInt(Date.now()) * 1_000_000n };

/** The API's base path: every route group is mounted below it. */
const apiBasePath = '/api/v1';

export function createCreditsApp(dependencies: CreditsAppDependencies): Hono<CreditsEnv> {
  const config: CreditsConfig = { ...creditsConfigDefaults, ...dependencies.config };
  const { ledger, logger, metrics } = dependencies;
  const routes: CreditsRouteDependencies = {
    credits: new Credits(ledger, config.ledgerId),
    limiter: new RateLimiter(ledger, config.rateLedgerId, randomId),
    receipts: new Receipts(ledger, config.ledgerId, () =>
      (dependencies.clock ?? wallClock).nowNanoseconds(),
    ),
    config,
    logger,
    metrics,
  };
  const app = new Hono<CreditsEnv>();

  app.use(requestIdMiddleware());
  app.use(requestLog(logger));
  app.use(requestMetrics(metrics));
  app.use(secureHeaders());
  app.use(requestBodyLimit(config.bodyBytesMax));
  app.onError(withLedgerErrors(logger, metrics));
  app.notFound(notFoundHandler);

  // Order matters: health and readiness are mounted before the key check, everything else after.
  app.route(apiBasePath, healthRoutes(routes));
  app.use(`${apiBasePath}/*`, authenticate(dependencies.keys, logger, metrics));
  app.route(apiBasePath, adminRoutes(routes));
  app.route(apiBasePath, holdRoutes(routes));
  app.route(apiBasePath, rateLimitRoutes(routes));
  app.route(apiBasePath, balanceRoutes(routes));
  app.route(apiBasePath, usageRoutes(routes));
  return app;
}
