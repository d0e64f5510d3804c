import { ManualClock, openEmbeddedLedger, type EmbeddedLedger } from '../../tigerbeetle/engine';
import type { LedgerClient } from '../../tigerbeetle/ledger';
import { createCreditsApp, type CreditsPrincipal } from '../../lambda/credits/app';
import type { CreditsConfig } from '../../lambda/credits/config';
import { createKeyring, generateApiKey, hashKey } from '../../runtime/keys';
import { RecordingLogger } from './recording-logger';
import { RecordingMetrics } from './recording-metrics';

export interface CreditsFixture {
  readonly app: ReturnType<typeof createCreditsApp>;
  readonly ledger: LedgerClient;
  readonly embedded: EmbeddedLedger;
  readonly clock: ManualClock;
  readonly adminKey: string;
  readonly proxyKey: string;
  readonly logger: RecordingLogger;
  readonly metrics: RecordingMetrics;
  /** A request with a JSON body and the given key (admin by default). */
  request(
    method: string,
    path: string,
    options?: { body?: unknown; key?: string | null; headers?: Record<string, string> },
  ): Promise<Response>;
  close(): void;
}

/** The credits app over the embedded engine with a clock the test moves. */
export function createCreditsFixture(
  options: {
    config?: Partial<CreditsConfig>;
    ledger?: LedgerClient;
    dataFile?: string;
    clock?: ManualClock;
  } = {},
): CreditsFixture {
  const clock = options.clock ?? new ManualClock();
  const embedded = openEmbeddedLedger({ clock, dataFile: options.dataFile });
  const ledger = options.ledger ?? embedded.createClient();
  const adminKey = generateApiKey();
  const proxyKey = generateApiKey();
  const keys = createKeyring<CreditsPrincipal>([
    { keyHash: hashKey(adminKey), principal: { keyId: 'admin-1', role: 'admin' } },
    { keyHash: hashKey(proxyKey), principal: { keyId: 'proxy-1', role: 'proxy' } },
  ]);
  const logger = new RecordingLogger();
  const metrics = new RecordingMetrics();
  const app = createCreditsApp({ ledger, keys, logger, metrics, config: options.config, clock });
  return {
    app,
    ledger,
    embedded,
    clock,
    adminKey,
    proxyKey,
    logger,
    metrics,
    request(method, path, { body, key, headers } = {}) {
      const requestHeaders: Record<string, string> = { ...headers };
      const usedKey = key === undefined ? adminKey : key;
      if (usedKey !== null) requestHeaders.authorization = `Bearer ${usedKey}`;
      if (body !== undefined) requestHeaders['content-type'] ??= 'application/json';
      return Promise.resolve(
        app.request(path, {
          method,
          headers: requestHeaders,
          body:
            body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
        }),
      );
    },
    close: () => embedded.close(),
  };
}

let keyCounter = 0;
/** A fresh, valid Idempotency-Key header. */
export function newKey(): Record<string, string> {
  keyCounter += 1;
  return { 'idempotency-key': `test-key-${process.pid}-${keyCounter}-${Date.now()}` };
}
