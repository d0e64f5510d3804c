import { request as httpRequest } from 'node:http';
import OpenAI from 'openai';
import { startServer, type RunningServer } from '../../../runtime/node-server';
import { gate, geminiStream, openAiStream } from '../../support/fake-providers';
import { startProxyFixture, type ProxyFixture } from '../../support/proxy';

/**
 * Real streaming, end to end over HTTP: the proxy app in the Node server (as `npm run dev` runs it)
 * in front of stand-in providers that stream with gates. A gate holds the provider's next chunks
 * until the client has seen the earlier ones, so "the client got chunk 1 before the provider
 * finished" is proven by the order of events, never by timing.
 */

let fixture: ProxyFixture;
let server: RunningServer;
const initialMicros = 1_000_000n;

async function start(overrides: Parameters<typeof startProxyFixture>[0] = {}) {
  fixture = await startProxyFixture(overrides);
  server = await startServer({ fetch: fixture.app.fetch, hostname: '127.0.0.1', port: 0 });
  await fixture.topUp('alice', '1.00');
}

afterEach(async () => {
  await server.close();
  await fixture.close();
});

type Json = Record<string, unknown>;
const question = { messages: [{ role: 'user', content: 'Say hello' }], max_tokens: 100 };

function post(body: Json, options: { key?: string; signal?: AbortSignal } = {}): Promise<Response> {
  return fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${options.key ?? fixture.keys.alice}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify(body),
    signal: options.signal,
  });
}

/** The raw events of a response, one at a time, as a client reads them (split on the blank line). */
function eventReader(response: Response) {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  return {
    async next(): Promise<string | undefined> {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end !== -1) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          return event;
        }
        const { done, value } = await reader.read();
        if (done) return undefined;
        buffer += decoder.decode(value, { stream: true });
      }
    },
    async rest(): Promise<string[]> {
      const events: string[] = [];
      for (let event = await this.next(); event !== undefined; event = await this.next())
        events.push(event);
      return events;
    },
    cancel: () => reader.cancel(),
  };
}

const json = (event: string) => JSON.parse(event.replace(/^data: /, '')) as Json;

