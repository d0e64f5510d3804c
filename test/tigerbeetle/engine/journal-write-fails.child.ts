/**
 * Run by snapshot.test.ts in a process whose file size is limited (`ulimit -f`), so the journal's
 * next write fails for real (EFBIG) while a snapshot, a smaller file, still fits. Opens the ledger
 * at argv[2], sends one batch of transfers too large for the limit and, with argv[3] `snapshot`,
 * then asks for a snapshot at once. Prints what it saw as one JSON line.
 */
import { ManualClock } from '../../../tigerbeetle/engine';
import { LedgerEngine } from '../../../tigerbeetle/engine/engine';
import { transfer } from './fixtures';

async function main(): Promise<void> {
  const warnings: string[] = [];
  const engine = LedgerEngine.open(new ManualClock(), process.argv[2], {
    snapshotJournalBytesMin: 1,
    onWarning: (message) => warnings.push(message),
  });
  const openWarnings = [...engine.openWarnings];
  engine.createTransfers(Array.from({ length: 20 }, (_, index) => transfer(BigInt(5_000 + index))));
  const durable = await new Promise<Error | null>((resolve) => engine.whenDurable(resolve));
  let snapshotError: string | null = null;
  if (process.argv[3] === 'snapshot') {
    try {
      engine.snapshot();
    } catch (error) {
      snapshotError = (error as Error).message;
    }
  }
  // A snapshot that the batch made due would run in the event-loop turn after the flush.
  await new Promise((resolve) => setImmediate(resolve));
  engine.close();
  console.log(
    JSON.stringify({ openWarnings, batchError: durable?.message ?? null, snapshotError, warnings }),
  );
}

void main();
