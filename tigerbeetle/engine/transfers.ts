import { AccountFlags, CreateTransferStatus, TransferFlags, type Transfer } from 'tigerbeetle-node';
import {
  nanosecondsPerSecond,
  timestampMaxNanoseconds,
  transferFlagsKnownMask,
  u128Max,
} from './constants';
import { postOrVoidPendingTransfer } from './post-void';
import { PendingStatus, type AccountRecord } from './records';
import type { LedgerState } from './state';
import { importedTimestampRegressStatus } from './transfer-common';
import { transferExistsStatus } from './transfer-exists';

/**
 * Creates one transfer with TigerBeetle 0.17's checks in its order of precedence
 * (src/state_machine.zig `create_transfer`). Batch-level checks run before this, in batch.ts.
 */
export function createTransfer(
  state: LedgerState,
  t: Transfer,
  timestamp: bigint,
): CreateTransferStatus {
  if ((t.flags & ~transferFlagsKnownMask) !== 0) return CreateTransferStatus.reserved_flag;

  if (t.id === 0n) return CreateTransferStatus.id_must_not_be_zero;
  if (t.id === u128Max) return CreateTransferStatus.id_must_not_be_int_max;

  const existing = state.transfers.find(t.id);
  if (existing >= 0) return transferExistsStatus(state, t, state.transfers.read(existing));
  // 0.17: an id that failed with a transient status is bound to that failure forever.
  if (state.orphanedTransferIds.has(t.id)) return CreateTransferStatus.id_already_failed;

  if (
    (t.flags & (TransferFlags.post_pending_transfer | TransferFlags.void_pending_transfer)) !==
    0
  ) {
    return postOrVoidPendingTransfer(state, t, timestamp);
  }
  return createNewTransfer(state, t, timestamp);
}

/** The statuses TigerBeetle 0.17 calls transient: retrying the same request could succeed later. */
export function isTransientTransferStatus(status: CreateTransferStatus): boolean {
  switch (status) {
    case CreateTransferStatus.debit_account_not_found:
    case CreateTransferStatus.credit_account_not_found:
    case CreateTransferStatus.pending_transfer_not_found:
    case CreateTransferStatus.exceeds_credits:
    case CreateTransferStatus.exceeds_debits:
    case CreateTransferStatus.debit_account_already_closed:
    case CreateTransferStatus.credit_account_already_closed:
      return true;
    default:
      return false;
  }
}

function createNewTransfer(
  state: LedgerState,
  t: Transfer,
  timestamp: bigint,
): CreateTransferStatus {
  const fieldStatus = validateNewTransferFields(t);
  if (fieldStatus !== null) return fieldStatus;

  const debit = state.accounts.get(t.debit_account_id);
  if (debit === undefined) return CreateTransferStatus.debit_account_not_found;
  const credit = state.accounts.get(t.credit_account_id);
  if (credit === undefined) return CreateTransferStatus.credit_account_not_found;

  if (debit.ledger !== credit.ledger)
    return CreateTransferStatus.accounts_must_have_the_same_ledger;
  if (t.ledger !== debit.ledger)
    return CreateTransferStatus.transfer_must_have_the_same_ledger_as_accounts;

  if ((t.flags & TransferFlags.imported) !== 0) {
    const importedStatus = validateImportedNewTransfer(state, t, timestamp, debit, credit);
    if (importedStatus !== null) return importedStatus;
  }
  if ((debit.flags & AccountFlags.closed) !== 0)
    return CreateTransferStatus.debit_account_already_closed;
  if ((credit.flags & AccountFlags.closed) !== 0)
    return CreateTransferStatus.credit_account_already_closed;

  const amount = balancedAmount(t, debit, credit);
  const overflowStatus = overflowStatusOf(t, amount, debit, credit, timestamp);
  if (overflowStatus !== null) return overflowStatus;

  if (
    (debit.flags & AccountFlags.debits_must_not_exceed_credits) !== 0 &&
    debit.debits_pending + debit.debits_posted + amount > debit.credits_posted
  ) {
    return CreateTransferStatus.exceeds_credits;
  }
  if (
    (credit.flags & AccountFlags.credits_must_not_exceed_debits) !== 0 &&
    credit.credits_pending + credit.credits_posted + amount > credit.debits_posted
  ) {
    return CreateTransferStatus.exceeds_debits;
  }

  applyNewTransfer(state, t, amount, timestamp, debit, credit);
  return CreateTransferStatus.created;
}

