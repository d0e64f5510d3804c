import { ManualClock, openEmbeddedLedger, type EmbeddedLedger } from '../../tigerbeetle/engine';
import { createGatewayApp } from '../../tigerbeetle/gateway/app';
import { createGatewayClient } from '../../tigerbeetle/gateway/client';
import { staticTokenSource } from '../../tigerbeetle/gateway/token-source';
import { createCreditsApp, type CreditsPrincipal } from '../../lambda/credits/app';
import { creditsKeyEntries } from '../../lambda/credits/keys';
import { createKeyring, generateApiKey } from '../../runtime/keys';
import { startServer, type RunningServer } from '../../runtime/node-server';
import { RecordingLogger } from './recording-logger';
import { RecordingMetrics } from './recording-metrics';

/**
 * The credits path as deployed, on loopback: credits server -> HTTP -> gateway server -> engine.
 * Real sockets, real JSON on the wire, nothing stubbed.
 */
export interface CreditsTopology {
  readonly creditsUrl: string;
  readonly gatewayUrl: string;
  readonly adminKey: string;
  readonly proxyKey: string;
  readonly clock: ManualClock;
  readonly embedded: EmbeddedLedger;
  /** Requests the gateway received so far: the credits service's round trips to the ledger. */
  gatewayRequests(): number;
  close(): Promise<void>;
}

export async function startCreditsTopology(
  options: { dataFile?: string } = {},
): Promise<CreditsTopology> {
  const clock = new ManualClock(BigInt(Date.now()) * 1_000_000n);
  const embedded = openEmbeddedLedger({ clock, dataFile: options.dataFile });
  const gatewayToken = generateApiKey();
  const gatewayApp = createGatewayApp({
    ledger: embedded.createClient(),
    tokens: staticTokenSource(gatewayToken),
    logger: new RecordingLogger(),
  });
  let gatewayRequests = 0;
  const gateway: RunningServer = await startServer({
    fetch: (request) => {
      gatewayRequests += 1;
      return gatewayApp.fetch(request);
    },
    hostname: '127.0.0.1',
    port: 0,
  });
  const adminKey = generateApiKey();
  const proxyKey = generateApiKey();
  const credits = await startServer({
    fetch: createCreditsApp({
      ledger: createGatewayClient({
        baseUrl: gateway.url,
        token: () => gatewayToken,
        requestTimeoutMilliseconds: 5_000,
      }),
      keys: createKeyring<CreditsPrincipal>(
        creditsKeyEntries({ admin: [adminKey], proxy: [proxyKey] }),
      ),
      logger: new RecordingLogger(),
      metrics: new RecordingMetrics(),
    }).fetch,
    hostname: '127.0.0.1',
    port: 0,
  });
  return {
    creditsUrl: credits.url,
    gatewayUrl: gateway.url,
    adminKey,
    proxyKey,
    clock,
    embedded,
    gatewayRequests: () => gatewayRequests,
    close: async () => {
      await credits.close();
      await gateway.close();
      embedded.close();
    },
  };
}
