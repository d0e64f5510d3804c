import { CreateTransferStatus, TransferFlags, type Transfer } from 'tigerbeetle-node';
import { u128Max } from './constants';
import type { LedgerState } from './state';

/**
 * Compares a resubmitted transfer with the stored one (src/state_machine.zig
 * `create_transfer_exists`). Flags first, because they change how the other fields compare.
 */
export function transferExistsStatus(
  state: LedgerState,
  t: Transfer,
  existing: Transfer,
): CreateTransferStatus {
  if (t.flags !== existing.flags) return CreateTransferStatus.exists_with_different_flags;
  if (t.pending_id !== existing.pending_id)
    return CreateTransferStatus.exists_with_different_pending_id;
  if (t.timeout !== existing.timeout) return CreateTransferStatus.exists_with_different_timeout;

  if (
    (t.flags & (TransferFlags.post_pending_transfer | TransferFlags.void_pending_transfer)) !==
    0
  ) {
    const pending = state.transfers.find(t.pending_id);
    if (pending < 0)
      throw new Error('assertion failed: a post or void without its pending transfer');
    return postOrVoidExistsStatus(t, existing, state.transfers.read(pending));
  }

  if (t.debit_account_id !== existing.debit_account_id)
    return CreateTransferStatus.exists_with_different_debit_account_id;
  if (t.credit_account_id !== existing.credit_account_id) {
    return CreateTransferStatus.exists_with_different_credit_account_id;
  }
  // A balancing transfer's amount is an upper limit; the stored amount may be smaller.
  const balancing =
    (t.flags & (TransferFlags.balancing_debit | TransferFlags.balancing_credit)) !== 0;
  if (balancing ? t.amount < existing.amount : t.amount !== existing.amount) {
    return CreateTransferStatus.exists_with_different_amount;
  }
  const userDataStatus = userDataExistsStatus(t, existing);
  if (userDataStatus !== null) return userDataStatus;
  if (t.ledger !== existing.ledger) return CreateTransferStatus.exists_with_different_ledger;
  if (t.code !== existing.code) return CreateTransferStatus.exists_with_different_code;
  return CreateTransferStatus.exists;
}

function userDataExistsStatus(t: Transfer, existing: Transfer): CreateTransferStatus | null {
  if (t.user_data_128 !== existing.user_data_128)
    return CreateTransferStatus.exists_with_different_user_data_128;
  if (t.user_data_64 !== existing.user_data_64)
    return CreateTransferStatus.exists_with_different_user_data_64;
  if (t.user_data_32 !== existing.user_data_32)
    return CreateTransferStatus.exists_with_different_user_data_32;
  return null;
}

/** Zero fields of a post or void mean "as the pending transfer", so they compare that way. */
function postOrVoidExistsStatus(
  t: Transfer,
  existing: Transfer,
  pending: Transfer,
): CreateTransferStatus {
  if (t.debit_account_id !== 0n && t.debit_account_id !== existing.debit_account_id) {
    return CreateTransferStatus.exists_with_different_debit_account_id;
  }
  if (t.credit_account_id !== 0n && t.credit_account_id !== existing.credit_account_id) {
    return CreateTransferStatus.exists_with_different_credit_account_id;
  }
  const voiding = (t.flags & TransferFlags.void_pending_transfer) !== 0;
  const meansFullAmount = voiding ? t.amount === 0n : t.amount === u128Max;
  if (meansFullAmount ? existing.amount !== pending.amount : t.amount !== existing.amount) {
    return CreateTransferStatus.exists_with_different_amount;
  }
  if (
    (t.user_data_128 === 0n ? pending.user_data_128 : t.user_data_128) !== existing.user_data_128
  ) {
    return CreateTransferStatus.exists_with_different_user_data_128;
  }
  if ((t.user_data_64 === 0n ? pending.user_data_64 : t.user_data_64) !== existing.user_data_64) {
    return CreateTransferStatus.exists_with_different_user_data_64;
  }
  if ((t.user_data_32 === 0 ? pending.user_data_32 : t.user_data_32) !== existing.user_data_32) {
    return CreateTransferStatus.exists_with_different_user_data_32;
  }
  if (t.ledger !== 0 && t.ledger !== existing.ledger)
    return CreateTransferStatus.exists_with_different_ledger;
  if (t.code !== 0 && t.code !== existing.code)
    return CreateTransferStatus.exists_with_different_code;
  return CreateTransferStatus.exists;
}
