import type { Account } from 'tigerbeetle-node';
import { balancesOf, verifyAccounts, type BalanceSnapshot } from '../../scripts/verify-ledger';

/** DATA-03: the invariant checker of docs/runbooks/ledger-restore.md finds what a bad restore breaks. */

function account(
  id: bigint,
  counters: Partial<
    Record<'debits_pending' | 'debits_posted' | 'credits_pending' | 'credits_posted', bigint>
  >,
  flags = 0,
): Account {
  return {
    id,
    debits_pending: 0n,
    debits_posted: 0n,
    credits_pending: 0n,
    credits_posted: 0n,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    reserved: 0,
    ledger: 1,
    code: 1,
    flags,
    timestamp: 0n,
    ...counters,
  };
}

const noOverdraft = 1 << 1;
// funding -> user 100 (top-up), user -> revenue 30 posted, 10 held.
const healthy = () => [
  account(1n, { debits_posted: 100n }),
  account(2n, { credits_posted: 30n, credits_pending: 10n }),
  account(3n, { credits_posted: 100n, debits_posted: 30n, debits_pending: 10n }, noOverdraft),
];

function snapshotOf(accounts: Account[]): BalanceSnapshot {
  return {
    takenAt: '2025-01-01T00:00:00Z',
    accounts: Object.fromEntries(accounts.map((a) => [a.id.toString(), balancesOf(a)])),
  };
}

describe('verifyAccounts', () => {
  test('a consistent ledger passes; equal to its snapshot', () => {
    const report = verifyAccounts([1n, 2n, 3n], healthy(), snapshotOf(healthy()));
    expect(report).toEqual({ problems: [], differences: [], direction: 'equal' });
  });

  test('a restore from before the snapshot is "behind" and lists the differences', () => {
    const later = healthy();
    later[2].debits_posted = 40n;
    later[1].credits_posted = 40n;
    const report = verifyAccounts([1n, 2n, 3n], healthy(), snapshotOf(later));
    expect(report.problems).toEqual([]);
    expect(report.direction).toBe('behind');
    expect(report.differences).toContain('account 3 debits_posted: snapshot 40, restored 30 (-10)');
  });

  test('finds missing accounts, overdrafts, unbalanced totals and mixed restore points', () => {
    const broken = healthy();
    broken[2].debits_posted = 120n; // overdrawn and unbalanced
    const snapshot = snapshotOf(healthy());
    snapshot.accounts['1'].debits_posted = '110'; // account 1 behind, account 3 ahead
    const report = verifyAccounts([1n, 2n, 3n, 4n], broken, snapshot);
    expect(report.problems).toEqual([
      'account 4 is missing',
      'account 3 is overdrawn: debits 120 + 10 pending > credits 100',
      'posted debits 220 != posted credits 130',
      'some accounts are behind the snapshot and others ahead: the replicas were not restored from one point in time',
    ]);
    expect(report.direction).toBe('mixed');
  });
});
