import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventStreamCodec } from '@smithy/core/event-streams';
import { checkSignature, standInCredentials } from './aws-stand-in';

/**
 * A local stand-in of Amazon Bedrock's runtime API over real HTTP, in its wire formats: Converse
 * (`POST /model/{modelId}/converse`, JSON) and ConverseStream (`.../converse-stream`, the binary
 * `application/vnd.amazon.eventstream`), errors as AWS sends them (`x-amzn-ErrorType` and a JSON
 * `message`). Stream frames are encoded by the AWS SDK's own codec (@smithy/core), so the proxy's
 * decoder is checked against AWS's implementation, not against a copy of itself; every request's
 * SigV4 signature is verified (service `bedrock`). The SDK's BedrockRuntimeClient reads this
 * stand-in too (test/lambda/proxy/providers/bedrock.test.ts), which proves it speaks the protocol.
 */

export type StreamItem =
  | { readonly event: string; readonly payload: Record<string, unknown> }
  /** A modelled exception mid-stream, as its union member name (`throttlingException`). */
  | { readonly exception: string; readonly message: string }
  /** Raw bytes written as they are (a corrupt frame). */
  | { readonly raw: Uint8Array };

export type BedrockScript =
  | { readonly kind: 'converse'; readonly body: Record<string, unknown> }
  | {
      readonly kind: 'stream';
      readonly items: readonly StreamItem[];
      /** Keep the response open after the items (a model still thinking): ends when the client leaves. */
      readonly hold?: boolean;
    }
  | {
      readonly kind: 'error';
      readonly status: number;
      readonly type: string;
      readonly message: string;
    };

export interface BedrockStandInRequest {
  readonly operation: 'converse' | 'converse-stream';
  readonly modelId: string;
  readonly body: Record<string, unknown>;
  /** The SigV4 scope the request was signed for. */
  readonly scope: string;
}

export interface BedrockStandIn {
  readonly url: string;
  /** What a process needs to call it: the endpoint override and credentials (never real ones). */
  readonly environment: Record<string, string>;
  readonly requests: BedrockStandInRequest[];
  /** Answers the next request with this script (in order); unscripted requests get a short text answer. */
  script(...scripts: BedrockScript[]): void;
  /** Resolves when a held stream's client has gone away (the connection closed). */
  clientLeft(): Promise<void>;
  close(): Promise<void>;
}

const codec = new EventStreamCodec(
  (bytes) => Buffer.from(bytes).toString('utf8'),
  (text) => new Uint8Array(Buffer.from(text, 'utf8')),
);

const json = (value: unknown) => new Uint8Array(Buffer.from(JSON.stringify(value), 'utf8'));

/** One stream item as its event-stream frame, encoded by the SDK's codec. */
export function encodeStreamItem(item: StreamItem): Uint8Array {
  if ('raw' in item) return item.raw;
  if ('exception' in item)
    return codec.encode({
      headers: {
        ':message-type': { type: 'string', value: 'exception' },
        ':exception-type': { type: 'string', value: item.exception },
        ':content-type': { type: 'string', value: 'application/json' },
      },
      body: json({ message: item.message }),
    });
  return codec.encode({
    headers: {
      ':message-type': { type: 'string', value: 'event' },
      ':event-type': { type: 'string', value: item.event },
      ':content-type': { type: 'string', value: 'application/json' },
    },
    // Bedrock pads its events with a `p` field of varying length; readers must ignore it.
    body: json({ ...item.payload, p: 'abcdefgh' }),
  });
}

