import type { Account, Transfer } from 'tigerbeetle-node';
import {
  AccountFilterFlags,
  AccountFlags,
  CreateAccountStatus,
  CreateTransferStatus,
  TransferFlags,
} from 'tigerbeetle-node/dist/bindings';
import type { LedgerClient } from '../../../tigerbeetle/ledger/client';
import { executeLedgerOperations } from '../../../tigerbeetle/ledger/operations';
import { LedgerInvariantError } from './ledger-invariant';
import { newAccount } from './ledger-records';
import { deriveId } from './ids';
import { nanosecondsPerSecond } from '../../../tigerbeetle/limits';

/**
 * Exact rate limits shared by every proxy instance, on the ledger (TigerBeetle's rate-limiting
 * recipe): a subject (an API key, a source address) has an account funded with `limit` units; each
 * request is a pending transfer of one unit with a timeout of one window that is never posted.
 * When the units are all pending the account cannot go below zero and the request is refused;
 * each unit returns exactly one window after it was used (a sliding window, RATE-02).
 * Rate accounts live on a ledger of their own, so they can never mix with money.
 */

export const rateWindowSeconds = 60;
const accountCodes = { source: 3, subject: 200 } as const;
const transferCodes = { fund: 210, consume: 220 } as const;

export type RateVerdict =
  | { allowed: true; limit: number; remaining: number; resetSeconds: number }
  | { allowed: false; limit: number; remaining: 0; retryAfterSeconds: number };

function transfer(
  fields: Pick<
    Transfer,
    | 'id'
    | 'debit_account_id'
    | 'credit_account_id'
    | 'amount'
    | 'ledger'
    | 'code'
    | 'flags'
    | 'timeout'
  >,
): Transfer {
  return {
    pending_id: 0n,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    timestamp: 0n,
    ...fields,
  };
}

/** Subjects whose account this instance has seen opened: their requests skip `create_accounts`. Bounded. */
export const openedSubjectsMax = 10_000;

/** What one rate-limited request adds to a unit of work: the accounts to open, the transfers, the account to read. */
export interface RateUnitPlan {
  readonly accountId: bigint;
  readonly limit: number;
  /** Empty once this instance knows the account exists. */
  readonly accounts: Account[];
  /** The funding (idempotent, unlinked) then the unit; `linkUnit` chains the unit to the next transfer. */
  readonly transfers: Transfer[];
}

export class RateLimiter {
  private readonly sourceId = deriveId('rate', 'source');
  private readonly openedSubjects = new Set<bigint>();

  constructor(
    private readonly ledger: LedgerClient,
    private readonly ledgerId: number,
    /** Unique ids for consumption transfers (random in production, deterministic in tests). */
    private readonly newTransferId: () => bigint,
  ) {}

  /** The account of a subject at a limit: a new limit is a new account, so a change applies at once. */
  private subjectAccountId(subject: string, limit: number): bigint {
    return deriveId('rate', 'subject', subject, String(limit));
  }

  /**
   * One request's unit, with what a subject's first request needs: the funding transfer travels in
   * the same batch as the unit, ahead of it, so no request can ever see the account opened but not
   * yet funded (the funding is idempotent: `exists` for every request after the first).
   */
  plan(
    subject: string,
    limit: number,
    options: { unitId?: bigint; linkUnit?: boolean } = {},
  ): RateUnitPlan {
    const accountId = this.subjectAccountId(subject, limit);
    const accounts = this.openedSubjects.has(accountId)
      ? []
      : [
          newAccount(this.sourceId, this.ledgerId, accountCodes.source, AccountFlags.none),
          newAccount(
            accountId,
            this.ledgerId,
            accountCodes.subject,
            AccountFlags.debits_must_not_exceed_credits,
          ),
        ];
    const funding = transfer({
      id: deriveId('rate', 'fund', accountId.toString()),
      debit_account_id: this.sourceId,
      credit_account_id: accountId,
      amount: BigInt(limit),
      ledger: this.ledgerId,
      code: transferCodes.fund,
      flags: TransferFlags.none,
      timeout: 0,
    });
    const unit = this.consumption(
      accountId,
      options.unitId ?? this.newTransferId(),
      options.linkUnit === true,
    );
    return { accountId, limit, accounts, transfers: [funding, unit] };
  }

