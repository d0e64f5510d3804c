import { createKeyring, hashKey, type Keyring } from '../../../runtime/keys';
import { startServer } from '../../../runtime/node-server';
import { RecordingLogger } from '../../support/recording-logger';
import type { GatewayTokenVersion } from '../../../tigerbeetle/gateway/app';

/** Shared by the gateway tests: tokens, a logger that keeps what it was given, a real local server. */

export const currentToken = 'gw-current-3f9c2a7d41b84e0f9a6c5d2e1b7a8c90';
export const previousToken = 'gw-previous-8e1d5c3b2a4f6071e9d8c7b6a5f40312';

export function gatewayKeyring(): Keyring<GatewayTokenVersion> {
  return createKeyring<GatewayTokenVersion>([
    { keyHash: hashKey(currentToken), principal: 'current' },
    { keyHash: hashKey(previousToken), principal: 'previous' },
  ]);
}

export { RecordingLogger } from '../../support/recording-logger';

export function recordingLogger(): RecordingLogger {
  return new RecordingLogger();
}

export interface LocalServer {
  readonly baseUrl: string;
  close(): Promise<void>;
}

/** Serves an app on 127.0.0.1 at a free port. */
export async function serveLocally(app: {
  fetch: (request: Request) => Response | Promise<Response>;
}): Promise<LocalServer> {
  const server = await startServer({
    fetch: app.fetch,
    hostname: '127.0.0.1',
    port: 0,
    drainMillisecondsMax: 1_000,
  });
  return { baseUrl: server.url, close: async () => void (await server.close()) };
}

/** A promise that never settles: a ledger that never answers. */
export function never<T>(): Promise<T> {
  return new Promise<T>(() => {});
}
