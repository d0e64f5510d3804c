import { createClient, type Client } from 'tigerbeetle-node';
import { openEmbeddedLedger, type Clock } from '../engine';

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

/** A ledger with a lifetime: one per process, closed on shutdown. */
export interface Ledger {
  readonly client: LedgerClient;
  readonly description: string;
  close(): Promise<void>;
}

export type LedgerOptions =
  | { readonly kind: 'embedded'; readonly dataFile?: string; readonly clock?: Clock }
  | {
      readonly kind: 'cluster';
      readonly clusterId: bigint;
      /** Replica addresses, IP literals with ports, in the same order as the cluster's --addresses. */
      readonly replicaAddresses: readonly string[];
      /** The TigerBeetle client never times out by itself; every call gets this deadline. */
      readonly requestTimeoutMilliseconds: number;
    };

/** Default deadline for calls to a real cluster. */
export const clusterRequestTimeoutMillisecondsDefault = 5_000;

export function openLedger(options: LedgerOptions): Ledger {
  if (options.kind === 'embedded') {
    const embedded = openEmbeddedLedger({ dataFile: options.dataFile, clock: options.clock });
    const client = embedded.createClient();
    return {
      client,
      description: options.dataFile ? `embedded ledger (journal ${options.dataFile})` : 'embedded ledger (in memory)',
      close: async () => {
        client.destroy();
        embedded.close();
      },
    };
  }
  if (options.replicaAddresses.length === 0) throw new Error('a TigerBeetle cluster needs at least one replica address');
  const client = createClient({ cluster_id: options.clusterId, replica_addresses: [...options.replicaAddresses] });
  return {
    client: withDeadline(client, options.requestTimeoutMilliseconds),
    description: `TigerBeetle cluster ${options.clusterId} at ${options.replicaAddresses.join(',')}`,
    close: async () => client.destroy(),
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
