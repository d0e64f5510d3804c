import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import {
  AccountFlags,
  CreateAccountStatus,
  CreateTransferStatus,
  TransferFlags,
  type Client,
  type Transfer,
} from 'tigerbeetle-node';
import { ManualClock, openEmbeddedLedger } from '../../../tigerbeetle/engine';
import { batchEventsMax, u128Max, u64Max } from '../../../tigerbeetle/engine/constants';
import { journalDataStartBytes } from '../../../tigerbeetle/engine/journal';
import { transferStoreChunkTransfers } from '../../../tigerbeetle/engine/transfer-store';
import { openLedger } from '../../../tigerbeetle/ledger';
import { account, accountFilter, queryFilter, transfer } from './fixtures';

/**
 * Snapshots make a start fast: the state's buffers are loaded from the snapshot and only the
 * journal written after it is replayed. The journal stays the source of truth: a snapshot that is
 * damaged or not of this journal is ignored, with a warning, and everything is replayed.
 */
let directory: string;
let dataFile: string;
let snapshotFile: string;
beforeEach(() => {
  directory = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-snapshot-test-'));
  dataFile = path.join(directory, 'ledger.journal');
  snapshotFile = `${dataFile}.snapshot`;
});
afterEach(() => fs.rmSync(directory, { recursive: true, force: true }));

/** Everything a client can see of the ledger built by `populate`. */
async function state(client: Client): Promise<unknown> {
  return {
    accounts: await client.queryAccounts(queryFilter()),
    transfers: await client.queryTransfers(queryFilter()),
    reversed: await client.queryTransfers(queryFilter({ flags: 1, limit: 3 })),
    account1: await client.getAccountTransfers(accountFilter(1n)),
    history1: await client.getAccountBalances(accountFilter(1n)),
    history3: await client.getAccountBalances(accountFilter(3n, { flags: 2 | 4 })),
    byId: await client.lookupTransfers([12n, 1n << 100n, 999n]),
  };
}

/** Accounts (two with history), plain, pending, posted, large-id and failed transfers. */
async function populate(client: Client): Promise<void> {
  await client.createAccounts([
    account(1n, { flags: AccountFlags.history }),
    account(2n),
    account(3n, { flags: AccountFlags.history | AccountFlags.debits_must_not_exceed_credits }),
  ]);
  await writeSome(client, 10n, 20);
  const results = await client.createTransfers([
    transfer(1n << 100n, { amount: 3n, user_data_128: 1n << 90n }),
    transfer(30n, { credit_account_id: 3n, amount: 5n }),
    transfer(40n, { flags: TransferFlags.pending, timeout: 5, amount: 4n }),
    transfer(41n, { flags: TransferFlags.pending, amount: 6n }),
    transfer(42n, { flags: TransferFlags.post_pending_transfer, pending_id: 41n, amount: 2n }),
    transfer(43n, { debit_account_id: 3n, amount: 100n }), // exceeds_credits: binds id 43
  ]);
  expect(results.map((result) => result.status)).toEqual([
    CreateTransferStatus.created,
    CreateTransferStatus.created,
    CreateTransferStatus.created,
    CreateTransferStatus.created,
    CreateTransferStatus.created,
    CreateTransferStatus.exceeds_credits,
  ]);
}

async function writeSome(client: Client, firstId: bigint, count: number): Promise<void> {
  for (let index = 0; index < count; index += 1) {
    const [result] = await client.createTransfers([
      transfer(firstId + BigInt(index), { amount: 1n + BigInt(index) }),
    ]);
    expect(result.status).toBe(CreateTransferStatus.created);
  }
}

/** What later requests see: a bound id, a pending transfer that expires on time, timestamps. */
async function later(client: Client, clock: ManualClock): Promise<unknown> {
  const retried = await client.createTransfers([
    transfer(43n, { debit_account_id: 3n, amount: 100n }),
  ]);
  clock.advanceSeconds(6);
  const [expiring] = await client.lookupAccounts([1n]);
  const next: Transfer[] = [transfer(50n), transfer(51n, { amount: 2n })];
  return {
    retried,
    pendingAfterExpiry: expiring.debits_pending,
    next: await client.createTransfers(next),
    transfers: await client.queryTransfers(queryFilter()),
  };
}

