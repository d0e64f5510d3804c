import type { Account, Transfer } from 'tigerbeetle-node';
// The enums alone: the package's index loads the native client, which must never run in Lambda.
import { AccountFilterFlags, AccountFlags, CreateAccountStatus, CreateTransferStatus, TransferFlags } from 'tigerbeetle-node/dist/bindings';
import type { LedgerClient } from '../../../tigerbeetle/ledger/client';
import { accountIdForUser, holdTransferId, operatorAccountId, releaseTransferId, settleTransferId, transferIdFor, type Role } from './ids';

/**
 * Prepaid credits on a TigerBeetle ledger. One account per user (debits must not exceed credits,
 * with history), a funding account that top-ups come from and a revenue account that usage goes
 * to. A billable request places a hold (a pending transfer user -> revenue with a timeout), then
 * settles it (posts the actual cost, the rest returns) or releases it (voids it). A hold nobody
 * resolves expires by itself: nothing lost, nothing charged twice.
 */

export const accountCodes = { funding: 1, revenue: 2, user: 100 } as const;
export const transferCodes = { topUp: 10, usage: 20, adjustmentCredit: 30, adjustmentDebit: 31 } as const;

export interface Balance {
  readonly userId: string;
  /** What the user may spend now: credits - debits - held. */
  readonly availableMicros: bigint;
  readonly heldMicros: bigint;
  readonly creditedMicros: bigint;
  readonly spentMicros: bigint;
}

export interface Hold {
  readonly holdId: bigint;
  readonly userId?: string;
  /** The user's account (set when the hold is read back from the ledger). */
  readonly debitAccountId?: bigint;
  readonly amountMicros: bigint;
  readonly timeoutSeconds: number;
  /** Ledger timestamp (ns) when the hold was placed. */
  readonly timestamp: bigint;
}

export type TopUpResult =
  | { kind: 'created' | 'replayed'; transferId: bigint; amountMicros: bigint; balance: Balance }
  | { kind: 'conflict' };

export type HoldResult =
  | { kind: 'created' | 'replayed'; hold: Hold }
  | { kind: 'insufficient'; availableMicros: bigint; keyAlreadyRefused: boolean }
  | { kind: 'conflict' };

/** `availableMicros`: the user's balance right after, for the response headers of the proxy. */
export type ResolveResult =
  | { kind: 'settled'; chargedMicros: bigint; releasedMicros: bigint; replayed: boolean; availableMicros: bigint }
  | { kind: 'released'; releasedMicros: bigint; replayed: boolean; availableMicros: bigint }
  | { kind: 'expired'; releasedMicros: bigint; availableMicros: bigint }
  | { kind: 'not_found' }
  | { kind: 'exceeds_hold'; heldMicros: bigint }
  | { kind: 'already_settled' }
  | { kind: 'already_released' }
  | { kind: 'conflict' };

export interface HistoryEntry {
  readonly transferId: bigint;
  readonly kind: 'top_up' | 'hold' | 'settle' | 'release' | 'adjustment';
  /** Positive adds to the user's credits, negative takes from them (a hold: reserves). */
  readonly direction: 'credit' | 'debit';
  readonly amountMicros: bigint;
  readonly pending: boolean;
  readonly holdId?: bigint;
  readonly timestamp: bigint;
}

/** A ledger answer this code does not expect: a bug or a misconfigured ledger, never user input. */
export class LedgerInvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LedgerInvariantError';
  }
}

const transferDefaults = { pending_id: 0n, user_data_128: 0n, user_data_64: 0n, user_data_32: 0, timeout: 0, timestamp: 0n };

function account(id: bigint, ledger: number, code: number, flags: number): Account {
  return {
    id, ledger, code, flags,
    debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n,
    user_data_128: 0n, user_data_64: 0n, user_data_32: 0, reserved: 0, timestamp: 0n,
  };
}

export function balanceOf(userId: string, ledgerAccount: Account): Balance {
  const { credits_posted, debits_posted, debits_pending } = ledgerAccount;
  return {
    userId,
    availableMicros: credits_posted - debits_posted - debits_pending,
    heldMicros: debits_pending,
    creditedMicros: credits_posted,
    spentMicros: debits_posted,
  };
}

