import type { Context } from 'hono';
import type { RequestIdVariables } from '../../runtime/http';
import type { AppLogger } from '../../runtime/logger';
import type { AppMetrics } from '../shared/metrics';
import type { CreditsConfig } from './config';
import type { Credits } from './domain/credits';
import type { Role } from './domain/ids';
import type { RateLimiter } from './domain/rate-limit';
import type { Receipts } from './domain/receipts';

/** Who called: the credits service's own key (AUTH-05) and its role. */
export interface CreditsPrincipal {
  readonly keyId: string;
  readonly role: Role;
}

export type CreditsEnv = { Variables: RequestIdVariables & { principal: CreditsPrincipal } };
export type CreditsContext = Context<CreditsEnv>;

/** What every route group is built from (one `Credits` and one limiter per app). */
export interface CreditsRouteDependencies {
  readonly credits: Credits;
  readonly limiter: RateLimiter;
  /** The receipts of requests, read back from the ledger's user data. */
  readonly receipts: Receipts;
  readonly config: CreditsConfig;
  readonly logger: AppLogger;
  readonly metrics: AppMetrics;
}
