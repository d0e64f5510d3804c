import { createHash } from 'node:crypto';
import { u128Max, u32Max, u64Max } from '../../tigerbeetle/limits';

/**
 * What a usage transfer on the ledger says about its request, in TigerBeetle's user data fields
 * (docs/credits-api.md, "Receipts"). Shared by the proxy (which knows the request), the credits
 * service (which writes the transfers) and the operator CLI (which reads them back):
 *
 * - `user_data_128`: the request id, our `x-request-id` (a UUID is exactly 128 bits), so the
 *   receipt id a client sees is the one the ledger is queried by.
 * - `user_data_64`: the key reference, the first 64 bits of SHA-256 over the key id. Key ids are
 *   `key_` and up to 32 base62 characters (95 bits and more), which do not fit 64 bits; the key
 *   set names every key, so a reference is read back by matching the key ids of the set.
 * - `user_data_32`: the model's `ledgerCode` from the stage config, a number given once per model
 *   and never reused (lib/config/schema.ts): stable when models are reordered, renamed or removed.
 *
 * Top-ups and adjustments carry the operator's reference (their idempotency key, e.g. an invoice
 * number) as the first 128 bits of its SHA-256 in `user_data_128`, so the ledger finds a top-up by
 * its reference. Zero is never a value here: TigerBeetle's filters read zero as "any".
 */

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A request id as it travels (`x-request-id`, lower-case hex) to its 128 bits; undefined if it is not a UUID. */
export function requestIdToUserData(requestId: string): bigint | undefined {
  const text = requestId.toLowerCase();
  if (!uuidPattern.test(text)) return undefined;
  const value = BigInt(`0x${text.replaceAll('-', '')}`);
  return value === 0n ? undefined : value; // the nil UUID would read as "any request"
}

/** The 128 bits of `user_data_128` as the request id (a UUID, lower-case). */
export function requestIdFromUserData(value: bigint): string {
  if (value <= 0n || value > u128Max) throw new Error('a request id is a non-zero u128');
  const hex = value.toString(16).padStart(32, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function digest(namespace: string, text: string, bits: 64 | 128): bigint {
  const hash = createHash('sha256').update(`ai-proxy/receipts/v1\0${namespace}\0${text}`, 'utf8');
  const value = BigInt(`0x${hash.digest('hex').slice(0, bits / 4)}`);
  return value === 0n ? 1n : value; // never "any"; a zero prefix is a 2^-64 event
}

/** `user_data_64` of a key's transfers. */
export const keyReference = (keyId: string): bigint => digest('key', keyId, 64);

/** A key reference as 16 hex digits (in answers, logs and the export when no key id matches). */
export function keyReferenceText(reference: bigint): string {
  if (reference <= 0n || reference > u64Max) throw new Error('a key reference is a non-zero u64');
  return reference.toString(16).padStart(16, '0');
}

/** `user_data_128` of a top-up or adjustment: its operator reference (idempotency key). */
export const operatorReference = (reference: string): bigint => digest('operator', reference, 128);

/** What the model encoding needs of a model (lib/config/schema.ts). */
export interface LedgerCodedModel {
  readonly id: string;
  readonly ledgerCode: number;
}

/** Model id -> ledger code and back; refuses a config where either is ambiguous. */
export class ModelCodes {
  private readonly byId = new Map<string, number>();
  private readonly byCode = new Map<number, string>();

  constructor(models: readonly LedgerCodedModel[]) {
    for (const model of models) {
      if (!Number.isInteger(model.ledgerCode) || model.ledgerCode < 1 || model.ledgerCode > u32Max)
        throw new Error(`model ${model.id}: ledgerCode must be a u32 above 0`);
      if (this.byCode.has(model.ledgerCode))
        throw new Error(
          `models ${this.byCode.get(model.ledgerCode)} and ${model.id} share ledgerCode ${model.ledgerCode}`,
        );
      if (this.byId.has(model.id)) throw new Error(`model ${model.id} is listed twice`);
      this.byId.set(model.id, model.ledgerCode);
      this.byCode.set(model.ledgerCode, model.id);
    }
  }

  codeOf(modelId: string): number | undefined {
    return this.byId.get(modelId);
  }

  /** The model of a code; undefined for a code no configured model has (a model since removed). */
  modelOf(code: number): string | undefined {
    return this.byCode.get(code);
  }
}
