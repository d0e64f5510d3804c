import type { Client, ErrorCodes } from 'tigerbeetle-node';

/*
 * Types and wrappers only: nothing here loads the TigerBeetle client (a native library), so the
 * credits Lambda can use them without carrying the client, which must never run in Lambda.
 */

/**
 * The ledger operations the services use: a subset of tigerbeetle-node's `Client`, so that the
 * embedded engine, the real cluster client and the gateway's HTTP client are interchangeable.
 */
export type LedgerClient = Pick<
  Client,
  | 'createAccounts'
  | 'createTransfers'
  | 'lookupAccounts'
  | 'lookupTransfers'
  | 'getAccountTransfers'
  | 'getAccountBalances'
  | 'queryTransfers'
>;

export const ledgerOperations = [
  'createAccounts',
  'createTransfers',
  'lookupAccounts',
  'lookupTransfers',
  'getAccountTransfers',
  'getAccountBalances',
  'queryTransfers',
] as const satisfies readonly (keyof LedgerClient)[];

/**
 * The codes of tigerbeetle-node's `RequestError` (its `ErrorCodes`), spelled here so that nothing
 * loads the native client; the type checks them against the installed version, both ways.
 */
export const tigerbeetleErrorCodes = {
  /** The client was destroyed (shutdown, or replaced after an eviction): retry on the current one. */
  clientClosed: 'ERR_CLIENT_CLOSED',
  /** The cluster evicted this session (too many clients, or a long pause): a new client is needed. */
  clientEvicted: 'ERR_CLIENT_EVICTED',
  /** The cluster runs a newer release than this client supports: this process can never talk to it. */
  clientReleaseTooLow: 'ERR_CLIENT_RELEASE_TOO_LOW',
  /** The client is newer than the cluster (upgrade order broken): this process can never talk to it. */
  clientReleaseTooHigh: 'ERR_CLIENT_RELEASE_TOO_HIGH',
  /** The batch, or what it asks for (a query limit), exceeds one TigerBeetle message: the caller's error. */
  tooMuchData: 'ERR_TOO_MUCH_DATA',
} as const satisfies Record<string, ErrorCodes>;

export type TigerBeetleErrorCode =
  (typeof tigerbeetleErrorCodes)[keyof typeof tigerbeetleErrorCodes];
type Assert<T extends true> = T;
/** Fails to compile when tigerbeetle-node adds a code this module does not know. */
export type EveryTigerBeetleErrorCodeKnown = Assert<
  [Exclude<ErrorCodes, TigerBeetleErrorCode>] extends [never] ? true : false
>;

const knownCodes: ReadonlySet<string> = new Set(Object.values(tigerbeetleErrorCodes));

/** The TigerBeetle client's error code of an error (directly, or kept by `LedgerUnavailableError`); by value, not `instanceof`. */
export function tigerbeetleErrorCode(error: unknown): TigerBeetleErrorCode | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && knownCodes.has(code)
    ? (code as TigerBeetleErrorCode)
    : undefined;
}

/**
 * The ledger did not answer (in time), or refused the call: the caller answers 503, never hangs
 * (DR-03). When the TigerBeetle client refused it, `code` says why, so that the gateway can tell a
 * caller's error (400) and a client that can never work again from a passing outage.
 */
export class LedgerUnavailableError extends Error {
  constructor(
    message: string,
    readonly code?: TigerBeetleErrorCode,
  ) {
    super(message);
    this.name = 'LedgerUnavailableError';
  }
}

/** A TigerBeetle session that can be replaced; `close` destroys the current one for good. */
export interface ReplaceableClient {
  readonly client: LedgerClient;
  /** Sessions created so far (1 until the first eviction). */
  readonly sessions: () => number;
  close(): void;
}

/**
 * One TigerBeetle client at a time, recreated when the cluster evicts it (ERR_CLIENT_EVICTED): an
 * evicted session never works again, and without this the gateway would answer 503 until restarted.
 * The call that saw the eviction still fails (503, retry); the next one uses the new session.
 * Concurrent calls evicted together recreate it once. A release mismatch is not an eviction to
 * recover from here: the same binary would be refused again (the gateway's /ready fails instead).
 */
export function recreateOnEviction(
  create: () => LedgerClient & Pick<Client, 'destroy'>,
): ReplaceableClient {
  let current = create();
  let sessions = 1;
  let closed = false;
  const replace = (failed: typeof current) => {
    if (closed || failed !== current) return; // already replaced by a concurrent call, or shutting down
    current = create();
    sessions += 1;
    failed.destroy();
  };
  const wrapped: Partial<Record<keyof LedgerClient, unknown>> = {};
  for (const operation of ledgerOperations) {
    wrapped[operation] = async (argument: unknown) => {
      const session = current;
      try {
        return await (session[operation] as (argument: unknown) => Promise<unknown>).call(
          session,
          argument,
        );
      } catch (error) {
        if (tigerbeetleErrorCode(error) === tigerbeetleErrorCodes.clientEvicted) replace(session);
        throw error;
      }
    };
  }
  return {
    client: wrapped as LedgerClient,
    sessions: () => sessions,
    close: () => {
      closed = true;
      current.destroy();
    },
  };
}

/** Every call races a timer; a late answer is dropped and the caller gets LedgerUnavailableError. */
export function withDeadline(client: LedgerClient, timeoutMilliseconds: number): LedgerClient {
  if (!(timeoutMilliseconds > 0)) throw new Error('a ledger deadline must be positive');
  const wrapped: Partial<Record<keyof LedgerClient, unknown>> = {};
  for (const operation of ledgerOperations) {
    const call = client[operation] as (argument: unknown) => Promise<unknown>;
    wrapped[operation] = (argument: unknown) => {
      let answer: Promise<unknown>;
      try {
        answer = Promise.resolve(call.call(client, argument));
      } catch (error) {
        answer = Promise.reject(error); // a synchronous throw becomes a rejection like any other
      }
      return raceDeadline(answer, operation, timeoutMilliseconds);
    };
  }
  return wrapped as LedgerClient;
}

function raceDeadline<T>(
  promise: Promise<T>,
  operation: string,
  timeoutMilliseconds: number,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new LedgerUnavailableError(
            `ledger ${operation} did not answer within ${timeoutMilliseconds} ms`,
          ),
        ),
      timeoutMilliseconds,
    );
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        if (error instanceof LedgerUnavailableError) return reject(error);
        // Not `instanceof Error`: errors from another realm (undici under jest) fail that check.
        const message =
          typeof (error as { message?: unknown })?.message === 'string'
            ? (error as { message: string }).message
            : String(error);
        reject(
          new LedgerUnavailableError(
            `ledger ${operation} failed: ${message}`,
            tigerbeetleErrorCode(error),
          ),
        );
      },
    );
  });
}