describe('streaming over HTTP', () => {
  test('the first content chunk reaches the client while the provider is still holding the rest', async () => {
    await start();
    const clientSawFirst = gate();
    fixture.openAi.script(openAiStream(['Hel', clientSawFirst.opened, 'lo!']));
    const response = await post({ ...question, model: 'fake-gpt', stream: true });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-cache');
    expect(response.headers.get('content-length')).toBeNull();
    const events = eventReader(response);
    expect(json((await events.next())!)).toMatchObject({
      choices: [{ delta: { role: 'assistant', content: '' } }],
    });
    expect(json((await events.next())!)).toMatchObject({
      choices: [{ delta: { content: 'Hel' } }],
    });
    // The provider cannot have sent "lo!" yet: it waits for this very moment (a buffering proxy never gets here).
    clientSawFirst.open();
    const rest = await events.rest();
    expect(
      rest.map((event) =>
        event.startsWith('data: {') ? ((json(event).choices as Json[])[0] ?? 'usage') : event,
      ),
    ).toEqual([
      expect.objectContaining({ delta: { content: 'lo!' } }),
      expect.objectContaining({ finish_reason: 'stop' }),
      'data: [DONE]',
    ]);
  });

  test("DATA-06: the chunks follow OpenAI's format field by field, with one id, created and model, and the usage chunk when asked", async () => {
    await start();
    fixture.openAi.script(
      openAiStream(['Hi', ' there'], { prompt_tokens: 20, completion_tokens: 5 }),
    );
    const response = await post({
      ...question,
      model: 'fake-gpt',
      stream: true,
      stream_options: { include_usage: true },
    });
    const events = await eventReader(response).rest();
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map(json);
    const [first] = chunks;
    const identity = {
      id: first.id,
      object: 'chat.completion.chunk',
      created: first.created,
      model: 'fake-gpt',
      system_fingerprint: null,
    };
    expect(first.id).toMatch(/^chatcmpl-/);
    expect(first.created).toEqual(expect.any(Number));
    expect(chunks).toEqual([
      {
        ...identity,
        choices: [
          {
            index: 0,
            delta: { role: 'assistant', content: '' },
            logprobs: null,
            finish_reason: null,
          },
        ],
      },
      {
        ...identity,
        choices: [{ index: 0, delta: { content: 'Hi' }, logprobs: null, finish_reason: null }],
      },
      {
        ...identity,
        choices: [{ index: 0, delta: { content: ' there' }, logprobs: null, finish_reason: null }],
      },
      { ...identity, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] },
      // 20 x 1 + 5 x 4 = 40 micros; what is charged and what remains ride in the usage chunk.
      {
        ...identity,
        choices: [],
        usage: { prompt_tokens: 20, completion_tokens: 5, total_tokens: 25 },
        x_credits_charged: '0.000040',
        x_credits_remaining: '0.999960',
      },
    ]);
    expect(await fixture.availableMicros('alice')).toBe(initialMicros - 40n);
    // The provider was asked to stream, with its usage.
    expect(fixture.openAi.requests[0].body).toMatchObject({
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  test('without include_usage there is no usage chunk, and the reported usage is still billed', async () => {
    await start();
    fixture.openAi.script(openAiStream(['Hi'], { prompt_tokens: 20, completion_tokens: 5 }));
    const events = await eventReader(
      await post({ ...question, model: 'fake-gpt', stream: true }),
    ).rest();
    expect(events.some((event) => event.includes('"usage"'))).toBe(false);
    expect(await fixture.availableMicros('alice')).toBe(initialMicros - 40n);
  });

  test('gemini streams through streamGenerateContent; its cumulative usage is billed from the last chunk, never summed', async () => {
    await start();
    fixture.gemini.script(
      geminiStream(['One, ', 'two, ', 'three.'], { promptTokenCount: 12, candidatesTokenCount: 7 }),
    );
    const events = await eventReader(
      await post({
        ...question,
        model: 'gemini-2.5-flash',
        stream: true,
        stream_options: { include_usage: true },
      }),
    ).rest();
    expect(fixture.gemini.requests[0].path).toBe(
      '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse',
    );
    const chunks = events.slice(0, -1).map(json);
    expect(
      chunks
        .flatMap((chunk) =>
          (chunk.choices as { delta: { content?: string } }[]).map(
            (choice) => choice.delta.content ?? '',
          ),
        )
        .join(''),
    ).toBe('One, two, three.');
    // ceil(12 x 0.3 + 7 x 2.5) = 22 micros; summing the three cumulative counts would bill more.
    expect(chunks.at(-1)).toMatchObject({
      usage: { prompt_tokens: 12, completion_tokens: 7 },
      x_credits_charged: '0.000022',
    });
    expect(await fixture.availableMicros('alice')).toBe(initialMicros - 22n);
  });

  test("LOG-02: a gemini safety block mid-stream ends with an error event in the API's error shape, and the tokens it reported are billed", async () => {
    await start();
    const blocked = {
      candidates: [
        { content: { role: 'model', parts: [{ text: '' }] }, finishReason: 'SAFETY', index: 0 },
      ],
      usageMetadata: { promptTokenCount: 12, candidatesTokenCount: 3 },
    };
    const stream = geminiStream(
      ['Once upon '],
      { promptTokenCount: 12, candidatesTokenCount: 2 },
      'STOP',
    );
    fixture.gemini.script({
      ...stream,
      pieces: [
        stream.pieces[0].toString().replace('"finishReason":"STOP",', ''),
        `data: ${JSON.stringify(blocked)}\r\n\r\n`,
      ],
    });
    const events = await eventReader(
      await post({ ...question, model: 'gemini-2.5-flash', stream: true }),
    ).rest();
    expect(events.at(-1)).toMatch(/^event: error\ndata: /);
    expect(JSON.parse(events.at(-1)!.split('\ndata: ')[1])).toEqual({
      error: {
        message: expect.stringContaining('safety filter (SAFETY)'),
        type: 'invalid_request_error',
        code: 'content_blocked',
      },
      request_id: expect.any(String),
    });
    // ceil(12 x 0.3 + 3 x 2.5) = 12 micros: the last usage Gemini reported.
    expect(await fixture.availableMicros('alice')).toBe(initialMicros - 12n);
  });

  test('DR-03: a provider that cuts the stream mid-way gets an error event, and what was streamed is billed as an estimate', async () => {
    await start();
    const clientSawText = gate();
    fixture.openAi.script({
      status: 200,
      pieces: [...openAiStream(['Partial answer']).pieces.slice(0, 3), clientSawText.opened],
      after: 'cut',
    });
    const reader = eventReader(await post({ ...question, model: 'fake-gpt', stream: true }));
    await reader.next();
    expect(await reader.next()).toContain('Partial answer');
    clientSawText.open();
    const events = await reader.rest();
    expect(events.at(-1)).toMatch(
      /^event: error\ndata: \{"error":\{"message":"the OpenAI-compatible provider cut the connection mid-response","type":"api_error","code":"provider_error"\}/,
    );
    expect(events).not.toContain('data: [DONE]');
    const settled = await fixture.logger.nextAudit('provider_failure');
    expect(settled).toMatchObject({ usage_source: 'estimate', ending: 'failed' });
    const charged = BigInt(settled.charged_micros as string);
    expect(charged).toBeGreaterThan(0n);
    expect(charged).toBeLessThanOrEqual(BigInt(settled.held_micros as string));
    expect(await fixture.availableMicros('alice')).toBe(initialMicros - charged);
  });

  test('DATA-06: a stream that ends without usage is delivered whole and settled from an estimate, logged as one', async () => {
    await start();
    fixture.openAi.script(openAiStream(['A complete answer without usage.'], null));
    const events = await eventReader(
      await post({
        ...question,
        model: 'fake-gpt',
        stream: true,
        stream_options: { include_usage: true },
      }),
    ).rest();
    expect(events.at(-1)).toBe('data: [DONE]');
    const settled = await fixture.logger.nextAudit('chat_completion');
    expect(settled).toMatchObject({
      usage_source: 'estimate',
      ending: 'completed',
      finish_reason: 'stop',
    });
    const charged = BigInt(settled.charged_micros as string);
    // Prompt "Say hello" (9 bytes: 3 + 4 framing tokens) at 1 per million, 32 bytes streamed (8 tokens) at 4: ceil(7 + 32) micros.
    expect(charged).toBe(39n);
    expect(json(events.at(-2)!)).toMatchObject({
      usage: { prompt_tokens: 7, completion_tokens: 8 },
      x_credits_charged: '0.000039',
    });
    expect(
      fixture.logger.records.some(
        (record) =>
          record.level === 'WARN' && record.message.startsWith('stream settled from an estimate'),
      ),
    ).toBe(true);
    expect(await fixture.availableMicros('alice')).toBe(initialMicros - charged);
  });

  test('DATA-06: a client that disconnects stops the upstream request at once and is billed an estimate of what it received', async () => {
    await start();
    const never = new Promise(() => undefined);
    fixture.openAi.script({ ...openAiStream(['Tokens nobody reads', never]), after: 'hang' });
    // A raw socket, destroyed by hand: the plainest client disconnect there is.
    const received = new Promise<{ text: string; disconnect: () => void }>((resolve, reject) => {
      const outgoing = httpRequest(
        `${server.url}/v1/chat/completions`,
        {
          method: 'POST',
          headers: {
            authorization: `Bearer ${fixture.keys.alice}`,
            'content-type': 'application/json',
          },
        },
        (incoming) => {
          let text = '';
          incoming.on('data', (chunk: Buffer) => {
            text += chunk.toString('utf8');
            if (text.includes('Tokens nobody reads'))
              resolve({ text, disconnect: () => outgoing.destroy() });
          });
        },
      );
      outgoing.on('error', reject);
      outgoing.end(JSON.stringify({ ...question, model: 'fake-gpt', stream: true }));
    });
    const { text, disconnect } = await received;
    expect(text).toContain('"role":"assistant"');
    disconnect();
    // The stand-in sees its connection closed by the proxy, before it ever finished.
    expect(await fixture.openAi.requests[0].closed).toEqual({ completed: false });
    const settled = await fixture.logger.nextAudit('chat_completion');
    expect(settled).toMatchObject({ ending: 'client_left', usage_source: 'estimate' });
    const charged = BigInt(settled.charged_micros as string);
    expect(charged).toBeGreaterThan(0n);
    expect(await fixture.availableMicros('alice')).toBe(initialMicros - charged);
    expect(
      fixture.metrics.total('ChatCompletions', {
        model: 'fake-gpt',
        outcome: 'client_disconnected',
      }),
    ).toBe(1);
  });

  test('DR-03: a stream that outlives the provider budget ends with a timeout error event, stops the provider and bills an estimate', async () => {
    await start({ providerAttemptTimeoutMilliseconds: 500, providerBudgetMilliseconds: 1_000 });
    fixture.openAi.script({
      ...openAiStream(['Slow start', new Promise(() => undefined)]),
      after: 'hang',
    });
    const events = await eventReader(
      await post({ ...question, model: 'fake-gpt', stream: true }),
    ).rest();
    expect(events.some((event) => event.includes('"content":"Slow start"'))).toBe(true);
    expect(JSON.parse(events.at(-1)!.split('\ndata: ')[1])).toMatchObject({
      error: { type: 'api_error', code: 'provider_timeout' },
    });
    expect(await fixture.openAi.requests[0].closed).toEqual({ completed: false });
    const settled = await fixture.logger.nextAudit('provider_failure');
    expect(settled).toMatchObject({ usage_source: 'estimate', error_kind: 'timeout' });
    expect(BigInt(settled.charged_micros as string)).toBeGreaterThan(0n);
  });

  test('402 before any provider call, as JSON, when the credits do not cover the hold', async () => {
    await start();
    const response = await post(
      { ...question, model: 'fake-gpt', stream: true },
      { key: fixture.keys.bob },
    );
    expect(response.status).toBe(402);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toMatchObject({ error: { type: 'insufficient_credits' } });
    expect(fixture.openAi.requests).toHaveLength(0);
  });

  test('a provider failing before its first delta is a JSON error after one retry; the hold is released', async () => {
    await start();
    fixture.openAi.script(
      { status: 503, body: { error: { message: 'overloaded' } } },
      { status: 500, body: { error: { message: 'down' } } },
    );
    const response = await post({ ...question, model: 'fake-gpt', stream: true });
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ error: { code: 'provider_unavailable' } });
    expect(fixture.openAi.requests).toHaveLength(2);
    expect(await fixture.availableMicros('alice')).toBe(initialMicros);
  });

  test('a silence longer than the keep-alive interval gets SSE comments, then the stream goes on', async () => {
    await start({ streamKeepAliveIntervalMilliseconds: 50 });
    const clientSawKeepAlive = gate();
    fixture.openAi.script(openAiStream(['Thinking done', clientSawKeepAlive.opened, '.']));
    const events = eventReader(await post({ ...question, model: 'fake-gpt', stream: true }));
    const seen: string[] = [];
    for (let event = await events.next(); event !== ': keep-alive'; event = await events.next())
      seen.push(event!);
    clientSawKeepAlive.open();
    const rest = (await events.rest()).filter((event) => event !== ': keep-alive');
    expect(seen.map((event) => (json(event).choices as Json[])[0])).toEqual([
      expect.objectContaining({ delta: { role: 'assistant', content: '' } }),
      expect.objectContaining({ delta: { content: 'Thinking done' } }),
    ]);
    expect(rest.at(-1)).toBe('data: [DONE]');
  });

  test('the echo model streams word by word', async () => {
    await start({ echoChunkDelayMilliseconds: 1 });
    const events = await eventReader(
      await post({
        model: 'echo',
        messages: [{ role: 'user', content: 'one two three' }],
        stream: true,
      }),
    ).rest();
    const contents = events
      .slice(1, -2)
      .map((event) => (json(event).choices as { delta: { content: string } }[])[0].delta.content);
    expect(contents).toEqual(['echo:', ' one', ' two', ' three']);
  });
});

describe('the official openai client against the proxy', () => {
  const client = () =>
    new OpenAI({ baseURL: `${server.url}/v1`, apiKey: fixture.keys.alice, maxRetries: 0 });

  test('chat.completions.create({ stream: true }) yields the deltas and the usage chunk', async () => {
    await start();
    fixture.openAi.script(
      openAiStream(['Hello', ', ', 'world'], { prompt_tokens: 20, completion_tokens: 5 }),
    );
    const stream = await client().chat.completions.create({
      model: 'fake-gpt',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('Hello, world');
    expect(usage).toMatchObject({ prompt_tokens: 20, completion_tokens: 5, total_tokens: 25 });
  });

  test('chat.completions.stream() assembles the final completion', async () => {
    await start();
    fixture.gemini.script(geminiStream(['Streamed ', 'through ', 'the SDK.']));
    const stream = client().chat.completions.stream({
      model: 'gemini-2.5-flash',
      messages: [{ role: 'user', content: 'hi' }],
    });
    const deltas: string[] = [];
    stream.on('content', (delta) => deltas.push(delta));
    const completion = await stream.finalChatCompletion();
    expect(deltas).toEqual(['Streamed ', 'through ', 'the SDK.']);
    expect(completion.choices[0]).toMatchObject({
      message: { role: 'assistant', content: 'Streamed through the SDK.' },
      finish_reason: 'stop',
    });
  });

  test('an error event mid-stream surfaces as an APIError in the client', async () => {
    await start();
    const clientSawText = gate();
    fixture.openAi.script({
      status: 200,
      pieces: [...openAiStream(['Partial']).pieces.slice(0, 3), clientSawText.opened],
      after: 'cut',
    });
    const stream = await client().chat.completions.create({
      model: 'fake-gpt',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    const received: string[] = [];
    const consume = async () => {
      for await (const chunk of stream) {
        const text = chunk.choices[0]?.delta.content;
        if (text) {
          received.push(text);
          clientSawText.open();
        }
      }
    };
    await expect(consume()).rejects.toMatchObject({
      constructor: OpenAI.APIError,
      code: 'provider_error',
    });
    expect(received).toEqual(['Partial']);
  });
});
