import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import {
  CreateAccountStatus,
  CreateTransferStatus,
  TransferFlags,
  type Client,
} from 'tigerbeetle-node';
import { ManualClock, openEmbeddedLedger } from '../../../tigerbeetle/engine';
import { journalDataStartBytes } from '../../../tigerbeetle/engine/journal';
import { openLedger } from '../../../tigerbeetle/ledger';
import { account, queryFilter, transfer } from './fixtures';

const { created } = CreateTransferStatus;
let directory: string;
let dataFile: string;

beforeEach(() => {
  directory = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-journal-test-'));
  dataFile = path.join(directory, 'ledger.journal');
});
afterEach(() => fs.rmSync(directory, { recursive: true, force: true }));

async function snapshot(client: Client): Promise<unknown> {
  return {
    accounts: await client.queryAccounts(queryFilter()),
    transfers: await client.queryTransfers(queryFilter()),
  };
}

/** Three requests, each its own journal frame (the test awaits each). */
async function writeThreeBatches(client: Client): Promise<void> {
  expect(
    (await client.createAccounts([account(1n), account(2n)])).map((result) => result.status),
  ).toEqual([CreateAccountStatus.created, CreateAccountStatus.created]);
  expect((await client.createTransfers([transfer(10n, { amount: 5n })]))[0].status).toBe(created);
  expect((await client.createTransfers([transfer(11n, { amount: 7n })]))[0].status).toBe(created);
}