/** A text answer as ConverseStream sends it: start, text deltas, stop, stop reason, then usage. */
export function textStream(
  texts: readonly string[],
  usage: Record<string, number> = { inputTokens: 12, outputTokens: 7, totalTokens: 19 },
  stopReason = 'end_turn',
): StreamItem[] {
  return [
    { event: 'messageStart', payload: { role: 'assistant' } },
    ...texts.map((text) => ({
      event: 'contentBlockDelta',
      payload: { contentBlockIndex: 0, delta: { text } },
    })),
    { event: 'contentBlockStop', payload: { contentBlockIndex: 0 } },
    { event: 'messageStop', payload: { stopReason } },
    { event: 'metadata', payload: { usage, metrics: { latencyMs: 42 } } },
  ];
}

/** One tool-use content block of a ConverseStream: its start, its input in pieces, its stop. */
export function toolUseBlock(
  contentBlockIndex: number,
  toolUseId: string,
  name: string,
  inputPieces: readonly string[],
): StreamItem[] {
  return [
    {
      event: 'contentBlockStart',
      payload: { contentBlockIndex, start: { toolUse: { toolUseId, name } } },
    },
    ...inputPieces.map((input) => ({
      event: 'contentBlockDelta',
      payload: { contentBlockIndex, delta: { toolUse: { input } } },
    })),
    { event: 'contentBlockStop', payload: { contentBlockIndex } },
  ];
}

const pathPattern = /^\/model\/([^/]+)\/(converse|converse-stream)$/;

export async function startBedrockStandIn(region = 'eu-west-1'): Promise<BedrockStandIn> {
  const scripts: BedrockScript[] = [];
  const requests: BedrockStandInRequest[] = [];
  const leftWaiters: (() => void)[] = [];

  function error(response: ServerResponse, status: number, type: string, message: string): void {
    response.writeHead(status, {
      'content-type': 'application/json',
      'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`,
      'x-amzn-requestid': `stand-in-${requests.length}`,
    });
    response.end(JSON.stringify({ message }));
  }

  function handle(request: IncomingMessage, raw: Buffer, response: ServerResponse): void {
    const match = pathPattern.exec(request.url ?? '');
    if (request.method !== 'POST' || !match)
      return error(response, 404, 'UnknownOperationException', 'unknown operation');
    const signature = checkSignature(request, raw, region, 'bedrock', [
      'host',
      'x-amz-date',
      'x-amz-security-token',
    ]);
    if (signature.problem)
      return error(response, 403, 'InvalidSignatureException', signature.problem);
    const operation = match[2] as 'converse' | 'converse-stream';
    requests.push({
      operation,
      modelId: decodeURIComponent(match[1]),
      body: JSON.parse(raw.toString('utf8')) as Record<string, unknown>,
      scope: signature.scope,
    });
    const script =
      scripts.shift() ??
      (operation === 'converse'
        ? {
            kind: 'converse' as const,
            body: {
              output: { message: { role: 'assistant', content: [{ text: 'Hello from Bedrock' }] } },
              stopReason: 'end_turn',
              usage: { inputTokens: 12, outputTokens: 4, totalTokens: 16 },
              metrics: { latencyMs: 42 },
            },
          }
        : { kind: 'stream' as const, items: textStream(['Hello', ' from', ' Bedrock']) });
    if (script.kind === 'error') return error(response, script.status, script.type, script.message);
    if (script.kind === 'converse') {
      response.writeHead(200, { 'content-type': 'application/json' });
      return void response.end(JSON.stringify(script.body));
    }
    response.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' });
    for (const item of script.items) response.write(encodeStreamItem(item));
    if (script.hold) {
      response.on('close', () => leftWaiters.splice(0).forEach((resolve) => resolve()));
      return;
    }
    response.end();
  }

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => handle(request, Buffer.concat(chunks), response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    environment: {
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: url,
      AWS_ACCESS_KEY_ID: standInCredentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: standInCredentials.secretAccessKey,
      AWS_SESSION_TOKEN: standInCredentials.sessionToken,
    },
    script: (...next) => void scripts.push(...next),
    clientLeft: () => new Promise<void>((resolve) => leftWaiters.push(resolve)),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((failure) => (failure ? reject(failure) : resolve()));
      }),
  };
}
