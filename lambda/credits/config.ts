import { batchEventsMax } from '../../tigerbeetle/limits';

/** Limits and settings of the credits service; every limit has its unit in its name. */
export interface CreditsConfig {
  /** TigerBeetle ledger number of the credits (one currency per ledger). */
  readonly ledgerId: number;
  /** Ledger of the rate-limit accounts: separate from money, so units can never be spent. */
  readonly rateLedgerId: number;
  /** ISO 4217 code of the currency the micros are of. */
  readonly currency: string;
  /** Largest single top-up or adjustment, micros. */
  readonly topUpMicrosMax: bigint;
  /** Largest single hold, micros. */
  readonly holdMicrosMax: bigint;
  /** Longest hold; a hold nobody resolves expires after its timeout. */
  readonly holdTimeoutSecondsMax: number;
  readonly historyLimitDefault: number;
  readonly historyLimitMax: number;
  /** Receipts per page of a user's usage (the proxy's `GET /v1/usage` asks within these). */
  readonly receiptsLimitDefault: number;
  readonly receiptsLimitMax: number;
  /** Ledger transfers read per page of the operators' usage export (TigerBeetle's query maximum). */
  readonly chargesPageTransfersMax: number;
  readonly bodyBytesMax: number;
}

export const creditsConfigDefaults: CreditsConfig = {
  ledgerId: 1,
  rateLedgerId: 2,
  currency: 'USD',
  topUpMicrosMax: 1_000_000n * 1_000_000n, // 1,000,000.00 per top-up
  holdMicrosMax: 10_000n * 1_000_000n, // 10,000.00 per request
  holdTimeoutSecondsMax: 3600,
  historyLimitDefault: 20,
  historyLimitMax: 200,
  receiptsLimitDefault: 20,
  receiptsLimitMax: 100,
  chargesPageTransfersMax: batchEventsMax,
  bodyBytesMax: 16 * 1024,
};
