import { Hono } from 'hono';
import { ApiError } from '../../../runtime/http';
import { userIdSchema } from '../contract';
import type { CreditsEnv, CreditsRouteDependencies } from '../context';
import { requireRole } from '../middleware';
import { balanceJson } from '../presenters';
import { parseWith } from '../requests';

/** A user's balance: the proxy reads it, and so do operators. */
export function balanceRoutes({ credits, config }: CreditsRouteDependencies): Hono<CreditsEnv> {
  const app = new Hono<CreditsEnv>();
  app.get('/balance/:user_id', requireRole('proxy', 'admin'), async (c) => {
    const userId = parseWith(userIdSchema, c.req.param('user_id'));
    const balance = await credits.balance(userId);
    if (!balance)
      throw new ApiError(
        404,
        'not_found_error',
        'user_not_found',
        'No credits account for this user; it is created by the first top-up',
      );
    return c.json(balanceJson(balance, config.currency));
  });
  return app;
}
