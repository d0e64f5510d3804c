import { Hono } from 'hono';
import { ApiError, invalidParameter, readJsonBody } from '../../../runtime/http';
import { audit, pseudonymize } from '../../../runtime/logger';
import {
  adjustmentRequestSchema,
  historyQuerySchema,
  topUpRequestSchema,
  userIdSchema,
  type HistoryAnswer,
  type MovedAnswer,
} from '../contract';
import type { CreditsContext, CreditsEnv, CreditsRouteDependencies } from '../context';
import { formatMicros } from '../../shared/money';
import { requireRole } from '../middleware';
import { balanceJson, historyJson } from '../presenters';
import { amountMicros, idempotencyKey, parseWith } from '../requests';

/** The operators' routes (role `admin`): top-ups, adjustments either way, history. */
export function adminRoutes(dependencies: CreditsRouteDependencies): Hono<CreditsEnv> {
  const { credits, config, metrics } = dependencies;
  const app = new Hono<CreditsEnv>();

  app.post('/topup', requireRole('admin'), async (c) => {
    const body = parseWith(topUpRequestSchema, await readJsonBody(c));
    const response = await moveCredits(c, dependencies, body, undefined);
    // Applied top-ups only: a replay (200) moved nothing.
    if (response.status === 201) metrics.record('TopUps', 1, {});
    return response;
  });

  app.post('/adjustments', requireRole('admin'), async (c) => {
    const body = parseWith(adjustmentRequestSchema, await readJsonBody(c));
    return moveCredits(c, dependencies, body, body.direction);
  });

  app.get('/transfers/:user_id', requireRole('admin'), async (c) => {
    const userId = parseWith(userIdSchema, c.req.param('user_id'));
    const query = parseWith(historyQuerySchema, c.req.query());
    const limit = query.limit === undefined ? config.historyLimitDefault : Number(query.limit);
    if (limit > config.historyLimitMax)
      throw invalidParameter('limit', `limit must be at most ${config.historyLimitMax}`);
    const entries = await credits.history(
      userId,
      limit,
      query.before === undefined ? undefined : BigInt(query.before),
    );
    if (!entries)
      throw new ApiError(
        404,
        'not_found_error',
        'user_not_found',
        'No credits account for this user',
      );
    const last = entries.at(-1);
    const answer: HistoryAnswer = {
      user_id: userId,
      transfers: entries.map(historyJson),
      next_before: entries.length === limit && last ? last.timestamp.toString() : null,
    };
    return c.json(answer);
  });
  return app;
}

/**
 * A top-up (funding -> user) or an adjustment: 201 applied, 200 replayed, 402 a debit over the
 * available balance (nothing moved), 409 a key already used for a different request.
 */
async function moveCredits(
  c: CreditsContext,
  { credits, config, logger }: CreditsRouteDependencies,
  body: { user_id: string; amount?: unknown; amount_micros?: unknown },
  adjustment: 'credit' | 'debit' | undefined,
): Promise<Response> {
  const key = idempotencyKey(c);
  const micros = amountMicros(body, { allowZero: false, microsMax: config.topUpMicrosMax });
  const principal = c.get('principal');
  const result = await credits.topUp({
    userId: body.user_id,
    amountMicros: micros,
    idempotencyKey: key,
    role: principal.role,
    adjustment,
  });
  const event = adjustment ? 'adjustment' : 'top_up';
  const fields = {
    request_id: c.get('requestId'),
    key_id: principal.keyId,
    user: pseudonymize(body.user_id),
    amount_micros: micros.toString(),
  };
  if (result.kind === 'insufficient') {
    audit(logger, `${event}_refused`, {
      ...fields,
      reason: 'insufficient_credits',
      available_micros: result.availableMicros.toString(),
    });
    throw new ApiError(
      402,
      'insufficient_credits',
      'insufficient_credits',
      result.keyAlreadyRefused
        ? 'This Idempotency-Key was already refused for insufficient credits; retry with a new key'
        : 'The debit exceeds the available balance',
      {
        available: formatMicros(result.availableMicros),
        available_micros: result.availableMicros.toString(),
      },
    );
  }
  if (result.kind === 'conflict') {
    audit(logger, `${event}_refused`, { ...fields, reason: 'idempotency_conflict' });
    throw new ApiError(
      409,
      'conflict_error',
      'idempotency_conflict',
      'This Idempotency-Key was already used for a different request',
    );
  }
  audit(logger, event, {
    ...fields,
    transfer_id: result.transferId.toString(),
    replayed: result.kind === 'replayed',
  });
  if (result.kind === 'replayed') c.header('idempotent-replayed', 'true');
  const answer: MovedAnswer = {
    transfer_id: result.transferId.toString(),
    user_id: body.user_id,
    amount: formatMicros(result.amountMicros),
    amount_micros: result.amountMicros.toString(),
    balance: balanceJson(result.balance, config.currency),
  };
  return c.json(answer, result.kind === 'created' ? 201 : 200);
}
