import type { Account, AccountFilter, QueryFilter, Transfer } from 'tigerbeetle-node';

export const ledgerId = 700;

export function account(id: bigint, fields: Partial<Account> = {}): Account {
  return {
    id,
    debits_pending: 0n,
    debits_posted: 0n,
    credits_pending: 0n,
    credits_posted: 0n,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    reserved: 0,
    ledger: ledgerId,
    code: 10,
    flags: 0,
    timestamp: 0n,
    ...fields,
  };
}

export function transfer(id: bigint, fields: Partial<Transfer> = {}): Transfer {
  return {
    id,
    debit_account_id: 1n,
    credit_account_id: 2n,
    amount: 10n,
    pending_id: 0n,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    timeout: 0,
    ledger: ledgerId,
    code: 20,
    flags: 0,
    timestamp: 0n,
    ...fields,
  };
}

export function accountFilter(
  accountId: bigint,
  fields: Partial<AccountFilter> = {},
): AccountFilter {
  return {
    account_id: accountId,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    code: 0,
    timestamp_min: 0n,
    timestamp_max: 0n,
    limit: 8189,
    flags: 3, // debits | credits
    ...fields,
  };
}

export function queryFilter(fields: Partial<QueryFilter> = {}): QueryFilter {
  return {
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    ledger: 0,
    code: 0,
    timestamp_min: 0n,
    timestamp_max: 0n,
    limit: 8189,
    flags: 0,
    ...fields,
  };
}
