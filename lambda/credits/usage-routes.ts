import { Hono } from 'hono';
import * as z from 'zod';
import type { LedgerClient } from '../../tigerbeetle/ledger/client';
import { ApiError } from '../shared/http';
import { keyReference, keyReferenceText, requestIdToUserData } from '../shared/receipts';
import { invalid, parseWith, requireRole, userIdSchema, type CreditsEnv } from './app';
import type { CreditsConfig } from './config';
import { ledgerQueryLimitMax, Receipts, type Charge, type Receipt } from './domain/receipts';

/**
 * Receipts (issue 15): what each request held and was charged, from the ledger's user data alone.
 * `proxy` reads one user's receipts for `GET /v1/usage` (the proxy names the user: its caller's);
 * `admin` too, and pages through every settled or released request of a period for the export.
 * Amounts are micros as decimal strings; times are ledger timestamps (ns) and ISO 8601.
 */

const timestampPattern = /^[1-9][0-9]{0,19}$/;
const timestamp = (name: string) =>
  z.string().regex(timestampPattern, `${name} must be a ledger timestamp (nanoseconds)`);

const receiptsQuerySchema = z.strictObject({
  limit: z
    .string()
    .regex(/^[1-9][0-9]{0,3}$/, 'limit must be a positive integer')
    .optional(),
  before: timestamp('before').optional(),
  key_id: z
    .string()
    .regex(/^key_[A-Za-z0-9]{8,32}$/, 'key_id must be a key id')
    .optional(),
  model_code: z
    .string()
    .regex(/^[1-9][0-9]{0,9}$/, 'model_code must be a positive integer')
    .optional(),
});

const chargesQuerySchema = z.strictObject({
  from: timestamp('from'),
  to: timestamp('to'),
  limit: z
    .string()
    .regex(/^[1-9][0-9]{0,3}$/, 'limit must be a positive integer')
    .optional(),
});

const isoOf = (nanoseconds: bigint): string =>
  new Date(Number(nanoseconds / 1_000_000n)).toISOString();

function receiptJson(receipt: Receipt) {
  return {
    request_id: receipt.requestId ?? null,
    hold_id: receipt.holdId.toString(),
    key_ref: receipt.keyReference === 0n ? null : keyReferenceText(receipt.keyReference),
    model_code: receipt.modelCode === 0 ? null : receipt.modelCode,
    status: receipt.status,
    expired: receipt.expired,
    held_micros: receipt.heldMicros.toString(),
    charged_micros: receipt.chargedMicros.toString(),
    timestamp: receipt.timestamp.toString(),
    created_at: isoOf(receipt.timestamp),
    resolved_at: receipt.resolvedTimestamp === undefined ? null : isoOf(receipt.resolvedTimestamp),
  };
}

function chargeJson(charge: Charge) {
  return {
    request_id: charge.requestId ?? null,
    hold_id: charge.holdId.toString(),
    account_id: charge.accountId.toString(),
    key_ref: charge.keyReference === 0n ? null : keyReferenceText(charge.keyReference),
    model_code: charge.modelCode === 0 ? null : charge.modelCode,
    status: charge.status,
    charged_micros: charge.chargedMicros.toString(),
    timestamp: charge.timestamp.toString(),
  };
}

function receiptNotFound(): ApiError {
  return new ApiError(
    404,
    'not_found_error',
    'receipt_not_found',
    'No receipt with this request id',
  );
}

function checkModelCode(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const code = Number(text);
  if (code > 0xffff_ffff) throw invalid('model_code must be a u32');
  return code;
}

const wallClock = { nowNanoseconds: () => BigInt(Date.now()) * 1_000_000n };

export function createUsageRoutes(
  ledger: LedgerClient,
  config: CreditsConfig,
  clock: { nowNanoseconds(): bigint } = wallClock,
): Hono<CreditsEnv> {
  if (config.chargesPageTransfersMax > ledgerQueryLimitMax)
    throw new Error(`chargesPageTransfersMax must be at most ${ledgerQueryLimitMax}`);
  if (config.receiptsLimitDefault > config.receiptsLimitMax)
    throw new Error('receiptsLimitDefault must not exceed receiptsLimitMax');
  const receipts = new Receipts(ledger, config.ledgerId, () => clock.nowNanoseconds());
  const routes = new Hono<CreditsEnv>();

  routes.get('/usage/:user_id', requireRole('proxy', 'admin'), async (c) => {
    const userId = parseWith(userIdSchema, c.req.param('user_id'));
    const query = parseWith(receiptsQuerySchema, c.req.query());
    const limit = query.limit === undefined ? config.receiptsLimitDefault : Number(query.limit);
    if (limit > config.receiptsLimitMax)
      throw invalid(`limit must be at most ${config.receiptsLimitMax}`);
    const page = await receipts.list(userId, {
      limit,
      beforeTimestamp: query.before === undefined ? undefined : BigInt(query.before),
      keyReference: query.key_id === undefined ? undefined : keyReference(query.key_id),
      modelCode: checkModelCode(query.model_code),
    });
    return c.json({
      user_id: userId,
      receipts: page.receipts.map(receiptJson),
      next_before: page.nextBefore?.toString() ?? null,
    });
  });

  routes.get('/usage/:user_id/:request_id', requireRole('proxy', 'admin'), async (c) => {
    const userId = parseWith(userIdSchema, c.req.param('user_id'));
    const requestId = requestIdToUserData(c.req.param('request_id'));
    if (requestId === undefined) throw invalid('request_id must be a UUID', 'invalid_request_id');
    const receipt = await receipts.find(userId, requestId);
    if (!receipt) throw receiptNotFound();
    return c.json(receiptJson(receipt));
  });

  routes.get('/charges', requireRole('admin'), async (c) => {
    const query = parseWith(chargesQuerySchema, c.req.query());
    const [fromTimestamp, toTimestamp] = [BigInt(query.from), BigInt(query.to)];
    if (fromTimestamp > toTimestamp) throw invalid('from must not be after to');
    const limit = query.limit === undefined ? config.chargesPageTransfersMax : Number(query.limit);
    if (limit > config.chargesPageTransfersMax)
      throw invalid(`limit must be at most ${config.chargesPageTransfersMax}`);
    const page = await receipts.charges({ fromTimestamp, toTimestamp, limit });
    return c.json({
      charges: page.charges.map(chargeJson),
      next_from: page.nextFrom?.toString() ?? null,
    });
  });
  return routes;
}
