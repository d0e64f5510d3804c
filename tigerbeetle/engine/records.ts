import type { Account, AccountBalance, Transfer } from 'tigerbeetle-node';

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
  /** Transfers that debit this account, in timestamp order (timestamps only grow). */
  readonly debitTransfers: TransferRecord[] = [];
  /** Transfers that credit this account, in timestamp order. */
  readonly creditTransfers: TransferRecord[] = [];

  constructor(
    readonly id: bigint,
    readonly user_data_128: bigint,
    readonly user_data_64: bigint,
    readonly user_data_32: number,
    readonly ledger: number,
    readonly code: number,
    public flags: number,
    readonly timestamp: bigint,
  ) {}

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

  balanceAt(timestamp: bigint): AccountBalance {
    return {
      debits_pending: this.debits_pending,
      debits_posted: this.debits_posted,
      credits_pending: this.credits_pending,
      credits_posted: this.credits_posted,
      timestamp,
    };
  }
}

/** A stored transfer plus its pending status and the balances its accounts had right after it. */
export class TransferRecord {
  pendingStatus: PendingStatus;
  /** Set when a linked chain rolls the transfer back, so the expiry queue skips it. */
  removed = false;
  /** Debit account's balance after this transfer, kept only for accounts with `flags.history`. */
  debitBalance: AccountBalance | null = null;
  /** Credit account's balance after this transfer, kept only for accounts with `flags.history`. */
  creditBalance: AccountBalance | null = null;

  constructor(
    readonly id: bigint,
    readonly debit_account_id: bigint,
    readonly credit_account_id: bigint,
    readonly amount: bigint,
    readonly pending_id: bigint,
    readonly user_data_128: bigint,
    readonly user_data_64: bigint,
    readonly user_data_32: number,
    readonly timeout: number,
    readonly ledger: number,
    readonly code: number,
    readonly flags: number,
    readonly timestamp: bigint,
    pendingStatus: PendingStatus,
  ) {
    this.pendingStatus = pendingStatus;
  }

  toTransfer(): Transfer {
    return {
      id: this.id,
      debit_account_id: this.debit_account_id,
      credit_account_id: this.credit_account_id,
      amount: this.amount,
      pending_id: this.pending_id,
      user_data_128: this.user_data_128,
      user_data_64: this.user_data_64,
      user_data_32: this.user_data_32,
      timeout: this.timeout,
      ledger: this.ledger,
      code: this.code,
      flags: this.flags,
      timestamp: this.timestamp,
    };
  }
}