describe('embedded ledger: journal', () => {
  it('replays the journal on open: same state, same timestamps, failed ids still bound', async () => {
    const clock = new ManualClock();
    const first = openEmbeddedLedger({ clock, dataFile });
    const client = first.createClient();
    await client.createAccounts([
      account(1n),
      account(2n),
      account(3n, { flags: 2 /* debits_must_not_exceed_credits */ }),
    ]);
    await client.createTransfers([
      transfer(1n, { amount: 5n }),
      transfer(2n, { debit_account_id: 3n, amount: 1n }), // exceeds_credits: binds id 2
      transfer(3n, { amount: 9n, flags: TransferFlags.pending, timeout: 1 }),
    ]);
    clock.advanceSeconds(2);
    const before = await snapshot(client); // this read expires transfer 3 (a journaled pulse)
    first.close();

    const second = openEmbeddedLedger({ clock, dataFile });
    const reopened = second.createClient();
    expect(await snapshot(reopened)).toEqual(before);
    const [lookup] = await reopened.lookupAccounts([1n]);
    expect(lookup.debits_pending).toBe(0n);
    const retry = await reopened.createTransfers([
      transfer(2n, { debit_account_id: 3n, amount: 1n }),
      transfer(4n, { flags: TransferFlags.post_pending_transfer, pending_id: 3n, amount: 9n }),
    ]);
    expect(retry.map((result) => result.status)).toEqual([
      CreateTransferStatus.id_already_failed,
      CreateTransferStatus.pending_transfer_expired,
    ]);
    const [latest] = await reopened.createTransfers([transfer(5n)]);
    const transfers = (await snapshot(reopened)) as { transfers: { timestamp: bigint }[] };
    expect(latest.timestamp).toBeGreaterThan(
      transfers.transfers[transfers.transfers.length - 2].timestamp,
    );
    second.close();
  });

  it('has the data on disk when the promise resolves (a copy of the file reproduces it)', async () => {
    const ledger = openEmbeddedLedger({ dataFile });
    const client = ledger.createClient();
    await writeThreeBatches(client);
    const copy = path.join(directory, 'copy.journal');
    fs.copyFileSync(dataFile, copy); // taken while the ledger is still open: no close() flush
    const expected = await snapshot(client);
    ledger.close();
    const fromCopy = openEmbeddedLedger({ dataFile: copy });
    expect(await snapshot(fromCopy.createClient())).toEqual(expected);
    fromCopy.close();
  });

  it('cuts away a torn last record and keeps everything before it', async () => {
    const ledger = openEmbeddedLedger({ dataFile });
    const client = ledger.createClient();
    await writeThreeBatches(client);
    ledger.close();
    const fullBytes = fs.statSync(dataFile).size;
    fs.truncateSync(dataFile, fullBytes - 40); // mid-way through the last transfer record

    const reopened = openEmbeddedLedger({ dataFile });
    expect(reopened.truncatedBytes).toBeGreaterThan(0);
    const reader = reopened.createClient();
    expect((await reader.lookupTransfers([10n, 11n])).map((found) => found.id)).toEqual([10n]);
    // The file is usable again: new writes land after the cut and survive another reopen.
    expect((await reader.createTransfers([transfer(12n)]))[0].status).toBe(created);
    reopened.close();
    const again = openEmbeddedLedger({ dataFile });
    expect(again.truncatedBytes).toBe(0);
    expect(
      (await again.createClient().lookupTransfers([10n, 11n, 12n])).map((found) => found.id),
    ).toEqual([10n, 12n]);
    again.close();
  });

  it('treats a last record with a bad checksum, or zeros at the end, as a torn write', async () => {
    const ledger = openEmbeddedLedger({ dataFile });
    await writeThreeBatches(ledger.createClient());
    ledger.close();
    const bytes = fs.readFileSync(dataFile);
    bytes[bytes.length - 3] ^= 0xff;
    fs.writeFileSync(dataFile, Buffer.concat([bytes, Buffer.alloc(4096)]));
    const reopened = openEmbeddedLedger({ dataFile });
    expect(
      (await reopened.createClient().lookupTransfers([10n, 11n])).map((found) => found.id),
    ).toEqual([10n]);
    reopened.close();
  });

  it('refuses to open a journal with corruption before its last record', async () => {
    const ledger = openEmbeddedLedger({ dataFile });
    await writeThreeBatches(ledger.createClient());
    ledger.close();
    const bytes = fs.readFileSync(dataFile);
    const firstPayloadByte = journalDataStartBytes + 40; // inside the first frame's payload
    bytes[firstPayloadByte] ^= 0x01;
    fs.writeFileSync(dataFile, bytes);
    expect(() => openEmbeddedLedger({ dataFile })).toThrow(
      /checksum mismatch at byte 4096, before the last write .*refusing to open/,
    );
    bytes[firstPayloadByte] ^= 0x01;
    bytes[journalDataStartBytes + 2] ^= 0x01; // the first frame's header
    fs.writeFileSync(dataFile, bytes);
    expect(() => openEmbeddedLedger({ dataFile })).toThrow(
      /damaged frame header at byte 4096, before the last write/,
    );
  });

  it('allows one open ledger per data file', () => {
    const ledger = openEmbeddedLedger({ dataFile });
    expect(() => openEmbeddedLedger({ dataFile })).toThrow(/already open/);
    ledger.close();
    openEmbeddedLedger({ dataFile }).close();
  });

  it('reports a cut loudly: how many bytes, where, and why', async () => {
    const ledger = openEmbeddedLedger({ dataFile });
    await writeThreeBatches(ledger.createClient());
    ledger.close();
    fs.truncateSync(dataFile, fs.statSync(dataFile).size - 40);
    const reopened = openEmbeddedLedger({ dataFile });
    expect(reopened.journalWarnings).toEqual([
      expect.stringMatching(/cut \d+ bytes of a torn last write at byte \d+ \(a short frame\)/),
    ]);
    reopened.close();
    const again = openEmbeddedLedger({ dataFile });
    expect(again.journalWarnings).toEqual([]);
    again.close();
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

  it('refuses to open a journal truncated before its last write (acknowledged requests are missing)', async () => {
    const ledger = openEmbeddedLedger({ dataFile });
    const client = ledger.createClient();
    await writeThreeBatches(client);
    const boundaries = await frameBoundaries(dataFile);
    ledger.close();
    // Cut exactly at a frame boundary: every frame left is whole, yet two acknowledged writes are gone.
    fs.truncateSync(dataFile, boundaries[1]);
    expect(() => openEmbeddedLedger({ dataFile })).toThrow(/truncated\); refusing to open/);
  });

  it('opens a file that lost exactly its last write (a torn write whose frames never landed) and reports what was lost', async () => {
    const ledger = openEmbeddedLedger({ dataFile });
    await writeThreeBatches(ledger.createClient());
    const boundaries = await frameBoundaries(dataFile);
    ledger.close();
    const lastWriteBytes = boundaries[boundaries.length - 1] - boundaries[boundaries.length - 2];
    fs.truncateSync(dataFile, boundaries[boundaries.length - 2]);
    const reopened = openEmbeddedLedger({ dataFile });
    expect(reopened.journalWarnings).toEqual([
      expect.stringContaining(
        `cut ${lastWriteBytes} bytes of a torn last write at byte ${boundaries[boundaries.length - 2]} (its frames are missing: the file ends where that write began)`,
      ),
    ]);
    expect(
      (await reopened.createClient().lookupTransfers([10n, 11n])).map((found) => found.id),
    ).toEqual([10n]);
    reopened.close();
    const again = openEmbeddedLedger({ dataFile });
    expect(again.journalWarnings).toEqual([]);
    again.close();
  });

  it('every refusal to open says what to do: restore the file, or move it aside for an empty ledger', async () => {
    const ledger = openEmbeddedLedger({ dataFile });
    await writeThreeBatches(ledger.createClient());
    const boundaries = await frameBoundaries(dataFile);
    ledger.close();
    const intact = fs.readFileSync(dataFile);
    const advice = new RegExp(
      `refusing to open\\. Restore ${dataFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} from a backup, or move it aside to start an empty ledger`,
    );
    const damaged = Buffer.from(intact);
    damaged[journalDataStartBytes + 40] ^= 0x01; // a frame before the last write
    const superblocksZeroed = Buffer.from(intact);
    superblocksZeroed.fill(0, 0, journalDataStartBytes);
    for (const bytes of [intact.subarray(0, boundaries[1]), damaged, superblocksZeroed]) {
      fs.writeFileSync(dataFile, bytes);
      expect(() => openEmbeddedLedger({ dataFile })).toThrow(advice);
    }
  });

  it('cuts a last frame that lost its header but kept later bytes (a torn write, not corruption)', async () => {
    const ledger = openEmbeddedLedger({ dataFile });
    await writeThreeBatches(ledger.createClient());
    const boundaries = await frameBoundaries(dataFile);
    ledger.close();
    const bytes = fs.readFileSync(dataFile);
    bytes.fill(0, boundaries[boundaries.length - 2], boundaries[boundaries.length - 2] + 16); // the last frame's header only
    fs.writeFileSync(dataFile, bytes);
    const reopened = openEmbeddedLedger({ dataFile });
    expect(reopened.journalWarnings).toEqual([
      expect.stringMatching(/torn last write .*a damaged frame header/),
    ]);
    expect(
      (await reopened.createClient().lookupTransfers([10n, 11n])).map((found) => found.id),
    ).toEqual([10n]);
    reopened.close();
  });

  it('survives a torn superblock write: the other copy, one write older, still opens the file', async () => {
    const ledger = openEmbeddedLedger({ dataFile });
    await writeThreeBatches(ledger.createClient());
    ledger.close();
    const bytes = fs.readFileSync(dataFile);
    const copies = [0, 2048];
    const newest = copies.reduce((best, offset) =>
      bytes.readBigUInt64LE(offset + 8) > bytes.readBigUInt64LE(best + 8) ? offset : best,
    );
    bytes[newest + 20] ^= 0xff;
    fs.writeFileSync(dataFile, bytes);
    const reopened = openEmbeddedLedger({ dataFile });
    expect(
      (await reopened.createClient().lookupTransfers([10n, 11n])).map((found) => found.id),
    ).toEqual([10n, 11n]);
    reopened.close();
    bytes[2048 - newest + 20] ^= 0xff; // both copies damaged
    fs.writeFileSync(dataFile, bytes);
    expect(() => openEmbeddedLedger({ dataFile })).toThrow(/both superblock copies are damaged/);
  });

  it('gives a journal of superblock version 2 (no journal id) an id, in both copies, keeping every request', async () => {
    const ledger = openEmbeddedLedger({ dataFile });
    const client = ledger.createClient();
    await writeThreeBatches(client);
    const expected = await snapshot(client);
    ledger.close();
    const bytes = fs.readFileSync(dataFile);
    for (const offset of [0, 2048]) {
      // Version 2: the same first 32 bytes, then the CRC-32 of the first 36 at byte 36.
      bytes.writeUInt32LE(2, offset + 4);
      bytes.fill(0, offset + 32, offset + 56);
      bytes.writeUInt32LE(zlib.crc32(bytes.subarray(offset, offset + 36)), offset + 36);
    }
    fs.writeFileSync(dataFile, bytes);

    const reopened = openEmbeddedLedger({ dataFile });
    expect(reopened.journalWarnings).toEqual([]);
    expect(await snapshot(reopened.createClient())).toEqual(expected);
    reopened.close();
    const upgraded = fs.readFileSync(dataFile);
    const ids = [0, 2048].map((offset) =>
      upgraded.subarray(offset + 32, offset + 48).toString('hex'),
    );
    expect([0, 2048].map((offset) => upgraded.readUInt32LE(offset + 4))).toEqual([3, 3]);
    expect(ids[0]).toBe(ids[1]);
    expect(ids[0]).not.toBe('0'.repeat(32));
  });

  it('upgrades a journal written before the superblock (frames from byte 0), keeping every request', async () => {
    const ledger = openEmbeddedLedger({ dataFile });
    const client = ledger.createClient();
    await writeThreeBatches(client);
    const expected = await snapshot(client);
    ledger.close();
    const legacy = fs.readFileSync(dataFile).subarray(journalDataStartBytes);
    fs.writeFileSync(dataFile, legacy);
    const upgraded = openEmbeddedLedger({ dataFile });
    expect(upgraded.journalWarnings).toEqual([expect.stringMatching(/upgraded from format 1/)]);
    expect(await snapshot(upgraded.createClient())).toEqual(expected);
    upgraded.close();
    const again = openEmbeddedLedger({ dataFile });
    expect(again.journalWarnings).toEqual([]);
    expect(await snapshot(again.createClient())).toEqual(expected);
    again.close();
  });

  it('upgrading an old journal cuts its torn last frame but refuses damage before it', async () => {
    const ledger = openEmbeddedLedger({ dataFile });
    await writeThreeBatches(ledger.createClient());
    ledger.close();
    const legacy = Buffer.from(fs.readFileSync(dataFile).subarray(journalDataStartBytes));
    fs.writeFileSync(dataFile, legacy.subarray(0, legacy.length - 40));
    const torn = openEmbeddedLedger({ dataFile });
    expect(torn.journalWarnings).toEqual([
      expect.stringMatching(/upgraded/),
      expect.stringMatching(/torn last write/),
    ]);
    expect(
      (await torn.createClient().lookupTransfers([10n, 11n])).map((found) => found.id),
    ).toEqual([10n]);
    torn.close();
    legacy[40] ^= 0x01; // inside the first frame
    fs.writeFileSync(dataFile, legacy);
    expect(() => openEmbeddedLedger({ dataFile })).toThrow(
      /damaged frame at byte 0 with data after it/,
    );
  });
});

/** Offsets where each frame ends, read from the frame headers (magic u32, payload bytes u32, ...). */
async function frameBoundaries(file: string): Promise<number[]> {
  const bytes = fs.readFileSync(file);
  const ends: number[] = [];
  for (let offset = journalDataStartBytes; offset + 16 <= bytes.length;) {
    offset += 16 + bytes.readUInt32LE(offset + 4);
    ends.push(offset);
  }
  return [journalDataStartBytes, ...ends];
}
