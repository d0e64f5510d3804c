import { createAnthropicProvider } from '../../../../lambda/proxy/providers/anthropic';
import {
  anthropicBaseUrlDefault,
  credentialsFromEnvironment,
  credentialsFromSecretString,
} from '../../../../lambda/proxy/providers/credentials';
import {
  type ChatProvider,
  type ProviderRequest,
  type StreamDelta,
} from '../../../../lambda/proxy/providers/types';
import {
  anthropicAnswer,
  anthropicError,
  anthropicStream,
  anthropicStreamError,
  collectDeltas,
  gate,
  providerFailure,
  startFakeAnthropic,
  type FakeProvider,
} from '../../../support/fake-providers';

/**
 * The anthropic provider against a real local server speaking Anthropic's Messages API (JSON and
 * SSE): what it sends, how it reads answers, streams, usage and errors.
 */

let anthropic: FakeProvider;
let provider: ChatProvider;
const apiKey = 'fake-anthropic-key-0123456789';

beforeAll(async () => {
  anthropic = await startFakeAnthropic();
  provider = createAnthropicProvider(async () => ({
    anthropic: { apiKey, baseUrl: anthropic.baseUrl },
  }));
});
afterAll(() => anthropic.close());

const call = () => ({ signal: new AbortController().signal, responseBytesMax: 1024 * 1024 });
const hello: ProviderRequest = {
  model: 'claude-fake',
  messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hello' }] }],
  maxOutputTokens: 100,
};

const collect = (request: ProviderRequest): Promise<StreamDelta[]> =>
  collectDeltas(provider.stream(request, call()));

