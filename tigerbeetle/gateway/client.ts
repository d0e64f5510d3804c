import type {
  Account,
  AccountBalance,
  AccountFilter,
  CreateAccountResult,
  CreateTransferResult,
  QueryFilter,
  Transfer,
} from 'tigerbeetle-node';
import type { z } from 'zod';
import { createInternalHttpClient, type InternalAnswer } from '../../runtime/http-client';
import { LedgerUnavailableError, type LedgerClient } from '../ledger/client';
import type { LedgerOperation, OperationsLedger, ResultsOf } from '../ledger/operations';
import {
  accountToWire,
  errorBodySchema,
  filterToWire,
  operationsResponseSchema,
  queryFilterToWire,
  responseSchemas,
  transferToWire,
  type GatewayOperation,
} from './protocol';

/**
 * The ledger as the credits service sees it: a `LedgerClient` whose calls are POSTs to the ledger
 * gateway. Failures split the way callers need them: the ledger being unreachable, slow or failing
 * (5xx) is a `LedgerUnavailableError` (answer 503, retry later); a 4xx is a plain `Error`, because
 * it means this side sent something wrong (a bug, or a wrong token), which no retry fixes.
 */

export interface GatewayClientOptions {
  /** The gateway's origin, e.g. `http://ledger-gateway.internal:7300`. */
  readonly baseUrl: string;
  /** The bearer token, read per request so that a rotated token is picked up without a restart. */
  readonly token: () => string | Promise<string>;
  /** Deadline of one call, from sending the request to reading the whole answer. */
  readonly requestTimeoutMilliseconds: number;
  /** Default: node:http with keep-alive connections (runtime/http-client.ts). */
  readonly fetch?: typeof fetch;
}

/** Longest gateway error message quoted in an Error: a misbehaving peer cannot flood our logs. */
export const gatewayErrorMessageLengthMax = 512;

/** An empty batch answers `[]` without a round trip, as the TigerBeetle client does (the wire needs at least one event). */
export function createGatewayClient(
  options: GatewayClientOptions,
): LedgerClient & OperationsLedger {
  const send = createSender(options);
  const post = async <K extends GatewayOperation>(
    operation: K,
    requestBody: object,
  ): Promise<DecodedResponse<K>> =>
    decodeResponse(
      operation,
      await send(operation, `v1/${operation}`, requestBody),
      responseSchemas[operation],
    ) as DecodedResponse<K>;
  return {
    execute: async <const T extends readonly LedgerOperation[]>(
      operations: T,
    ): Promise<ResultsOf<T>> => {
      // Empty batches answer [] here, as the TigerBeetle client does: the wire needs at least one event.
      const sent = operations.filter((operation) => !isEmptyBatch(operation));
      const answered =
        sent.length === 0
          ? []
          : decodeResponse(
              'operations',
              await send('operations', 'v1/operations', { operations: sent.map(operationToWire) }),
              operationsResponseSchema,
            ).results;
      if (answered.length !== sent.length)
        throw new Error(
          `ledger gateway operations answered ${answered.length} results for ${sent.length} operations`,
        );
      let next = 0;
      return operations.map((operation) =>
        isEmptyBatch(operation) ? [] : resultOf(answered[next], sent[next++]),
      ) as ResultsOf<T>;
    },
    createAccounts: async (batch: Account[]): Promise<CreateAccountResult[]> =>
      batch.length === 0
        ? []
        : (await post('create_accounts', { accounts: batch.map(accountToWire) })).results,
    createTransfers: async (batch: Transfer[]): Promise<CreateTransferResult[]> =>
      batch.length === 0
        ? []
        : (await post('create_transfers', { transfers: batch.map(transferToWire) })).results,
    lookupAccounts: async (ids: bigint[]): Promise<Account[]> =>
      ids.length === 0 ? [] : (await post('lookup_accounts', { ids: ids.map(String) })).accounts,
    lookupTransfers: async (ids: bigint[]): Promise<Transfer[]> =>
      ids.length === 0 ? [] : (await post('lookup_transfers', { ids: ids.map(String) })).transfers,
    getAccountTransfers: async (filter: AccountFilter): Promise<Transfer[]> =>
      (await post('get_account_transfers', { filter: filterToWire(filter) })).transfers,
    getAccountBalances: async (filter: AccountFilter): Promise<AccountBalance[]> =>
      (await post('get_account_balances', { filter: filterToWire(filter) })).balances,
    queryTransfers: async (filter: QueryFilter): Promise<Transfer[]> =>
      (await post('query_transfers', { filter: queryFilterToWire(filter) })).transfers,
  };
}

/** A response decoded by the shared schemas: bigints restored, statuses as tigerbeetle-node's enum numbers. */
type DecodedResponse<K extends GatewayOperation> = z.output<(typeof responseSchemas)[K]>;

/** Largest answer read: a full batch of 8189 transfers with every field at its maximum is about 4.2 MB of JSON. */
export const gatewayAnswerBytesMax = 8 * 1024 * 1024;

type Route = GatewayOperation | 'operations';