export class Credits {
  private operatorAccountsReady: Promise<void> | undefined;

  constructor(
    private readonly ledger: LedgerClient,
    private readonly ledgerId: number,
  ) {}

  /** Creates the operator accounts once per process (idempotent across processes). */
  ensureOperatorAccounts(): Promise<void> {
    this.operatorAccountsReady ??= this.createOperatorAccounts().catch((error: unknown) => {
      this.operatorAccountsReady = undefined; // try again on the next request
      throw error;
    });
    return this.operatorAccountsReady;
  }

  /** Readiness: the operator accounts exist and the ledger answers a lookup now (a real round trip each time). */
  async checkReady(): Promise<void> {
    await this.ensureOperatorAccounts();
    const found = await this.ledger.lookupAccounts([operatorAccountId('funding')]);
    if (found.length !== 1) throw new LedgerInvariantError('the funding account is missing');
  }

  private async createOperatorAccounts(): Promise<void> {
    const results = await this.ledger.createAccounts([
      account(operatorAccountId('funding'), this.ledgerId, accountCodes.funding, AccountFlags.history),
      account(operatorAccountId('revenue'), this.ledgerId, accountCodes.revenue, AccountFlags.history),
    ]);
    for (const result of results) this.expectCreatedOrExists(result.status, 'operator account');
  }

  private expectCreatedOrExists(status: CreateAccountStatus, what: string): void {
    if (status !== CreateAccountStatus.created && status !== CreateAccountStatus.exists) {
      throw new LedgerInvariantError(`${what}: ${CreateAccountStatus[status] ?? status}`);
    }
  }

  async balance(userId: string): Promise<Balance | undefined> {
    const [found] = await this.ledger.lookupAccounts([accountIdForUser(userId)]);
    return found ? balanceOf(userId, found) : undefined;
  }

  private async ensureUserAccount(userId: string): Promise<void> {
    const [result] = await this.ledger.createAccounts([
      account(accountIdForUser(userId), this.ledgerId, accountCodes.user, AccountFlags.debits_must_not_exceed_credits | AccountFlags.history),
    ]);
    this.expectCreatedOrExists(result.status, 'user account');
  }

  /** Moves money from the funding account to the user (or back, for a debit adjustment). */
  async topUp(input: { userId: string; amountMicros: bigint; idempotencyKey: string; role: Role; adjustment?: 'credit' | 'debit' }): Promise<TopUpResult> {
    await this.ensureOperatorAccounts();
    await this.ensureUserAccount(input.userId);
    const user = accountIdForUser(input.userId);
    const funding = operatorAccountId('funding');
    const debit = input.adjustment === 'debit';
    const transfer: Transfer = {
      ...transferDefaults,
      id: transferIdFor(input.role, input.adjustment ? 'adjustment' : 'topup', input.idempotencyKey),
      debit_account_id: debit ? user : funding,
      credit_account_id: debit ? funding : user,
      amount: input.amountMicros,
      ledger: this.ledgerId,
      code: input.adjustment === undefined ? transferCodes.topUp : debit ? transferCodes.adjustmentDebit : transferCodes.adjustmentCredit,
      flags: TransferFlags.none,
    };
    const [result] = await this.ledger.createTransfers([transfer]);
    if (result.status === CreateTransferStatus.created || result.status === CreateTransferStatus.exists) {
      const balance = await this.balance(input.userId);
      if (!balance) throw new LedgerInvariantError('user account vanished after a top-up');
      return { kind: result.status === CreateTransferStatus.created ? 'created' : 'replayed', transferId: transfer.id, amountMicros: input.amountMicros, balance };
    }
    if (isExistsWithDifference(result.status)) return { kind: 'conflict' };
    if (debit && (result.status === CreateTransferStatus.exceeds_credits || result.status === CreateTransferStatus.id_already_failed)) {
      return { kind: 'conflict' };
    }
    throw new LedgerInvariantError(`top-up: ${CreateTransferStatus[result.status] ?? result.status}`);
  }

