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
import { Journal, type DurableCallback, type JournalOpenReport } from './journal';
import { loadSnapshot, readSnapshotHeader, snapshotPathOf, writeSnapshot } from './snapshot';
import * as queries from './queries';
import { LedgerState } from './state';

/**
 * The ledger: one state machine, one clock, and optionally a journal. Every request runs to
 * completion synchronously, in arrival order, so requests are serializable like TigerBeetle's.
 * Everything that changes the state is a journal record (creates, and pulses that expire pending
 * transfers), carrying the clock reading it used, so replaying the journal rebuilds the same
 * state, timestamps included.
 */
/** Default: a snapshot once this many journal bytes (about 100,000 transfers) were written since the last. */
export const snapshotAfterJournalBytesDefault = 16 * 1024 * 1024;

export class LedgerEngine {
  private state = new LedgerState();
  private journal: Journal | null = null;
  private snapshotPath: string | null = null;
  /** The journal offset the newest snapshot covers. */
  private snapshotJournalBytes = 0;
  private failure: Error | null = null;
  private closed = false;
  /** What opening the data file found that an operator must hear (an ignored snapshot). */
  readonly openWarnings: string[] = [];

  private constructor(
    private readonly clock: Clock,
    private readonly snapshotAfterJournalBytes: number,
  ) {}

  /**
   * Opens the ledger: loads the data file's snapshot if it matches, replays the journal after it,
   * and writes a new snapshot at once when that replay was long (so a crash loop stays fast).
   */
  static open(clock: Clock, dataFile: string | null, snapshotAfterJournalBytes = snapshotAfterJournalBytesDefault): LedgerEngine {
    const engine = new LedgerEngine(clock, snapshotAfterJournalBytes);
    if (dataFile === null) return engine;
    const snapshotPath = snapshotPathOf(dataFile);
    engine.snapshotPath = snapshotPath;
    engine.journal = Journal.open(dataFile, (record) => engine.replay(record), (journal) => engine.loadMatchingSnapshot(snapshotPath, journal));
    engine.snapshotJournalBytes = engine.journal.openReport.replayedFromBytes;
    if (engine.journal.openReport.replayedBytes >= snapshotAfterJournalBytes) engine.snapshot();
    return engine;
  }

  /** Writes a snapshot of the state now (everything appended is flushed first, so the two agree). */
  snapshot(): void {
    if (this.journal === null || this.snapshotPath === null) return;
    if (this.failure !== null) throw this.failure;
    this.journal.flush();
    writeSnapshot(this.snapshotPath, this.state, { journalId: this.journal.journalId, journalBytes: this.journal.committedBytes, journalTailCrc: this.journal.tailCrc() });
    this.snapshotJournalBytes = this.journal.committedBytes;
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

  /** Flushes, writes a snapshot when enough was journaled since the last, and releases the data file. */
  close(): void {
    if (this.closed) return;
    try {
      const journaledSinceSnapshot = (this.journal?.committedBytes ?? 0) - this.snapshotJournalBytes;
      if (this.journal !== null && this.failure === null && journaledSinceSnapshot >= this.snapshotAfterJournalBytes) this.snapshot();
    } finally {
      this.closed = true;
      this.journal?.close();
    }
  }

  /** Loads the snapshot if it is of this journal; otherwise says why and replays everything. */
  private loadMatchingSnapshot(snapshotPath: string, journal: { id: bigint; tailCrcAt: (offset: number) => number | null }): number | null {
    let header: ReturnType<typeof readSnapshotHeader>;
    try {
      header = readSnapshotHeader(snapshotPath);
      if (header === null) return null;
      if (header.journalId !== journal.id) throw new Error('it is not of this journal');
      if (journal.tailCrcAt(header.journalBytes) !== header.journalTailCrc) throw new Error('it does not match the journal (which ends before it or was rewritten)');
      loadSnapshot(snapshotPath, header, this.state);
      return header.journalBytes;
    } catch (error) {
      this.state = new LedgerState();
      this.openWarnings.push(`snapshot ${snapshotPath} ignored: ${(error as Error).message}; the whole journal was replayed`);
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

  private journalAppend(operation: RecordOperation, nowNanoseconds: bigint, events: readonly (Account | Transfer)[]): void {
    // An empty batch changes nothing (not even the timestamp), so it needs no record.
    if (this.journal === null || (operation !== RecordOperation.pulse && events.length === 0)) return;
    try {
      this.journal.append(encodeRecord(operation, nowNanoseconds, events));
    } catch (error) {
      // Memory is now ahead of the disk: refuse all further requests rather than diverge.
      this.failure = error instanceof Error ? error : new Error(String(error));
      throw this.failure;
    }
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
          throw new Error('journal: a pulse record that expires nothing; the journal does not match this engine');
        }
        return;
    }
  }
}
