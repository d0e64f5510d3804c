import { ExpiryQueue } from './expiry-queue';
import type { AccountRecord, PendingStatus, TransferRecord } from './records';

/**
 * Undo entries for a linked chain. TigerBeetle opens a "scope" for a chain and discards it when
 * an event fails; the engine records the inverse of every mutation while a chain is open and
 * replays them in reverse order to discard.
 */
type UndoEntry =
  | { kind: 'account_inserted'; record: AccountRecord }
  | {
      kind: 'account_updated';
      record: AccountRecord;
      debitsPending: bigint;
      debitsPosted: bigint;
      creditsPending: bigint;
      creditsPosted: bigint;
      flags: number;
    }
  | { kind: 'transfer_inserted'; record: TransferRecord }
  | { kind: 'pending_status_changed'; record: TransferRecord; status: PendingStatus };

/** Everything the ledger knows. Mutated only by the state machine (accounts.ts, transfers.ts, expiry.ts). */
export class LedgerState {
  readonly accounts = new Map<bigint, AccountRecord>();
  /** Accounts in timestamp order: timestamps only grow, imported ones included. */
  readonly accountsByTimestamp: AccountRecord[] = [];
  readonly transfers = new Map<bigint, TransferRecord>();
  /** Transfers in timestamp order. */
  readonly transfersByTimestamp: TransferRecord[] = [];
  /** Ids of transfers that failed with a transient status; TigerBeetle 0.17 never reuses them. */
  readonly orphanedTransferIds = new Set<bigint>();
  readonly expiryQueue = new ExpiryQueue();
  /** The highest timestamp handed out so far (TigerBeetle's prepare timestamp). */
  lastTimestamp = 0n;

  private undoEntries: UndoEntry[] | null = null;

  get chainOpen(): boolean {
    return this.undoEntries !== null;
  }

  openChain(): void {
    if (this.undoEntries !== null)
      throw new Error('assertion failed: a linked chain is already open');
    this.undoEntries = [];
  }

  persistChain(): void {
    if (this.undoEntries === null) throw new Error('assertion failed: no linked chain is open');
    this.undoEntries = null;
  }

  discardChain(): void {
    const entries = this.undoEntries;
    if (entries === null) throw new Error('assertion failed: no linked chain is open');
    this.undoEntries = null;
    for (let index = entries.length - 1; index >= 0; index -= 1) this.undo(entries[index]);
  }

  insertAccount(record: AccountRecord): void {
    this.accounts.set(record.id, record);
    this.accountsByTimestamp.push(record);
    if (this.undoEntries !== null) this.undoEntries.push({ kind: 'account_inserted', record });
  }

  /** Call before changing an account's balances or flags, so a discarded chain can restore them. */
  rememberAccount(record: AccountRecord): void {
    if (this.undoEntries === null) return;
    this.undoEntries.push({
      kind: 'account_updated',
      record,
      debitsPending: record.debits_pending,
      debitsPosted: record.debits_posted,
      creditsPending: record.credits_pending,
      creditsPosted: record.credits_posted,
      flags: record.flags,
    });
  }

  insertTransfer(record: TransferRecord, debit: AccountRecord, credit: AccountRecord): void {
    this.transfers.set(record.id, record);
    this.transfersByTimestamp.push(record);
    debit.debitTransfers.push(record);
    credit.creditTransfers.push(record);
    if (this.undoEntries !== null) this.undoEntries.push({ kind: 'transfer_inserted', record });
  }

  setPendingStatus(record: TransferRecord, status: PendingStatus): void {
    if (this.undoEntries !== null) {
      this.undoEntries.push({
        kind: 'pending_status_changed',
        record,
        status: record.pendingStatus,
      });
    }
    record.pendingStatus = status;
  }

  private undo(entry: UndoEntry): void {
    switch (entry.kind) {
      case 'account_inserted': {
        this.accounts.delete(entry.record.id);
        const popped = this.accountsByTimestamp.pop();
        if (popped !== entry.record) throw new Error('assertion failed: account undo out of order');
        return;
      }
      case 'account_updated': {
        entry.record.debits_pending = entry.debitsPending;
        entry.record.debits_posted = entry.debitsPosted;
        entry.record.credits_pending = entry.creditsPending;
        entry.record.credits_posted = entry.creditsPosted;
        entry.record.flags = entry.flags;
        return;
      }
      case 'transfer_inserted': {
        this.undoTransferInsert(entry.record);
        return;
      }
      case 'pending_status_changed': {
        entry.record.pendingStatus = entry.status;
        return;
      }
    }
  }

  private undoTransferInsert(record: TransferRecord): void {
    this.transfers.delete(record.id);
    record.removed = true;
    const popped = this.transfersByTimestamp.pop();
    const debit = this.accounts.get(record.debit_account_id);
    const credit = this.accounts.get(record.credit_account_id);
    if (popped !== record || debit === undefined || credit === undefined) {
      throw new Error('assertion failed: transfer undo out of order');
    }
    if (debit.debitTransfers.pop() !== record || credit.creditTransfers.pop() !== record) {
      throw new Error('assertion failed: account transfer index undo out of order');
    }
  }
}