  /** Reserves up to `amountMicros` of the user's credits; atomic against concurrent holds. */
  async hold(input: { userId: string; amountMicros: bigint; timeoutSeconds: number; idempotencyKey: string }): Promise<HoldResult> {
    await this.ensureOperatorAccounts();
    const transfer: Transfer = {
      ...transferDefaults,
      id: holdTransferId(input.userId, input.idempotencyKey),
      debit_account_id: accountIdForUser(input.userId),
      credit_account_id: operatorAccountId('revenue'),
      amount: input.amountMicros,
      timeout: input.timeoutSeconds,
      ledger: this.ledgerId,
      code: transferCodes.usage,
      flags: TransferFlags.pending,
    };
    const [result] = await this.ledger.createTransfers([transfer]);
    switch (result.status) {
      case CreateTransferStatus.created:
        return { kind: 'created', hold: { holdId: transfer.id, userId: input.userId, amountMicros: input.amountMicros, timeoutSeconds: input.timeoutSeconds, timestamp: result.timestamp } };
      case CreateTransferStatus.exists:
        return { kind: 'replayed', hold: { holdId: transfer.id, userId: input.userId, amountMicros: input.amountMicros, timeoutSeconds: input.timeoutSeconds, timestamp: result.timestamp } };
      case CreateTransferStatus.exceeds_credits:
      case CreateTransferStatus.debit_account_not_found:
      case CreateTransferStatus.id_already_failed: {
        const balance = await this.balance(input.userId);
        return { kind: 'insufficient', availableMicros: balance?.availableMicros ?? 0n, keyAlreadyRefused: result.status === CreateTransferStatus.id_already_failed };
      }
      default:
        if (isExistsWithDifference(result.status)) return { kind: 'conflict' };
        throw new LedgerInvariantError(`hold: ${CreateTransferStatus[result.status] ?? result.status}`);
    }
  }

  /** The hold with this id, if it is one of ours. */
  async findHold(holdId: bigint): Promise<Hold | undefined> {
    const [found] = await this.ledger.lookupTransfers([holdId]);
    if (!found || (found.flags & TransferFlags.pending) === 0 || found.code !== transferCodes.usage) return undefined;
    return { holdId, debitAccountId: found.debit_account_id, amountMicros: found.amount, timeoutSeconds: found.timeout, timestamp: found.timestamp };
  }

  private async availableOf(hold: Hold): Promise<bigint> {
    const [found] = await this.ledger.lookupAccounts([hold.debitAccountId ?? 0n]);
    if (!found) throw new LedgerInvariantError('the account of a hold vanished');
    return found.credits_posted - found.debits_posted - found.debits_pending;
  }

  /** Charges `amountMicros` (at most the hold) and returns the rest to the user. */
  async settle(holdId: bigint, amountMicros: bigint): Promise<ResolveResult> {
    const hold = await this.findHold(holdId);
    if (!hold) return { kind: 'not_found' };
    if (amountMicros > hold.amountMicros) return { kind: 'exceeds_hold', heldMicros: hold.amountMicros };
    const [result] = await this.ledger.createTransfers([this.resolution(settleTransferId(holdId), holdId, amountMicros, TransferFlags.post_pending_transfer)]);
    switch (result.status) {
      case CreateTransferStatus.created:
      case CreateTransferStatus.exists:
        return {
          kind: 'settled',
          chargedMicros: amountMicros,
          releasedMicros: hold.amountMicros - amountMicros,
          replayed: result.status === CreateTransferStatus.exists,
          availableMicros: await this.availableOf(hold),
        };
      case CreateTransferStatus.exists_with_different_amount:
        return { kind: 'conflict' };
      default:
        return this.resolutionRefused(hold, result.status);
    }
  }

