import { AccountFlags, CreateTransferStatus, TransferFlags, type Transfer } from 'tigerbeetle-node';
import { nanosecondsPerSecond, u128Max } from './constants';
import { PendingStatus, type AccountRecord } from './records';
import type { LedgerState } from './state';
import { importedTimestampRegressStatus } from './transfer-common';

const incompatibleWithPostOrVoid =
  TransferFlags.pending |
  TransferFlags.balancing_debit |
  TransferFlags.balancing_credit |
  TransferFlags.closing_debit |
  TransferFlags.closing_credit;

/**
 * Posts or voids a pending transfer (src/state_machine.zig `post_or_void_pending_transfer`).
 * Posting `amount_max` posts the full pending amount; voiding with 0 voids the full amount.
 */
export function postOrVoidPendingTransfer(
  state: LedgerState,
  t: Transfer,
  timestamp: bigint,
): CreateTransferStatus {
  const posting = (t.flags & TransferFlags.post_pending_transfer) !== 0;
  const voiding = (t.flags & TransferFlags.void_pending_transfer) !== 0;
  if (posting && voiding) return CreateTransferStatus.flags_are_mutually_exclusive;
  if ((t.flags & incompatibleWithPostOrVoid) !== 0)
    return CreateTransferStatus.flags_are_mutually_exclusive;

  if (t.pending_id === 0n) return CreateTransferStatus.pending_id_must_not_be_zero;
  if (t.pending_id === u128Max) return CreateTransferStatus.pending_id_must_not_be_int_max;
  if (t.pending_id === t.id) return CreateTransferStatus.pending_id_must_be_different;
  if (t.timeout !== 0) return CreateTransferStatus.timeout_reserved_for_pending_transfer;

  const pendingSlot = state.transfers.find(t.pending_id);
  if (pendingSlot < 0) return CreateTransferStatus.pending_transfer_not_found;
  const pending = state.transfers.read(pendingSlot);
  if ((pending.flags & TransferFlags.pending) === 0)
    return CreateTransferStatus.pending_transfer_not_pending;

  const debit = state.accounts.get(pending.debit_account_id);
  const credit = state.accounts.get(pending.credit_account_id);
  if (debit === undefined || credit === undefined) {
    throw new Error('assertion failed: a pending transfer references a missing account');
  }
  const mismatchStatus = pendingMismatchStatus(t, pending);
  if (mismatchStatus !== null) return mismatchStatus;

  const amount = voiding
    ? t.amount > 0n
      ? t.amount
      : pending.amount
    : t.amount === u128Max
      ? pending.amount
      : t.amount;
  if (amount > pending.amount) return CreateTransferStatus.exceeds_pending_transfer_amount;
  if (voiding && amount < pending.amount)
    return CreateTransferStatus.pending_transfer_has_different_amount;

  const statusOfPending = pendingStateStatus(
    pending,
    state.transfers.pendingStatus(pendingSlot),
    timestamp,
  );
  if (statusOfPending !== null) return statusOfPending;

  if ((t.flags & TransferFlags.imported) !== 0) {
    const regressStatus = importedTimestampRegressStatus(state, timestamp);
    if (regressStatus !== null) return regressStatus;
  }
  // The only movement allowed on a closed account is voiding a pending transfer.
  if ((debit.flags & AccountFlags.closed) !== 0 && !voiding)
    return CreateTransferStatus.debit_account_already_closed;
  if ((credit.flags & AccountFlags.closed) !== 0 && !voiding)
    return CreateTransferStatus.credit_account_already_closed;

  applyPostOrVoid(state, t, { slot: pendingSlot, pending }, amount, timestamp, debit, credit);
  return CreateTransferStatus.created;
}

function pendingMismatchStatus(t: Transfer, pending: Transfer): CreateTransferStatus | null {
  if (t.debit_account_id !== 0n && t.debit_account_id !== pending.debit_account_id) {
    return CreateTransferStatus.pending_transfer_has_different_debit_account_id;
  }
  if (t.credit_account_id !== 0n && t.credit_account_id !== pending.credit_account_id) {
    return CreateTransferStatus.pending_transfer_has_different_credit_account_id;
  }
  // user_data may differ between the pending transfer and its post or void.
  if (t.ledger !== 0 && t.ledger !== pending.ledger)
    return CreateTransferStatus.pending_transfer_has_different_ledger;
  if (t.code !== 0 && t.code !== pending.code)
    return CreateTransferStatus.pending_transfer_has_different_code;
  return null;
}

function pendingStateStatus(
  pending: Transfer,
  status: PendingStatus,
  timestamp: bigint,
): CreateTransferStatus | null {
  switch (status) {
    case PendingStatus.pending:
      break;
    case PendingStatus.posted:
      return CreateTransferStatus.pending_transfer_already_posted;
    case PendingStatus.voided:
      return CreateTransferStatus.pending_transfer_already_voided;
    case PendingStatus.expired:
      return CreateTransferStatus.pending_transfer_expired;
    default:
      throw new Error(`assertion failed: pending transfer in status ${status}`);
  }
  // Expired by time even if the expiry pulse has not run yet.
  if (
    pending.timeout > 0 &&
    pending.timestamp + BigInt(pending.timeout) * nanosecondsPerSecond <= timestamp
  ) {
    return CreateTransferStatus.pending_transfer_expired;
  }
  return null;
}

function applyPostOrVoid(
  state: LedgerState,
  t: Transfer,
  { slot: pendingSlot, pending }: { slot: number; pending: Transfer },
  amount: bigint,
  timestamp: bigint,
  debit: AccountRecord,
  credit: AccountRecord,
): void {
  const posting = (t.flags & TransferFlags.post_pending_transfer) !== 0;
  state.rememberAccount(debit);
  state.rememberAccount(credit);
  debit.debits_pending -= pending.amount;
  credit.credits_pending -= pending.amount;
  if (posting) {
    debit.debits_posted += amount;
    credit.credits_posted += amount;
  } else {
    // Voiding a closing transfer reopens the account.
    if ((pending.flags & TransferFlags.closing_debit) !== 0) debit.flags &= ~AccountFlags.closed;
    if ((pending.flags & TransferFlags.closing_credit) !== 0) credit.flags &= ~AccountFlags.closed;
  }
  state.setPendingStatus(pendingSlot, posting ? PendingStatus.posted : PendingStatus.voided);
  state.insertTransfer(
    {
      id: t.id,
      debit_account_id: pending.debit_account_id,
      credit_account_id: pending.credit_account_id,
      amount,
      pending_id: t.pending_id,
      user_data_128: t.user_data_128 > 0n ? t.user_data_128 : pending.user_data_128,
      user_data_64: t.user_data_64 > 0n ? t.user_data_64 : pending.user_data_64,
      user_data_32: t.user_data_32 > 0 ? t.user_data_32 : pending.user_data_32,
      timeout: 0,
      ledger: pending.ledger,
      code: pending.code,
      flags: t.flags,
      timestamp,
    },
    PendingStatus.none,
    debit,
    credit,
  );
}
