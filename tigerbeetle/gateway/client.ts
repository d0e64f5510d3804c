import type { Account, AccountBalance, AccountFilter, CreateAccountResult, CreateTransferResult, Transfer } from 'tigerbeetle-node';
import type { z } from 'zod';
import { LedgerUnavailableError, type LedgerClient } from '../ledger/client';
import { accountToWire, errorBodySchema, filterToWire, responseSchemas, transferToWire, type GatewayOperation } from './protocol';

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
  readonly fetch?: typeof fetch;
}

/** Longest gateway error message quoted in an Error: a misbehaving peer cannot flood our logs. */
export const gatewayErrorMessageLengthMax = 512;

/** An empty batch answers `[]` without a round trip, as the TigerBeetle client does (the wire needs at least one event). */
export function createGatewayClient(options: GatewayClientOptions): LedgerClient {
  const post = createPoster(options);
  return {
    createAccounts: async (batch: Account[]): Promise<CreateAccountResult[]> =>
      batch.length === 0 ? [] : (await post('create_accounts', { accounts: batch.map(accountToWire) })).results,
    createTransfers: async (batch: Transfer[]): Promise<CreateTransferResult[]> =>
      batch.length === 0 ? [] : (await post('create_transfers', { transfers: batch.map(transferToWire) })).results,
    lookupAccounts: async (ids: bigint[]): Promise<Account[]> =>
      ids.length === 0 ? [] : (await post('lookup_accounts', { ids: ids.map(String) })).accounts,
    lookupTransfers: async (ids: bigint[]): Promise<Transfer[]> =>
      ids.length === 0 ? [] : (await post('lookup_transfers', { ids: ids.map(String) })).transfers,
    getAccountTransfers: async (filter: AccountFilter): Promise<Transfer[]> =>
      (await post('get_account_transfers', { filter: filterToWire(filter) })).transfers,
    getAccountBalances: async (filter: AccountFilter): Promise<AccountBalance[]> =>
      (await post('get_account_balances', { filter: filterToWire(filter) })).balances,
  };
}

/** A response decoded by the shared schemas: bigints restored, statuses as tigerbeetle-node's enum numbers. */
type DecodedResponse<K extends GatewayOperation> = z.output<(typeof responseSchemas)[K]>;

function createPoster(options: GatewayClientOptions) {
  const base = checkOptions(options);
  const fetchFunction = options.fetch ?? fetch;
  return async <K extends GatewayOperation>(operation: K, requestBody: object): Promise<DecodedResponse<K>> => {
    const token = await readToken(options, operation);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), options.requestTimeoutMilliseconds);
    try {
      const response = await fetchFunction(new URL(`v1/${operation}`, base), {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(requestBody),
        signal: controller.signal,
      });
      const text = await response.text();
      if (!response.ok) throw failure(operation, response.status, text);
      return decodeResponse(operation, text);
    } catch (error) {
      throw asLedgerError(operation, error, controller.signal.aborted, options.requestTimeoutMilliseconds);
    } finally {
      clearTimeout(timer);
    }
  };
}

/** The token comes from Secrets Manager in AWS: failing to read it is transient, like the network. */
async function readToken(options: GatewayClientOptions, operation: GatewayOperation): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no token within ${options.requestTimeoutMilliseconds} ms`)), options.requestTimeoutMilliseconds);
  });
  try {
    return await Promise.race([Promise.resolve().then(() => options.token()), deadline]);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new LedgerUnavailableError(`ledger gateway ${operation}: could not read the gateway token: ${message}`);
  } finally {
    clearTimeout(timer);
  }
}

function checkOptions(options: GatewayClientOptions): URL {
  if (!(Number.isSafeInteger(options.requestTimeoutMilliseconds) && options.requestTimeoutMilliseconds > 0)) {
    throw new Error(`gateway client: requestTimeoutMilliseconds must be a positive integer, got ${options.requestTimeoutMilliseconds}`);
  }
  let base: URL;
  try {
    base = new URL(options.baseUrl);
  } catch {
    throw new Error(`gateway client: baseUrl is not a URL: ${options.baseUrl}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error(`gateway client: baseUrl must be http(s), got ${base.protocol}`);
  // Resolve `v1/<operation>` below the base path, whether or not it ends with a slash.
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return base;
}

/** Thrown inside the try block and passed through by asLedgerError. */
class GatewayAnswerError extends Error {}

function failure(operation: GatewayOperation, status: number, text: string): Error {
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

function decodeResponse<K extends GatewayOperation>(operation: K, text: string): DecodedResponse<K> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new GatewayAnswerError(`ledger gateway ${operation} answered 2xx with a body that is not JSON`);
  }
  const checked = responseSchemas[operation].safeParse(parsed);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw new GatewayAnswerError(`ledger gateway ${operation} answered 2xx with an unexpected body: ${issue?.path.join('.')}: ${issue?.message}`);
  }
  return checked.data as DecodedResponse<K>;
}

function asLedgerError(operation: GatewayOperation, error: unknown, timedOut: boolean, timeoutMilliseconds: number): Error {
  if (error instanceof LedgerUnavailableError) return error;
  if (error instanceof GatewayAnswerError) return new Error(error.message);
  if (timedOut) return new LedgerUnavailableError(`ledger gateway ${operation} did not answer within ${timeoutMilliseconds} ms`);
  return new LedgerUnavailableError(`ledger gateway ${operation} unreachable: ${describeNetworkError(error)}`);
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
