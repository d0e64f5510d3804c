import type {
  Account,
  AccountBalance,
  AccountFilter,
  CreateAccountResult,
  CreateTransferResult,
  QueryFilter,
  Transfer,
} from 'tigerbeetle-node';
import { executeCreateAccounts, executeCreateTransfers } from './batch';
import type { Clock } from './clock';
import { encodeRecord, RecordOperation, type JournalRecord } from './codec';
import { expirePendingTransfers, pulseNeeded } from './expiry';
import {
  Journal,
  type DurableCallback,
  type JournalIdentity,
  type JournalOpenReport,
} from './journal';
import * as queries from './queries';
import {
  loadSnapshot,
  readSnapshotHeader,
  removeStaleSnapshotWrite,
  snapshotPathOf,
  writeSnapshot,
} from './snapshot';
import { LedgerState } from './state';

/**
 * A snapshot is written once the journal has grown by this much since the last one: while
 * running, on a clean close, and right after a start that replayed this much. So a start replays
 * at most about this much journal (32 MiB is about 250,000 transfers, under a second here) after
 * loading the snapshot, whether the ledger was stopped cleanly or crashed.
 */
export const snapshotJournalBytesMinDefault = 32 * 1024 * 1024;

export interface SnapshotOptions {
  /** Default: `snapshotJournalBytesMinDefault`. */
  readonly snapshotJournalBytesMin?: number;
  /** Hears what a running ledger must report (a snapshot not written). Default: a process warning. */
  readonly onWarning?: (message: string) => void;
}

/**
 * The ledger: one state machine, one clock, and optionally a journal. Every request runs to
 * completion synchronously, in arrival order, so requests are serializable like TigerBeetle's.
 * Everything that changes the state is a journal record (creates, and pulses that expire pending
 * transfers), carrying the clock reading it used, so replaying the journal rebuilds the same
 * state, timestamps included.
 */
export class LedgerEngine {
  private state = new LedgerState();
  private journal: Journal | null = null;
  private snapshotPath: string | null = null;
  /** The journal position the newest snapshot covers (the data start when there is none). */
  private snapshotJournalBytes = 0;
  private snapshotScheduled = false;
  private failure: Error | null = null;
  private closed = false;
  /** What opening the data file found that an operator must hear (an ignored snapshot). */
  readonly openWarnings: string[] = [];
  private loadedSnapshot = false;

  private constructor(
    private readonly clock: Clock,
    private readonly snapshotJournalBytesMin: number,
    private readonly onWarning: (message: string) => void,
  ) {}

  /**
   * Opens the ledger: loads the data file's snapshot if it is of this journal, replays the
   * journal after it, and writes a new snapshot at once when that replay was long (so a crash
   * loop does not replay it again).
   */
  static open(clock: Clock, dataFile: string | null, options: SnapshotOptions = {}): LedgerEngine {
    const snapshotJournalBytesMin =
      options.snapshotJournalBytesMin ?? snapshotJournalBytesMinDefault;
    if (!Number.isSafeInteger(snapshotJournalBytesMin) || snapshotJournalBytesMin < 1)
      throw new Error('ledger engine: snapshotJournalBytesMin must be a positive integer');
    const engine = new LedgerEngine(
      clock,
      snapshotJournalBytesMin,
      options.onWarning ?? emitProcessWarning,
    );
    if (dataFile === null) return engine;
    const snapshotPath = snapshotPathOf(dataFile);
    engine.snapshotPath = snapshotPath;
    engine.journal = Journal.open(
      dataFile,
      (record) => engine.replay(record),
      (journal) => engine.loadMatchingSnapshot(snapshotPath, journal),
    );
    engine.snapshotJournalBytes = engine.journal.openReport.replayedFromBytes;
    if (engine.journal.openReport.replayedBytes >= snapshotJournalBytesMin)
      engine.snapshotReportingFailure((message) => engine.openWarnings.push(message));
    return engine;
  }

