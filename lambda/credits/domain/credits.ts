import type { Account, Transfer } from 'tigerbeetle-node';
// The enums alone: the package's index loads the native client, which must never run in Lambda.
import {
  AccountFilterFlags,
  AccountFlags,
  CreateAccountStatus,
  CreateTransferStatus,
  TransferFlags,
} from 'tigerbeetle-node/dist/bindings';
import type { LedgerClient } from '../../../tigerbeetle/ledger/client';
import { executeLedgerOperations } from '../../../tigerbeetle/ledger/operations';
import { operatorReference } from '../../shared/receipts';
import { LedgerInvariantError } from './ledger-invariant';
import { newAccount } from './ledger-records';
import type { RateLimiter, RateVerdict } from './rate-limit';
import {
  accountIdForUser,
  deriveId,
  holdTransferId,
  operatorAccountId,
  releaseTransferId,
  settleTransferId,
  transferIdFor,
  type Role,
} from './ids';

/**
 * Prepaid credits on a TigerBeetle ledger. One account per user (debits must not exceed credits,
 * with history), a funding account that top-ups come from and a revenue account that usage goes
 * to. A billable request places a hold (a pending transfer user -> revenue with a timeout), then
 * settles it (posts the actual cost, the rest returns) or releases it (voids it). A hold nobody
 * resolves expires by itself: nothing lost, nothing charged twice.
 */

export const accountCodes = { funding: 1, revenue: 2, user: 100 } as const;
export const transferCodes = {
  topUp: 10,
  usage: 20,
  adjustmentCredit: 30,
  adjustmentDebit: 31,
} as const;

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
  /** The request the hold was placed for (its receipt's user_data_128), when it carries one. */
  readonly requestUserData?: bigint;
}

/** `insufficient`: a debit adjustment over the available balance (a new key, or one already refused for it). */
export type TopUpResult =
  | { kind: 'created' | 'replayed'; transferId: bigint; amountMicros: bigint; balance: Balance }
  | { kind: 'insufficient'; availableMicros: bigint; keyAlreadyRefused: boolean }
  | { kind: 'conflict' };

/** What a hold says about its request, in its user data (lambda/shared/receipts.ts). */
export interface ReceiptData {
  /** The request id's 128 bits (`user_data_128`). */
  readonly requestId: bigint;
  /** The key reference (`user_data_64`). */
  readonly keyReference: bigint;
  /** The model's ledger code (`user_data_32`). */
  readonly modelCode: number;
}

export interface HoldInput {
  readonly userId: string;
  readonly amountMicros: bigint;
  readonly timeoutSeconds: number;
  readonly idempotencyKey: string;
  /** Written into the hold's user data; its settlement or release inherits it. */
  readonly receipt?: ReceiptData;
}

/** A hold's outcome, plus the rate-limit verdict when the admission carried a unit (undefined when the hold failed first). */
export type AdmissionResult =
  (HoldResult & { rate?: RateVerdict }) | { kind: 'rate_limited'; verdict: RateVerdict };

export type HoldResult =
  | { kind: 'created' | 'replayed'; hold: Hold }
  | { kind: 'insufficient'; availableMicros: bigint; keyAlreadyRefused: boolean }
  | { kind: 'conflict' };

/** `availableMicros`: the user's balance right after, for the response headers of the proxy. */
export type ResolveResult =
  | {
      kind: 'settled';
      chargedMicros: bigint;
      releasedMicros: bigint;
      replayed: boolean;
      availableMicros: bigint;
    }
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

