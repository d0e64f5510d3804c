import { AccountFlags, type Account } from 'tigerbeetle-node';
import { BalanceList, SlotList } from './slot-list';

/** The lifecycle of a pending transfer, as TigerBeetle's `TransferPendingStatus`. */
export const PendingStatus = {
  none: 0,
  pending: 1,
  posted: 2,
  voided: 3,
  expired: 4,
} as const;
export type PendingStatus = (typeof PendingStatus)[keyof typeof PendingStatus];

/**
 * A stored account: the account's fields plus the indexes the queries need. A class, so every
 * record has the same shape for the JavaScript engine.
 */
export class AccountRecord {
  debits_pending = 0n;
  debits_posted = 0n;
  credits_pending = 0n;
  credits_posted = 0n;
  /** Slots of the transfers that debit this account, in timestamp order (timestamps only grow). */
  debitTransfers = new SlotList();
  /** Slots of the transfers that credit this account, in timestamp order. */
  creditTransfers = new SlotList();
  /**
   * With `flags.history` (which never changes after creation): the balances right after each
   * transfer, index for index with `debitTransfers` and `creditTransfers`; otherwise null.
   */
  debitBalances: BalanceList | null;
  creditBalances: BalanceList | null;

  constructor(
    readonly id: bigint,
    readonly user_data_128: bigint,
    readonly user_data_64: bigint,
    readonly user_data_32: number,
    readonly ledger: number,
    readonly code: number,
    public flags: number,
    readonly timestamp: bigint,
  ) {
    const history = (flags & AccountFlags.history) !== 0;
    this.debitBalances = history ? new BalanceList() : null;
    this.creditBalances = history ? new BalanceList() : null;
  }

  /** A stored account as a snapshot holds it (TigerBeetle's account layout), balances included. */
  static fromAccount(account: Account): AccountRecord {
    const record = new AccountRecord(
      account.id,
      account.user_data_128,
      account.user_data_64,
      account.user_data_32,
      account.ledger,
      account.code,
      account.flags,
      account.timestamp,
    );
    record.debits_pending = account.debits_pending;
    record.debits_posted = account.debits_posted;
    record.credits_pending = account.credits_pending;
    record.credits_posted = account.credits_posted;
    return record;
  }

  toAccount(): Account {
    return {
      id: this.id,
      debits_pending: this.debits_pending,
      debits_posted: this.debits_posted,
      credits_pending: this.credits_pending,
      credits_posted: this.credits_posted,
      user_data_128: this.user_data_128,
      user_data_64: this.user_data_64,
      user_data_32: this.user_data_32,
      reserved: 0,
      ledger: this.ledger,
      code: this.code,
      flags: this.flags,
      timestamp: this.timestamp,
    };
  }
}
