/**
 * Server-sent events, both ways: the parser every streaming provider reads with, and the encoder of
 * what the proxy sends. The parser follows the WHATWG event-stream rules: lines end in CRLF, LF or
 * CR (also when a CRLF is split across two network chunks); lines starting with ':' are comments
 * (keep-alives); `data:` lines of one event are joined with '\n'; a blank line dispatches the event;
 * an event cut off by the end of the stream is dropped, never half-read. The bytes read are counted
 * so a caller can cap them.
 */

export interface ServerSentEvent {
  /** The `event:` field; undefined for the default "message" type. */
  readonly event?: string;
  readonly data: string;
  readonly id?: string;
}

/** The longest line accepted from a provider: a bound on what one unterminated line may buffer. */
export const sseLineCharactersMax = 4 * 1024 * 1024;

/** Thrown when a stream exceeds the caller's byte cap. */
export class StreamTooLargeError extends Error {
  constructor(readonly bytesMax: number) {
    super(`the stream exceeded ${bytesMax} bytes`);
    this.name = 'StreamTooLargeError';
  }
}

/** An incremental parser: feed it text, take out the events it completed. */
export class ServerSentEventParser {
  private buffer = '';
  /** A chunk ended in CR: a leading LF in the next chunk belongs to the same line end. */
  private pendingCarriageReturn = false;
  private data: string[] = [];
  private event: string | undefined;
  private id: string | undefined;

  push(text: string): ServerSentEvent[] {
    let input = text;
    if (this.pendingCarriageReturn && input.startsWith('\n')) input = input.slice(1);
    this.pendingCarriageReturn = false;
    this.buffer += input;
    const events: ServerSentEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A CR at the very end may be the first half of a CRLF split across chunks.
      if (match[0] === '\r' && match.index === this.buffer.length - 1)
        this.pendingCarriageReturn = true;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = this.line(line);
      if (event) events.push(event);
    }
    if (this.buffer.length > sseLineCharactersMax)
      throw new Error(`an event-stream line is longer than ${sseLineCharactersMax} characters`);
    return events;
  }

  private line(line: string): ServerSentEvent | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    // `retry` and unknown fields are ignored, as the specification says.
    return undefined;
  }

  private dispatch(): ServerSentEvent | undefined {
    const hasData = this.data.length > 0;
    const event: ServerSentEvent = {
      event: this.event || undefined,
      data: this.data.join('\n'),
      id: this.id,
    };
    this.data = [];
    this.event = undefined;
    return hasData ? event : undefined;
  }
}

/**
 * The events of a byte stream, in order, reading no more than `bytesMax` bytes (then it throws
 * StreamTooLargeError and cancels the stream). Cancelled when the consumer stops early.
 */
export async function* readServerSentEvents(
  body: ReadableStream<Uint8Array>,
  bytesMax: number,
): AsyncGenerator<ServerSentEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new ServerSentEventParser();
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      if (bytes > bytesMax) throw new StreamTooLargeError(bytesMax);
      for (const event of parser.push(decoder.decode(value, { stream: true }))) yield event;
    }
    for (const event of parser.push(decoder.decode())) yield event;
  } finally {
    // Stops the upstream transfer when we stop early (an error, a cap, a consumer that left).
    await reader.cancel().catch(() => undefined);
  }
}

/** One `data:` event; JSON on one line, so it needs no splitting. */
export function sseData(json: unknown): string {
  return `data: ${JSON.stringify(json)}\n\n`;
}

/** A named event, for example `error`. */
export function sseEvent(event: string, json: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(json)}\n\n`;
}

/** A comment line: ignored by every client, it keeps idle connections (and their timeouts) alive. */
export const sseKeepAlive = ': keep-alive\n\n';

export const sseDone = 'data: [DONE]\n\n';