describe('the request anthropic is sent', () => {
  test('headers, path, system, merged turns, images, tool calls and their answers, tools, options', async () => {
    anthropic.script(anthropicAnswer(['ok']));
    const index = anthropic.requests.length;
    await provider.complete(
      {
        model: 'claude-fake',
        messages: [
          { role: 'system', content: 'Be brief.' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is in these?' },
              { type: 'image', mediaType: 'image/png', data: 'iVBORw0KGgo=' },
              { type: 'image_url', url: 'https://images.example.com/cat.jpg' },
            ],
          },
          {
            role: 'assistant',
            content: 'Let me look.',
            toolCalls: [
              { id: 'toolu_1', name: 'lookup', arguments: '{"q":"cat"}' },
              { id: 'toolu_2', name: 'lookup', arguments: '{"q":"dog"}' },
            ],
          },
          { role: 'tool', toolCallId: 'toolu_1', content: 'a cat' },
          { role: 'tool', toolCallId: 'toolu_2', content: 'a dog' },
          { role: 'system', content: 'Answer in English.' },
        ],
        maxOutputTokens: 321,
        temperature: 0.5,
        stop: ['END'],
        tools: [
          {
            name: 'lookup',
            description: 'Looks a thing up',
            parameters: { type: 'object', properties: { q: { type: 'string' } } },
          },
        ],
        toolChoice: { type: 'required' },
        parallelToolCalls: false,
        options: { user: 'user-pseudonym-1' },
      },
      call(),
    );
    const sent = await anthropic.request(index);
    expect(sent.path).toBe('/v1/messages');
    expect(sent.headers['x-api-key']).toBe(apiKey);
    expect(sent.headers['anthropic-version']).toBe('2023-06-01');
    expect(sent.headers.authorization).toBeUndefined();
    expect(sent.body).toEqual({
      model: 'claude-fake',
      system: 'Be brief.\n\nAnswer in English.',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is in these?' },
            {
              type: 'image',
              source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' },
            },
            { type: 'image', source: { type: 'url', url: 'https://images.example.com/cat.jpg' } },
          ],
        },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'Let me look.' },
            { type: 'tool_use', id: 'toolu_1', name: 'lookup', input: { q: 'cat' } },
            { type: 'tool_use', id: 'toolu_2', name: 'lookup', input: { q: 'dog' } },
          ],
        },
        {
          // Parallel tool answers share the one user turn after the calls.
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: 'a cat' },
            { type: 'tool_result', tool_use_id: 'toolu_2', content: 'a dog' },
          ],
        },
      ],
      max_tokens: 321,
      temperature: 0.5,
      stop_sequences: ['END'],
      tools: [
        {
          name: 'lookup',
          description: 'Looks a thing up',
          input_schema: { type: 'object', properties: { q: { type: 'string' } } },
        },
      ],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
      metadata: { user_id: 'user-pseudonym-1' },
    });
  });

  test.each([
    [{ type: 'auto' } as const, undefined, { type: 'auto' }],
    [{ type: 'none' } as const, undefined, { type: 'none' }],
    [{ type: 'required' } as const, true, { type: 'any' }],
    [{ type: 'function', name: 'lookup' } as const, undefined, { type: 'tool', name: 'lookup' }],
    [undefined, false, { type: 'auto', disable_parallel_tool_use: true }],
    [undefined, undefined, undefined],
  ])('tool choice %j with parallel %j is sent as %j', async (toolChoice, parallel, expected) => {
    anthropic.script(anthropicAnswer(['ok']));
    const index = anthropic.requests.length;
    await provider.complete(
      {
        ...hello,
        tools: [{ name: 'lookup', parameters: { type: 'object' } }],
        toolChoice,
        parallelToolCalls: parallel,
      },
      call(),
    );
    expect((await anthropic.request(index)).body).toMatchObject({ tools: [{ name: 'lookup' }] });
    expect(
      ((await anthropic.request(index)).body as { tool_choice?: unknown }).tool_choice,
    ).toEqual(expected);
  });

  test('a stream asks for one; a plain request sends no stream field and no empty fields', async () => {
    const index = anthropic.requests.length;
    await collect(hello);
    await provider.complete(hello, call());
    expect((await anthropic.request(index)).body).toMatchObject({ stream: true });
    expect((await anthropic.request(index + 1)).body).toEqual({
      model: 'claude-fake',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hello' }] }],
      max_tokens: 100,
    });
  });

  test.each([
    [{ temperature: 1.5 }, 'temperature: anthropic accepts 0 to 1'],
    [{ temperature: 0.5, topP: 0.9 }, 'top_p: anthropic accepts temperature or top_p, not both'],
    [
      { tools: [{ name: 'lookup', parameters: { type: 'object' }, strict: true }] },
      'tools[0].function.strict: anthropic does not enforce strict schemas',
    ],
    [
      {
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'hi' }] },
          {
            role: 'assistant',
            content: null,
            toolCalls: [{ id: 'toolu_1', name: 'lookup', arguments: '[1,2]' }],
          },
        ],
      },
      'messages[1].tool_calls[0].function.arguments: anthropic needs a JSON object',
    ],
  ] as [Partial<ProviderRequest>, string][])(
    'what anthropic cannot take is named before any call: %j',
    (change, message) => {
      expect(provider.unsupported?.({ ...hello, ...change })).toBe(message);
    },
  );

  test('what it can take passes', () => {
    expect(provider.unsupported?.({ ...hello, temperature: 1, stop: ['x'] })).toBeUndefined();
    expect(provider.capabilities).toEqual({
      tools: true,
      parallelToolCalls: true,
      imageData: true,
      imageUrls: true,
      responseFormats: ['text'],
      options: ['user'],
    });
  });
});

