import { AccountFlags, CreateAccountStatus, type Account } from 'tigerbeetle-node';
import { accountFlagsKnownMask, u128Max } from './constants';
import { AccountRecord } from './records';
import type { LedgerState } from './state';
import { containsTimestamp } from './timestamp-search';

/**
 * Creates one account, with TigerBeetle 0.17's checks in its order of precedence
 * (src/state_machine.zig `create_account`). The batch-level checks (linked chains, imported
 * batches, timestamp_must_be_zero) run before this, in batch.ts.
 */
export function createAccount(
  state: LedgerState,
  a: Account,
  timestamp: bigint,
): CreateAccountStatus {
  if (a.reserved !== 0) return CreateAccountStatus.reserved_field;
  if ((a.flags & ~accountFlagsKnownMask) !== 0) return CreateAccountStatus.reserved_flag;

  if (a.id === 0n) return CreateAccountStatus.id_must_not_be_zero;
  if (a.id === u128Max) return CreateAccountStatus.id_must_not_be_int_max;

  const existing = state.accounts.get(a.id);
  if (existing !== undefined) return accountExistsStatus(a, existing);

  const limitFlags =
    AccountFlags.debits_must_not_exceed_credits | AccountFlags.credits_must_not_exceed_debits;
  if ((a.flags & limitFlags) === limitFlags)
    return CreateAccountStatus.flags_are_mutually_exclusive;

  if (a.debits_pending !== 0n) return CreateAccountStatus.debits_pending_must_be_zero;
  if (a.debits_posted !== 0n) return CreateAccountStatus.debits_posted_must_be_zero;
  if (a.credits_pending !== 0n) return CreateAccountStatus.credits_pending_must_be_zero;
  if (a.credits_posted !== 0n) return CreateAccountStatus.credits_posted_must_be_zero;
  if (a.ledger === 0) return CreateAccountStatus.ledger_must_not_be_zero;
  if (a.code === 0) return CreateAccountStatus.code_must_not_be_zero;

  if ((a.flags & AccountFlags.imported) !== 0) {
    // After the idempotency check, so that importers still see `exists` on a retry.
    const last = state.accountsByTimestamp[state.accountsByTimestamp.length - 1];
    if (last !== undefined && timestamp <= last.timestamp) {
      return CreateAccountStatus.imported_event_timestamp_must_not_regress;
    }
    if (containsTimestamp(state.transfers, timestamp)) {
      return CreateAccountStatus.imported_event_timestamp_must_not_regress;
    }
  }

  state.insertAccount(
    new AccountRecord(
      a.id,
      a.user_data_128,
      a.user_data_64,
      a.user_data_32,
      a.ledger,
      a.code,
      a.flags,
      timestamp,
    ),
  );
  return CreateAccountStatus.created;
}

function accountExistsStatus(a: Account, existing: AccountRecord): CreateAccountStatus {
  if (a.flags !== existing.flags) return CreateAccountStatus.exists_with_different_flags;
  if (a.user_data_128 !== existing.user_data_128)
    return CreateAccountStatus.exists_with_different_user_data_128;
  if (a.user_data_64 !== existing.user_data_64)
    return CreateAccountStatus.exists_with_different_user_data_64;
  if (a.user_data_32 !== existing.user_data_32)
    return CreateAccountStatus.exists_with_different_user_data_32;
  if (a.ledger !== existing.ledger) return CreateAccountStatus.exists_with_different_ledger;
  if (a.code !== existing.code) return CreateAccountStatus.exists_with_different_code;
  return CreateAccountStatus.exists;
}
