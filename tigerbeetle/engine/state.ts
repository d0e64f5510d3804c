import type { Transfer } from 'tigerbeetle-node';
import { ExpiryQueue } from './expiry-queue';
import type { AccountRecord, PendingStatus } from './records';
import { TransferStore } from './transfer-store';

/**
 * Undo entries for a linked chain. TigerBeetle opens a "scope" for a chain and discards it when
 * an event fails; the engine records the inverse of every mutation while a chain is open and
 * replays them in reverse order to discard. Transfers are named by their slot in the store.
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
  | { kind: 'transfer_inserted'; slot: number; debit: AccountRecord; credit: AccountRecord }
  | { kind: 'pending_status_changed'; slot: number; status: PendingStatus };

/** Everything the ledger knows. Mutated only by the state machine (accounts.ts, transfers.ts, expiry.ts). */
export class LedgerState {
  readonly accounts = new Map<bigint, AccountRecord>();
  /** Accounts in timestamp order: timestamps only grow, imported ones included. */
  readonly accountsByTimestamp: AccountRecord[] = [];
  /** Every transfer, by slot; slots are in timestamp order, so it is the timestamp index too. */
  readonly transfers = new TransferStore();
  /** Ids of transfers that failed with a transient status; TigerBeetle 0.17 never reuses them. */
  readonly orphanedTransferIds = new Set<bigint>();
  readonly expiryQueue = new ExpiryQueue(this.transfers);
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

  /**
   * Stores a transfer (its id is new) whose balances were already applied to both accounts, and
   * keeps those balances for accounts with `flags.history`. Returns its slot.
   */
  insertTransfer(
    transfer: Transfer,
    status: PendingStatus,
    debit: AccountRecord,
    credit: AccountRecord,
  ): number {
    const slot = this.transfers.append(transfer, status);
    debit.debitTransfers.push(slot);
    credit.creditTransfers.push(slot);
    debit.debitBalances?.push(debit);
    credit.creditBalances?.push(credit);
    if (this.undoEntries !== null)
      this.undoEntries.push({ kind: 'transfer_inserted', slot, debit, credit });
    return slot;
  }

  setPendingStatus(slot: number, status: PendingStatus): void {
    if (this.undoEntries !== null) {
      this.undoEntries.push({
        kind: 'pending_status_changed',
        slot,
        status: this.transfers.pendingStatus(slot),
      });
    }
    this.transfers.setPendingStatus(slot, status);
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
        this.undoTransferInsert(entry.slot, entry.debit, entry.credit);
        return;
      }
      case 'pending_status_changed': {
        this.transfers.setPendingStatus(entry.slot, entry.status);
        return;
      }
    }
  }

  /** The newest transfer goes; the expiry queue skips its entry (see ExpiryQueue). */
  private undoTransferInsert(slot: number, debit: AccountRecord, credit: AccountRecord): void {
    if (slot !== this.transfers.length - 1)
      throw new Error('assertion failed: transfer undo out of order');
    if (debit.debitTransfers.pop() !== slot || credit.creditTransfers.pop() !== slot) {
      throw new Error('assertion failed: account transfer index undo out of order');
    }
    debit.debitBalances?.pop();
    credit.creditBalances?.pop();
    this.transfers.removeLast();
  }
}
