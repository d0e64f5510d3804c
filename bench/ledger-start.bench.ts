/**
 * How long the embedded ledger takes to start on a large data file, and what it holds in memory
 * then: from the snapshot a clean stop wrote; after a crash (the snapshot plus the journal written
 * after it, the longest tail a running ledger leaves: just under `snapshotJournalBytesMin`); and
 * the whole journal replayed without a snapshot, for comparison. Not a test: it prints a table.
 * The journal is built the way a running gateway writes it: many small requests, group-committed
 * (one write and fsync per event-loop turn). Each start runs in a process of its own, so its
 * memory is its own. Size: LEDGER_START_TRANSFERS (default 1,000,000); requests of
 * LEDGER_START_TRANSFERS_PER_REQUEST (default 8).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AccountFlags, type Account, type Client, type Transfer } from 'tigerbeetle-node';
import { createSystemClock, openEmbeddedLedger } from '../tigerbeetle/engine';
import { LedgerEngine, snapshotJournalBytesMinDefault } from '../tigerbeetle/engine/engine';

const transferCount = Number(process.env.LEDGER_START_TRANSFERS ?? 1_000_000);
const accountCount = 1_000;
const transfersPerRequest = Number(process.env.LEDGER_START_TRANSFERS_PER_REQUEST ?? 8);
const requestsPerTurn = 256;
const ledger = 1;
/** Never write a snapshot on its own (the bench decides when). */
const snapshotNever = Number.MAX_SAFE_INTEGER;

function accountOf(id: number): Account {
  return {
    id: BigInt(id),
    debits_pending: 0n,
    debits_posted: 0n,
    credits_pending: 0n,
    credits_posted: 0n,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    reserved: 0,
    ledger,
    code: 1,
    flags: id % 10 === 0 ? AccountFlags.history : AccountFlags.none,
    timestamp: 0n,
  };
}

function transferOf(id: number): Transfer {
  const debit = 1 + (id % accountCount);
  const credit = 1 + ((id * 7 + 3) % accountCount);
  return {
    id: BigInt(id),
    debit_account_id: BigInt(debit),
    credit_account_id: BigInt(credit === debit ? (credit % accountCount) + 1 : credit),
    amount: BigInt(1 + (id % 1000)),
    pending_id: 0n,
    user_data_128: BigInt(id) << 64n,
    user_data_64: BigInt(id),
    user_data_32: id % 97,
    timeout: 0,
    ledger,
    code: 1,
    flags: 0,
    timestamp: 0n,
  };
}

/** Writes transfers firstId .. lastId as a running gateway would (many small requests per turn). */
async function writeTransfers(client: Client, firstId: number, lastId: number): Promise<void> {
  let nextId = firstId;
  while (nextId <= lastId) {
    const turn: Promise<unknown>[] = [];
    for (let request = 0; request < requestsPerTurn && nextId <= lastId; request += 1) {
      const batch: Transfer[] = [];
      for (let index = 0; index < transfersPerRequest && nextId <= lastId; index += 1)
        batch.push(transferOf(nextId++));
      turn.push(client.createTransfers(batch));
    }
    await Promise.all(turn);
  }
}

async function build(dataFile: string): Promise<void> {
  const built = openEmbeddedLedger({ dataFile, snapshotJournalBytesMin: snapshotNever });
  const client = built.createClient();
  await client.createAccounts(
    Array.from({ length: accountCount }, (_, index) => accountOf(index + 1)),
  );
  await writeTransfers(client, 1, transferCount);
  built.close();
}

/**
 * The crash case: the ledger is copied while it runs (what a killed process leaves behind)
 * after a tail of transfers just under the snapshot limit was written since its snapshot.
 */
async function crashedCopy(dataFile: string, crashedFile: string): Promise<number> {
  const bytesPerTransfer = (fs.statSync(dataFile).size - 4096) / transferCount;
  const tailTransfers = Math.floor((0.95 * snapshotJournalBytesMinDefault) / bytesPerTransfer);
  const running = openEmbeddedLedger({ dataFile });
  if (!running.start.snapshotLoaded)
    throw new Error('the crash case did not start from a snapshot');
  await writeTransfers(running.createClient(), transferCount + 1, transferCount + tailTransfers);
  fs.copyFileSync(dataFile, crashedFile);
  fs.copyFileSync(`${dataFile}.snapshot`, `${crashedFile}.snapshot`);
  running.close();
  return tailTransfers;
}

interface StartMeasured {
  seconds: number;
  snapshotLoaded: boolean;
  journalReplayedBytes: number;
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
}

