import type { Transfer } from 'tigerbeetle-node';
// The enums alone: the package's index loads the native client, which must never run in Lambda.
import {
  AccountFilterFlags,
  QueryFilterFlags,
  TransferFlags,
} from 'tigerbeetle-node/dist/bindings';
import type { LedgerClient } from '../../../tigerbeetle/ledger/client';
import { batchEventsMax, nanosecondsPerSecond } from '../../../tigerbeetle/limits';
import { requestIdFromUserData } from '../../shared/receipts';
import { transferCodes } from './credits';
import { accountIdForUser, releaseTransferId, settleTransferId } from './ids';

/**
 * Receipts: what each request held and was charged, read back from the ledger alone. A hold
 * carries the request id, key reference and model code in its user data (lambda/shared/receipts.ts)
 * and its settlement or release inherits them (TigerBeetle copies a pending transfer's user data
 * into a post or void that leaves them zero). A user's receipts come from the user's account
 * (`get_account_transfers`, newest first); one receipt from `query_transfers` on its request id;
 * the operators' export from `query_transfers` on the usage code over a time range.
 */

export type ReceiptStatus = 'pending' | 'settled' | 'released';

export interface Receipt {
  readonly holdId: bigint;
  /** Undefined for a hold placed without a receipt (before receipts existed). */
  readonly requestId?: string;
  readonly keyReference: bigint;
  readonly modelCode: number;
  readonly status: ReceiptStatus;
  /** True when the hold expired unresolved (status released: nothing was charged). */
  readonly expired: boolean;
  readonly heldMicros: bigint;
  readonly chargedMicros: bigint;
  /** Ledger timestamps (ns): the hold, and its settlement or release (undefined while pending or after an expiry). */
  readonly timestamp: bigint;
  readonly resolvedTimestamp?: bigint;
}

/** One settled or released request, as the export reads it. */
export interface Charge {
  readonly holdId: bigint;
  readonly requestId?: string;
  /** The user's account id (the export names users from the key set). */
  readonly accountId: bigint;
  readonly keyReference: bigint;
  readonly modelCode: number;
  readonly status: 'settled' | 'released';
  readonly chargedMicros: bigint;
  readonly timestamp: bigint;
}

export interface ReceiptFilter {
  readonly limit: number;
  /** Only receipts older than this ledger timestamp (the previous page's `next_before`). */
  readonly beforeTimestamp?: bigint;
  readonly keyReference?: bigint;
  readonly modelCode?: number;
}

/**
 * Transfers read per receipt asked for: a receipt is a hold and at most one resolution, and a
 * user's scan meets both. Bounded in round trips: a page that needs more ends early with its cursor.
 */
export const receiptScanTransfersPerReceipt = 2;
export const receiptScanRoundTripsMax = 4;
/** Transfers one request id may have: its hold and one settlement or release (room to spare). */
export const requestTransfersMax = 8;
/** TigerBeetle's most results of one query (one message of transfers). */
export const ledgerQueryLimitMax = batchEventsMax;

const isHold = (transfer: Transfer) => (transfer.flags & TransferFlags.pending) !== 0;
const isPost = (transfer: Transfer) => (transfer.flags & TransferFlags.post_pending_transfer) !== 0;
const isVoid = (transfer: Transfer) => (transfer.flags & TransferFlags.void_pending_transfer) !== 0;

export class Receipts {
  constructor(
    private readonly ledger: LedgerClient,
    private readonly ledgerId: number,
    /** Wall-clock time (ns): a hold past its timeout with no resolution has expired. */
    private readonly nowNanoseconds: () => bigint,
  ) {}

  /** A user's receipts, newest first; `nextBefore` pages on (undefined at the end). */
  async list(
    userId: string,
    filter: ReceiptFilter,
  ): Promise<{ receipts: Receipt[]; nextBefore?: bigint }> {
    const holds: Transfer[] = [];
    let cursor = filter.beforeTimestamp;
    let more = true;
    for (let trip = 0; trip < receiptScanRoundTripsMax && holds.length < filter.limit; trip += 1) {
      // Nothing precedes timestamp 1, and a zero bound would mean "no bound" to TigerBeetle.
      if (cursor !== undefined && cursor <= 1n) {
        more = false;
        break;
      }
      const scanLimit = Math.min(
        (filter.limit - holds.length) * receiptScanTransfersPerReceipt,
        ledgerQueryLimitMax,
      );
      const scanned = await this.ledger.getAccountTransfers({
        account_id: accountIdForUser(userId),
        user_data_128: 0n,
        user_data_64: filter.keyReference ?? 0n,
        user_data_32: filter.modelCode ?? 0,
        code: transferCodes.usage,
        timestamp_min: 0n,
        timestamp_max: cursor === undefined ? 0n : cursor - 1n,
        limit: scanLimit,
        flags: AccountFilterFlags.debits | AccountFilterFlags.reversed,
      });
      for (const transfer of scanned) {
        cursor = transfer.timestamp;
        if (isHold(transfer)) holds.push(transfer);
        if (holds.length === filter.limit) break;
      }
      if (holds.length < filter.limit && scanned.length < scanLimit) {
        more = false;
        break;
      }
    }
    const receipts = await this.resolve(holds);
    return { receipts, nextBefore: more && cursor !== undefined ? cursor : undefined };
  }

