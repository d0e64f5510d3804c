import type {
  Account,
  AccountBalance,
  AccountFilter,
  CreateAccountResult,
  CreateTransferResult,
  QueryFilter,
  Transfer,
} from 'tigerbeetle-node';
import type { LedgerClient } from './client';

/**
 * Several ledger operations as one unit of work, run in order: through the gateway they travel in
 * one HTTP round trip (`POST /v1/operations`); over a local engine or a cluster client they run one
 * after the other. Each operation is still its own TigerBeetle request: atomicity is per
 * operation (a linked chain inside one `create_transfers`), ordering is across them.
 */

export type LedgerOperation =
  | { readonly operation: 'create_accounts'; readonly accounts: readonly Account[] }
  | { readonly operation: 'create_transfers'; readonly transfers: readonly Transfer[] }
  | { readonly operation: 'lookup_accounts'; readonly ids: readonly bigint[] }
  | { readonly operation: 'lookup_transfers'; readonly ids: readonly bigint[] }
  | { readonly operation: 'get_account_transfers'; readonly filter: AccountFilter }
  | { readonly operation: 'get_account_balances'; readonly filter: AccountFilter }
  | { readonly operation: 'query_transfers'; readonly filter: QueryFilter };

export interface LedgerOperationResults {
  create_accounts: CreateAccountResult[];
  create_transfers: CreateTransferResult[];
  lookup_accounts: Account[];
  lookup_transfers: Transfer[];
  get_account_transfers: Transfer[];
  get_account_balances: AccountBalance[];
  query_transfers: Transfer[];
}

export type LedgerOperationName = LedgerOperation['operation'];
export type ResultsOf<T extends readonly LedgerOperation[]> = {
  -readonly [K in keyof T]: T[K] extends LedgerOperation
    ? LedgerOperationResults[T[K]['operation']]
    : never;
};

/** Operations in one request: a unit of work of the credits service needs at most four. */
export const ledgerOperationsPerRequestMax = 8;

/** A ledger that can carry several operations in one round trip (the gateway's HTTP client). */
export interface OperationsLedger {
  execute<const T extends readonly LedgerOperation[]>(operations: T): Promise<ResultsOf<T>>;
}

export function runLedgerOperation(
  ledger: LedgerClient,
  operation: LedgerOperation,
): Promise<LedgerOperationResults[LedgerOperationName]> {
  switch (operation.operation) {
    case 'create_accounts':
      return ledger.createAccounts([...operation.accounts]);
    case 'create_transfers':
      return ledger.createTransfers([...operation.transfers]);
    case 'lookup_accounts':
      return ledger.lookupAccounts([...operation.ids]);
    case 'lookup_transfers':
      return ledger.lookupTransfers([...operation.ids]);
    case 'get_account_transfers':
      return ledger.getAccountTransfers(operation.filter);
    case 'get_account_balances':
      return ledger.getAccountBalances(operation.filter);
    case 'query_transfers':
      return ledger.queryTransfers(operation.filter);
  }
}

/** One round trip where the ledger can (`execute`), else the operations in order. */
export async function executeLedgerOperations<const T extends readonly LedgerOperation[]>(
  ledger: LedgerClient & Partial<OperationsLedger>,
  operations: T,
): Promise<ResultsOf<T>> {
  if (operations.length > ledgerOperationsPerRequestMax)
    throw new Error(`at most ${ledgerOperationsPerRequestMax} ledger operations per request`);
  if (ledger.execute) return ledger.execute(operations);
  const results: unknown[] = [];
  for (const operation of operations) results.push(await runLedgerOperation(ledger, operation));
  return results as ResultsOf<T>;
}
