/**
 * How long the embedded ledger takes to start on a large data file: the whole journal is replayed
 * (every request runs through the state machine again). Not a test: it prints seconds, and seconds
 * per million transfers. The journal is built the way a running gateway writes it: many small
 * requests, group-committed (one write and fsync per event-loop turn). Size: LEDGER_START_TRANSFERS
 * (default 1,000,000); requests of LEDGER_START_TRANSFERS_PER_REQUEST (default 8).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AccountFlags, type Account, type Transfer } from 'tigerbeetle-node';
import { openEmbeddedLedger } from '../tigerbeetle/engine';

const transferCount = Number(process.env.LEDGER_START_TRANSFERS ?? 1_000_000);
const accountCount = 1_000;
const transfersPerRequest = Number(process.env.LEDGER_START_TRANSFERS_PER_REQUEST ?? 8);
const requestsPerTurn = 256;
const ledger = 1;

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

async function build(dataFile: string): Promise<void> {
  const built = openEmbeddedLedger({ dataFile });
  const client = built.createClient();
  await client.createAccounts(
    Array.from({ length: accountCount }, (_, index) => accountOf(index + 1)),
  );
  let nextId = 1;
  while (nextId <= transferCount) {
    const turn: Promise<unknown>[] = [];
    for (let request = 0; request < requestsPerTurn && nextId <= transferCount; request += 1) {
      const batch: Transfer[] = [];
      for (let index = 0; index < transfersPerRequest && nextId <= transferCount; index += 1)
        batch.push(transferOf(nextId++));
      turn.push(client.createTransfers(batch));
    }
    await Promise.all(turn);
  }
  built.close();
}

function timed<T>(run: () => T): { value: T; seconds: number } {
  const start = process.hrtime.bigint();
  const value = run();
  return { value, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

async function main(): Promise<void> {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-start-bench-'));
  const dataFile = path.join(directory, 'ledger.journal');
  try {
    console.log(
      `ledger start, ${transferCount} transfers in requests of ${transfersPerRequest}, ${accountCount} accounts, node ${process.version}`,
    );
    await build(dataFile);
    const journalMiB = fs.statSync(dataFile).size / 2 ** 20;
    const start = timed(() => openEmbeddedLedger({ dataFile }));
    start.value.close();
    console.log(`journal ${journalMiB.toFixed(0)} MiB`);
    console.log(
      `start, replaying the whole journal: ${start.seconds.toFixed(2)} s (${((start.seconds * 1_000_000) / transferCount).toFixed(2)} s per million transfers)`,
    );
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