  /** Whether the start loaded a snapshot (then only the journal after it was replayed). */
  get snapshotLoaded(): boolean {
    return this.loadedSnapshot;
  }

  /** Bytes of a torn last write that were cut from the data file on open (0 if none). */
  get truncatedBytes(): number {
    return this.journal?.truncatedBytes ?? 0;
  }

  /** What opening the data file found (null in memory). */
  get journalOpenReport(): JournalOpenReport | null {
    return this.journal?.openReport ?? null;
  }

  createAccounts(events: readonly Account[]): CreateAccountResult[] {
    const nowNanoseconds = this.beginRequest();
    const results = executeCreateAccounts(this.state, events, nowNanoseconds);
    this.journalAppend(RecordOperation.createAccounts, nowNanoseconds, events);
    return results;
  }

  createTransfers(events: readonly Transfer[]): CreateTransferResult[] {
    const nowNanoseconds = this.beginRequest();
    const results = executeCreateTransfers(this.state, events, nowNanoseconds);
    this.journalAppend(RecordOperation.createTransfers, nowNanoseconds, events);
    return results;
  }

  lookupAccounts(ids: readonly bigint[]): Account[] {
    this.beginRequest();
    return queries.lookupAccounts(this.state, ids);
  }

  lookupTransfers(ids: readonly bigint[]): Transfer[] {
    this.beginRequest();
    return queries.lookupTransfers(this.state, ids);
  }

  getAccountTransfers(filter: AccountFilter): Transfer[] {
    this.beginRequest();
    return queries.getAccountTransfers(this.state, filter);
  }

  getAccountBalances(filter: AccountFilter): AccountBalance[] {
    this.beginRequest();
    return queries.getAccountBalances(this.state, filter);
  }

  queryAccounts(filter: QueryFilter): Account[] {
    this.beginRequest();
    return queries.queryAccounts(this.state, filter);
  }

  queryTransfers(filter: QueryFilter): Transfer[] {
    this.beginRequest();
    return queries.queryTransfers(this.state, filter);
  }

  /**
   * Calls back once the effects of every request so far are durable. Reads wait too, so no
   * client ever sees state that a crash could take back.
   */
  whenDurable(callback: DurableCallback): void {
    if (this.journal === null) queueMicrotask(() => callback(this.failure));
    else this.journal.whenDurable(callback);
  }

  /**
   * Flushes the journal, writes a snapshot if it grew by `snapshotJournalBytesMin` since the
   * last, and releases the data file.
   */
  close(): void {
    if (this.closed) return;
    try {
      if (this.failure === null && this.snapshotDue())
        this.snapshotReportingFailure(this.onWarning);
    } finally {
      this.closed = true;
      this.journal?.close();
    }
  }

  /**
   * Writes a snapshot of the state now; everything appended is flushed first, so the snapshot
   * and the journal agree on where it stands. Synchronous on purpose: requests run to completion
   * one at a time, so a snapshot written between two of them is consistent without copying the
   * state, at the price of blocking the ledger while it is written (about 0.4 s per million
   * transfers here). That suits this engine, the ledger of development and tests; a deployed
   * stage uses a real TigerBeetle cluster.
   */
  snapshot(): void {
    const journal = this.journal;
    if (journal === null || this.snapshotPath === null) return;
    if (this.failure !== null) throw this.failure;
    journal.flush();
    writeSnapshot(this.snapshotPath, this.state, {
      journalId: journal.journalId,
      journalBytes: journal.committedBytes,
      journalTailCrc: journal.tailCrc(),
    });
    this.snapshotJournalBytes = journal.committedBytes;
  }

  private snapshotDue(): boolean {
    const journal = this.journal;
    if (journal === null) return false;
    const journaled = journal.committedBytes + journal.pendingBytes - this.snapshotJournalBytes;
    return journaled >= this.snapshotJournalBytesMin;
  }