function createSender(options: GatewayClientOptions) {
  const base = checkOptions(options);
  const transport = options.fetch ? fetchTransport(options.fetch) : nodeTransport();
  return async (route: Route, path: string, requestBody: object): Promise<string> => {
    const token = await readToken(options, route);
    const signal = AbortSignal.timeout(options.requestTimeoutMilliseconds);
    try {
      const answer = await transport(
        new URL(path, base),
        { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        JSON.stringify(requestBody),
        signal,
      );
      if (answer.status < 200 || answer.status > 299)
        throw failure(route, answer.status, answer.text);
      return answer.text;
    } catch (error) {
      throw asLedgerError(route, error, signal.aborted, options.requestTimeoutMilliseconds);
    }
  };
}

type Transport = (
  url: URL,
  headers: Record<string, string>,
  body: string,
  signal: AbortSignal,
) => Promise<InternalAnswer>;

function nodeTransport(): Transport {
  const client = createInternalHttpClient();
  return (url, headers, body, signal) =>
    client.request({
      method: 'POST',
      url,
      headers,
      body,
      signal,
      responseBytesMax: gatewayAnswerBytesMax,
    });
}

function fetchTransport(fetchFunction: typeof fetch): Transport {
  return async (url, headers, body, signal) => {
    const response = await fetchFunction(url, { method: 'POST', headers, body, signal });
    return { status: response.status, text: await response.text() };
  };
}

function isEmptyBatch(operation: LedgerOperation): boolean {
  const batch =
    'accounts' in operation
      ? operation.accounts
      : 'transfers' in operation
        ? operation.transfers
        : 'ids' in operation
          ? operation.ids
          : undefined;
  return batch !== undefined && batch.length === 0;
}

function operationToWire(operation: LedgerOperation): object {
  switch (operation.operation) {
    case 'create_accounts':
      return { operation: operation.operation, accounts: operation.accounts.map(accountToWire) };
    case 'create_transfers':
      return { operation: operation.operation, transfers: operation.transfers.map(transferToWire) };
    case 'lookup_accounts':
    case 'lookup_transfers':
      return { operation: operation.operation, ids: operation.ids.map(String) };
    case 'get_account_transfers':
    case 'get_account_balances':
      return { operation: operation.operation, filter: filterToWire(operation.filter) };
    case 'query_transfers':
      return { operation: operation.operation, filter: queryFilterToWire(operation.filter) };
  }
}

/** The answer to one operation, checked to be the one asked, in its place. */
function resultOf(
  result: z.output<typeof operationsResponseSchema>['results'][number],
  operation: LedgerOperation | undefined,
): unknown {
  if (!operation || result.operation !== operation.operation) {
    throw new Error(
      `ledger gateway operations answered ${result.operation} where ${operation?.operation ?? 'nothing'} was asked`,
    );
  }
  if ('results' in result) return result.results;
  if ('accounts' in result) return result.accounts;
  if ('transfers' in result) return result.transfers;
  return result.balances;
}

/** The token comes from Secrets Manager in AWS: failing to read it is transient, like the network. */
async function readToken(options: GatewayClientOptions, operation: Route): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no token within ${options.requestTimeoutMilliseconds} ms`)),
      options.requestTimeoutMilliseconds,
    );
  });
  try {
    return await Promise.race([Promise.resolve().then(() => options.token()), deadline]);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new LedgerUnavailableError(
      `ledger gateway ${operation}: could not read the gateway token: ${message}`,
    );
  } finally {
    clearTimeout(timer);
  }
}

function checkOptions(options: GatewayClientOptions): URL {
  if (!(
    Number.isSafeInteger(options.requestTimeoutMilliseconds) &&
    options.requestTimeoutMilliseconds > 0
  )) {
    throw new Error(
      `gateway client: requestTimeoutMilliseconds must be a positive integer, got ${options.requestTimeoutMilliseconds}`,
    );
  }
  let base: URL;
  try {
    base = new URL(options.baseUrl);
  } catch {
    throw new Error(`gateway client: baseUrl is not a URL: ${options.baseUrl}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:')
    throw new Error(`gateway client: baseUrl must be http(s), got ${base.protocol}`);
  // Resolve `v1/<operation>` below the base path, whether or not it ends with a slash.
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return base;
}

/** Thrown inside the try block and passed through by asLedgerError. */
class GatewayAnswerError extends Error {}

function failure(operation: Route, status: number, text: string): Error {
  const message = `ledger gateway ${operation} answered ${status}: ${gatewayMessage(text)}`;
  if (status >= 500) return new LedgerUnavailableError(message);
  return new GatewayAnswerError(message);
}

function gatewayMessage(text: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return 'no JSON error body';
  }
  const body = errorBodySchema.safeParse(parsed);
  if (!body.success) return 'no JSON error body';
  return body.data.error.message.slice(0, gatewayErrorMessageLengthMax);
}

function decodeResponse<S extends z.ZodType>(
  operation: Route,
  text: string,
  schema: S,
): z.output<S> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new GatewayAnswerError(
      `ledger gateway ${operation} answered 2xx with a body that is not JSON`,
    );
  }
  const checked = schema.safeParse(parsed);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw new GatewayAnswerError(
      `ledger gateway ${operation} answered 2xx with an unexpected body: ${issue?.path.join('.')}: ${issue?.message}`,
    );
  }
  return checked.data;
}

function asLedgerError(
  operation: Route,
  error: unknown,
  timedOut: boolean,
  timeoutMilliseconds: number,
): Error {
  if (error instanceof LedgerUnavailableError) return error;
  if (error instanceof GatewayAnswerError) return new Error(error.message);
  if (timedOut)
    return new LedgerUnavailableError(
      `ledger gateway ${operation} did not answer within ${timeoutMilliseconds} ms`,
    );
  return new LedgerUnavailableError(
    `ledger gateway ${operation} unreachable: ${describeNetworkError(error)}`,
  );
}

/**
 * undici's "fetch failed" hides the reason (ECONNREFUSED...) in `cause`. Duck-typed: fetch's errors
 * may come from another realm (a test runner's sandbox), where `instanceof Error` is false.
 */
function describeNetworkError(error: unknown): string {
  const { message, cause } = (error ?? {}) as { message?: unknown; cause?: { code?: unknown } };
  const text = typeof message === 'string' ? message : String(error);
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  return code ? `${text} (${code})` : text;
}
