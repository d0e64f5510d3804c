import { Writable } from 'node:stream';

/**
 * A local stand-in of the Lambda Node.js runtime's response-streaming interface, installed as the
 * global `awslambda` before a streaming handler module is imported. It behaves as the runtime
 * interface client does: `streamifyResponse` marks the handler and returns it; `HttpResponseStream.from`
 * sets the HTTP-integration content type and, before the first byte of the body, writes the JSON
 * metadata (status, headers, cookies) and 8 NUL bytes, the delimiter API Gateway reads. The stream
 * is a real Writable that records every write as it happens.
 */

export const streamingMarker = Symbol.for('aws.lambda.runtime.handler.streaming');
export const httpIntegrationContentType = 'application/vnd.awslambda.http-integration-response';
const delimiter = Buffer.alloc(8);

export class RecordingResponseStream extends Writable {
  contentType: string | undefined;
  /** Every write, in order, as it reached the stream. */
  readonly writes: Buffer[] = [];
  /** Set by HttpResponseStream.from: writes the metadata prelude before the first write. */
  onBeforeFirstWrite: ((write: (bytes: Buffer) => void) => void) | undefined;
  private readonly writeListeners: ((write: Buffer) => void)[] = [];

  setContentType(contentType: string): void {
    this.contentType = contentType;
  }

  /** Called with each write as it happens (a test opens a provider's gate from here). */
  onWrite(listener: (write: Buffer) => void): void {
    this.writeListeners.push(listener);
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    const record = (bytes: Buffer) => {
      this.writes.push(bytes);
      for (const listener of this.writeListeners) listener(bytes);
    };
    const prelude = this.onBeforeFirstWrite;
    this.onBeforeFirstWrite = undefined;
    prelude?.(record);
    record(Buffer.from(chunk));
    callback();
  }

  /** The metadata and the body, split at the delimiter, as API Gateway reads them. */
  response(): {
    metadata: { statusCode: number; headers: Record<string, string>; cookies: string[] };
    body: string;
  } {
    const all = Buffer.concat(this.writes);
    const end = all.indexOf(delimiter);
    if (end === -1) throw new Error('no metadata prelude was written');
    return {
      metadata: JSON.parse(all.subarray(0, end).toString('utf8')) as never,
      body: all.subarray(end + delimiter.length).toString('utf8'),
    };
  }
}

const runtime = {
  streamifyResponse<T extends object>(handler: T): T {
    Object.defineProperty(handler, streamingMarker, { value: 'response' });
    return handler;
  },
  HttpResponseStream: {
    from(
      stream: RecordingResponseStream,
      metadata: Record<string, unknown>,
    ): RecordingResponseStream {
      stream.setContentType(httpIntegrationContentType);
      stream.onBeforeFirstWrite = (write) => {
        write(Buffer.from(JSON.stringify(metadata)));
        write(delimiter);
      };
      return stream;
    },
  },
};

(globalThis as { awslambda?: unknown }).awslambda = runtime;

/** Invokes a streaming handler as the runtime would, resolving when the handler has ended the stream. */
export async function invokeStreaming(
  handler: unknown,
  event: unknown,
  stream = new RecordingResponseStream(),
): Promise<RecordingResponseStream> {
  const finished = new Promise<void>((resolve, reject) => {
    stream.once('finish', resolve);
    stream.once('error', reject);
  });
  await (
    handler as (event: unknown, stream: RecordingResponseStream, context: unknown) => Promise<void>
  )(event, stream, { awsRequestId: 'test-invocation', getRemainingTimeInMillis: () => 60_000 });
  await finished;
  return stream;
}
