import type {
  Account,
  AccountBalance,
  AccountFilter,
  CreateAccountResult,
  CreateTransferResult,
  QueryFilter,
  Transfer,
} from 'tigerbeetle-node';
import * as z from 'zod';
import { batchEventsMax, u128Max, u16Max, u32Max, u64Max } from '../limits';

/**
 * The gateway's wire format: TigerBeetle's own structures as JSON, every 64- and 128-bit integer
 * as a decimal string (JSON numbers lose precision above 2^53), statuses as their numeric values.
 * Shared by the gateway (server) and its HTTP client, so both sides agree by construction.
 */

/** Operations of the gateway, one route each: POST /v1/<operation>. */
export const gatewayOperations = [
  'create_accounts',
  'create_transfers',
  'lookup_accounts',
  'lookup_transfers',
  'get_account_transfers',
  'get_account_balances',
  'query_transfers',
] as const;
export type GatewayOperation = (typeof gatewayOperations)[number];

/** TigerBeetle's own batch limit: events per request. */
export const gatewayBatchEventsMax = batchEventsMax;

function unsignedDecimal(maximum: bigint, name: string) {
  return z
    .string()
    .regex(/^(0|[1-9][0-9]{0,38})$/, `${name} must be a decimal string`)
    .transform((text) => BigInt(text))
    .refine((value) => value <= maximum, `${name} is out of range`);
}

const u128 = unsignedDecimal(u128Max, 'a u128');
const u64 = unsignedDecimal(u64Max, 'a u64');
const u32 = z.number().int().min(0).max(u32Max);
const u16 = z.number().int().min(0).max(u16Max);

export const accountSchema = z.strictObject({
  id: u128,
  debits_pending: u128,
  debits_posted: u128,
  credits_pending: u128,
  credits_posted: u128,
  user_data_128: u128,
  user_data_64: u64,
  user_data_32: u32,
  reserved: u32,
  ledger: u32,
  code: u16,
  flags: u16,
  timestamp: u64,
});

export const transferSchema = z.strictObject({
  id: u128,
  debit_account_id: u128,
  credit_account_id: u128,
  amount: u128,
  pending_id: u128,
  user_data_128: u128,
  user_data_64: u64,
  user_data_32: u32,
  timeout: u32,
  ledger: u32,
  code: u16,
  flags: u16,
  timestamp: u64,
});

export const accountFilterSchema = z.strictObject({
  account_id: u128,
  user_data_128: u128,
  user_data_64: u64,
  user_data_32: u32,
  code: u16,
  timestamp_min: u64,
  timestamp_max: u64,
  limit: u32,
  flags: u32,
});

/** TigerBeetle 0.17's QueryFilter: zero in a field means "any"; `flags` holds `reversed`. */
export const queryFilterSchema = z.strictObject({
  user_data_128: u128,
  user_data_64: u64,
  user_data_32: u32,
  ledger: u32,
  code: u16,
  timestamp_min: u64,
  timestamp_max: u64,
  limit: u32,
  flags: u32,
});

const batch = <T extends z.ZodType>(item: T) => z.array(item).min(1).max(gatewayBatchEventsMax);

/** Request bodies, by operation. */
export const requestSchemas = {
  create_accounts: z.strictObject({ accounts: batch(accountSchema) }),
  create_transfers: z.strictObject({ transfers: batch(transferSchema) }),
  lookup_accounts: z.strictObject({ ids: batch(u128) }),
  lookup_transfers: z.strictObject({ ids: batch(u128) }),
  get_account_transfers: z.strictObject({ filter: accountFilterSchema }),
  get_account_balances: z.strictObject({ filter: accountFilterSchema }),
  query_transfers: z.strictObject({ filter: queryFilterSchema }),
} satisfies Record<GatewayOperation, z.ZodType>;

type Wire<T> = { [K in keyof T]: T[K] extends bigint ? string : T[K] };

/** bigint fields become decimal strings; everything else is kept. */
export function toWire<T extends object>(value: T): Wire<T> {
  const wire: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value))
    wire[key] = typeof field === 'bigint' ? field.toString() : field;
  return wire as Wire<T>;
}

export const accountFromWire = (wire: unknown): Account => accountSchema.parse(wire);
export const transferFromWire = (wire: unknown): Transfer => transferSchema.parse(wire);

const createResultSchema = z.strictObject({ timestamp: u64, status: u32 });
export const createAccountResultFromWire = (wire: unknown): CreateAccountResult =>
  createResultSchema.parse(wire);
export const createTransferResultFromWire = (wire: unknown): CreateTransferResult =>
  createResultSchema.parse(wire);

const balanceSchema = z.strictObject({
  debits_pending: u128,
  debits_posted: u128,
  credits_pending: u128,
  credits_posted: u128,
  timestamp: u64,
});
export const balanceFromWire = (wire: unknown): AccountBalance => balanceSchema.parse(wire);

