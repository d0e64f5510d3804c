import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/**
 * The client of the internal hops (proxy -> credits, credits -> gateway): node:http with
 * keep-alive connections, which costs a fraction of fetch's CPU per request and saves a TCP (and
 * TLS) handshake per call. Bounded: sockets per origin, the answer's size, and the caller's signal
 * as the deadline. A request on a reused connection that the peer had already closed (a race every
 * keep-alive client has, and the normal case after a Lambda environment was frozen or the event
 * loop was busy for longer than the peer's keep-alive timeout, when the idle timer below cannot
 * run) is sent once more on a new connection; every caller's requests are idempotent, so that
 * retry is safe. (Once an answer has begun, node:http reports a cut on the response, not here.)
 */

/** Connections kept per origin; requests beyond wait for one. */
export const internalSocketsPerOriginMax = 64;
/** An idle connection is closed after this, below Node's server keep-alive timeout (5 s). */
export const internalIdleSocketMilliseconds = 4_000;

/**
 * How a request on a connection the peer had closed fails: ECONNRESET when the read meets the
 * peer's reset (or the close: "socket hang up"), EPIPE when a later write of a request sent in
 * several chunks (a large body) meets it first.
 */
const staleConnectionErrorCodes: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE']);

export interface InternalAnswer {
  readonly status: number;
  readonly text: string;
}

export class AnswerTooLargeError extends Error {}

export interface InternalHttpClient {
  request(options: {
    method: 'GET' | 'POST';
    url: URL;
    headers: Record<string, string>;
    body?: string;
    signal: AbortSignal;
    responseBytesMax: number;
  }): Promise<InternalAnswer>;
}

export function createInternalHttpClient(): InternalHttpClient {
  const agents = {
    // noDelay: small requests go out at once, never held back by Nagle's algorithm.
    'http:': new HttpAgent({
      keepAlive: true,
      noDelay: true,
      maxSockets: internalSocketsPerOriginMax,
      timeout: internalIdleSocketMilliseconds,
    }),
    'https:': new HttpsAgent({
      keepAlive: true,
      noDelay: true,
      maxSockets: internalSocketsPerOriginMax,
      timeout: internalIdleSocketMilliseconds,
    }),
  };
  const send = (
    options: Parameters<InternalHttpClient['request']>[0],
    retryOnStaleSocket: boolean,
  ): Promise<InternalAnswer> =>
    new Promise((resolve, reject) => {
      const protocol = options.url.protocol === 'https:' ? 'https:' : 'http:';
      const requestFunction = protocol === 'https:' ? httpsRequest : httpRequest;
      const headers =
        options.body === undefined
          ? options.headers
          : { ...options.headers, 'content-length': String(Buffer.byteLength(options.body)) };
      const request = requestFunction(
        options.url,
        { method: options.method, headers, agent: agents[protocol], signal: options.signal },
        (response) => {
          readAnswer(response, options.responseBytesMax).then(resolve, reject);
        },
      );
      request.on('error', (error: NodeJS.ErrnoException) => {
        const stale =
          request.reusedSocket &&
          error.code !== undefined &&
          staleConnectionErrorCodes.has(error.code);
        if (retryOnStaleSocket && stale && !options.signal.aborted) {
          resolve(send(options, false));
          return;
        }
        reject(error);
      });
      request.end(options.body);
    });
  return { request: (options) => send(options, true) };
}

function readAnswer(response: IncomingMessage, responseBytesMax: number): Promise<InternalAnswer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > responseBytesMax) {
        response.destroy(new AnswerTooLargeError(`the answer is over ${responseBytesMax} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    response.on('error', reject);
    response.on('aborted', () => reject(new Error('the answer was cut')));
    response.on('end', () =>
      resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
    );
  });
}
