import { ErrorCodes, RequestError, type Client } from 'tigerbeetle-node';
import { createSystemClock, type Clock } from './clock';
import { LedgerEngine } from './engine';
import type { JournalOpenReport } from './journal';
import {
  checkAccountFilter,
  checkAccounts,
  checkIds,
  checkQueryFilter,
  checkTransfers,
} from './input';

export interface EmbeddedLedgerOptions {
  /** Time source for timestamps and pending-transfer expiry. Default: the system clock. */
  clock?: Clock;
  /**
   * Path of an append-only journal. With it, every request's effects are fsync'd before its
   * promise resolves and are replayed on the next open. Without it, the ledger lives in memory.
   */
  dataFile?: string;
  /**
   * With a data file: a snapshot of the state (`<dataFile>.snapshot`) is written once the journal
   * has grown by this many bytes since the last one (while running, on close, and right after a
   * start that replayed this much), so a start loads it and replays at most about this much.
   * Default: 32 MiB (about 250,000 transfers).
   */
  snapshotJournalBytesMin?: number;
  /**
   * Hears what the running ledger must report: a snapshot that could not be written (the
   * journal still has everything). Default: a process warning on stderr.
   */
  onWarning?: (message: string) => void;
}

/** One in-process ledger that any number of clients share, like a cluster. */
export interface EmbeddedLedger {
  createClient(): Client;
  /** Flushes the journal and releases the data file; clients then fail with ERR_CLIENT_CLOSED. */
  close(): void;
  /** Bytes of a torn last write cut from the data file when it was opened (0 if none). */
  readonly truncatedBytes: number;
  /** What an operator must be told about opening the data file: a cut, an upgrade, an ignored snapshot (empty if nothing). */
  readonly journalWarnings: readonly string[];
  /** How the start went: whether a snapshot was loaded, and the journal bytes replayed after it. */
  readonly start: EmbeddedLedgerStart;
}

export interface EmbeddedLedgerStart {
  readonly snapshotLoaded: boolean;
  readonly journalReplayedBytes: number;
}

export function openEmbeddedLedger(options: EmbeddedLedgerOptions = {}): EmbeddedLedger {
  const engine = LedgerEngine.open(options.clock ?? createSystemClock(), options.dataFile ?? null, {
    snapshotJournalBytesMin: options.snapshotJournalBytesMin,
    onWarning: options.onWarning,
  });
  const clients = new Set<{ destroy: () => void }>();
  let closed = false;
  return {
    createClient(): Client {
      if (closed) throw new Error('embedded ledger: closed');
      const client = createClientOn(engine, () => clients.delete(client));
      clients.add(client);
      return client;
    },
    close(): void {
      if (closed) return;
      closed = true;
      for (const client of [...clients]) client.destroy();
      engine.close();
    },
    get truncatedBytes(): number {
      return engine.truncatedBytes;
    },
    journalWarnings: [
      ...journalWarnings(engine.journalOpenReport, options.dataFile),
      ...engine.openWarnings,
    ],
    start: {
      snapshotLoaded: engine.snapshotLoaded,
      journalReplayedBytes: engine.journalOpenReport?.replayedBytes ?? 0,
    },
  };
}

function journalWarnings(report: JournalOpenReport | null, dataFile: string | undefined): string[] {
  if (report === null) return [];
  const warnings: string[] = [];
  if (report.upgradedFromVersion !== null) {
    warnings.push(
      `journal ${dataFile}: upgraded from format ${report.upgradedFromVersion} to the current one (with a superblock)`,
    );
  }
  if (report.cutBytes > 0) {
    warnings.push(
      `journal ${dataFile}: cut ${report.cutBytes} bytes of a torn last write at byte ${report.cutAtByte} (${report.cutReason}); the requests in that write were lost, everything before it was kept`,
    );
  }
  return warnings;
}

/**
 * A drop-in for tigerbeetle-node's `createClient` that owns a ledger of its own; `destroy()`
 * closes that ledger (and its data file).
 */
export function createEmbeddedClient(options: EmbeddedLedgerOptions = {}): Client {
  const ledger = openEmbeddedLedger(options);
  const client = ledger.createClient();
  const destroy = client.destroy;
  return {
    ...client,
    destroy: () => {
      destroy();
      ledger.close();
    },
  };
}

/**
 * The Client interface over an engine. Like the native client, every call returns a promise,
 * input errors reject it, and `destroy()` rejects whatever is still in flight with
 * ERR_CLIENT_CLOSED (the request may or may not have been applied, as with a real cluster).
 */
function createClientOn(engine: LedgerEngine, onDestroy: () => void): Client {
  const inFlight = new Set<(error: Error) => void>();
  let destroyed = false;

  function request<Result>(run: () => Result): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      if (destroyed) throw new RequestError(ErrorCodes.ERR_CLIENT_CLOSED);
      const results = run();
      inFlight.add(reject);
      engine.whenDurable((error) => {
        if (!inFlight.delete(reject)) return; // destroyed meanwhile: already rejected
        if (error !== null) reject(error);
        else resolve(results);
      });
    });
  }

  return {
    createAccounts: (batch) => request(() => engine.createAccounts(checkAccounts(batch))),
    createTransfers: (batch) => request(() => engine.createTransfers(checkTransfers(batch))),
    lookupAccounts: (batch) => request(() => engine.lookupAccounts(checkIds(batch))),
    lookupTransfers: (batch) => request(() => engine.lookupTransfers(checkIds(batch))),
    getAccountTransfers: (filter) =>
      request(() => engine.getAccountTransfers(checkAccountFilter(filter))),
    getAccountBalances: (filter) =>
      request(() => engine.getAccountBalances(checkAccountFilter(filter))),
    queryAccounts: (filter) => request(() => engine.queryAccounts(checkQueryFilter(filter))),
    queryTransfers: (filter) => request(() => engine.queryTransfers(checkQueryFilter(filter))),
    destroy: () => {
      if (destroyed) return;
      destroyed = true;
      const closedError = new RequestError(ErrorCodes.ERR_CLIENT_CLOSED);
      for (const reject of inFlight) reject(closedError);
      inFlight.clear();
      onDestroy();
    },
  };
}
