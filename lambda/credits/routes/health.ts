import { Hono } from 'hono';
import type { HealthAnswer, ReadyAnswer } from '../contract';
import type { CreditsEnv, CreditsRouteDependencies } from '../context';

/** Liveness and readiness, without a key: the load balancer reads them. */
export function healthRoutes({ credits, logger }: CreditsRouteDependencies): Hono<CreditsEnv> {
  const app = new Hono<CreditsEnv>();
  app.get('/health', (c) => c.json({ status: 'ok', service: 'credits' } satisfies HealthAnswer));
  app.get('/ready', async (c) => {
    try {
      await credits.checkReady();
    } catch (error) {
      // Any failure means "do not send me traffic": 503, never a 500 (the load balancer reads it).
      logger.warn('not ready', {
        request_id: c.get('requestId'),
        error_message: (error as Error).message,
      });
      return c.json({ status: 'not_ready', service: 'credits' } satisfies ReadyAnswer, 503);
    }
    return c.json({ status: 'ready', service: 'credits' } satisfies ReadyAnswer);
  });
  return app;
}