describe('a whole answer', () => {
  test('text and tool calls; usage counts every input token, the cache counts as its parts', async () => {
    anthropic.script(
      anthropicAnswer(
        [
          'Looking it up.',
          { type: 'tool_use', id: 'toolu_9', name: 'lookup', input: { q: 'cat', n: 2 } },
        ],
        {
          input_tokens: 40,
          output_tokens: 12,
          cache_read_input_tokens: 1000,
          cache_creation_input_tokens: 200,
        },
        'tool_use',
      ),
    );
    expect(await provider.complete(hello, call())).toEqual({
      text: 'Looking it up.',
      toolCalls: [{ id: 'toolu_9', name: 'lookup', arguments: '{"q":"cat","n":2}' }],
      finishReason: 'tool_calls',
      usage: {
        promptTokens: 1240,
        completionTokens: 12,
        cachedPromptTokens: 1000,
        cacheCreationTokens: 200,
      },
    });
  });

  test.each([
    ['end_turn', 'stop'],
    ['stop_sequence', 'stop'],
    ['max_tokens', 'length'],
    ['model_context_window_exceeded', 'length'],
    ['tool_use', 'tool_calls'],
    ['refusal', 'content_filter'],
  ])('stop reason %s is finish reason %s', async (stopReason, finishReason) => {
    anthropic.script(anthropicAnswer(['some text'], undefined, stopReason));
    expect((await provider.complete(hello, call())).finishReason).toBe(finishReason);
  });

  test('a refusal with nothing said is a block, billed for what the provider read', async () => {
    anthropic.script(anthropicAnswer([], { input_tokens: 30, output_tokens: 0 }, 'refusal'));
    const error = await providerFailure(provider.complete(hello, call()));
    expect(error.kind).toBe('blocked');
    expect(error.usage).toMatchObject({ promptTokens: 30, completionTokens: 0 });
  });

  test('an answer without usage cannot be billed: 502, never a guess', async () => {
    anthropic.script({
      status: 200,
      body: { type: 'message', content: [], stop_reason: 'end_turn' },
    });
    expect((await providerFailure(provider.complete(hello, call()))).kind).toBe('bad_gateway');
  });

  test('a negative token count is refused, never billed', async () => {
    anthropic.script(anthropicAnswer(['x'], { input_tokens: -5, output_tokens: 1 }));
    expect((await providerFailure(provider.complete(hello, call()))).message).toBe(
      'anthropic reported an invalid input_tokens; the request cannot be billed',
    );
  });
});

describe('errors', () => {
  test.each([
    [429, 'rate_limit_error', 'unavailable', true],
    [529, 'overloaded_error', 'unavailable', true],
    [500, 'api_error', 'unavailable', true],
    [503, 'api_error', 'unavailable', true],
    [400, 'invalid_request_error', 'rejected', false],
    [413, 'request_too_large', 'rejected', false],
    [401, 'authentication_error', 'bad_gateway', false],
  ])('HTTP %i (%s) is %s, retryable %s, streamed or not', async (status, type, kind, retryable) => {
    anthropic.script(anthropicError(status, type, 'something went wrong'));
    const whole = await providerFailure(provider.complete(hello, call()));
    anthropic.script(anthropicError(status, type, 'something went wrong'));
    const streamed = await providerFailure(collect(hello));
    for (const error of [whole, streamed]) {
      expect(error).toMatchObject({ kind, retryable });
      expect(error.message).toBe(`anthropic answered ${status}: something went wrong`);
    }
  });

  test("the provider's message is sanitized: no key-like strings, no URLs", async () => {
    anthropic.script(
      anthropicError(
        401,
        'authentication_error',
        'invalid x-api-key sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789 see https://console.anthropic.com/x?k=1',
      ),
    );
    const error = await providerFailure(provider.complete(hello, call()));
    expect(error.message).toBe('anthropic answered 401: invalid x-api-key [redacted] see [url]');
  });

  test('without a key: not configured, and nothing is sent', async () => {
    const unconfigured = createAnthropicProvider(async () => ({}));
    const before = anthropic.requests.length;
    expect((await providerFailure(unconfigured.complete(hello, call()))).kind).toBe(
      'not_configured',
    );
    expect(anthropic.requests.length).toBe(before);
  });
});

