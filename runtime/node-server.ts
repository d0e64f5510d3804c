import { IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer, type Http2Bindings, type HttpBindings } from '@hono/node-server';
import type { ExecutionContext } from 'hono';
import { environmentOrRefuse, supervisorEnvironment } from './environment';
import type { AppLogger } from './logger';

/**
 * Runs a hono app as a Node HTTP server (locally, and for the gateway on its hosts) and shuts it
 * down gracefully: stop accepting, let in-flight requests finish within a bound, then release
 * resources, then exit. ECS sends SIGTERM and SIGKILL 30 s later, so the drain stays well below.
 */

/** Longest wait for in-flight requests after a stop signal; then the remaining connections are cut. */
export const drainMillisecondsMaxDefault = 10_000;
/**
 * After the drain cut the remaining connections (their requests aborted, as when a client leaves),
 * the longest wait for their handlers to finish: a cut stream still settles what was delivered from
 * the estimate and audits it. Drain, this and releasing stay below ECS's 30 s stop timeout.
 */
export const cutRequestsSettleMillisecondsMax = 5_000;
/** While draining, connections that have become idle (keep-alive) are closed this often. */
const drainPollIntervalMilliseconds = 50;
/** Longest time a client may take to send a whole request (slow-loris bound). */
export const serverRequestTimeoutMilliseconds = 30_000;
export const serverHeadersTimeoutMilliseconds = 10_000;
/**
 * The most bytes of a body the app answered without reading (413, 401, 429) that are read and
 * discarded so the kept-alive connection can carry the next request; a larger body gets
 * `connection: close` and the connection is closed once that much was discarded.
 */
export const unreadBodyDiscardBytesMax = 16 * 1024 * 1024;
/** The longest a client may take to finish sending a body that was answered unread. */
export const unreadBodyDiscardMillisecondsMax = 5_000;

/** How a stop went: whether every request finished within the drain, else what was cut. */
export interface DrainResult {
  readonly drained: boolean;
  /** Requests in flight (handlers and their work after the response) when the drain ended. */
  readonly cutRequests: number;
  /** Of those, the ones still unfinished `cutRequestsSettleMillisecondsMax` after the cut. */
  readonly unsettledRequests: number;
}

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  /**
   * Stops accepting and waits for in-flight requests within the drain bound; then cuts the rest and
   * waits (bounded) for their handlers to finish, settlement included.
   */
  close(): Promise<DrainResult>;
}

export interface StartServerOptions {
  /**
   * A hono app's fetch: work a handler leaves running after its response (a stream's settlement)
   * is handed to `executionContext.waitUntil`, and a stop waits for it.
   */
  readonly fetch: (
    request: Request,
    env: undefined,
    executionContext: ExecutionContext,
  ) => Response | Promise<Response>;
  readonly hostname: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly drainMillisecondsMax?: number;
}

/**
 * A body the app answered without reading it (an early 413, 401 or 429) is read to its end and
 * discarded, so the next request on a kept-alive connection starts where it should: left unread,
 * it stalls the connection (the request's web stream holds it paused) until it is cut, and the
 * client's next request on it fails. Bounded in bytes and time; past either bound the connection is
 * closed (announced with `connection: close` when the declared length already says so). This is
 * also what Node's own server does (`IncomingMessage._dump`): drop the body's listeners, resume.
 */
function discardUnreadBody(incoming: IncomingMessage, outgoing: ServerResponse): void {
  if (incoming.readableEnded || incoming.destroyed) return;
  // Without either header an HTTP/1.1 request has no body (a GET): nothing to discard.
  const hasBody =
    incoming.headers['content-length'] !== undefined ||
    incoming.headers['transfer-encoding'] !== undefined;
  if (!hasBody) return;
  const declaredBytes = Number(incoming.headers['content-length'] ?? Number.NaN);
  if (declaredBytes > unreadBodyDiscardBytesMax) outgoing.setHeader('connection', 'close');
  let discardedBytes = 0;
  const close = () => {
    cleanup();
    incoming.socket.destroySoon();
  };
  const timer = setTimeout(close, unreadBodyDiscardMillisecondsMax);
  const cleanup = () => {
    clearTimeout(timer);
    incoming.off('data', onData);
  };
  const onData = (chunk: Buffer) => {
    discardedBytes += chunk.length;
    if (discardedBytes > unreadBodyDiscardBytesMax) close();
  };
  // The request's web stream (never read to its end) would pause the body again on every chunk.
  incoming.removeAllListeners('data');
  incoming.on('data', onData);
  incoming.once('end', cleanup);
  incoming.once('error', cleanup);
  incoming.resume();
}

/** Handlers in flight and the work they left running, each removed once it settled. */
class InFlightWork {
  private readonly pending = new Set<Promise<unknown>>();

  get size(): number {
    return this.pending.size;
  }

  track<T>(work: Promise<T>): Promise<T> {
    const tracked = work.finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
    // A failure is the handler's to report; here it only ends the wait.
    tracked.catch(() => undefined);
    return tracked;
  }

  /** Resolves when everything in flight has settled or after `milliseconds`. */
  async settledWithin(milliseconds: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, milliseconds)));
    const settled = (async () => {
      while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    })();
    await Promise.race([settled, bound]);
    clearTimeout(timer);
  }
}

