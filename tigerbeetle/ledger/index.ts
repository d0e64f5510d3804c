import { createClient } from 'tigerbeetle-node';
import { openEmbeddedLedger, type Clock } from '../engine';
import { recreateOnEviction, withDeadline, type LedgerClient } from './client';

export * from './client';
export * from './operations';

/** A ledger with a lifetime: one per process, closed on shutdown. */
export interface Ledger {
  readonly client: LedgerClient;
  readonly description: string;
  /** What the operator must hear about opening the ledger (a cut journal tail); empty if nothing. */
  readonly warnings: readonly string[];
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
    const { snapshotLoaded, journalReplayedBytes } = embedded.start;
    const started = snapshotLoaded
      ? `started from its snapshot and ${journalReplayedBytes} bytes of journal after it`
      : `started from ${journalReplayedBytes} bytes of journal, no snapshot`;
    return {
      client,
      description: options.dataFile
        ? `embedded ledger (journal ${options.dataFile}; ${started})`
        : 'embedded ledger (in memory)',
      warnings: embedded.journalWarnings,
      close: async () => {
        client.destroy();
        embedded.close();
      },
    };
  }
  if (options.replicaAddresses.length === 0)
    throw new Error('a TigerBeetle cluster needs at least one replica address');
  const session = recreateOnEviction(() =>
    createClient({
      cluster_id: options.clusterId,
      replica_addresses: [...options.replicaAddresses],
    }),
  );
  return {
    client: withDeadline(session.client, options.requestTimeoutMilliseconds),
    description: `TigerBeetle cluster ${options.clusterId} at ${options.replicaAddresses.join(',')}`,
    warnings: [],
    close: async () => session.close(),
  };
}
