/**
 * Throughput of the embedded ledger engine: createTransfers in full batches (8189 transfers) on
 * one core, in memory and with a data file (one write + fsync per batch). Not a test: it prints
 * transfers per second. Each mode stops after `modeSecondsMax` or `batchesMax`, whichever is first.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AccountFlags, type Account, type Client, type Transfer } from 'tigerbeetle-node';
import { batchEventsMax, openEmbeddedLedger } from '../tigerbeetle/engine';

const modeSecondsMax = 8;
const batchesMax = 60;
const accountCount = 10_000;
const ledger = 1;

function accountsBatch(firstId: bigint, count: number): Account[] {
  return Array.from({ length: count }, (_, index) => ({
    id: firstId + BigInt(index),
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
    flags: AccountFlags.none,
    timestamp: 0n,
  }));
}

function transfersBatch(firstId: bigint, random: () => number): Transfer[] {
  return Array.from({ length: batchEventsMax }, (_, index) => {
    const debit = 1 + Math.floor(random() * accountCount);
    const credit = 1 + ((debit + Math.floor(random() * (accountCount - 1))) % accountCount);
    return {
      id: firstId + BigInt(index),
      debit_account_id: BigInt(debit),
      credit_account_id: BigInt(credit),
      amount: BigInt(1 + Math.floor(random() * 1000)),
      pending_id: 0n,
      user_data_128: 0n,
      user_data_64: 0n,
      user_data_32: 0,
      timeout: 0,
      ledger,
      code: 1,
      flags: 0,
      timestamp: 0n,
    };
  });
}

/** A small deterministic generator, so runs are comparable. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 0x1_0000_0000;
  };
}

async function measure(label: string, client: Client): Promise<void> {
  for (let first = 1; first <= accountCount; first += batchEventsMax) {
    await client.createAccounts(
      accountsBatch(BigInt(first), Math.min(batchEventsMax, accountCount - first + 1)),
    );
  }
  const random = seededRandom(42);
  let transfers = 0;
  let elapsedNanoseconds = 0n;
  for (
    let batch = 0;
    batch < batchesMax && elapsedNanoseconds < BigInt(modeSecondsMax) * 1_000_000_000n;
    batch += 1
  ) {
    const events = transfersBatch(BigInt(1 + batch * batchEventsMax), random);
    const start = process.hrtime.bigint();
    const results = await client.createTransfers(events);
    elapsedNanoseconds += process.hrtime.bigint() - start;
    if (results.some((result) => result.status !== 0xffffffff))
      throw new Error(`${label}: a transfer failed`);
    transfers += events.length;
  }
  const seconds = Number(elapsedNanoseconds) / 1e9;
  const perSecond = Math.round(transfers / seconds);
  console.log(
    `${label.padEnd(28)} ${transfers} transfers in ${seconds.toFixed(2)} s: ${perSecond} transfers/s`,
  );
}

async function main(): Promise<void> {
  console.log(
    `createTransfers, batches of ${batchEventsMax}, ${accountCount} accounts, node ${process.version}`,
  );
  const memory = openEmbeddedLedger();
  await measure('in memory', memory.createClient());
  memory.close();

  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-bench-'));
  try {
    const durable = openEmbeddedLedger({ dataFile: path.join(directory, 'ledger.journal') });
    await measure('data file (fsync per batch)', durable.createClient());
    durable.close();
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