export function startServer(options: StartServerOptions): Promise<RunningServer> {
  const inFlight = new InFlightWork();
  const executionContext: ExecutionContext = {
    waitUntil: (work: Promise<unknown>) => void inFlight.track(work),
    passThroughOnException: () => undefined,
    props: {},
  };
  const server = createAdaptorServer({
    fetch: async (request: Request, bindings: HttpBindings | Http2Bindings) => {
      const response = await inFlight.track(
        Promise.resolve(options.fetch(request, undefined, executionContext)),
      );
      // These servers speak HTTP/1.1 only (createAdaptorServer's default).
      if (bindings.incoming instanceof IncomingMessage)
        discardUnreadBody(bindings.incoming, bindings.outgoing as ServerResponse);
      return response;
    },
    // Ours instead (discardUnreadBody): the adapter's gives up after 500 ms and cuts the connection.
    autoCleanupIncoming: false,
  }) as Server;
  server.requestTimeout = serverRequestTimeoutMilliseconds;
  server.headersTimeout = serverHeadersTimeoutMilliseconds;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.hostname, () => {
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve({
        url: `http://${host}:${address.port}`,
        port: address.port,
        close: () =>
          drain(server, inFlight, options.drainMillisecondsMax ?? drainMillisecondsMaxDefault),
      });
    });
  });
}

async function drain(
  server: Server,
  inFlight: InFlightWork,
  drainMillisecondsMax: number,
): Promise<DrainResult> {
  const drained = await new Promise<boolean>((resolve) => {
    const poll = setInterval(() => server.closeIdleConnections(), drainPollIntervalMilliseconds);
    const deadline = setTimeout(() => {
      clearInterval(poll);
      resolve(false);
    }, drainMillisecondsMax);
    server.close(() => {
      clearInterval(poll);
      clearTimeout(deadline);
      resolve(true);
    });
    server.closeIdleConnections();
  });
  const cutRequests = drained ? 0 : inFlight.size;
  // Cutting aborts each request as a client disconnect does: its handler stops the provider,
  // settles what was delivered and audits it; exiting before that would leave its hold unbilled.
  if (!drained) server.closeAllConnections();
  await inFlight.settledWithin(cutRequestsSettleMillisecondsMax);
  return { drained, cutRequests, unsettledRequests: drained ? 0 : inFlight.size };
}

export interface ShutdownOptions {
  readonly server: RunningServer;
  readonly logger: AppLogger;
  /** e.g. "ledger gateway": logged as "<name> stopping" and "<name> stopped". */
  readonly name: string;
  /** Runs first, e.g. to make readiness fail so the load balancer stops sending. */
  readonly beforeDrain?: () => void;
  /** Runs after the drain: close the ledger, files, timers. */
  readonly release: () => Promise<void>;
  /** Where STOP_WHEN_STDIN_ENDS is read (supervisorEnvironment). Default: process.env. */
  readonly environment?: NodeJS.ProcessEnv;
}

/**
 * On SIGTERM or SIGINT (and, under a local supervisor, when stdin ends): drain the server, release
 * resources, exit 0 (1 if releasing failed).
 */
export function shutDownOnSignals(options: ShutdownOptions): void {
  const { logger, name } = options;
  const supervised = environmentOrRefuse(
    name,
    supervisorEnvironment,
    options.environment ?? process.env,
  );
  let stopping = false;
  const stop = (signal: NodeJS.Signals | 'stdin ended') => {
    // A second signal (tsx relays the one its process group got, a supervisor repeats it) must not
    // end the drain: the listeners stay, so it is logged, not left to Node's default (exit 143).
    if (stopping) return void logger.info(`${name} already stopping`, { signal });
    stopping = true;
    options.beforeDrain?.();
    logger.info(`${name} stopping`, {
      signal,
      drain_milliseconds_max: drainMillisecondsMaxDefault,
    });
    void options.server
      .close()
      .then(async ({ drained, cutRequests, unsettledRequests }) => {
        if (!drained)
          logger.warn('drain timed out; the requests still in flight were cut', {
            signal,
            cut_requests: cutRequests,
            // Past cutRequestsSettleMillisecondsMax: their holds expire unless settled later.
            unsettled_requests: unsettledRequests,
          });
        await options.release();
        logger.info(`${name} stopped`, { signal, drained });
        process.exit(0);
      })
      .catch((error: unknown) => {
        logger.error(`${name}: shutdown failed`, {
          error_message: error instanceof Error ? error.message : String(error),
        });
        process.exit(1);
      });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (supervised.STOP_WHEN_STDIN_ENDS === 'true') stopWhenStdinEnds(() => stop('stdin ended'));
}

/**
 * The supervisor (scripts/local-services.ts) holds the only write end of this process's stdin (tsx
 * passes it through to the script's process): the read end sees its end once the supervisor is
 * gone, even when nothing of it could run (SIGKILL). Nothing is ever written; data is discarded.
 */
function stopWhenStdinEnds(stop: () => void): void {
  // stdout and stderr are pipes to the same supervisor: once it is gone, writing to them fails
  // (EPIPE), which must not end the drain; what is logged then has nowhere to go.
  for (const output of [process.stdout, process.stderr]) output.on('error', () => undefined);
  process.stdin.on('data', () => undefined);
  process.stdin.once('end', stop);
  process.stdin.once('error', stop);
}
