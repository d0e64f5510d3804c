import type { Account, Transfer } from 'tigerbeetle-node';
import { AccountFilterFlags, AccountFlags, CreateAccountStatus, CreateTransferStatus, TransferFlags } from 'tigerbeetle-node/dist/bindings';
import type { LedgerClient } from '../../../tigerbeetle/ledger/client';
import { LedgerInvariantError } from './credits';
import { deriveId } from './ids';

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
const nanosecondsPerSecond = 1_000_000_000n;

export type RateVerdict =
  | { allowed: true; limit: number; remaining: number; resetSeconds: number }
  | { allowed: false; limit: number; remaining: 0; retryAfterSeconds: number };

function account(id: bigint, ledger: number, code: number, flags: number): Account {
  return {
    id, ledger, code, flags,
    debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n,
    user_data_128: 0n, user_data_64: 0n, user_data_32: 0, reserved: 0, timestamp: 0n,
  };
}

function transfer(fields: Pick<Transfer, 'id' | 'debit_account_id' | 'credit_account_id' | 'amount' | 'ledger' | 'code' | 'flags' | 'timeout'>): Transfer {
  return { pending_id: 0n, user_data_128: 0n, user_data_64: 0n, user_data_32: 0, timestamp: 0n, ...fields };
}

export class RateLimiter {
  private readonly sourceId = deriveId('rate', 'source');

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

  async consume(subject: string, limit: number): Promise<RateVerdict> {
    const accountId = this.subjectAccountId(subject, limit);
    let [result] = await this.ledger.createTransfers([this.consumption(accountId)]);
    if (result.status === CreateTransferStatus.debit_account_not_found || result.status === CreateTransferStatus.credit_account_not_found) {
      await this.openSubject(accountId, limit);
      [result] = await this.ledger.createTransfers([this.consumption(accountId)]);
    }
    if (result.status === CreateTransferStatus.created) {
      const [found] = await this.ledger.lookupAccounts([accountId]);
      const remaining = found ? Number(found.credits_posted - found.debits_pending) : 0;
      return { allowed: true, limit, remaining, resetSeconds: rateWindowSeconds };
    }
    if (result.status === CreateTransferStatus.exceeds_credits) {
      return { allowed: false, limit, remaining: 0, retryAfterSeconds: await this.secondsUntilUnitReturns(accountId, result.timestamp) };
    }
    throw new LedgerInvariantError(`rate limit: ${CreateTransferStatus[result.status] ?? result.status}`);
  }

  private consumption(accountId: bigint): Transfer {
    return transfer({
      id: this.newTransferId(),
      debit_account_id: accountId,
      credit_account_id: this.sourceId,
      amount: 1n,
      ledger: this.ledgerId,
      code: transferCodes.consume,
      flags: TransferFlags.pending,
      timeout: rateWindowSeconds,
    });
  }

  /** Creates the source and the subject's account and funds it with `limit` units, idempotently. */
  private async openSubject(accountId: bigint, limit: number): Promise<void> {
    const accounts = await this.ledger.createAccounts([
      account(this.sourceId, this.ledgerId, accountCodes.source, AccountFlags.none),
      account(accountId, this.ledgerId, accountCodes.subject, AccountFlags.debits_must_not_exceed_credits),
    ]);
    for (const { status } of accounts) {
      if (status !== CreateAccountStatus.created && status !== CreateAccountStatus.exists) {
        throw new LedgerInvariantError(`rate account: ${CreateAccountStatus[status] ?? status}`);
      }
    }
    const [funding] = await this.ledger.createTransfers([
      transfer({
        id: deriveId('rate', 'fund', accountId.toString()),
        debit_account_id: this.sourceId,
        credit_account_id: accountId,
        amount: BigInt(limit),
        ledger: this.ledgerId,
        code: transferCodes.fund,
        flags: TransferFlags.none,
        timeout: 0,
      }),
    ]);
    if (funding.status !== CreateTransferStatus.created && funding.status !== CreateTransferStatus.exists) {
      throw new LedgerInvariantError(`rate funding: ${CreateTransferStatus[funding.status] ?? funding.status}`);
    }
  }

  /** The oldest unit used within the window returns first: when it expires, one request may pass. */
  private async secondsUntilUnitReturns(accountId: bigint, nowNanoseconds: bigint): Promise<number> {
    const windowNanoseconds = BigInt(rateWindowSeconds) * nanosecondsPerSecond;
    const [oldest] = await this.ledger.getAccountTransfers({
      account_id: accountId,
      user_data_128: 0n,
      user_data_64: 0n,
      user_data_32: 0,
      code: transferCodes.consume,
      timestamp_min: nowNanoseconds > windowNanoseconds ? nowNanoseconds - windowNanoseconds + 1n : 1n,
      timestamp_max: 0n,
      limit: 1,
      flags: AccountFilterFlags.debits,
    });
    if (!oldest) return 1;
    const returnsAt = oldest.timestamp + windowNanoseconds;
    const seconds = Number((returnsAt - nowNanoseconds + nanosecondsPerSecond - 1n) / nanosecondsPerSecond);
    return Math.min(Math.max(seconds, 1), rateWindowSeconds);
  }
}
