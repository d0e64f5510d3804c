import type { Account } from 'tigerbeetle-node';

/** A new account as TigerBeetle takes it: every balance and user data field zero. */
export function newAccount(id: bigint, ledger: number, code: number, flags: number): Account {
  return {
    id,
    ledger,
    code,
    flags,
    debits_pending: 0n,
    debits_posted: 0n,
    credits_pending: 0n,
    credits_posted: 0n,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    reserved: 0,
    timestamp: 0n,
  };
}
