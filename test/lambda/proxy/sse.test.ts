import fc from 'fast-check';
import {
  ServerSentEventParser,
  StreamTooLargeError,
  readServerSentEvents,
} from '../../../lambda/proxy/sse';

/** The one event-stream parser the streaming providers share, against the WHATWG rules. */

const parse = (...chunks: string[]) => {
  const parser = new ServerSentEventParser();
  return chunks.flatMap((chunk) => parser.push(chunk));
};

function byteStream(chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
}

describe('the event-stream parser', () => {
  test('data lines, [DONE], and comments (keep-alives) skipped', () => {
    expect(parse(': keep-alive\n\ndata: {"a":1}\n\n:ping\ndata: [DONE]\n\n')).toEqual([
      { data: '{"a":1}' },
      { data: '[DONE]' },
    ]);
  });

  test('several data lines of one event are joined with a newline; event and id fields are kept', () => {
    expect(parse('event: error\nid: 7\ndata: first\ndata:second\n\n')).toEqual([
      { event: 'error', id: '7', data: 'first\nsecond' },
    ]);
  });

  test('CRLF, CR and LF line ends, a CRLF split across two chunks included', () => {
    expect(parse('data: a\r\n\r\ndata: b\r\r', 'data: c\n\n', 'data: d\r', '\n\r', '\n')).toEqual([
      { data: 'a' },
      { data: 'b' },
      { data: 'c' },
      { data: 'd' },
    ]);
  });

  test('an event without data, blank lines and unknown fields dispatch nothing; a field without a colon is a field with no value', () => {
    expect(parse('\n\nretry: 100\nfoo: bar\n\nevent: ping\n\ndata\n\n')).toEqual([{ data: '' }]);
  });

  test('an event cut off by the end of the stream is dropped, never half-read', async () => {
    const events = [];
    for await (const event of readServerSentEvents(
      byteStream(['data: whole\n\ndata: {"cut":']),
      1024,
    ))
      events.push(event);
    expect(events).toEqual([{ data: 'whole' }]);
  });

  test('a multi-byte character split between network chunks decodes whole', async () => {
    const bytes = new TextEncoder().encode('data: h\u00e9llo \u4e16\u754c\n\n');
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const byte of bytes) controller.enqueue(new Uint8Array([byte]));
        controller.close();
      },
    });
    const events = [];
    for await (const event of readServerSentEvents(stream, 1024)) events.push(event);
    expect(events).toEqual([{ data: 'h\u00e9llo \u4e16\u754c' }]);
  });

  test('more bytes than the cap throw StreamTooLargeError', async () => {
    const read = async () => {
      for await (const event of readServerSentEvents(
        byteStream(['data: 0123456789\n\n', 'data: 0123456789\n\n']),
        25,
      ))
        void event;
    };
    await expect(read()).rejects.toBeInstanceOf(StreamTooLargeError);
  });

  test('any split of a stream into chunks gives the same events (property)', () => {
    const eventArbitrary = fc.record({
      data: fc.array(fc.stringMatching(/^[^\r\n]*$/), { minLength: 1, maxLength: 3 }),
      lineEnd: fc.constantFrom('\n', '\r\n', '\r'),
    });
    fc.assert(
      fc.property(
        fc.array(eventArbitrary, { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (events, cuts) => {
          const text = events
            .map(
              ({ data, lineEnd }) =>
                data.map((line) => `data: ${line}${lineEnd}`).join('') + lineEnd,
            )
            .join('');
          const positions = [
            ...new Set(cuts.map((cut) => (text.length === 0 ? 0 : cut % text.length))),
          ].sort((a, b) => a - b);
          const chunks = [0, ...positions, text.length]
            .slice(1)
            .map((end, index, ends) => text.slice(index === 0 ? 0 : ends[index - 1], end));
          expect(parse(...chunks)).toEqual(parse(text));
          expect(parse(text)).toEqual(events.map(({ data }) => ({ data: data.join('\n') })));
        },
      ),
    );
  });
});
