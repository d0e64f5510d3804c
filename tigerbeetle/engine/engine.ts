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
import * as queries from './queries';
import { LedgerState } from './state';

/**
 * The ledger: one state machine, one clock, and optionally a journal. Every request runs to
 * completion synchronously, in arrival order, so requests are serializable like TigerBeetle's.
 * Everything that changes the state is a journal record (creates, and pulses that expire pending
 * transfers), carrying the clock reading it used, so replaying the journal rebuilds the same
 * state, timestamps included.
 */
export class LedgerEngine {
  private readonly state = new LedgerState();
  private journal: Journal | null = null;
  private failure: Error | null = null;
  private closed = false;

  private constructor(private readonly clock: Clock) {}

  static open(clock: Clock, dataFile: string | null): LedgerEngine {
    const engine = new LedgerEngine(clock);
    if (dataFile !== null)
      engine.journal = Journal.open(dataFile, (record) => engine.replay(record));
    return engine;
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

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.journal?.close();
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