const transferDefaults = {
  pending_id: 0n,
  user_data_128: 0n,
  user_data_64: 0n,
  user_data_32: 0,
  timeout: 0,
  timestamp: 0n,
};

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
  /** Set once the operator accounts are known to exist: admissions stop creating them. */
  private operatorAccountsKnown = false;

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

  private operatorAccounts(): Account[] {
    return [
      newAccount(
        operatorAccountId('funding'),
        this.ledgerId,
        accountCodes.funding,
        AccountFlags.history,
      ),
      newAccount(
        operatorAccountId('revenue'),
        this.ledgerId,
        accountCodes.revenue,
        AccountFlags.history,
      ),
    ];
  }

  private async createOperatorAccounts(): Promise<void> {
    const results = await this.ledger.createAccounts(this.operatorAccounts());
    for (const result of results) this.expectCreatedOrExists(result.status, 'operator account');
    this.operatorAccountsKnown = true;
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
      newAccount(
        accountIdForUser(userId),
        this.ledgerId,
        accountCodes.user,
        AccountFlags.debits_must_not_exceed_credits | AccountFlags.history,
      ),
    ]);
    this.expectCreatedOrExists(result.status, 'user account');
  }

  /** Moves money from the funding account to the user (or back, for a debit adjustment). */
  async topUp(input: {
    userId: string;
    amountMicros: bigint;
    idempotencyKey: string;
    role: Role;
    adjustment?: 'credit' | 'debit';
  }): Promise<TopUpResult> {
    await this.ensureOperatorAccounts();
    await this.ensureUserAccount(input.userId);
    const user = accountIdForUser(input.userId);
    const funding = operatorAccountId('funding');
    const debit = input.adjustment === 'debit';
    const transfer: Transfer = {
      ...transferDefaults,
      // The operator's reference (an invoice number, say): the ledger finds the transfer by it.
      user_data_128: operatorReference(input.idempotencyKey),
      id: transferIdFor(
        input.role,
        input.adjustment ? 'adjustment' : 'topup',
        input.idempotencyKey,
      ),
      debit_account_id: debit ? user : funding,
      credit_account_id: debit ? funding : user,
      amount: input.amountMicros,
      ledger: this.ledgerId,
      code:
        input.adjustment === undefined
          ? transferCodes.topUp
          : debit
            ? transferCodes.adjustmentDebit
            : transferCodes.adjustmentCredit,
      flags: TransferFlags.none,
    };
    const [result] = await this.ledger.createTransfers([transfer]);
    if (
      result.status === CreateTransferStatus.created ||
      result.status === CreateTransferStatus.exists
    ) {
      const balance = await this.balance(input.userId);
      if (!balance) throw new LedgerInvariantError('user account vanished after a top-up');
      return {
        kind: result.status === CreateTransferStatus.created ? 'created' : 'replayed',
        transferId: transfer.id,
        amountMicros: input.amountMicros,
        balance,
      };
    }
    if (isExistsWithDifference(result.status)) return { kind: 'conflict' };
    // A debit's only failure is the user's balance (debits_must_not_exceed_credits); TigerBeetle
    // remembers the failed id, so its retry under the same key answers id_already_failed.
    if (
      debit &&
      (result.status === CreateTransferStatus.exceeds_credits ||
        result.status === CreateTransferStatus.id_already_failed)
    ) {
      const balance = await this.balance(input.userId);
      return {
        kind: 'insufficient',
        availableMicros: balance?.availableMicros ?? 0n,
        keyAlreadyRefused: result.status === CreateTransferStatus.id_already_failed,
      };
    }
    throw new LedgerInvariantError(
      `top-up: ${CreateTransferStatus[result.status] ?? result.status}`,
    );
  }

  /** Reserves up to `amountMicros` of the user's credits; atomic against concurrent holds. */
  async hold(input: HoldInput): Promise<HoldResult> {
    const admission = await this.admit(input, undefined);
    if (admission.kind === 'rate_limited')
      throw new LedgerInvariantError('a hold without a rate unit was rate limited');
    return admission;
  }

  /**
   * Admission of a billable request in one ledger round trip: the rate-limit unit and the hold in
   * one linked chain (both or neither apply; the batch mixes the rate and the credits ledgers),
   * after the accounts a first request needs and before the lookups the answer needs. Which link
   * failed tells 429 (the unit: over the limit) from 402 (the hold: insufficient credits).
   */
  async admit(
    input: HoldInput,
    rate: { limiter: RateLimiter; subject: string; limit: number } | undefined,
  ): Promise<AdmissionResult> {
    const holdId = holdTransferId(input.userId, input.idempotencyKey);
    const user = accountIdForUser(input.userId);
    // The unit's id follows the hold's: a retried admission replays both instead of taking a second unit.
    const plan = rate?.limiter.plan(rate.subject, rate.limit, {
      unitId: deriveId('transfer', 'rate-unit', holdId.toString()),
      linkUnit: true,
    });
    const operatorAccounts = this.operatorAccountsKnown ? [] : this.operatorAccounts();
    const holdTransfer: Transfer = {
      ...transferDefaults,
      ...(input.receipt
        ? {
            user_data_128: input.receipt.requestId,
            user_data_64: input.receipt.keyReference,
            user_data_32: input.receipt.modelCode,
          }
        : {}),
      id: holdId,
      debit_account_id: user,
      credit_account_id: operatorAccountId('revenue'),
      amount: input.amountMicros,
      timeout: input.timeoutSeconds,
      ledger: this.ledgerId,
      code: transferCodes.usage,
      flags: TransferFlags.pending,
    };
    const [accountResults, transferResults, found] = await executeLedgerOperations(this.ledger, [
      { operation: 'create_accounts', accounts: [...operatorAccounts, ...(plan?.accounts ?? [])] },
      { operation: 'create_transfers', transfers: [...(plan?.transfers ?? []), holdTransfer] },
      { operation: 'lookup_accounts', ids: plan ? [user, plan.accountId] : [user] },
    ] as const);
    for (const result of accountResults.slice(0, operatorAccounts.length))
      this.expectCreatedOrExists(result.status, 'operator account');
    this.operatorAccountsKnown = true;
    const holdResult = transferResults[transferResults.length - 1];
    const userAccount = found.find((candidate) => candidate.id === user);
    const hold = {
      holdId,
      userId: input.userId,
      amountMicros: input.amountMicros,
      timeoutSeconds: input.timeoutSeconds,
      timestamp: holdResult.timestamp,
    };
    if (rate && plan) {
      const [funding, unit] = transferResults;
      rate.limiter.checkOpened(plan, accountResults.slice(operatorAccounts.length), funding.status);
      // The unit exists only if its hold was created with it: this is a replay of the whole admission.
      if (unit.status === CreateTransferStatus.exists)
        return this.replayedAdmission(
          input,
          holdId,
          await rate.limiter.verdict(
            plan,
            unit,
            found.find((candidate) => candidate.id === plan.accountId),
          ),
        );
      if (unit.status !== CreateTransferStatus.linked_event_failed) {
        const verdict = await rate.limiter.verdict(
          plan,
          unit,
          found.find((candidate) => candidate.id === plan.accountId),
        );
        if (!verdict.allowed) return { kind: 'rate_limited', verdict };
        return { ...this.holdOutcome(holdResult.status, hold, userAccount), rate: verdict };
      }
      // The hold failed, so the unit was rolled back with it.
      return { ...this.holdOutcome(holdResult.status, hold, userAccount), rate: undefined };
    }
    // A retry under the same key is a new request (a new request id in user_data_128): the same hold
    // if everything else agrees, and the answer names the request that placed it.
    if (holdResult.status === CreateTransferStatus.exists_with_different_user_data_128)
      return this.holdOfAnotherRequest(input, holdId);
    return this.holdOutcome(holdResult.status, hold, userAccount);
  }

  /**
   * The hold a retried key placed for an earlier request: a replay when the amount, timeout, key and
   * model agree (TigerBeetle compared the fields before user_data_128 already), else a conflict.
   */
  private async holdOfAnotherRequest(input: HoldInput, holdId: bigint): Promise<HoldResult> {
    const [found] = await this.ledger.lookupTransfers([holdId]);
    const same =
      found !== undefined &&
      found.amount === input.amountMicros &&
      found.timeout === input.timeoutSeconds &&
      found.user_data_64 === (input.receipt?.keyReference ?? 0n) &&
      found.user_data_32 === (input.receipt?.modelCode ?? 0);
    if (!same) return { kind: 'conflict' };
    return {
      kind: 'replayed',
      hold: {
        holdId,
        userId: input.userId,
        debitAccountId: found.debit_account_id,
        amountMicros: found.amount,
        timeoutSeconds: found.timeout,
        timestamp: found.timestamp,
        requestUserData: found.user_data_128,
      },
    };
  }

  private holdOutcome(
    status: CreateTransferStatus,
    hold: Hold,
    userAccount: Account | undefined,
  ): HoldResult {
    switch (status) {
      case CreateTransferStatus.created:
        return { kind: 'created', hold };
      case CreateTransferStatus.exists:
        return { kind: 'replayed', hold };
      case CreateTransferStatus.exceeds_credits:
      case CreateTransferStatus.debit_account_not_found:
      case CreateTransferStatus.id_already_failed: {
        const availableMicros = userAccount
          ? balanceOf(hold.userId ?? '', userAccount).availableMicros
          : 0n;
        return {
          kind: 'insufficient',
          availableMicros,
          keyAlreadyRefused: status === CreateTransferStatus.id_already_failed,
        };
      }
      default:
        if (isExistsWithDifference(status)) return { kind: 'conflict' };
        throw new LedgerInvariantError(`hold: ${CreateTransferStatus[status] ?? status}`);
    }
  }

  /** A retried admission: the hold as the ledger has it (a second round trip, on this rare path only). */
  private async replayedAdmission(
    input: HoldInput,
    holdId: bigint,
    verdict: RateVerdict,
  ): Promise<AdmissionResult> {
    const found = await this.findHold(holdId);
    if (
      !found ||
      found.amountMicros !== input.amountMicros ||
      found.timeoutSeconds !== input.timeoutSeconds
    )
      return { kind: 'conflict' };
    return { kind: 'replayed', hold: { ...found, userId: input.userId }, rate: verdict };
  }

  /** The hold with this id, if it is one of ours. */
  async findHold(holdId: bigint): Promise<Hold | undefined> {
    const [found] = await this.ledger.lookupTransfers([holdId]);
    if (!found || (found.flags & TransferFlags.pending) === 0 || found.code !== transferCodes.usage)
      return undefined;
    return {
      holdId,
      debitAccountId: found.debit_account_id,
      amountMicros: found.amount,
      timeoutSeconds: found.timeout,
      timestamp: found.timestamp,
    };
  }

  private async availableOf(hold: Hold): Promise<bigint> {
    const [found] = await this.ledger.lookupAccounts([hold.debitAccountId ?? 0n]);
    if (!found) throw new LedgerInvariantError('the account of a hold vanished');
    return found.credits_posted - found.debits_posted - found.debits_pending;
  }

  /**
   * Charges `amountMicros` (at most the hold) and returns the rest to the user. With the user's id,
   * one ledger round trip: post, then read the hold and the user's balance; TigerBeetle itself
   * refuses an amount over the hold, another user's hold and anything that is not a usage hold.
   */
  async settle(holdId: bigint, amountMicros: bigint, userId?: string): Promise<ResolveResult> {
    return this.resolve(holdId, amountMicros, userId, 'settle');
  }

  /** Returns the whole hold to the user. Releasing an expired hold reports it as expired. */
  async release(holdId: bigint, userId?: string): Promise<ResolveResult> {
    return this.resolve(holdId, 0n, userId, 'release');
  }

  private async resolve(
    holdId: bigint,
    amountMicros: bigint,
    userId: string | undefined,
    action: 'settle' | 'release',
  ): Promise<ResolveResult> {
    // Without the user's id, the hold is read first to learn its account: two round trips.
    const known = userId === undefined ? await this.findHold(holdId) : undefined;
    if (userId === undefined && !known) return { kind: 'not_found' };
    const debitAccountId =
      userId === undefined ? (known?.debitAccountId ?? 0n) : accountIdForUser(userId);
    const resolution =
      action === 'settle'
        ? this.resolution(
            settleTransferId(holdId),
            holdId,
            debitAccountId,
            amountMicros,
            TransferFlags.post_pending_transfer,
          )
        : this.resolution(
            releaseTransferId(holdId),
            holdId,
            debitAccountId,
            0n,
            TransferFlags.void_pending_transfer,
          );
    const [[result], [pending], [account]] = await executeLedgerOperations(this.ledger, [
      { operation: 'create_transfers', transfers: [resolution] },
      { operation: 'lookup_transfers', ids: [holdId] },
      { operation: 'lookup_accounts', ids: [debitAccountId] },
    ] as const);
    const hold =
      pending &&
      pending.debit_account_id === debitAccountId &&
      pending.code === transferCodes.usage &&
      (pending.flags & TransferFlags.pending) !== 0
        ? {
            holdId,
            debitAccountId,
            amountMicros: pending.amount,
            timeoutSeconds: pending.timeout,
            timestamp: pending.timestamp,
          }
        : undefined;
    if (!hold) return { kind: 'not_found' };
    const availableMicros = account
      ? account.credits_posted - account.debits_posted - account.debits_pending
      : 0n;
    switch (result.status) {
      case CreateTransferStatus.created:
      case CreateTransferStatus.exists: {
        const replayed = result.status === CreateTransferStatus.exists;
        if (action === 'release')
          return { kind: 'released', releasedMicros: hold.amountMicros, replayed, availableMicros };
        return {
          kind: 'settled',
          chargedMicros: amountMicros,
          releasedMicros: hold.amountMicros - amountMicros,
          replayed,
          availableMicros,
        };
      }
      case CreateTransferStatus.exceeds_pending_transfer_amount:
        return { kind: 'exceeds_hold', heldMicros: hold.amountMicros };
      case CreateTransferStatus.exists_with_different_amount:
        return { kind: 'conflict' };
      default:
        return this.resolutionRefused(hold, result.status);
    }
  }

  private resolution(
    id: bigint,
    holdId: bigint,
    debitAccountId: bigint,
    amount: bigint,
    flags: TransferFlags,
  ): Transfer {
    // Set fields must match the pending transfer's (TigerBeetle checks them): only a usage hold of
    // this user on this ledger can be resolved; the zero credit account inherits the pending one's.
    return {
      ...transferDefaults,
      id,
      pending_id: holdId,
      debit_account_id: debitAccountId,
      credit_account_id: 0n,
      amount,
      ledger: this.ledgerId,
      code: transferCodes.usage,
      flags,
    };
  }

  /**
   * Why a settle or release was refused. A refusal binds the id (TigerBeetle 0.17), so a retry sees
   * `id_already_failed`; the hold's other resolution then tells which way it went.
   */
  private async resolutionRefused(
    hold: Hold,
    status: CreateTransferStatus,
  ): Promise<ResolveResult> {
    switch (status) {
      case CreateTransferStatus.pending_transfer_already_posted:
        return { kind: 'already_settled' };
      case CreateTransferStatus.pending_transfer_already_voided:
        return { kind: 'already_released' };
      case CreateTransferStatus.pending_transfer_expired:
        return {
          kind: 'expired',
          releasedMicros: hold.amountMicros,
          availableMicros: await this.availableOf(hold),
        };
      case CreateTransferStatus.id_already_failed: {
        const [settled, released] = await this.ledger
          .lookupTransfers([settleTransferId(hold.holdId), releaseTransferId(hold.holdId)])
          .then((found) => [
            found.some((transfer) => transfer.id === settleTransferId(hold.holdId)),
            found.some((transfer) => transfer.id === releaseTransferId(hold.holdId)),
          ]);
        if (settled) return { kind: 'already_settled' };
        if (released) return { kind: 'already_released' };
        return {
          kind: 'expired',
          releasedMicros: hold.amountMicros,
          availableMicros: await this.availableOf(hold),
        };
      }
      default:
        throw new LedgerInvariantError(`resolve hold: ${CreateTransferStatus[status] ?? status}`);
    }
  }

  /** Newest first; `beforeTimestamp` pages backwards (exclusive). */
  async history(
    userId: string,
    limit: number,
    beforeTimestamp?: bigint,
  ): Promise<HistoryEntry[] | undefined> {
    const user = accountIdForUser(userId);
    const [found] = await this.ledger.lookupAccounts([user]);
    if (!found) return undefined;
    // Nothing precedes timestamp 1; and a zero upper bound would mean "no bound" to TigerBeetle.
    if (beforeTimestamp !== undefined && beforeTimestamp <= 1n) return [];
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
  const base = {
    transferId: transfer.id,
    direction,
    amountMicros: transfer.amount,
    timestamp: transfer.timestamp,
  } as const;
  if (transfer.flags & TransferFlags.pending) return { ...base, kind: 'hold', pending: true };
  if (transfer.flags & TransferFlags.post_pending_transfer)
    return { ...base, kind: 'settle', pending: false, holdId: transfer.pending_id };
  if (transfer.flags & TransferFlags.void_pending_transfer)
    return { ...base, kind: 'release', pending: false, holdId: transfer.pending_id };
  const kind = transfer.code === transferCodes.topUp ? 'top_up' : 'adjustment';
  return { ...base, kind, pending: false };
}

function isExistsWithDifference(status: CreateTransferStatus): boolean {
  return (CreateTransferStatus[status] ?? '').startsWith('exists_with_different_');
}
