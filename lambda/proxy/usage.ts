import type { Context } from 'hono';
import { keyIdPattern, timestampPattern } from '../credits/contract';
import { ApiError, invalidParameter, invalidRequestFromSchema } from '../../runtime/http';
import {
  keyReference,
  keyReferenceText,
  ModelCodes,
  requestIdToUserData,
} from '../shared/receipts';
import * as z from '../../runtime/zod-mini';
import { completionIdPrefix, type ProxyAppDependencies, type ProxyEnv } from './context';
import { usagePageLimitDefault, usagePageLimitMax } from './config';
import type { CreditsReceipt } from './credits-client';

/**
 * `GET /v1/usage` and `GET /v1/usage/{request_id}`: the caller's own receipts, read from the ledger
 * through the credits service (issue 15). A receipt's id is the `x-request-id` of the response it
 * paid for. Only the caller's user is ever asked for, so another user's receipt is a 404, never a
 * 403 that would confirm it exists. Amounts are strings in currency units, like `x-credits-*`.
 */

type ProxyContext = Context<ProxyEnv>;

const usageQuerySchema = z.strictObject({
  limit: z.optional(
    z.string().check(z.regex(/^[1-9][0-9]{0,3}$/, 'limit must be a positive integer')),
  ),
  before: z.optional(
    z
      .string()
      .check(z.regex(timestampPattern, 'before must be the next_before of a previous page')),
  ),
  model: z.optional(z.string().check(z.maxLength(64))),
  key_id: z.optional(z.string().check(z.regex(keyIdPattern, 'key_id must be a key id'))),
});

/** A 400 naming the field (`param`, as OpenAI's errors do). */
function parseQuery(c: ProxyContext): z.output<typeof usageQuerySchema> {
  const parsed = usageQuerySchema.safeParse(c.req.query());
  if (parsed.success) return parsed.data;
  throw invalidRequestFromSchema(
    parsed.error.issues,
    (names) => `unknown query parameters: ${names.join(', ')}`,
  );
}

export interface UsageRoutes {
  list(c: ProxyContext): Promise<Response>;
  one(c: ProxyContext): Promise<Response>;
}

export function usageRoutes(dependencies: ProxyAppDependencies): UsageRoutes {
  const { config, credits } = dependencies;
  // Refuses to start on an ambiguous model encoding (two models, one ledger code).
  const models = new ModelCodes([...config.models, ...config.embeddingModels]);

  /** The caller's key ids by their ledger reference, revoked and expired keys included. */
  async function keyIdsByReference(
    userId: string,
    callerKeyId: string,
  ): Promise<Map<string, string>> {
    const verifier = await dependencies.keys.verifier();
    const keyIds = new Set([callerKeyId, ...(verifier.keyIdsOf?.(userId) ?? [])]);
    return new Map([...keyIds].map((keyId) => [keyReferenceText(keyReference(keyId)), keyId]));
  }

  function receiptJson(receipt: CreditsReceipt, keyIds: Map<string, string>) {
    return {
      object: 'usage.receipt',
      request_id: receipt.requestId,
      model: receipt.modelCode === null ? null : (models.modelOf(receipt.modelCode) ?? null),
      key_id: receipt.keyReference === null ? null : (keyIds.get(receipt.keyReference) ?? null),
      status: receipt.status,
      currency: config.currency,
      held: receipt.held,
      held_micros: receipt.heldMicros.toString(),
      charged: receipt.charged,
      charged_micros: receipt.chargedMicros.toString(),
      created_at: receipt.createdAt,
      resolved_at: receipt.resolvedAt,
    };
  }

  return {
    async list(c) {
      const principal = c.get('principal');
      const query = parseQuery(c);
      const limit = query.limit === undefined ? usagePageLimitDefault : Number(query.limit);
      if (limit > usagePageLimitMax)
        throw invalidParameter('limit', `limit must be at most ${usagePageLimitMax}`);
      const modelCode = query.model === undefined ? undefined : models.codeOf(query.model);
      if (query.model !== undefined && modelCode === undefined)
        throw invalidParameter(
          'model',
          'model: unknown model; GET /v1/models lists them',
          'model_not_found',
        );
      const page = await credits.receipts(
        principal.userId,
        { limit, before: query.before, keyId: query.key_id, modelCode },
        { requestId: c.get('requestId') },
      );
      const keyIds = await keyIdsByReference(principal.userId, principal.keyId);
      return c.json({
        object: 'list',
        data: page.receipts.map((receipt) => receiptJson(receipt, keyIds)),
        has_more: page.nextBefore !== null,
        next_before: page.nextBefore,
      });
    },
    async one(c) {
      const principal = c.get('principal');
      const given = c.req.param('request_id') ?? '';
      const requestId = given.startsWith(completionIdPrefix)
        ? given.slice(completionIdPrefix.length)
        : given;
      if (requestIdToUserData(requestId) === undefined)
        throw invalidParameter(
          'request_id',
          `request_id must be the x-request-id of a response (a UUID) or a completion's id (${completionIdPrefix}<UUID>)`,
          'invalid_request_id',
        );
      const receipt = await credits.receipt(principal.userId, requestId.toLowerCase(), {
        requestId: c.get('requestId'),
      });
      if (!receipt)
        throw new ApiError(
          404,
          'not_found_error',
          'receipt_not_found',
          'No receipt with this request id',
        );
      return c.json(
        receiptJson(receipt, await keyIdsByReference(principal.userId, principal.keyId)),
      );
    },
  };
}
