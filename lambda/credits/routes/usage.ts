import { Hono } from 'hono';
import { nanosecondsPerMillisecond, u32Max } from '../../../tigerbeetle/limits';
import { ApiError, invalidParameter } from '../../../runtime/http';
import { keyReference, keyReferenceText, requestIdToUserData } from '../../shared/receipts';
import {
  chargesQuerySchema,
  receiptsQuerySchema,
  userIdSchema,
  type ChargeAnswer,
  type ReceiptAnswer,
} from '../contract';
import type { CreditsEnv, CreditsRouteDependencies } from '../context';
import { formatMicros } from '../../shared/money';
import { ledgerQueryLimitMax, type Charge, type Receipt } from '../domain/receipts';
import { requireRole } from '../middleware';
import { parseWith } from '../requests';

/**
 * Receipts (issue 15): what each request held and was charged, from the ledger's user data alone.
 * `proxy` reads one user's receipts for `GET /v1/usage` (the proxy names the user: its caller's);
 * `admin` too, and pages through every settled or released request of a period for the export.
 * Amounts are micros as decimal strings; times are ledger timestamps (ns) and ISO 8601.
 */

const isoOf = (nanoseconds: bigint): string =>
  new Date(Number(nanoseconds / nanosecondsPerMillisecond)).toISOString();

const keyReferenceOrNull = (reference: bigint): string | null =>
  reference === 0n ? null : keyReferenceText(reference);

function receiptJson(receipt: Receipt): ReceiptAnswer {
  return {
    request_id: receipt.requestId ?? null,
    hold_id: receipt.holdId.toString(),
    key_ref: keyReferenceOrNull(receipt.keyReference),
    model_code: receipt.modelCode === 0 ? null : receipt.modelCode,
    status: receipt.status,
    expired: receipt.expired,
    held: formatMicros(receipt.heldMicros),
    held_micros: receipt.heldMicros.toString(),
    charged: formatMicros(receipt.chargedMicros),
    charged_micros: receipt.chargedMicros.toString(),
    timestamp: receipt.timestamp.toString(),
    created_at: isoOf(receipt.timestamp),
    resolved_at: receipt.resolvedTimestamp === undefined ? null : isoOf(receipt.resolvedTimestamp),
  };
}

function chargeJson(charge: Charge): ChargeAnswer {
  return {
    request_id: charge.requestId ?? null,
    hold_id: charge.holdId.toString(),
    account_id: charge.accountId.toString(),
    key_ref: keyReferenceOrNull(charge.keyReference),
    model_code: charge.modelCode === 0 ? null : charge.modelCode,
    status: charge.status,
    charged_micros: charge.chargedMicros.toString(),
    timestamp: charge.timestamp.toString(),
  };
}

function modelCodeOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const code = Number(text);
  if (code > u32Max) throw invalidParameter('model_code', 'model_code must be a u32');
  return code;
}

export function usageRoutes({ receipts, config }: CreditsRouteDependencies): Hono<CreditsEnv> {
  if (config.chargesPageTransfersMax > ledgerQueryLimitMax)
    throw new Error(`chargesPageTransfersMax must be at most ${ledgerQueryLimitMax}`);
  if (config.receiptsLimitDefault > config.receiptsLimitMax)
    throw new Error('receiptsLimitDefault must not exceed receiptsLimitMax');
  const app = new Hono<CreditsEnv>();

  app.get('/usage/:user_id', requireRole('proxy', 'admin'), async (c) => {
    const userId = parseWith(userIdSchema, c.req.param('user_id'));
    const query = parseWith(receiptsQuerySchema, c.req.query());
    const limit = query.limit === undefined ? config.receiptsLimitDefault : Number(query.limit);
    if (limit > config.receiptsLimitMax)
      throw invalidParameter('limit', `limit must be at most ${config.receiptsLimitMax}`);
    const page = await receipts.list(userId, {
      limit,
      beforeTimestamp: query.before === undefined ? undefined : BigInt(query.before),
      keyReference: query.key_id === undefined ? undefined : keyReference(query.key_id),
      modelCode: modelCodeOf(query.model_code),
    });
    return c.json({
      user_id: userId,
      receipts: page.receipts.map(receiptJson),
      next_before: page.nextBefore?.toString() ?? null,
    });
  });

  app.get('/usage/:user_id/:request_id', requireRole('proxy', 'admin'), async (c) => {
    const userId = parseWith(userIdSchema, c.req.param('user_id'));
    const requestId = requestIdToUserData(c.req.param('request_id'));
    if (requestId === undefined)
      throw invalidParameter('request_id', 'request_id must be a UUID', 'invalid_request_id');
    const receipt = await receipts.find(userId, requestId);
    if (!receipt)
      throw new ApiError(
        404,
        'not_found_error',
        'receipt_not_found',
        'No receipt with this request id',
      );
    return c.json(receiptJson(receipt));
  });

  app.get('/charges', requireRole('admin'), async (c) => {
    const query = parseWith(chargesQuerySchema, c.req.query());
    const [fromTimestamp, toTimestamp] = [BigInt(query.from), BigInt(query.to)];
    if (fromTimestamp > toTimestamp) throw invalidParameter('from', 'from must not be after to');
    const limit = query.limit === undefined ? config.chargesPageTransfersMax : Number(query.limit);
    if (limit > config.chargesPageTransfersMax)
      throw invalidParameter('limit', `limit must be at most ${config.chargesPageTransfersMax}`);
    const page = await receipts.charges({ fromTimestamp, toTimestamp, limit });
    return c.json({
      charges: page.charges.map(chargeJson),
      next_from: page.nextFrom?.toString() ?? null,
    });
  });
  return app;
}