export function filterToWire(filter: AccountFilter): Wire<AccountFilter> {
  return toWire(filter);
}

export function queryFilterToWire(filter: QueryFilter): Wire<QueryFilter> {
  return toWire(filter);
}

/** Create results on the wire are exactly `{ timestamp, status }` (the engine adds `reserved`). */
export function createResultToWire(result: CreateAccountResult | CreateTransferResult): {
  timestamp: string;
  status: number;
} {
  return { timestamp: result.timestamp.toString(), status: result.status };
}

/** Only the schema's own fields go on the wire, so a strict decoder on the other side accepts them. */
function pickToWire<T extends object>(
  value: T,
  shape: Record<string, unknown>,
): Record<string, unknown> {
  const wire: Record<string, unknown> = {};
  for (const key of Object.keys(shape)) {
    const field = (value as Record<string, unknown>)[key];
    wire[key] = typeof field === 'bigint' ? field.toString() : field;
  }
  return wire;
}

export const accountToWire = (account: Account): Record<string, unknown> =>
  pickToWire(account, accountSchema.shape);
export const transferToWire = (transfer: Transfer): Record<string, unknown> =>
  pickToWire(transfer, transferSchema.shape);
export const balanceToWire = (balance: AccountBalance): Record<string, unknown> =>
  pickToWire(balance, balanceSchema.shape);

/**
 * Response bodies, by operation: one array under one key. The client decodes them strictly, so a
 * gateway and a client built from different versions of this file fail loudly, not silently.
 */
export const responseSchemas = {
  create_accounts: z.strictObject({
    results: z.array(createResultSchema).max(gatewayBatchEventsMax),
  }),
  create_transfers: z.strictObject({
    results: z.array(createResultSchema).max(gatewayBatchEventsMax),
  }),
  lookup_accounts: z.strictObject({ accounts: z.array(accountSchema).max(gatewayBatchEventsMax) }),
  lookup_transfers: z.strictObject({
    transfers: z.array(transferSchema).max(gatewayBatchEventsMax),
  }),
  get_account_transfers: z.strictObject({
    transfers: z.array(transferSchema).max(gatewayBatchEventsMax),
  }),
  get_account_balances: z.strictObject({
    balances: z.array(balanceSchema).max(gatewayBatchEventsMax),
  }),
  query_transfers: z.strictObject({
    transfers: z.array(transferSchema).max(gatewayBatchEventsMax),
  }),
} satisfies Record<GatewayOperation, z.ZodType>;

/** The JSON error body every service answers with (runtime/http.ts). */
export const errorBodySchema = z.object({
  error: z.object({ message: z.string(), type: z.string(), code: z.string() }),
  request_id: z.string().optional(),
});

/**
 * Several operations in one request (POST /v1/operations), run in order by the gateway, so that a
 * unit of work of the credits service (admit: create, then look up) is one round trip. Each
 * operation has the body of its own route plus its name; the answer lists one result per
 * operation, in order, each shaped like its own route's answer.
 */
export const gatewayOperationsPerRequestMax = 8;

export const operationsRequestSchema = z.strictObject({
  operations: z
    .array(
      z.discriminatedUnion('operation', [
        requestSchemas.create_accounts.extend({ operation: z.literal('create_accounts') }),
        requestSchemas.create_transfers.extend({ operation: z.literal('create_transfers') }),
        requestSchemas.lookup_accounts.extend({ operation: z.literal('lookup_accounts') }),
        requestSchemas.lookup_transfers.extend({ operation: z.literal('lookup_transfers') }),
        requestSchemas.get_account_transfers.extend({
          operation: z.literal('get_account_transfers'),
        }),
        requestSchemas.get_account_balances.extend({
          operation: z.literal('get_account_balances'),
        }),
        requestSchemas.query_transfers.extend({ operation: z.literal('query_transfers') }),
      ]),
    )
    .min(1)
    .max(gatewayOperationsPerRequestMax),
});

export const operationsResponseSchema = z.strictObject({
  results: z
    .array(
      z.discriminatedUnion('operation', [
        responseSchemas.create_accounts.extend({ operation: z.literal('create_accounts') }),
        responseSchemas.create_transfers.extend({ operation: z.literal('create_transfers') }),
        responseSchemas.lookup_accounts.extend({ operation: z.literal('lookup_accounts') }),
        responseSchemas.lookup_transfers.extend({ operation: z.literal('lookup_transfers') }),
        responseSchemas.get_account_transfers.extend({
          operation: z.literal('get_account_transfers'),
        }),
        responseSchemas.get_account_balances.extend({
          operation: z.literal('get_account_balances'),
        }),
        responseSchemas.query_transfers.extend({ operation: z.literal('query_transfers') }),
      ]),
    )
    .max(gatewayOperationsPerRequestMax),
});
