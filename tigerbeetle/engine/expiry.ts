import { AccountFlags, TransferFlags } from 'tigerbeetle-node';
import { batchEventsMax } from './constants';
import { nextBatchTimestamp } from './batch';
import { PendingStatus } from './records';
import type { LedgerState } from './state';

/** Whether some pending transfer has timed out at `now` and waits for a pulse. */
export function pulseNeeded(state: LedgerState, nowNanoseconds: bigint): boolean {
  const expiresAt = state.expiryQueue.peekExpiresAt();
  return expiresAt !== null && expiresAt <= nowNanoseconds;
}

/**
 * TigerBeetle's `pulse`: voids, by timeout, at most one batch of pending transfers whose expiry is
 * at or before `now`, releasing their pending amounts and reopening accounts they were closing.
 * Returns how many transfers expired.
 */
export function expirePendingTransfers(state: LedgerState, nowNanoseconds: bigint): number {
  const due: number[] = [];
  while (due.length < batchEventsMax) {
    const slot = state.expiryQueue.popDue(nowNanoseconds);
    if (slot === null) break;
    due.push(slot);
  }
  if (due.length === 0) return 0;
  // Expiry events take timestamps too, like the pulse operation's events do.
  nextBatchTimestamp(state, nowNanoseconds, due.length);
  for (const slot of due) expireOne(state, slot);
  return due.length;
}

function expireOne(state: LedgerState, slot: number): void {
  const pending = state.transfers.read(slot);
  const debit = state.accounts.get(pending.debit_account_id);
  const credit = state.accounts.get(pending.credit_account_id);
  if (debit === undefined || credit === undefined)
    throw new Error('assertion failed: expiring without accounts');
  if (debit.debits_pending < pending.amount || credit.credits_pending < pending.amount) {
    throw new Error('assertion failed: pending balance below the expiring amount');
  }
  debit.debits_pending -= pending.amount;
  credit.credits_pending -= pending.amount;
  if ((pending.flags & TransferFlags.closing_debit) !== 0) debit.flags &= ~AccountFlags.closed;
  if ((pending.flags & TransferFlags.closing_credit) !== 0) credit.flags &= ~AccountFlags.closed;
  state.setPendingStatus(slot, PendingStatus.expired);
}
