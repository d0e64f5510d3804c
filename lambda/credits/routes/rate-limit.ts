import { Hono } from 'hono';
import { readJsonBody } from '../../../runtime/http';
import { rateLimitRequestSchema } from '../contract';
import type { CreditsEnv, CreditsRouteDependencies } from '../context';
import { requireRole } from '../middleware';
import { rateVerdictJson } from '../presenters';
import { parseWith } from '../requests';

/** One request of a subject against its per-minute limit, exact across every caller (RATE-02). */
export function rateLimitRoutes({ limiter }: CreditsRouteDependencies): Hono<CreditsEnv> {
  const app = new Hono<CreditsEnv>();
  app.post('/rate-limit', requireRole('proxy'), async (c) => {
    const body = parseWith(rateLimitRequestSchema, await readJsonBody(c));
    return c.json(rateVerdictJson(await limiter.consume(body.subject, body.limit_per_minute)));
  });
  return app;
}