  /** One receipt by request id, if it is this user's (another user's is not found). */
  async find(userId: string, requestId: bigint): Promise<Receipt | undefined> {
    const found = await this.ledger.queryTransfers({
      user_data_128: requestId,
      user_data_64: 0n,
      user_data_32: 0,
      ledger: this.ledgerId,
      code: transferCodes.usage,
      timestamp_min: 0n,
      timestamp_max: 0n,
      limit: requestTransfersMax,
      flags: QueryFilterFlags.none,
    });
    const account = accountIdForUser(userId);
    const hold = found.find(
      (transfer) => isHold(transfer) && transfer.debit_account_id === account,
    );
    if (!hold) return undefined;
    const resolution = found.find((transfer) => transfer.pending_id === hold.id);
    return receiptOf(hold, resolution, this.nowNanoseconds());
  }

  /** Settled and released requests in [fromTimestamp, toTimestamp], oldest first, a page at a time. */
  async charges(range: {
    fromTimestamp: bigint;
    toTimestamp: bigint;
    limit: number;
  }): Promise<{ charges: Charge[]; nextFrom?: bigint }> {
    const scanned = await this.ledger.queryTransfers({
      user_data_128: 0n,
      user_data_64: 0n,
      user_data_32: 0,
      ledger: this.ledgerId,
      code: transferCodes.usage,
      timestamp_min: range.fromTimestamp,
      timestamp_max: range.toTimestamp,
      limit: range.limit,
      flags: QueryFilterFlags.none,
    });
    const charges = scanned
      .filter((transfer) => isPost(transfer) || isVoid(transfer))
      .map((transfer) => ({
        holdId: transfer.pending_id,
        requestId: requestIdOf(transfer),
        accountId: transfer.debit_account_id,
        keyReference: transfer.user_data_64,
        modelCode: transfer.user_data_32,
        status: isPost(transfer) ? ('settled' as const) : ('released' as const),
        chargedMicros: isPost(transfer) ? transfer.amount : 0n,
        timestamp: transfer.timestamp,
      }));
    const last = scanned.at(-1);
    return {
      charges,
      nextFrom: scanned.length === range.limit && last ? last.timestamp + 1n : undefined,
    };
  }

  /** Each hold with its settlement or release: one lookup of the ids derived from the hold ids. */
  private async resolve(holds: readonly Transfer[]): Promise<Receipt[]> {
    if (holds.length === 0) return [];
    const resolutions = await this.ledger.lookupTransfers(
      holds.flatMap((hold) => [settleTransferId(hold.id), releaseTransferId(hold.id)]),
    );
    const byHold = new Map(resolutions.map((transfer) => [transfer.pending_id, transfer]));
    const now = this.nowNanoseconds();
    return holds.map((hold) => receiptOf(hold, byHold.get(hold.id), now));
  }
}

function requestIdOf(transfer: Transfer): string | undefined {
  return transfer.user_data_128 === 0n ? undefined : requestIdFromUserData(transfer.user_data_128);
}

function receiptOf(hold: Transfer, resolution: Transfer | undefined, now: bigint): Receipt {
  const base = {
    holdId: hold.id,
    requestId: requestIdOf(hold),
    keyReference: hold.user_data_64,
    modelCode: hold.user_data_32,
    heldMicros: hold.amount,
    timestamp: hold.timestamp,
  };
  if (resolution && isPost(resolution))
    return {
      ...base,
      status: 'settled',
      expired: false,
      chargedMicros: resolution.amount,
      resolvedTimestamp: resolution.timestamp,
    };
  if (resolution)
    return {
      ...base,
      status: 'released',
      expired: false,
      chargedMicros: 0n,
      resolvedTimestamp: resolution.timestamp,
    };
  const expired = hold.timestamp + BigInt(hold.timeout) * nanosecondsPerSecond <= now;
  return { ...base, status: expired ? 'released' : 'pending', expired, chargedMicros: 0n };
}