/** One start, in this process (run by `measureStart` in a child process). */
function startOnce(dataFile: string, snapshotJournalBytesMin: number): StartMeasured {
  const begin = process.hrtime.bigint();
  const started = openEmbeddedLedger({ dataFile, snapshotJournalBytesMin });
  const seconds = Number(process.hrtime.bigint() - begin) / 1e9;
  if (started.journalWarnings.length > 0) throw new Error(started.journalWarnings.join('; '));
  const memory = process.memoryUsage();
  const measured = {
    seconds,
    ...started.start,
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    externalBytes: memory.external,
  };
  started.close();
  return measured;
}

/** Replays the journal, then times writing the snapshot of that state (in this process). */
function writeSnapshotOnce(dataFile: string): { seconds: number } {
  const engine = LedgerEngine.open(createSystemClock(), dataFile, {
    snapshotJournalBytesMin: snapshotNever,
  });
  const begin = process.hrtime.bigint();
  engine.snapshot();
  const seconds = Number(process.hrtime.bigint() - begin) / 1e9;
  engine.close();
  return { seconds };
}

function inChildProcess<Result>(...argv: string[]): Result {
  const output = execFileSync(process.execPath, [...process.execArgv, __filename, ...argv], {
    encoding: 'utf8',
    maxBuffer: 1024 * 1024,
  });
  return JSON.parse(output.trim().split('\n').at(-1) ?? '') as Result;
}

function measureStart(dataFile: string, snapshotJournalBytesMin: number): StartMeasured {
  return inChildProcess<StartMeasured>('--start', dataFile, String(snapshotJournalBytesMin));
}

const mebibyte = 2 ** 20;

function row(label: string, measured: StartMeasured): string {
  const replayedMiB = (measured.journalReplayedBytes / mebibyte).toFixed(0);
  return [
    label.padEnd(48),
    `${measured.seconds.toFixed(2)} s`.padStart(9),
    `${replayedMiB} MiB`.padStart(10),
    `${(measured.rssBytes / mebibyte).toFixed(0)} MiB`.padStart(10),
    `${(measured.heapUsedBytes / mebibyte).toFixed(0)} MiB`.padStart(10),
    `${(measured.externalBytes / mebibyte).toFixed(0)} MiB`.padStart(10),
  ].join(' ');
}

async function main(): Promise<void> {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-start-bench-'));
  const dataFile = path.join(directory, 'ledger.journal');
  const crashedFile = path.join(directory, 'crashed.journal');
  try {
    console.log(
      `ledger start, ${transferCount} transfers in requests of ${transfersPerRequest}, ${accountCount} accounts (1 in 10 with history), node ${process.version}`,
    );
    await build(dataFile);
    const journalMiB = fs.statSync(dataFile).size / mebibyte;
    const replay = measureStart(dataFile, snapshotNever);
    const written = inChildProcess<{ seconds: number }>('--write', dataFile);
    const snapshotMiB = fs.statSync(`${dataFile}.snapshot`).size / mebibyte;
    const fromSnapshot = measureStart(dataFile, snapshotJournalBytesMinDefault);
    if (!fromSnapshot.snapshotLoaded) throw new Error('the start did not use the snapshot');
    const tailTransfers = await crashedCopy(dataFile, crashedFile);
    const afterCrash = measureStart(crashedFile, snapshotNever);
    if (!afterCrash.snapshotLoaded)
      throw new Error('the start after a crash did not use the snapshot');

    console.log(`journal ${journalMiB.toFixed(0)} MiB, snapshot ${snapshotMiB.toFixed(0)} MiB`);
    console.log(
      `${'start'.padEnd(48)} ${'time'.padStart(9)} ${'replayed'.padStart(10)} ${'rss'.padStart(10)} ${'heap'.padStart(10)} ${'external'.padStart(10)}`,
    );
    console.log(row('from the snapshot, no journal after it', fromSnapshot));
    console.log(row(`after a crash: snapshot + ${tailTransfers} transfers`, afterCrash));
    console.log(row('the whole journal, no snapshot', replay));
    console.log(
      `writing the snapshot (the ledger blocks meanwhile): ${written.seconds.toFixed(2)} s`,
    );
    console.log(
      `from the snapshot / the whole journal: ${(fromSnapshot.seconds / replay.seconds).toFixed(2)}`,
    );
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--start') {
  console.log(JSON.stringify(startOnce(process.argv[3], Number(process.argv[4]))));
} else if (process.argv[2] === '--write') {
  console.log(JSON.stringify(writeSnapshotOnce(process.argv[3])));
} else {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
