/**
 * Checks a (restored) TigerBeetle cluster through the ledger gateway (docs/runbooks/ledger-restore.md).
 *
 *   GATEWAY_TOKEN=... npx tsx scripts/verify-ledger.ts snapshot --gateway URL --users users.txt --out balances.json
 *   GATEWAY_TOKEN=... npx tsx scripts/verify-ledger.ts verify   --gateway URL --users users.txt [--snapshot balances.json]
 *
 * `users.txt` lists the client (user) ids, one per line; the operator accounts are added. `snapshot`
 * records every account's balances (take one daily, next to the backups); `verify` checks:
 * 1. every listed account and both operator accounts exist;
 * 2. no client account is overdrawn (debits posted + pending <= credits posted);
 * 3. money is conserved: posted debits equal posted credits over all accounts, pending too (holds
 *    only move money between the listed accounts, so this holds when the user list is complete);
 * 4. against a snapshot: every counter only grows, so a point-in-time restore is either entirely
 *    behind the snapshot or entirely ahead of it. Mixed directions mean replicas restored from
 *    different points in time. The differences are listed for reconciliation.
 * Exits 0 when every check passes, 1 otherwise, 2 on a usage error.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Account } from 'tigerbeetle-node';
import { accountIdForUser, operatorAccountId } from '../lambda/credits/domain/ids';
import { createGatewayClient } from '../tigerbeetle/gateway/client';
import { batchEventsMax } from '../tigerbeetle/limits';

/** TigerBeetle's AccountFlags.debits_must_not_exceed_credits. */
const debitsMustNotExceedCredits = 1 << 1;
/** TigerBeetle's batch limit (events per request). */
const lookupBatchMax = batchEventsMax;
const requestTimeoutMilliseconds = 10_000;

const counters = ['debits_pending', 'debits_posted', 'credits_pending', 'credits_posted'] as const;
type Counter = (typeof counters)[number];
export type Balances = Record<Counter, string>;
/** Account id (decimal) -> balances. */
export type BalanceSnapshot = {
  readonly takenAt: string;
  readonly accounts: Record<string, Balances>;
};

export interface VerifyReport {
  readonly problems: string[];
  readonly differences: string[];
  readonly direction: 'equal' | 'behind' | 'ahead' | 'mixed' | 'no snapshot';
}

export function balancesOf(account: Pick<Account, Counter>): Balances {
  return Object.fromEntries(
    counters.map((counter) => [counter, account[counter].toString()]),
  ) as Balances;
}

/** The checks of a restored ledger: `accounts` as looked up, `expectedIds` every id that must exist. */
export function verifyAccounts(
  expectedIds: readonly bigint[],
  accounts: readonly Account[],
  snapshot?: BalanceSnapshot,
): VerifyReport {
  const problems: string[] = [];
  const byId = new Map(accounts.map((account) => [account.id, account]));
  for (const id of expectedIds) if (!byId.has(id)) problems.push(`account ${id} is missing`);
  const totals = { debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n };
  for (const account of accounts) {
    for (const counter of counters) totals[counter] += account[counter];
    if (
      (account.flags & debitsMustNotExceedCredits) !== 0 &&
      account.debits_posted + account.debits_pending > account.credits_posted
    ) {
      problems.push(
        `account ${account.id} is overdrawn: debits ${account.debits_posted} + ${account.debits_pending} pending > credits ${account.credits_posted}`,
      );
    }
  }
  if (totals.debits_posted !== totals.credits_posted)
    problems.push(
      `posted debits ${totals.debits_posted} != posted credits ${totals.credits_posted}`,
    );
  if (totals.debits_pending !== totals.credits_pending)
    problems.push(
      `pending debits ${totals.debits_pending} != pending credits ${totals.credits_pending}`,
    );
  if (snapshot === undefined) return { problems, differences: [], direction: 'no snapshot' };
  return { problems, ...compareWithSnapshot(byId, snapshot, problems) };
}

function compareWithSnapshot(
  byId: Map<bigint, Account>,
  snapshot: BalanceSnapshot,
  problems: string[],
): Pick<VerifyReport, 'differences' | 'direction'> {
  const differences: string[] = [];
  let behind = false;
  let ahead = false;
  for (const [id, expected] of Object.entries(snapshot.accounts)) {
    const account = byId.get(BigInt(id));
    if (account === undefined) continue; // reported as missing when listed
    // Posted counters only grow; pending ones go up and down, so only posted ones order two states.
    for (const counter of ['debits_posted', 'credits_posted'] as const) {
      const restored = account[counter];
      const recorded = BigInt(expected[counter]);
      if (restored === recorded) continue;
      if (restored < recorded) behind = true;
      else ahead = true;
      differences.push(
        `account ${id} ${counter}: snapshot ${recorded}, restored ${restored} (${restored - recorded})`,
      );
    }
  }
  const direction = behind && ahead ? 'mixed' : behind ? 'behind' : ahead ? 'ahead' : 'equal';
  if (direction === 'mixed')
    problems.push(
      'some accounts are behind the snapshot and others ahead: the replicas were not restored from one point in time',
    );
  return { differences, direction };
}

function argument(args: string[], name: string): string | undefined {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1] : undefined;
}

async function lookupAll(
  client: ReturnType<typeof createGatewayClient>,
  ids: bigint[],
): Promise<Account[]> {
  const accounts: Account[] = [];
  for (let start = 0; start < ids.length; start += lookupBatchMax)
    accounts.push(...(await client.lookupAccounts(ids.slice(start, start + lookupBatchMax))));
  return accounts;
}

async function main(args: string[]): Promise<number> {
  const [command] = args;
  const gateway = argument(args, 'gateway');
  const usersFile = argument(args, 'users');
  const token = process.env.GATEWAY_TOKEN;
  if (!['snapshot', 'verify'].includes(command ?? '') || !gateway || !usersFile || !token) {
    console.error(
      'usage: GATEWAY_TOKEN=... verify-ledger.ts snapshot|verify --gateway URL --users FILE [--out FILE] [--snapshot FILE]',
    );
    return 2;
  }
  const users = readFileSync(usersFile, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  const ids = [
    operatorAccountId('funding'),
    operatorAccountId('revenue'),
    ...users.map(accountIdForUser),
  ];
  const client = createGatewayClient({
    baseUrl: gateway,
    token: () => token,
    requestTimeoutMilliseconds,
  });
  const accounts = await lookupAll(client, ids);
  if (command === 'snapshot') {
    const out = argument(args, 'out') ?? 'ledger-balances.json';
    const snapshot: BalanceSnapshot = {
      takenAt: new Date().toISOString(),
      accounts: Object.fromEntries(
        accounts.map((account) => [account.id.toString(), balancesOf(account)]),
      ),
    };
    writeFileSync(out, `${JSON.stringify(snapshot, null, 2)}\n`);
    console.log(`recorded ${accounts.length} accounts in ${out}`);
    return 0;
  }
  const snapshotFile = argument(args, 'snapshot');
  const snapshot = snapshotFile
    ? (JSON.parse(readFileSync(snapshotFile, 'utf8')) as BalanceSnapshot)
    : undefined;
  const report = verifyAccounts(ids, accounts, snapshot);
  console.log(
    JSON.stringify({ accounts: accounts.length, expected: ids.length, ...report }, null, 2),
  );
  return report.problems.length === 0 ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`verify-ledger: ${(error as Error).message}`);
      process.exit(1);
    },
  );
}
