/**
 * The embedded ledger engine: an in-process implementation of tigerbeetle-node's `Client`
 * with TigerBeetle 0.17 semantics, for development and tests where no cluster can run.
 */
export {
  createEmbeddedClient,
  openEmbeddedLedger,
  type EmbeddedLedger,
  type EmbeddedLedgerOptions,
} from './client';
export { createSystemClock, ManualClock, type Clock } from './clock';
export { batchEventsMax } from './constants';
export { journalFrameBytesMax } from './journal';