  /** Returns the whole hold to the user. Releasing an expired hold reports it as expired. */
  async release(holdId: bigint): Promise<ResolveResult> {
    const hold = await this.findHold(holdId);
    if (!hold) return { kind: 'not_found' };
    const [result] = await this.ledger.createTransfers([this.resolution(releaseTransferId(holdId), holdId, 0n, TransferFlags.void_pending_transfer)]);
    if (result.status === CreateTransferStatus.created || result.status === CreateTransferStatus.exists) {
      return { kind: 'released', releasedMicros: hold.amountMicros, replayed: result.status === CreateTransferStatus.exists, availableMicros: await this.availableOf(hold) };
    }
    return this.resolutionRefused(hold, result.status);
  }

  private resolution(id: bigint, holdId: bigint, amount: bigint, flags: TransferFlags): Transfer {
    // Zero accounts, ledger and code inherit the pending transfer's.
    return { ...transferDefaults, id, pending_id: holdId, debit_account_id: 0n, credit_account_id: 0n, amount, ledger: 0, code: 0, flags };
  }

  /**
   * Why a settle or release was refused. A refusal binds the id (TigerBeetle 0.17), so a retry sees
   * `id_already_failed`; the hold's other resolution then tells which way it went.
   */
  private async resolutionRefused(hold: Hold, status: CreateTransferStatus): Promise<ResolveResult> {
    switch (status) {
      case CreateTransferStatus.pending_transfer_already_posted:
        return { kind: 'already_settled' };
      case CreateTransferStatus.pending_transfer_already_voided:
        return { kind: 'already_released' };
      case CreateTransferStatus.pending_transfer_expired:
        return { kind: 'expired', releasedMicros: hold.amountMicros, availableMicros: await this.availableOf(hold) };
      case CreateTransferStatus.id_already_failed: {
        const [settled, released] = await this.ledger.lookupTransfers([settleTransferId(hold.holdId), releaseTransferId(hold.holdId)]).then((found) => [
          found.some((transfer) => transfer.id === settleTransferId(hold.holdId)),
          found.some((transfer) => transfer.id === releaseTransferId(hold.holdId)),
        ]);
        if (settled) return { kind: 'already_settled' };
        if (released) return { kind: 'already_released' };
        return { kind: 'expired', releasedMicros: hold.amountMicros, availableMicros: await this.availableOf(hold) };
      }
      default:
        throw new LedgerInvariantError(`resolve hold: ${CreateTransferStatus[status] ?? status}`);
    }
  }

  /** Newest first; `beforeTimestamp` pages backwards (exclusive). */
  async history(userId: string, limit: number, beforeTimestamp?: bigint): Promise<HistoryEntry[] | undefined> {
    const user = accountIdForUser(userId);
    const [found] = await this.ledger.lookupAccounts([user]);
    if (!found) return undefined;
    const transfers = await this.ledger.getAccountTransfers({
      account_id: user,
      user_data_128: 0n,
      user_data_64: 0n,
      user_data_32: 0,
      code: 0,
      timestamp_min: 0n,
      timestamp_max: beforeTimestamp === undefined ? 0n : beforeTimestamp - 1n,
      limit,
      flags: AccountFilterFlags.debits | AccountFilterFlags.credits | AccountFilterFlags.reversed,
    });
    return transfers.map((transfer) => historyEntry(user, transfer));
  }
}

function historyEntry(user: bigint, transfer: Transfer): HistoryEntry {
  const direction = transfer.credit_account_id === user ? 'credit' : 'debit';
  const base = { transferId: transfer.id, direction, amountMicros: transfer.amount, timestamp: transfer.timestamp } as const;
  if (transfer.flags & TransferFlags.pending) return { ...base, kind: 'hold', pending: true };
  if (transfer.flags & TransferFlags.post_pending_transfer) return { ...base, kind: 'settle', pending: false, holdId: transfer.pending_id };
  if (transfer.flags & TransferFlags.void_pending_transfer) return { ...base, kind: 'release', pending: false, holdId: transfer.pending_id };
  const kind = transfer.code === transferCodes.topUp ? 'top_up' : 'adjustment';
  return { ...base, kind, pending: false };
}

function isExistsWithDifference(status: CreateTransferStatus): boolean {
  return (CreateTransferStatus[status] ?? '').startsWith('exists_with_different_');
}