function validateNewTransferFields(t: Transfer): CreateTransferStatus | null {
  if (t.debit_account_id === 0n) return CreateTransferStatus.debit_account_id_must_not_be_zero;
  if (t.debit_account_id === u128Max)
    return CreateTransferStatus.debit_account_id_must_not_be_int_max;
  if (t.credit_account_id === 0n) return CreateTransferStatus.credit_account_id_must_not_be_zero;
  if (t.credit_account_id === u128Max)
    return CreateTransferStatus.credit_account_id_must_not_be_int_max;
  if (t.credit_account_id === t.debit_account_id)
    return CreateTransferStatus.accounts_must_be_different;

  if (t.pending_id !== 0n) return CreateTransferStatus.pending_id_must_be_zero;
  if ((t.flags & TransferFlags.pending) === 0) {
    if (t.timeout !== 0) return CreateTransferStatus.timeout_reserved_for_pending_transfer;
    if ((t.flags & (TransferFlags.closing_debit | TransferFlags.closing_credit)) !== 0) {
      return CreateTransferStatus.closing_transfer_must_be_pending;
    }
  }

  if (t.ledger === 0) return CreateTransferStatus.ledger_must_not_be_zero;
  if (t.code === 0) return CreateTransferStatus.code_must_not_be_zero;
  return null;
}

/**
 * An imported transfer keeps the user's timestamp, which must be later than every transfer,
 * unequal to every account's timestamp, and later than both of its accounts.
 */
function validateImportedNewTransfer(
  state: LedgerState,
  t: Transfer,
  timestamp: bigint,
  debit: AccountRecord,
  credit: AccountRecord,
): CreateTransferStatus | null {
  const regressStatus = importedTimestampRegressStatus(state, timestamp);
  if (regressStatus !== null) return regressStatus;
  if (timestamp <= debit.timestamp)
    return CreateTransferStatus.imported_event_timestamp_must_postdate_debit_account;
  if (timestamp <= credit.timestamp)
    return CreateTransferStatus.imported_event_timestamp_must_postdate_credit_account;
  if (t.timeout !== 0) return CreateTransferStatus.imported_event_timeout_must_be_zero;
  return null;
}

/** Balancing transfers move at most `amount`, and no more than keeps the account in balance. */
function balancedAmount(t: Transfer, debit: AccountRecord, credit: AccountRecord): bigint {
  let amount = t.amount;
  if ((t.flags & TransferFlags.balancing_debit) !== 0) {
    const debitBalance = debit.debits_posted + debit.debits_pending;
    const room = debit.credits_posted > debitBalance ? debit.credits_posted - debitBalance : 0n;
    if (room < amount) amount = room;
  }
  if ((t.flags & TransferFlags.balancing_credit) !== 0) {
    const creditBalance = credit.credits_posted + credit.credits_pending;
    const room = credit.debits_posted > creditBalance ? credit.debits_posted - creditBalance : 0n;
    if (room < amount) amount = room;
  }
  return amount;
}

function overflowStatusOf(
  t: Transfer,
  amount: bigint,
  debit: AccountRecord,
  credit: AccountRecord,
  timestamp: bigint,
): CreateTransferStatus | null {
  if ((t.flags & TransferFlags.pending) !== 0) {
    if (amount + debit.debits_pending > u128Max)
      return CreateTransferStatus.overflows_debits_pending;
    if (amount + credit.credits_pending > u128Max)
      return CreateTransferStatus.overflows_credits_pending;
  }
  if (amount + debit.debits_posted > u128Max) return CreateTransferStatus.overflows_debits_posted;
  if (amount + credit.credits_posted > u128Max)
    return CreateTransferStatus.overflows_credits_posted;
  if (amount + debit.debits_pending + debit.debits_posted > u128Max)
    return CreateTransferStatus.overflows_debits;
  if (amount + credit.credits_pending + credit.credits_posted > u128Max)
    return CreateTransferStatus.overflows_credits;
  if (timestamp + BigInt(t.timeout) * nanosecondsPerSecond > timestampMaxNanoseconds) {
    return CreateTransferStatus.overflows_timeout;
  }
  return null;
}

function applyNewTransfer(
  state: LedgerState,
  t: Transfer,
  amount: bigint,
  timestamp: bigint,
  debit: AccountRecord,
  credit: AccountRecord,
): void {
  const pending = (t.flags & TransferFlags.pending) !== 0;
  state.rememberAccount(debit);
  state.rememberAccount(credit);
  if (pending) {
    debit.debits_pending += amount;
    credit.credits_pending += amount;
  } else {
    debit.debits_posted += amount;
    credit.credits_posted += amount;
  }
  if ((t.flags & TransferFlags.closing_debit) !== 0) debit.flags |= AccountFlags.closed;
  if ((t.flags & TransferFlags.closing_credit) !== 0) credit.flags |= AccountFlags.closed;

  const slot = state.insertTransfer(
    {
      id: t.id,
      debit_account_id: t.debit_account_id,
      credit_account_id: t.credit_account_id,
      amount,
      pending_id: 0n,
      user_data_128: t.user_data_128,
      user_data_64: t.user_data_64,
      user_data_32: t.user_data_32,
      timeout: t.timeout,
      ledger: t.ledger,
      code: t.code,
      flags: t.flags,
      timestamp,
    },
    pending ? PendingStatus.pending : PendingStatus.none,
    debit,
    credit,
  );
  if (t.timeout > 0) {
    state.expiryQueue.push(timestamp + BigInt(t.timeout) * nanosecondsPerSecond, slot);
  }
}
