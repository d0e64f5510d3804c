import type { Client } from 'tigerbeetle-node';

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
  'createAccounts' | 'createTransfers' | 'lookupAccounts' | 'lookupTransfers' | 'getAccountTransfers' | 'getAccountBalances'
>;

export const ledgerOperations = [
  'createAccounts',
  'createTransfers',
  'lookupAccounts',
  'lookupTransfers',
  'getAccountTransfers',
  'getAccountBalances',
] as const satisfies readonly (keyof LedgerClient)[];

/** The ledger did not answer (in time): the caller answers 503, never hangs (DR-03). */
export class LedgerUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LedgerUnavailableError';
  }
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

function raceDeadline<T>(promise: Promise<T>, operation: string, timeoutMilliseconds: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new LedgerUnavailableError(`ledger ${operation} did not answer within ${timeoutMilliseconds} ms`)),
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
        const message = typeof (error as { message?: unknown })?.message === 'string' ? (error as { message: string }).message : String(error);
        reject(new LedgerUnavailableError(`ledger ${operation} failed: ${message}`));
      },
    );
  });
}