  /**
   * A snapshot that cannot be written (a full disk) costs only speed: the journal has
   * everything. Say so, and try again only after another `snapshotJournalBytesMin`.
   */
  private snapshotReportingFailure(warn: (message: string) => void): void {
    try {
      this.snapshot();
    } catch (error) {
      if (this.journal !== null) this.snapshotJournalBytes = this.journal.committedBytes;
      warn(
        `snapshot ${this.snapshotPath} not written: ${(error as Error).message}; the next start replays more of the journal`,
      );
    }
  }

  /** After a request was journaled: a snapshot once enough journal has grown since the last. */
  private scheduleSnapshotIfDue(): void {
    if (this.snapshotScheduled || !this.snapshotDue()) return;
    this.snapshotScheduled = true;
    // After the journal's own flush of this turn (scheduled first), between two requests.
    setImmediate(() => {
      this.snapshotScheduled = false;
      if (this.closed || this.failure !== null || !this.snapshotDue()) return;
      this.snapshotReportingFailure(this.onWarning);
    });
  }

  /** Loads the snapshot if it is of this journal; otherwise says why and replays everything. */
  private loadMatchingSnapshot(snapshotPath: string, journal: JournalIdentity): number | null {
    removeStaleSnapshotWrite(snapshotPath);
    try {
      const header = readSnapshotHeader(snapshotPath);
      if (header === null) return null;
      if (header.journalId !== journal.journalId)
        throw new Error('it is of another journal (its journal id differs)');
      if (journal.tailCrcAt(header.journalBytes) !== header.journalTailCrc) {
        throw new Error(
          'it does not match this journal (which ends before it, or was rewritten or restored)',
        );
      }
      loadSnapshot(snapshotPath, header, this.state);
      this.loadedSnapshot = true;
      return header.journalBytes;
    } catch (error) {
      this.state = new LedgerState();
      this.openWarnings.push(
        `snapshot ${snapshotPath} ignored: ${(error as Error).message}; the whole journal was replayed instead`,
      );
      return null;
    }
  }

  /** Expires due pending transfers first, like the pulse TigerBeetle runs before the request. */
  private beginRequest(): bigint {
    if (this.failure !== null) throw this.failure;
    if (this.closed) throw new Error('ledger engine: closed');
    const nowNanoseconds = this.clock.nowNanoseconds();
    while (pulseNeeded(this.state, nowNanoseconds)) {
      expirePendingTransfers(this.state, nowNanoseconds);
      this.journalAppend(RecordOperation.pulse, nowNanoseconds, []);
    }
    return nowNanoseconds;
  }

  private journalAppend(
    operation: RecordOperation,
    nowNanoseconds: bigint,
    events: readonly (Account | Transfer)[],
  ): void {
    // An empty batch changes nothing (not even the timestamp), so it needs no record.
    if (this.journal === null || (operation !== RecordOperation.pulse && events.length === 0))
      return;
    try {
      this.journal.append(encodeRecord(operation, nowNanoseconds, events));
    } catch (error) {
      // Memory is now ahead of the disk: refuse all further requests rather than diverge.
      this.failure = error instanceof Error ? error : new Error(String(error));
      throw this.failure;
    }
    this.scheduleSnapshotIfDue();
  }

  private replay(record: JournalRecord): void {
    switch (record.operation) {
      case RecordOperation.createAccounts:
        executeCreateAccounts(this.state, record.events, record.nowNanoseconds);
        return;
      case RecordOperation.createTransfers:
        executeCreateTransfers(this.state, record.events, record.nowNanoseconds);
        return;
      case RecordOperation.pulse:
        if (expirePendingTransfers(this.state, record.nowNanoseconds) === 0) {
          throw new Error(
            'journal: a pulse record that expires nothing; the journal does not match this engine',
          );
        }
        return;
    }
  }
}

/** A warning the process prints (on stderr), where no caller is there to hear it. */
function emitProcessWarning(message: string): void {
  process.emitWarning(message, 'LedgerSnapshotWarning');
}