/** A ledger that never stops, driven like the one under test, to compare answers with. */
function neverStopped(): { client: Client; clock: ManualClock; close: () => void } {
  const clock = new ManualClock();
  const ledger = openEmbeddedLedger({ clock });
  return { client: ledger.createClient(), clock, close: () => ledger.close() };
}

function copyAsCrashed(name: string): string {
  const crashed = path.join(directory, name);
  fs.copyFileSync(dataFile, crashed);
  fs.copyFileSync(snapshotFile, `${crashed}.snapshot`);
  return crashed;
}

describe('embedded ledger: snapshots', () => {
  it('a clean stop writes a snapshot; the next start replays nothing and answers the same', async () => {
    const reference = neverStopped();
    const clock = new ManualClock();
    const first = openEmbeddedLedger({ clock, dataFile, snapshotJournalBytesMin: 1 });
    await populate(first.createClient());
    await populate(reference.client);
    first.close();
    expect(fs.existsSync(snapshotFile)).toBe(true);

    const second = openEmbeddedLedger({ clock, dataFile, snapshotJournalBytesMin: 1 });
    expect(second.start).toEqual({ snapshotLoaded: true, journalReplayedBytes: 0 });
    expect(second.journalWarnings).toEqual([]);
    const reopened = second.createClient();
    expect(await state(reopened)).toEqual(await state(reference.client));
    const answers = await later(reopened, clock);
    expect(answers).toEqual(await later(reference.client, reference.clock));
    expect(answers).toMatchObject({
      retried: [{ status: CreateTransferStatus.id_already_failed }],
      pendingAfterExpiry: 0n,
    });
    second.close();
    reference.close();
  });

  it('after a crash, the snapshot is loaded and only the journal written after it replayed', async () => {
    const clock = new ManualClock();
    const first = openEmbeddedLedger({ clock, dataFile, snapshotJournalBytesMin: 1 });
    await populate(first.createClient());
    first.close();
    const journalAtSnapshot = fs.statSync(dataFile).size;

    const second = openEmbeddedLedger({ clock, dataFile, snapshotJournalBytesMin: 1024 * 1024 });
    const running = second.createClient();
    await writeSome(running, 100n, 5);
    const expected = await state(running);
    const crashed = copyAsCrashed('crashed.journal'); // what a killed process leaves behind
    second.close();

    const third = openEmbeddedLedger({ clock, dataFile: crashed });
    expect(third.start.snapshotLoaded).toBe(true);
    expect(third.start.journalReplayedBytes).toBe(fs.statSync(crashed).size - journalAtSnapshot);
    expect(third.start.journalReplayedBytes).toBeGreaterThan(0);
    expect(await state(third.createClient())).toEqual(expected);
    third.close();
  });

  it('a running ledger writes a snapshot once its journal grew by snapshotJournalBytesMin', async () => {
    const first = openEmbeddedLedger({ dataFile, snapshotJournalBytesMin: 4096 });
    const client = first.createClient();
    await client.createAccounts([account(1n), account(2n)]);
    await writeSome(client, 10n, 5); // about 1 KiB of journal: not yet
    expect(fs.existsSync(snapshotFile)).toBe(false);
    const batch = Array.from({ length: 40 }, (_, index) => transfer(100n + BigInt(index)));
    await client.createTransfers(batch); // 5 KiB more
    // The snapshot is written in the event-loop turn after the journal's flush (no timer).
    await new Promise((resolve) => setImmediate(resolve));
    expect(fs.existsSync(snapshotFile)).toBe(true);
    await writeSome(client, 200n, 3);
    const expected = await state(client);
    const crashed = copyAsCrashed('crashed.journal');
    first.close();

    const reopened = openEmbeddedLedger({ dataFile: crashed });
    expect(reopened.start.snapshotLoaded).toBe(true);
    expect(reopened.start.journalReplayedBytes).toBeGreaterThan(0);
    expect(reopened.start.journalReplayedBytes).toBeLessThan(4096);
    expect(await state(reopened.createClient())).toEqual(expected);
    reopened.close();
  });

  it('a start that replayed snapshotJournalBytesMin writes a snapshot at once (a crash loop stays fast)', async () => {
    const first = openEmbeddedLedger({ dataFile });
    await populate(first.createClient());
    first.close(); // far under the default limit: no snapshot
    expect(fs.existsSync(snapshotFile)).toBe(false);

    const second = openEmbeddedLedger({ dataFile, snapshotJournalBytesMin: 1 });
    expect(second.start).toMatchObject({ snapshotLoaded: false });
    expect(fs.existsSync(snapshotFile)).toBe(true);
    const crashed = copyAsCrashed('crashed.journal');
    second.close();
    const third = openEmbeddedLedger({ dataFile: crashed });
    expect(third.start).toEqual({ snapshotLoaded: true, journalReplayedBytes: 0 });
    third.close();
  });

  it('ignores a damaged snapshot, says so, and replays the whole journal', async () => {
    const first = openEmbeddedLedger({ dataFile, snapshotJournalBytesMin: 1 });
    await populate(first.createClient());
    const expected = await state(first.createClient());
    first.close();
    const intact = fs.readFileSync(snapshotFile);
    // A flipped bit in the header, in the transfers, in the last section; a cut file.
    const damages: [RegExp, (bytes: Buffer) => Buffer][] = [
      [/header checksum/, (bytes) => flipped(bytes, 60)],
      [/section 2 checksum/, (bytes) => flipped(bytes, 256 + 3 * 128 + 8 + 24 + 5)],
      [/section 8 checksum/, (bytes) => flipped(bytes, bytes.length - 3)],
      [/bytes, not/, (bytes) => bytes.subarray(0, bytes.length - 8)],
    ];
    for (const [reason, damage] of damages) {
      fs.writeFileSync(snapshotFile, damage(Buffer.from(intact)));
      const second = openEmbeddedLedger({ dataFile });
      expect(second.journalWarnings).toEqual([
        expect.stringMatching(/snapshot .* ignored: .*; the whole journal was replayed instead/),
      ]);
      expect(second.journalWarnings[0]).toMatch(reason);
      expect(second.start).toEqual({
        snapshotLoaded: false,
        journalReplayedBytes: fs.statSync(dataFile).size - journalDataStartBytes,
      });
      expect(await state(second.createClient())).toEqual(expected);
      second.close();
    }
  });

  it('ignores a snapshot whose header is consistent but wrong, before allocating for it', async () => {
    const first = openEmbeddedLedger({ dataFile, snapshotJournalBytesMin: 1 });
    await populate(first.createClient());
    const expected = await state(first.createClient());
    first.close();
    const intact = fs.readFileSync(snapshotFile);
    // Header fields changed with the header checksum made right again: only the checks of the
    // fields themselves stand between them and a huge allocation or a read out of range.
    const transfersAt = 56;
    const sectionAt = (section: number) => 96 + section * 16;
    const rewrites: [RegExp, (header: Buffer) => void][] = [
      [
        /bytes, not/, // a petabyte of transfers, the sizes of its sections to match
        (header) => {
          const transfers = 1n << 43n;
          header.writeBigUInt64LE(transfers, transfersAt);
          header.writeBigUInt64LE(transfers * 128n, sectionAt(2)); // records
          header.writeBigUInt64LE(transfers, sectionAt(3)); // statuses
          header.writeBigUInt64LE(transfers * 8n, sectionAt(4)); // account slots
        },
      ],
      [
        /id index size is not a power of two/, // two buckets fewer, one orphaned id more
        (header) => {
          const buckets = header.readBigUInt64LE(80) - 2n;
          const orphaned = header.readBigUInt64LE(64) + 1n;
          header.writeBigUInt64LE(buckets, 80);
          header.writeBigUInt64LE(orphaned, 64);
          header.writeBigUInt64LE(orphaned * 16n, sectionAt(6));
          header.writeBigUInt64LE(buckets * 4n, sectionAt(7));
          header.writeBigUInt64LE(buckets * 4n, sectionAt(8));
        },
      ],
      [/a count out of range/, (header) => header.writeBigUInt64LE(1n << 60n, transfersAt)],
      [/section 2 does not match the counts/, (header) => header.writeBigUInt64LE(7n, transfersAt)],
      [/does not match this journal/, (header) => header.writeBigUInt64LE(1n << 40n, 24)],
      [/does not match this journal/, (header) => header.writeBigUInt64LE(16n, 24)],
    ];
    for (const [reason, rewrite] of rewrites) {
      const bytes = Buffer.from(intact);
      rewrite(bytes);
      bytes.writeUInt32LE(crc32(bytes.subarray(0, 252)), 252);
      fs.writeFileSync(snapshotFile, bytes);
      const second = openEmbeddedLedger({ dataFile });
      expect(second.journalWarnings).toEqual([expect.stringMatching(reason)]);
      expect(second.start.snapshotLoaded).toBe(false);
      expect(await state(second.createClient())).toEqual(expected);
      second.close();
    }
  });

  it('ignores a snapshot of another journal, and one its journal does not reach', async () => {
    const other = path.join(directory, 'other.journal');
    for (const file of [dataFile, other]) {
      const ledger = openEmbeddedLedger({ dataFile: file, snapshotJournalBytesMin: 1 });
      const client = ledger.createClient();
      await client.createAccounts([account(file === other ? 7n : 1n), account(2n)]);
      ledger.close();
    }
    fs.copyFileSync(`${other}.snapshot`, snapshotFile);
    const reopened = openEmbeddedLedger({ dataFile });
    expect(reopened.journalWarnings).toEqual([
      expect.stringMatching(/ignored: it is of another journal/),
    ]);
    const found = await reopened.createClient().lookupAccounts([1n, 7n]);
    expect(found.map((entry) => entry.id)).toEqual([1n]);
    reopened.close();

    // The same journal restored from an older copy: the snapshot is ahead of it.
    const older = fs.readFileSync(dataFile);
    const ledger = openEmbeddedLedger({ dataFile, snapshotJournalBytesMin: 1 });
    await writeSome(ledger.createClient(), 10n, 2);
    ledger.close();
    fs.writeFileSync(dataFile, older);
    const restored = openEmbeddedLedger({ dataFile });
    expect(restored.journalWarnings).toEqual([
      expect.stringMatching(/ignored: it does not match this journal/),
    ]);
    expect(await restored.createClient().lookupTransfers([10n])).toEqual([]);
    restored.close();
  });

  it('a snapshot after a linked chain rolled back across a chunk boundary is loaded', async () => {
    const first = openEmbeddedLedger({ dataFile, snapshotJournalBytesMin: 1 });
    const client = first.createClient();
    await client.createAccounts([account(1n), account(2n)]);
    // Fill the first chunk of the transfer store but for two transfers.
    const before = transferStoreChunkTransfers - 2;
    for (let start = 0; start < before; start += batchEventsMax) {
      const count = Math.min(batchEventsMax, before - start);
      const batch = Array.from({ length: count }, (_, index) =>
        transfer(BigInt(1_000_000 + start + index)),
      );
      const results = await client.createTransfers(batch);
      expect(results.every((result) => result.status === CreateTransferStatus.created)).toBe(true);
    }
    // A chain of four (two in each chunk) whose last fails: all four roll back.
    const chain = [1n, 2n, 3n].map((id) => transfer(id, { flags: TransferFlags.linked }));
    chain.push(transfer(4n, { credit_account_id: 9n }));
    const results = await client.createTransfers(chain);
    expect(results.map((result) => result.status)).toEqual([
      CreateTransferStatus.linked_event_failed,
      CreateTransferStatus.linked_event_failed,
      CreateTransferStatus.linked_event_failed,
      CreateTransferStatus.credit_account_not_found,
    ]);
    const expected = await client.queryTransfers(queryFilter({ flags: 1, limit: 3 }));
    first.close();

    const second = openEmbeddedLedger({ dataFile });
    expect(second.journalWarnings).toEqual([]);
    expect(second.start).toEqual({ snapshotLoaded: true, journalReplayedBytes: 0 });
    const reopened = second.createClient();
    expect(await reopened.queryTransfers(queryFilter({ flags: 1, limit: 3 }))).toEqual(expected);
    const again = await reopened.createTransfers([transfer(1n), transfer(2n), transfer(3n)]);
    expect(again.map((result) => result.status)).toEqual([
      CreateTransferStatus.created,
      CreateTransferStatus.created,
      CreateTransferStatus.created,
    ]);
    second.close();
  });

  it('every field of accounts and transfers round-trips through a snapshot at its extremes', async () => {
    const u32Max = 0xffff_ffff;
    const big = { ledger: u32Max, code: 0xffff, user_data_32: u32Max, user_data_64: u64Max };
    const accounts = [
      account(u128Max - 1n, { ...big, user_data_128: u128Max, flags: AccountFlags.history }),
      account(1n << 64n, { ...big, user_data_128: 1n << 64n, flags: AccountFlags.history }),
    ];
    const transfers = [
      transfer(u128Max - 1n, {
        ...big,
        debit_account_id: u128Max - 1n,
        credit_account_id: 1n << 64n,
        amount: u128Max - 5n,
        user_data_128: u128Max,
      }),
      transfer(1n << 64n, {
        ...big,
        debit_account_id: 1n << 64n,
        credit_account_id: u128Max - 1n,
        amount: 5n,
        timeout: u32Max,
        flags: TransferFlags.pending,
        user_data_128: (1n << 127n) + 1n,
      }),
    ];
    const ids = transfers.map((entry) => entry.id);
    const read = async (client: Client) => ({
      accounts: await client.lookupAccounts(accounts.map((entry) => entry.id)),
      transfers: await client.lookupTransfers(ids),
      history: await client.getAccountBalances(accountFilter(u128Max - 1n)),
    });
    const first = openEmbeddedLedger({ dataFile, snapshotJournalBytesMin: 1 });
    const client = first.createClient();
    expect(await client.createAccounts(accounts)).toMatchObject([
      { status: CreateAccountStatus.created },
      { status: CreateAccountStatus.created },
    ]);
    expect(await client.createTransfers(transfers)).toMatchObject([
      { status: CreateTransferStatus.created },
      { status: CreateTransferStatus.created },
    ]);
    const expected = await read(client);
    expect(expected.accounts[0]).toMatchObject({
      debits_posted: u128Max - 5n,
      credits_pending: 5n,
    });
    expect(expected.transfers[1]).toMatchObject({ timeout: u32Max, user_data_64: u64Max });
    first.close();

    const second = openEmbeddedLedger({ dataFile });
    expect(second.start).toEqual({ snapshotLoaded: true, journalReplayedBytes: 0 });
    expect(await read(second.createClient())).toEqual(expected);
    second.close();
  });

  it('a snapshot write that crashed leaves the old snapshot in use', async () => {
    const first = openEmbeddedLedger({ dataFile, snapshotJournalBytesMin: 1 });
    await populate(first.createClient());
    first.close();
    fs.writeFileSync(`${snapshotFile}.tmp`, 'half a snapshot');
    const second = openEmbeddedLedger({ dataFile });
    expect(second.start.snapshotLoaded).toBe(true);
    expect(fs.existsSync(`${snapshotFile}.tmp`)).toBe(false);
    second.close();
  });

  it('a snapshot that cannot be written costs only speed: a warning, and the journal has everything', async () => {
    fs.mkdirSync(path.join(snapshotFile, 'in-the-way'), { recursive: true }); // rename fails
    let onWarning: (message: string) => void = () => undefined;
    const firstWarning = new Promise<string>((resolve) => (onWarning = resolve));
    const first = openEmbeddedLedger({ dataFile, snapshotJournalBytesMin: 1, onWarning });
    expect(first.journalWarnings).toEqual([expect.stringMatching(/snapshot .* ignored/)]);
    const client = first.createClient();
    await client.createAccounts([account(1n), account(2n)]); // its snapshot is due, and fails
    expect(await firstWarning).toMatch(/snapshot .* not written: /);
    await writeSome(client, 10n, 3); // the ledger goes on
    const expected = await state(client);
    first.close();
    fs.rmSync(snapshotFile, { recursive: true });
    const second = openEmbeddedLedger({ dataFile });
    expect(await state(second.createClient())).toEqual(expected);
    second.close();
  });

  it('a snapshot write that fails part-way (disk full) leaves the old snapshot whole and in use', async () => {
    const first = openEmbeddedLedger({ dataFile, snapshotJournalBytesMin: 1 });
    await populate(first.createClient());
    first.close();
    const old = fs.readFileSync(snapshotFile);

    let onWarning: (message: string) => void = () => undefined;
    const warned = new Promise<string>((resolve) => (onWarning = resolve));
    const second = openEmbeddedLedger({ dataFile, snapshotJournalBytesMin: 1, onWarning });
    expect(second.start.snapshotLoaded).toBe(true);
    // The next snapshot's temporary file is a device where every write fails with ENOSPC.
    fs.symlinkSync('/dev/full', `${snapshotFile}.tmp`);
    const client = second.createClient();
    await writeSome(client, 100n, 1);
    expect(await warned).toMatch(/snapshot .* not written: ENOSPC/);
    expect(fs.readFileSync(snapshotFile).equals(old)).toBe(true);
    expect(fs.existsSync(`${snapshotFile}.tmp`)).toBe(false);
    const expected = await state(client);
    const crashed = copyAsCrashed('crashed.journal'); // the old snapshot and a journal tail
    second.close();

    const third = openEmbeddedLedger({ dataFile: crashed });
    expect(third.journalWarnings).toEqual([]);
    expect(third.start.snapshotLoaded).toBe(true);
    expect(third.start.journalReplayedBytes).toBeGreaterThan(0);
    expect(await state(third.createClient())).toEqual(expected);
    third.close();
  });

  it.each([
    ['when one falls due', 'due'],
    ['when one is asked for at once', 'snapshot'],
  ])(
    'a journal write that failed is never covered by a snapshot (%s): its batch stays unacknowledged',
    async (_, mode) => {
      const first = openEmbeddedLedger({ dataFile, snapshotJournalBytesMin: 2 ** 40 });
      await populate(first.createClient());
      // Requests that fail without binding their ids grow the journal, not the snapshot.
      for (let index = 0; index < 100; index += 1)
        await first.createClient().createTransfers([transfer(BigInt(100 + index), { code: 0 })]);
      const expected = await state(first.createClient());
      first.close();
      expect(fs.existsSync(snapshotFile)).toBe(false);
      // A process whose files may not grow past the journal's size plus a little: the journal's
      // next write fails (EFBIG) while a snapshot still fits.
      const limitBlocks = Math.ceil(fs.statSync(dataFile).size / 1024) + 1;
      const child = path.join(__dirname, 'journal-write-fails.child.ts');
      const tsx = path.join(__dirname, '../../../node_modules/tsx/dist/cli.mjs');
      const printed = execFileSync(
        'bash',
        [
          '-c',
          `ulimit -f ${limitBlocks} && exec "$0" "$@"`,
          process.execPath,
          tsx,
          child,
          dataFile,
          mode,
        ],
        { encoding: 'utf8', timeout: 60_000 },
      );
      const seen = JSON.parse(printed.trim().split('\n').at(-1) ?? '') as {
        openWarnings: string[];
        batchError: string | null;
        snapshotError: string | null;
        warnings: string[];
      };
      expect(seen.openWarnings).toEqual([]); // its start wrote a snapshot
      expect(seen.batchError).toMatch(/EFBIG/);
      if (mode === 'snapshot') expect(seen.snapshotError).toMatch(/EFBIG/);

      const second = openEmbeddedLedger({ dataFile });
      // The part of the failed write that landed is a torn last write, cut (never acknowledged).
      expect(second.journalWarnings).toEqual([
        expect.stringMatching(/cut \d+ bytes of a torn last write/),
      ]);
      expect(second.start.snapshotLoaded).toBe(true);
      expect(await second.createClient().lookupTransfers([5_000n, 5_019n])).toEqual([]);
      expect(await state(second.createClient())).toEqual(expected);
      second.close();
    },
  );

  it("the gateway's ledger carries an ignored snapshot's warning, so the operator sees it", async () => {
    const first = openEmbeddedLedger({ dataFile, snapshotJournalBytesMin: 1 });
    await first.createClient().createAccounts([account(1n), account(2n)]);
    first.close();
    fs.writeFileSync(snapshotFile, flipped(fs.readFileSync(snapshotFile), 300));
    const ledger = openLedger({ kind: 'embedded', dataFile });
    expect(ledger.warnings).toEqual([expect.stringMatching(/snapshot .* ignored/)]);
    await ledger.close();
  });
});

function flipped(bytes: Buffer, offset: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[offset] ^= 0x01;
  return copy;
}