  /** Checks the funding's and the accounts' results; remembers the subject as opened. */
  checkOpened(
    plan: RateUnitPlan,
    accountResults: readonly { status: CreateAccountStatus }[],
    fundingStatus: CreateTransferStatus,
  ): void {
    for (const { status } of accountResults) {
      if (status !== CreateAccountStatus.created && status !== CreateAccountStatus.exists) {
        throw new LedgerInvariantError(`rate account: ${CreateAccountStatus[status] ?? status}`);
      }
    }
    if (
      fundingStatus !== CreateTransferStatus.created &&
      fundingStatus !== CreateTransferStatus.exists
    ) {
      // A subject this instance thought open but whose account is gone cannot happen; forget it and fail loudly.
      this.openedSubjects.delete(plan.accountId);
      throw new LedgerInvariantError(
        `rate funding: ${CreateTransferStatus[fundingStatus] ?? fundingStatus}`,
      );
    }
    if (this.openedSubjects.size >= openedSubjectsMax) this.openedSubjects.clear();
    this.openedSubjects.add(plan.accountId);
  }

  /** The verdict for a unit that was created or refused, from the subject's account read after it. */
  async verdict(
    plan: RateUnitPlan,
    unit: { status: CreateTransferStatus; timestamp: bigint },
    found: Account | undefined,
  ): Promise<RateVerdict> {
    if (
      unit.status === CreateTransferStatus.created ||
      unit.status === CreateTransferStatus.exists
    ) {
      const remaining = found
        ? Number(found.credits_posted - found.debits_pending - found.debits_posted)
        : 0;
      return {
        allowed: true,
        limit: plan.limit,
        remaining: Math.max(remaining, 0),
        resetSeconds: rateWindowSeconds,
      };
    }
    if (unit.status === CreateTransferStatus.exceeds_credits) {
      return {
        allowed: false,
        limit: plan.limit,
        remaining: 0,
        retryAfterSeconds: await this.secondsUntilUnitReturns(plan.accountId, unit.timestamp),
      };
    }
    throw new LedgerInvariantError(
      `rate limit: ${CreateTransferStatus[unit.status] ?? unit.status}`,
    );
  }

  /** A request on a route that holds nothing: one ledger round trip. */
  async consume(subject: string, limit: number): Promise<RateVerdict> {
    const plan = this.plan(subject, limit);
    const [accountResults, [funding, unit], [found]] = await executeLedgerOperations(this.ledger, [
      { operation: 'create_accounts', accounts: plan.accounts },
      { operation: 'create_transfers', transfers: plan.transfers },
      { operation: 'lookup_accounts', ids: [plan.accountId] },
    ] as const);
    this.checkOpened(plan, accountResults, funding.status);
    return this.verdict(plan, unit, found);
  }

  private consumption(accountId: bigint, id: bigint, linked: boolean): Transfer {
    return transfer({
      id,
      debit_account_id: accountId,
      credit_account_id: this.sourceId,
      amount: 1n,
      ledger: this.ledgerId,
      code: transferCodes.consume,
      flags: TransferFlags.pending | (linked ? TransferFlags.linked : TransferFlags.none),
      timeout: rateWindowSeconds,
    });
  }

  /** The oldest unit used within the window returns first: when it expires, one request may pass. */
  private async secondsUntilUnitReturns(
    accountId: bigint,
    nowNanoseconds: bigint,
  ): Promise<number> {
    const windowNanoseconds = BigInt(rateWindowSeconds) * nanosecondsPerSecond;
    const [oldest] = await this.ledger.getAccountTransfers({
      account_id: accountId,
      user_data_128: 0n,
      user_data_64: 0n,
      user_data_32: 0,
      code: transferCodes.consume,
      timestamp_min:
        nowNanoseconds > windowNanoseconds ? nowNanoseconds - windowNanoseconds + 1n : 1n,
      timestamp_max: 0n,
      limit: 1,
      flags: AccountFilterFlags.debits,
    });
    if (!oldest) return 1;
    const returnsAt = oldest.timestamp + windowNanoseconds;
    const seconds = Number(
      (returnsAt - nowNanoseconds + nanosecondsPerSecond - 1n) / nanosecondsPerSecond,
    );
    return Math.min(Math.max(seconds, 1), rateWindowSeconds);
  }
}