describe('a streamed answer', () => {
  test('text, tool calls by their own index, the finish reason, then the usage (cache parts from message_start, output from message_delta)', async () => {
    anthropic.script(
      anthropicStream(
        [
          'Checking ',
          { toolUse: { id: 'toolu_a', name: 'lookup', inputJson: ['{"q":', '"cat"}'] } },
          { toolUse: { id: 'toolu_b', name: 'now', inputJson: [] } },
        ],
        {
          input_tokens: 10,
          output_tokens: 33,
          cache_read_input_tokens: 500,
          cache_creation_input_tokens: 70,
        },
        'tool_use',
      ),
    );
    expect(await collect(hello)).toEqual([
      { kind: 'text', text: 'Checking ' },
      { kind: 'tool_call', index: 0, id: 'toolu_a', name: 'lookup', argumentsDelta: '' },
      { kind: 'tool_call', index: 0, argumentsDelta: '{"q":' },
      { kind: 'tool_call', index: 0, argumentsDelta: '"cat"}' },
      { kind: 'tool_call', index: 1, id: 'toolu_b', name: 'now', argumentsDelta: '' },
      // A call without arguments streams none; clients get an empty object to parse.
      { kind: 'tool_call', index: 1, argumentsDelta: '{}' },
      { kind: 'finish', finishReason: 'tool_calls' },
      {
        kind: 'usage',
        usage: {
          promptTokens: 580,
          completionTokens: 33,
          cachedPromptTokens: 500,
          cacheCreationTokens: 70,
        },
      },
    ]);
  });

  test('the deltas come as the provider sends them (a gate holds the rest)', async () => {
    const rest = gate();
    anthropic.script(anthropicStream(['first ', rest.opened, 'second']));
    const iterator = provider.stream(hello, call())[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toEqual({ kind: 'text', text: 'first ' });
    rest.open();
    expect((await iterator.next()).value).toEqual({ kind: 'text', text: 'second' });
    expect((await iterator.next()).value).toEqual({ kind: 'finish', finishReason: 'stop' });
  });

  test('an error event before anything was streamed may be retried, and carries no usage', async () => {
    const stream = anthropicStream([], undefined, 'end_turn', 'none');
    anthropic.script({
      ...stream,
      pieces: [...stream.pieces, anthropicStreamError('overloaded_error', 'Overloaded')],
    });
    const error = await providerFailure(collect(hello));
    expect(error).toMatchObject({ kind: 'unavailable', retryable: true, usage: undefined });
    expect(error.message).toBe('anthropic failed mid-stream: Overloaded');
  });

  test('an error event after text is final and carries the usage so far', async () => {
    const stream = anthropicStream(
      ['partial'],
      { input_tokens: 15, output_tokens: 4 },
      'end_turn',
      'none',
    );
    anthropic.script({
      ...stream,
      pieces: [...stream.pieces, anthropicStreamError('overloaded_error', 'Overloaded')],
    });
    const error = await providerFailure(collect(hello));
    expect(error).toMatchObject({ kind: 'bad_gateway', retryable: false });
    expect(error.usage).toMatchObject({ promptTokens: 15 });
  });

  test('a stream cut before message_stop is an error, not a completion', async () => {
    anthropic.script({
      ...anthropicStream(['partial'], undefined, 'end_turn', 'none'),
      after: 'end',
    });
    expect((await providerFailure(collect(hello))).message).toBe(
      'anthropic ended the stream early',
    );
  });

  test('a stream over the byte cap is cut: too large', async () => {
    anthropic.script(anthropicStream(['x'.repeat(4096)]));
    const deltas = provider.stream(hello, { ...call(), responseBytesMax: 1024 });
    const error = await providerFailure(
      (async () => {
        for await (const _ of deltas) void _;
      })(),
    );
    expect(error.kind).toBe('too_large');
  });
});

describe('the anthropic key', () => {
  test('is read from the provider secret, with the public endpoint by default', () => {
    expect(credentialsFromSecretString('{"anthropic_api_key":"k-1"}').anthropic).toEqual({
      apiKey: 'k-1',
      baseUrl: anthropicBaseUrlDefault,
    });
    expect(
      credentialsFromSecretString(
        '{"anthropic_api_key":"k-1","anthropic_base_url":"https://gateway.example.com/"}',
      ).anthropic,
    ).toEqual({ apiKey: 'k-1', baseUrl: 'https://gateway.example.com' });
    expect(credentialsFromSecretString('{}').anthropic).toBeUndefined();
  });

  test('a malformed field is refused without quoting a value', () => {
    expect(() => credentialsFromSecretString('{"anthropic_api_key":""}')).toThrow(
      'the provider secret is invalid: anthropic_api_key',
    );
  });

  test('is read from ANTHROPIC_API_KEY locally', () => {
    expect(credentialsFromEnvironment({ ANTHROPIC_API_KEY: 'k-2' }).anthropic).toEqual({
      apiKey: 'k-2',
      baseUrl: anthropicBaseUrlDefault,
    });
    expect(credentialsFromEnvironment({}).anthropic).toBeUndefined();
  });
});
