import { crc32 as zlibCrc32 } from 'node:zlib';
import { StreamTooLargeError } from '../sse';

/**
 * A reader of AWS's binary event stream (`application/vnd.amazon.eventstream`), the framing of
 * Bedrock's ConverseStream: each message is a prelude (total length, headers length, the prelude's
 * CRC32), headers, a payload and the message's CRC32, all big-endian. Both checksums are verified;
 * a frame that fails either, or claims an impossible length, is refused, never half-read.
 * Only what a response stream carries is decoded: string headers (`:message-type`, `:event-type`,
 * `:exception-type`, `:content-type`); other header types are skipped by their declared sizes.
 */

export interface EventStreamMessage {
  /** String-valued headers by name. */
  readonly headers: Readonly<Record<string, string>>;
  readonly payload: Uint8Array;
}

/** The prelude (12 bytes) and the message checksum (4): a message is never shorter. */
const frameOverheadBytes = 16;
/** AWS's limit of one event-stream message (16 MiB); a longer claim is a broken frame. */
export const eventStreamMessageBytesMax = 16 * 1024 * 1024;

export class EventStreamFrameError extends Error {
  constructor(message: string) {
    super(`malformed event stream: ${message}`);
    this.name = 'EventStreamFrameError';
  }
}

/** CRC-32 (IEEE 802.3), as the event stream's checksums use: Node's own (zlib.crc32, Node 20.15+). */
export function crc32(bytes: Uint8Array): number {
  return zlibCrc32(bytes);
}

/** Fixed sizes of the non-string header value types (0 and 1 are booleans with no value bytes). */
const headerValueBytes: Record<number, number> = {
  0: 0,
  1: 0,
  2: 1,
  3: 2,
  4: 4,
  5: 8,
  8: 8,
  9: 16,
};
const headerTypeBytes = 6;
const headerTypeString = 7;

function decodeHeaders(bytes: Uint8Array): Record<string, string> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const headers: Record<string, string> = {};
  let offset = 0;
  const need = (count: number) => {
    if (offset + count > bytes.byteLength)
      throw new EventStreamFrameError('a header runs past its block');
  };
  while (offset < bytes.byteLength) {
    need(1);
    const nameLength = view.getUint8(offset);
    need(1 + nameLength + 1);
    const name = decoder.decode(bytes.subarray(offset + 1, offset + 1 + nameLength));
    const type = view.getUint8(offset + 1 + nameLength);
    offset += 2 + nameLength;
    if (type === headerTypeString || type === headerTypeBytes) {
      need(2);
      const length = view.getUint16(offset);
      need(2 + length);
      if (type === headerTypeString)
        headers[name] = decoder.decode(bytes.subarray(offset + 2, offset + 2 + length));
      offset += 2 + length;
    } else if (type in headerValueBytes) {
      need(headerValueBytes[type]);
      offset += headerValueBytes[type];
    } else {
      throw new EventStreamFrameError(`unknown header type ${type}`);
    }
  }
  return headers;
}

/** One whole message from its bytes (prelude included), checksums verified. */
export function decodeEventStreamMessage(frame: Uint8Array): EventStreamMessage {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const totalLength = view.getUint32(0);
  const headersLength = view.getUint32(4);
  if (totalLength !== frame.byteLength) throw new EventStreamFrameError('length mismatch');
  if (crc32(frame.subarray(0, 8)) !== view.getUint32(8))
    throw new EventStreamFrameError('the prelude checksum does not match');
  if (crc32(frame.subarray(0, totalLength - 4)) !== view.getUint32(totalLength - 4))
    throw new EventStreamFrameError('the message checksum does not match');
  const headersEnd = 12 + headersLength;
  return {
    headers: decodeHeaders(frame.subarray(12, headersEnd)),
    payload: frame.subarray(headersEnd, totalLength - 4),
  };
}

/**
 * The messages of a response body, in order, reading no more than `bytesMax` bytes in all (then
 * StreamTooLargeError, and the transfer is cancelled). A body that ends inside a message is a
 * frame error: the stream was cut.
 */
export async function* readEventStream(
  body: ReadableStream<Uint8Array>,
  bytesMax: number,
): AsyncGenerator<EventStreamMessage> {
  const reader = body.getReader();
  let buffered: Uint8Array = new Uint8Array(0);
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      if (bytes > bytesMax) throw new StreamTooLargeError(bytesMax);
      buffered = concat(buffered, value);
      for (;;) {
        const frameLength = completeFrameLength(buffered);
        if (frameLength === undefined) break;
        yield decodeEventStreamMessage(buffered.subarray(0, frameLength));
        buffered = buffered.subarray(frameLength);
      }
    }
    if (buffered.byteLength > 0)
      throw new EventStreamFrameError('the stream ended inside a message');
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

/** The length of the first message when all of it is buffered; undefined while more is needed. */
function completeFrameLength(buffered: Uint8Array): number | undefined {
  if (buffered.byteLength < 12) return undefined;
  const view = new DataView(buffered.buffer, buffered.byteOffset, buffered.byteLength);
  const totalLength = view.getUint32(0);
  const headersLength = view.getUint32(4);
  if (
    totalLength < frameOverheadBytes ||
    totalLength > eventStreamMessageBytesMax ||
    headersLength > totalLength - frameOverheadBytes
  )
    throw new EventStreamFrameError(`impossible lengths (${totalLength}, ${headersLength})`);
  // Checked before waiting for the rest: a corrupt prelude must not make the reader wait for 16 MiB.
  if (crc32(buffered.subarray(0, 8)) !== view.getUint32(8))
    throw new EventStreamFrameError('the prelude checksum does not match');
  return buffered.byteLength >= totalLength ? totalLength : undefined;
}

function concat(first: Uint8Array, second: Uint8Array): Uint8Array {
  if (first.byteLength === 0) return second;
  const joined = new Uint8Array(first.byteLength + second.byteLength);
  joined.set(first, 0);
  joined.set(second, first.byteLength);
  return joined;
}
