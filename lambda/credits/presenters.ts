import { requestIdFromUserData } from '../shared/receipts';
import type {
  BalanceAnswer,
  HistoryEntryAnswer,
  HoldAnswer,
  RateAllowanceAnswer,
  RateVerdictAnswer,
} from './contract';
import { formatMicros } from '../shared/money';
import type { Balance, HistoryEntry, Hold } from './domain/credits';
import type { RateVerdict } from './domain/rate-limit';
import { nanosecondsPerMillisecond, nanosecondsPerSecond } from '../../tigerbeetle/limits';

/** Domain values as the contract's answers (contract.ts): amounts in both forms, ids and micros as decimal strings. */

export function balanceJson(balance: Balance, currency: string): BalanceAnswer {
  return {
    user_id: balance.userId,
    currency,
    available: formatMicros(balance.availableMicros),
    available_micros: balance.availableMicros.toString(),
    held_micros: balance.heldMicros.toString(),
    credited_micros: balance.creditedMicros.toString(),
    spent_micros: balance.spentMicros.toString(),
  };
}

export function holdJson(hold: Hold): Omit<HoldAnswer, 'rate'> {
  const expiresAtMilliseconds =
    (hold.timestamp + BigInt(hold.timeoutSeconds) * nanosecondsPerSecond) /
    nanosecondsPerMillisecond;
  return {
    hold_id: hold.holdId.toString(),
    user_id: hold.userId,
    amount: formatMicros(hold.amountMicros),
    amount_micros: hold.amountMicros.toString(),
    timeout_seconds: hold.timeoutSeconds,
    expires_at: new Date(Number(expiresAtMilliseconds)).toISOString(),
    ...(hold.requestUserData ? { request_id: requestIdFromUserData(hold.requestUserData) } : {}),
  };
}

export function historyJson(entry: HistoryEntry): HistoryEntryAnswer {
  return {
    transfer_id: entry.transferId.toString(),
    kind: entry.kind,
    direction: entry.direction,
    amount: formatMicros(entry.amountMicros),
    amount_micros: entry.amountMicros.toString(),
    pending: entry.pending,
    hold_id: entry.holdId?.toString(),
    timestamp: entry.timestamp.toString(),
  };
}

export function rateAllowanceJson(
  verdict: Extract<RateVerdict, { allowed: true }>,
): RateAllowanceAnswer {
  return {
    limit: verdict.limit,
    remaining: verdict.remaining,
    reset_seconds: verdict.resetSeconds,
  };
}

export function rateVerdictJson(verdict: RateVerdict): RateVerdictAnswer {
  return verdict.allowed
    ? { allowed: true, ...rateAllowanceJson(verdict) }
    : {
        allowed: false,
        limit: verdict.limit,
        remaining: 0,
        retry_after_seconds: verdict.retryAfterSeconds,
      };
}
