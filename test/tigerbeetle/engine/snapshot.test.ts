import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateTransferStatus, TransferFlags, type Client } from 'tigerbeetle-node';
import { ManualClock, openEmbeddedLedger } from '../../../tigerbeetle/engine';
import { openLedger } from '../../../tigerbeetle/ledger';
import { account, queryFilter, transfer } from './fixtures';

/**
 * Snapshots make a start fast: the state is loaded from the snapshot and only the journal written
 * after it is replayed. The journal stays the source of truth: a snapshot that is damaged or not
 * of this journal is ignored, with a warning, and everything is replayed.
 */

let directory: string;
let dataFile: string;
beforeEach(() => {
  directory = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-snapshot-test-'));
  dataFile = path.join(directory, 'ledger.journal');
});
afterEach(() => fs.rmSync(directory, { recursive: true, force: true }));

async function state(client: Client): Promise<unknown> {
  return { accounts: await client.queryAccounts(queryFilter()), transfers: await client.queryTransfers(queryFilter()) };
}

async function writeSome(client: Client, firstId: bigint, count: number): Promise<void> {
  for (let index = 0; index < count; index += 1) {
    const [result] = await client.createTransfers([transfer(firstId + BigInt(index), { amount: 1n })]);
    expect(result.status).toBe(CreateTransferStatus.created);
  }
}

describe('embedded ledger: snapshots', () => {
  it('a clean stop writes a snapshot; the next start replays nothing and has the same state', async () => {
    const clock = new ManualClock();
    const first = openEmbeddedLedger({ clock, dataFile, snapshotAfterJournalBytes: 1 });
    const client = first.createClient();
    await client.createAccounts([account(1n), account(2n)]);
    await writeSome(client, 10n, 20);
    await client.createTransfers([transfer(99n, { flags: TransferFlags.pending, timeout: 5, amount: 3n })]);
    const expected = await state(client);
    first.close();
    expect(fs.existsSync(`${dataFile}.snapshot`)).toBe(true);

    const second = openEmbeddedLedger({ clock, dataFile, snapshotAfterJournalBytes: 1 });
    expect(second.journalReplayedBytes).toBe(0);
    const reopened = second.createClient();
    expect(await state(reopened)).toEqual(expected);
    // The pending transfer still expires on time after a start from the snapshot.
    clock.advanceSeconds(6);
    const [expired] = await reopened.lookupAccounts([1n]);
    expect(expired.debits_pending).toBe(0n);
    second.close();
  });

  it('after a crash (no clean stop) only the journal written since the snapshot is replayed', async () => {
    const clock = new ManualClock();
    const first = openEmbeddedLedger({ clock, dataFile, snapshotAfterJournalBytes: 1 });
    const client = first.createClient();
    await client.createAccounts([account(1n), account(2n)]);
    await writeSome(client, 10n, 10);
    first.close();
    const journalAtSnapshot = fs.statSync(dataFile).size;

    const second = openEmbeddedLedger({ clock, dataFile, snapshotAfterJournalBytes: 1 });
    const running = second.createClient();
    await writeSome(running, 100n, 5);
    const expected = await state(running);
    // A crash: copy the files while the ledger is open (what a killed process leaves behind).
    const crashed = path.join(directory, 'crashed.journal');
    fs.copyFileSync(dataFile, crashed);
    fs.copyFileSync(`${dataFile}.snapshot`, `${crashed}.snapshot`);
    second.close();

    const third = openEmbeddedLedger({ clock, dataFile: crashed, snapshotAfterJournalBytes: 1024 * 1024 });
    expect(third.journalReplayedBytes).toBe(fs.statSync(crashed).size - journalAtSnapshot);
    expect(third.journalReplayedBytes).toBeGreaterThan(0);
    expect(await state(third.createClient())).toEqual(expected);
    third.close();
  });

  it('a long replay on open writes a snapshot at once, so a crash loop does not replay it again', async () => {
    const first = openEmbeddedLedger({ dataFile, snapshotAfterJournalBytes: 1024 * 1024 });
    const client = first.createClient();
    await client.createAccounts([account(1n), account(2n)]);
    await writeSome(client, 10n, 30);
    first.close(); // under the threshold: no snapshot
    expect(fs.existsSync(`${dataFile}.snapshot`)).toBe(false);

    const second = openEmbeddedLedger({ dataFile, snapshotAfterJournalBytes: 1 });
    expect(second.journalReplayedBytes).toBeGreaterThan(0);
    expect(fs.existsSync(`${dataFile}.snapshot`)).toBe(true);
    const copy = path.join(directory, 'copy.journal');
    fs.copyFileSync(dataFile, copy);
    fs.copyFileSync(`${dataFile}.snapshot`, `${copy}.snapshot`);
    second.close();
    const third = openEmbeddedLedger({ dataFile: copy });
    expect(third.journalReplayedBytes).toBe(0);
    third.close();
  });

  it('ignores a damaged snapshot, says so, and replays the whole journal', async () => {
    const first = openEmbeddedLedger({ dataFile, snapshotAfterJournalBytes: 1 });
    const client = first.createClient();
    await client.createAccounts([account(1n), account(2n)]);
    await writeSome(client, 10n, 10);
    const expected = await state(client);
    first.close();
    const snapshot = fs.readFileSync(`${dataFile}.snapshot`);
    snapshot[snapshot.length - 10] ^= 0xff; // inside the last chunk
    fs.writeFileSync(`${dataFile}.snapshot`, snapshot);

    const second = openEmbeddedLedger({ dataFile, snapshotAfterJournalBytes: 1024 * 1024 });
    expect(second.journalWarnings).toEqual([expect.stringMatching(/snapshot .* ignored: a checksum mismatch .*the whole journal was replayed/)]);
    expect(second.journalReplayedBytes).toBe(fs.statSync(dataFile).size - 4096);
    expect(await state(second.createClient())).toEqual(expected);
    second.close();
  });

  it('ignores a snapshot of another journal', async () => {
    const other = path.join(directory, 'other.journal');
    for (const file of [dataFile, other]) {
      const ledger = openEmbeddedLedger({ dataFile: file, snapshotAfterJournalBytes: 1 });
      const client = ledger.createClient();
      await client.createAccounts([account(file === other ? 7n : 1n), account(2n)]);
      ledger.close();
    }
    fs.copyFileSync(`${other}.snapshot`, `${dataFile}.snapshot`);
    const reopened = openEmbeddedLedger({ dataFile });
    expect(reopened.journalWarnings).toEqual([expect.stringMatching(/ignored: it is not of this journal/)]);
    expect((await reopened.createClient().lookupAccounts([1n, 7n])).map((found) => found.id)).toEqual([1n]);
    reopened.close();
  });

  it("the gateway's ledger carries the warnings, so the operator sees them in its log", async () => {
    const first = openEmbeddedLedger({ dataFile });
    await first.createClient().createAccounts([account(1n), account(2n)]);
    first.close();
    fs.truncateSync(dataFile, fs.statSync(dataFile).size - 20);
    const ledger = openLedger({ kind: 'embedded', dataFile });
    expect(ledger.warnings).toEqual([expect.stringMatching(/torn last write/)]);
    await ledger.close();
  });
});
