import {
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
} from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { readEventStream } from '../../../../lambda/proxy/providers/aws-event-stream';
import { createBedrockProvider } from '../../../../lambda/proxy/providers/bedrock';
import { type ProviderRequest, type StreamDelta } from '../../../../lambda/proxy/providers/types';
import { standInCredentials } from '../../../support/aws-stand-in';
import { collectDeltas, providerFailure } from '../../../support/fake-providers';
import {
  encodeStreamItem,
  startBedrockStandIn,
  textStream,
  toolUseBlock,
  type BedrockStandIn,
  type StreamItem,
} from '../../../support/bedrock-stand-in';

/**
 * The bedrock provider against a local stand-in of Bedrock's runtime that speaks its wire formats
 * (JSON, the binary event stream encoded by the AWS SDK's own codec) and checks every SigV4
 * signature; the SDK's BedrockRuntimeClient reads the same stand-in, so both ends are held to AWS's
 * implementation (AUTH-09: the role's credentials, no key).
 */

const region = 'eu-west-1';
const profile = 'eu.anthropic.claude-sonnet-4-20250514-v1:0';
let standIn: BedrockStandIn;
beforeAll(async () => {
  standIn = await startBedrockStandIn(region);
});
afterAll(() => standIn.close());
beforeEach(() => void standIn.requests.splice(0));

const provider = () =>
  createBedrockProvider({ region, endpoint: standIn.url, credentials: () => standInCredentials });
const call = (overrides: { signal?: AbortSignal; responseBytesMax?: number } = {}) => ({
  signal: overrides.signal ?? new AbortController().signal,
  responseBytesMax: overrides.responseBytesMax ?? 1024 * 1024,
});
const simple: ProviderRequest = {
  model: profile,
  messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }],
  maxOutputTokens: 100,
};

const weatherTool = {
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

describe('Converse: the request, mapped', () => {
  test('system, user text and image bytes, assistant tool calls, tool results, tools, choice, inference config; signed for bedrock in the region', async () => {
    await provider().complete(
      {
        model: profile,
        messages: [
          { role: 'system', content: 'Be brief.' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is in this picture, and the weather in Paris?' },
              { type: 'image', mediaType: 'image/png', data: 'iVBORw0KGgo=' },
            ],
          },
          {
            role: 'assistant',
            content: 'Let me check.',
            toolCalls: [
              { id: 'tooluse_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
              { id: 'tooluse_2', name: 'get_weather', arguments: '{"city":"Lyon"}' },
            ],
          },
          { role: 'tool', toolCallId: 'tooluse_1', content: '18 C, sunny' },
          { role: 'tool', toolCallId: 'tooluse_2', content: '20 C' },
        ],
        maxOutputTokens: 256,
        temperature: 0.2,
        topP: 0.9,
        stop: ['END'],
        tools: [weatherTool],
        toolChoice: { type: 'required' },
      },
      call(),
    );
    const [request] = standIn.requests;
    expect(request.operation).toBe('converse');
    expect(request.modelId).toBe(profile);
    expect(request.scope).toMatch(/^\d{8}\/eu-west-1\/bedrock\/aws4_request$/);
    expect(request.body).toEqual({
      system: [{ text: 'Be brief.' }],
      messages: [
        {
          role: 'user',
          content: [
            { text: 'What is in this picture, and the weather in Paris?' },
            { image: { format: 'png', source: { bytes: 'iVBORw0KGgo=' } } },
          ],
        },
        {
          role: 'assistant',
          content: [
            { text: 'Let me check.' },
            { toolUse: { toolUseId: 'tooluse_1', name: 'get_weather', input: { city: 'Paris' } } },
            { toolUse: { toolUseId: 'tooluse_2', name: 'get_weather', input: { city: 'Lyon' } } },
          ],
        },
        {
          // Both answers in the one user turn that follows the assistant's calls.
          role: 'user',
          content: [
            { toolResult: { toolUseId: 'tooluse_1', content: [{ text: '18 C, sunny' }] } },
            { toolResult: { toolUseId: 'tooluse_2', content: [{ text: '20 C' }] } },
          ],
        },
      ],
      inferenceConfig: { maxTokens: 256, temperature: 0.2, topP: 0.9, stopSequences: ['END'] },
      toolConfig: {
        tools: [
          {
            toolSpec: {
              name: 'get_weather',
              description: 'The weather in a city',
              inputSchema: { json: weatherTool.parameters },
            },
          },
        ],
        toolChoice: { any: {} },
      },
    });
  });

  test.each([
    [{ type: 'auto' } as const, { auto: {} }],
    [{ type: 'required' } as const, { any: {} }],
    [{ type: 'function', name: 'get_weather' } as const, { tool: { name: 'get_weather' } }],
  ])('tool choice %j is Converse toolChoice %j', async (toolChoice, expected) => {
    await provider().complete({ ...simple, tools: [weatherTool], toolChoice }, call());
    expect((standIn.requests[0].body.toolConfig as { toolChoice: unknown }).toolChoice).toEqual(
      expected,
    );
  });

  test("tool choice 'none' without tool turns offers no tools (Converse has no 'none')", async () => {
    await provider().complete(
      { ...simple, tools: [weatherTool], toolChoice: { type: 'none' } },
      call(),
    );
    expect(standIn.requests[0].body.toolConfig).toBeUndefined();
  });

  test('what Converse cannot express is named before admission (unsupported)', () => {
    const bedrock = provider();
    const toolTurn: ProviderRequest['messages'] = [
      ...simple.messages,
      {
        role: 'assistant',
        content: null,
        toolCalls: [{ id: 't1', name: 'get_weather', arguments: '{"city":"Paris"}' }],
      },
      { role: 'tool', toolCallId: 't1', content: 'sunny' },
    ];
    expect(bedrock.unsupported?.(simple)).toBeUndefined();
    expect(bedrock.unsupported?.({ ...simple, tools: [{ ...weatherTool, strict: true }] })).toMatch(
      /^tools\[0\]\.function\.strict/,
    );
    expect(
      bedrock.unsupported?.({
        ...simple,
        messages: toolTurn,
        tools: [weatherTool],
        toolChoice: { type: 'none' },
      }),
    ).toMatch(/^tool_choice 'none'/);
    expect(bedrock.unsupported?.({ ...simple, messages: toolTurn })).toMatch(
      /no tools are defined/,
    );
    expect(
      bedrock.unsupported?.({
        ...simple,
        tools: [weatherTool],
        messages: [
          ...simple.messages,
          {
            role: 'assistant',
            content: null,
            toolCalls: [{ id: 't1', name: 'get_weather', arguments: '[1]' }],
          },
        ],
      }),
    ).toMatch(/^messages\[1\]\.tool_calls: the arguments of t1 are not a JSON object/);
  });

  test('honest capabilities: tools and image bytes; no image URLs, JSON modes, parallel switch or options', () => {
    expect(provider().capabilities).toEqual({
      tools: true,
      parallelToolCalls: false,
      imageData: true,
      imageUrls: false,
      responseFormats: ['text'],
      options: [],
    });
  });
});

describe('Converse: the answer, mapped back', () => {
  test('text and tool uses, the stop reason, and usage with the prompt cache (its reads and writes are part of the prompt)', async () => {
    standIn.script({
      kind: 'converse',
      body: {
        output: {
          message: {
            role: 'assistant',
            content: [
              { text: 'Checking.' },
              { toolUse: { toolUseId: 'tooluse_a', name: 'get_weather', input: { city: 'Oslo' } } },
            ],
          },
        },
        stopReason: 'tool_use',
        usage: {
          inputTokens: 30,
          outputTokens: 9,
          totalTokens: 139,
          cacheReadInputTokens: 80,
          cacheWriteInputTokens: 20,
        },
        metrics: { latencyMs: 10 },
      },
    });
    expect(await provider().complete(simple, call())).toEqual({
      text: 'Checking.',
      toolCalls: [{ id: 'tooluse_a', name: 'get_weather', arguments: '{"city":"Oslo"}' }],
      finishReason: 'tool_calls',
      usage: {
        promptTokens: 130,
        completionTokens: 9,
        cachedPromptTokens: 80,
        cacheCreationTokens: 20,
      },
    });
  });

  test.each([
    ['end_turn', 'stop'],
    ['stop_sequence', 'stop'],
    ['max_tokens', 'length'],
    ['model_context_window_exceeded', 'length'],
    ['tool_use', 'tool_calls'],
    ['guardrail_intervened', 'content_filter'],
    ['content_filtered', 'content_filter'],
  ])('stopReason %s is finish reason %s', async (stopReason, finishReason) => {
    standIn.script({
      kind: 'converse',
      body: {
        output: { message: { role: 'assistant', content: [{ text: 'partial' }] } },
        stopReason,
        usage: { inputTokens: 3, outputTokens: 1, totalTokens: 4 },
      },
    });
    expect((await provider().complete(simple, call())).finishReason).toBe(finishReason);
  });

  test('a guardrail that leaves nothing is a clear 400 (blocked), with the usage to bill', async () => {
    standIn.script({
      kind: 'converse',
      body: {
        output: { message: { role: 'assistant', content: [] } },
        stopReason: 'guardrail_intervened',
        usage: { inputTokens: 5, outputTokens: 0, totalTokens: 5 },
      },
    });
    const error = await providerFailure(provider().complete(simple, call()));
    expect(error.kind).toBe('blocked');
    expect(error.usage).toEqual({ promptTokens: 5, completionTokens: 0 });
  });

  test('an answer without usage cannot be billed: 502, never a guess', async () => {
    standIn.script({
      kind: 'converse',
      body: { output: { message: { role: 'assistant', content: [{ text: 'x' }] } } },
    });
    expect((await providerFailure(provider().complete(simple, call()))).kind).toBe('bad_gateway');
  });

  test('an answer over the byte cap is cut: too_large', async () => {
    standIn.script({
      kind: 'converse',
      body: {
        output: { message: { role: 'assistant', content: [{ text: 'x'.repeat(4096) }] } },
        stopReason: 'end_turn',
        usage: { inputTokens: 1, outputTokens: 1000, totalTokens: 1001 },
      },
    });
    expect(
      (await providerFailure(provider().complete(simple, call({ responseBytesMax: 1024 })))).kind,
    ).toBe('too_large');
  });
});

describe('ConverseStream: events to deltas', () => {
  test('text deltas, then the finish reason, then the usage of the metadata event (with its cache counts)', async () => {
    standIn.script({
      kind: 'stream',
      items: textStream(['Hel', 'lo'], {
        inputTokens: 10,
        outputTokens: 2,
        totalTokens: 17,
        cacheReadInputTokens: 5,
        cacheWriteInputTokens: 0,
      }),
    });
    expect(await collectDeltas(provider().stream(simple, call()))).toEqual([
      { kind: 'text', text: 'Hel' },
      { kind: 'text', text: 'lo' },
      { kind: 'finish', finishReason: 'stop' },
      {
        kind: 'usage',
        usage: {
          promptTokens: 15,
          completionTokens: 2,
          cachedPromptTokens: 5,
          cacheCreationTokens: 0,
        },
      },
    ]);
    expect(standIn.requests[0].operation).toBe('converse-stream');
  });

  test('tool uses: by index in the order they start, id and name first, then the argument fragments', async () => {
    standIn.script({
      kind: 'stream',
      items: [
        { event: 'messageStart', payload: { role: 'assistant' } },
        { event: 'contentBlockDelta', payload: { contentBlockIndex: 0, delta: { text: 'Two.' } } },
        { event: 'contentBlockStop', payload: { contentBlockIndex: 0 } },
        ...toolUseBlock(1, 'tooluse_p', 'get_weather', ['{"city":', '"Paris"}']),
        ...toolUseBlock(2, 'tooluse_l', 'get_weather', ['{"city":"Lyon"}']),
        { event: 'messageStop', payload: { stopReason: 'tool_use' } },
        {
          event: 'metadata',
          payload: { usage: { inputTokens: 40, outputTokens: 30, totalTokens: 70 } },
        },
      ],
    });
    expect(
      await collectDeltas(provider().stream({ ...simple, tools: [weatherTool] }, call())),
    ).toEqual([
      { kind: 'text', text: 'Two.' },
      {
        kind: 'tool_call',
        index: 0,
        id: 'tooluse_p',
        name: 'get_weather',
        argumentsDelta: '',
      },
      { kind: 'tool_call', index: 0, argumentsDelta: '{"city":' },
      { kind: 'tool_call', index: 0, argumentsDelta: '"Paris"}' },
      {
        kind: 'tool_call',
        index: 1,
        id: 'tooluse_l',
        name: 'get_weather',
        argumentsDelta: '',
      },
      { kind: 'tool_call', index: 1, argumentsDelta: '{"city":"Lyon"}' },
      { kind: 'finish', finishReason: 'tool_calls' },
      { kind: 'usage', usage: { promptTokens: 40, completionTokens: 30 } },
    ]);
  });

  test('an exception mid-stream (throttling) is a retryable unavailable error; a model stream error is a 502', async () => {
    standIn.script(
      {
        kind: 'stream',
        items: [
          { event: 'messageStart', payload: { role: 'assistant' } },
          { exception: 'throttlingException', message: 'Too many tokens, please wait.' },
        ],
      },
      {
        kind: 'stream',
        items: [
          { event: 'messageStart', payload: { role: 'assistant' } },
          { exception: 'modelStreamErrorException', message: 'the model failed' },
        ],
      },
    );
    const throttled = await providerFailure(collectDeltas(provider().stream(simple, call())));
    expect([throttled.kind, throttled.retryable]).toEqual(['unavailable', true]);
    const broken = await providerFailure(collectDeltas(provider().stream(simple, call())));
    expect([broken.kind, broken.retryable]).toEqual(['bad_gateway', false]);
  });

  test('a stream that ends before messageStop was cut: 502', async () => {
    standIn.script({ kind: 'stream', items: textStream(['partial']).slice(0, 2) });
    const error = await providerFailure(collectDeltas(provider().stream(simple, call())));
    expect(error.message).toBe('bedrock ended the stream early');
  });

  test('a frame whose checksum does not match is refused, never half-read', async () => {
    const frame = encodeStreamItem({
      event: 'contentBlockDelta',
      payload: { contentBlockIndex: 0, delta: { text: 'tampered' } },
    });
    const corrupt = new Uint8Array(frame);
    corrupt[corrupt.length - 10] ^= 0xff;
    standIn.script({
      kind: 'stream',
      items: [{ event: 'messageStart', payload: { role: 'assistant' } }, { raw: corrupt }],
    });
    const error = await providerFailure(collectDeltas(provider().stream(simple, call())));
    expect(error.kind).toBe('bad_gateway');
    expect(error.message).toMatch(/malformed event stream: the message checksum does not match/);
  });

  test('a stream over the byte cap is cut: too_large', async () => {
    standIn.script({ kind: 'stream', items: textStream(Array(40).fill('x'.repeat(100))) });
    const error = await providerFailure(
      collectDeltas(provider().stream(simple, call({ responseBytesMax: 2048 }))),
    );
    expect(error.kind).toBe('too_large');
  });

  test("the call's signal stops the stream upstream: a timeout, and Bedrock sees the connection close", async () => {
    standIn.script({ kind: 'stream', items: textStream(['first']).slice(0, 2), hold: true });
    const controller = new AbortController();
    const deltas: StreamDelta[] = [];
    const left = standIn.clientLeft();
    const error = await providerFailure(
      (async () => {
        for await (const delta of provider().stream(simple, call({ signal: controller.signal }))) {
          deltas.push(delta);
          controller.abort();
        }
      })(),
    );
    await left;
    expect(deltas).toEqual([{ kind: 'text', text: 'first' }]);
    expect(error.kind).toBe('timeout');
  });
});

describe('errors: mapped to the API, sanitized', () => {
  const arnMessage =
    'User: arn:aws:sts::123456789012:assumed-role/proxy-role/fn is not authorized to perform: bedrock:InvokeModel on resource: arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.x';

  test.each([
    [429, 'ThrottlingException', 'unavailable', true],
    [503, 'ServiceUnavailableException', 'unavailable', true],
    [429, 'ModelNotReadyException', 'unavailable', true],
    [500, 'InternalServerException', 'unavailable', true],
    [400, 'ServiceQuotaExceededException', 'unavailable', false],
    [400, 'ValidationException', 'rejected', false],
    [424, 'ModelErrorException', 'bad_gateway', false],
    [408, 'ModelTimeoutException', 'timeout', false],
    [403, 'AccessDeniedException', 'not_configured', false],
    [404, 'ResourceNotFoundException', 'not_configured', false],
    [403, 'UnrecognizedClientException', 'not_configured', false],
  ])(
    'HTTP %i %s is %s (retryable: %s), with no ARN or account id',
    async (status, type, kind, retryable) => {
      standIn.script({ kind: 'error', status, type, message: arnMessage });
      const error = await providerFailure(provider().complete(simple, call()));
      expect([error.kind, error.retryable]).toEqual([kind, retryable]);
      expect(error.message).not.toMatch(/arn:|123456789012|proxy-role/);
    },
  );

  test('the same in a stream, before its first event', async () => {
    standIn.script({
      kind: 'error',
      status: 429,
      type: 'ThrottlingException',
      message: 'slow down',
    });
    const error = await providerFailure(collectDeltas(provider().stream(simple, call())));
    expect([error.kind, error.retryable, error.message]).toEqual([
      'unavailable',
      true,
      'bedrock is unavailable (ThrottlingException): slow down',
    ]);
  });

  test('no AWS credentials in the environment: provider not configured, nothing sent', async () => {
    const error = await providerFailure(
      createBedrockProvider({ region, endpoint: standIn.url, credentials: undefined }).complete(
        simple,
        call(),
      ),
    );
    // jest's environment has no AWS_ACCESS_KEY_ID (nothing here may use real credentials).
    expect(process.env.AWS_ACCESS_KEY_ID).toBeUndefined();
    expect(error.kind).toBe('not_configured');
    expect(standIn.requests).toEqual([]);
  });
});

describe("the stand-in speaks Bedrock's protocol: the AWS SDK reads it, and reads what the provider reads", () => {
  const sdk = () =>
    new BedrockRuntimeClient({
      region,
      endpoint: standIn.url,
      credentials: standInCredentials,
      maxAttempts: 1,
      // HTTP/1.1, as the provider's fetch speaks it (the SDK's default here is HTTP/2).
      requestHandler: new NodeHttpHandler(),
    });

  test('ConverseStream: the SDK decodes the same events (its signature passes the same check)', async () => {
    const items: StreamItem[] = [
      { event: 'messageStart', payload: { role: 'assistant' } },
      ...toolUseBlock(0, 't9', 'get_weather', ['{"city":"Rome"}']),
      { event: 'messageStop', payload: { stopReason: 'tool_use' } },
      {
        event: 'metadata',
        payload: {
          usage: { inputTokens: 8, outputTokens: 6, totalTokens: 14 },
          metrics: { latencyMs: 1 },
        },
      },
    ];
    standIn.script({ kind: 'stream', items }, { kind: 'stream', items });
    const answer = await sdk().send(
      new ConverseStreamCommand({
        modelId: profile,
        messages: [{ role: 'user', content: [{ text: 'Hi' }] }],
      }),
    );
    const seen: unknown[] = [];
    for await (const event of answer.stream ?? []) seen.push(event);
    expect(seen).toEqual([
      { messageStart: { role: 'assistant' } },
      {
        contentBlockStart: {
          contentBlockIndex: 0,
          start: { toolUse: { toolUseId: 't9', name: 'get_weather' } },
        },
      },
      {
        contentBlockDelta: {
          contentBlockIndex: 0,
          delta: { toolUse: { input: '{"city":"Rome"}' } },
        },
      },
      { contentBlockStop: { contentBlockIndex: 0 } },
      { messageStop: { stopReason: 'tool_use' } },
      {
        metadata: {
          usage: { inputTokens: 8, outputTokens: 6, totalTokens: 14 },
          metrics: { latencyMs: 1 },
        },
      },
    ]);
    expect(
      await collectDeltas(provider().stream({ ...simple, tools: [weatherTool] }, call())),
    ).toEqual([
      { kind: 'tool_call', index: 0, id: 't9', name: 'get_weather', argumentsDelta: '' },
      { kind: 'tool_call', index: 0, argumentsDelta: '{"city":"Rome"}' },
      { kind: 'finish', finishReason: 'tool_calls' },
      { kind: 'usage', usage: { promptTokens: 8, completionTokens: 6 } },
    ]);
    // The SDK signed the same canonical path as aws4fetch (the model id's ':' encoded twice).
    expect(standIn.requests.map((request) => request.modelId)).toEqual([profile, profile]);
  });

  test('Converse, and a modelled error, as the SDK sees them', async () => {
    standIn.script({
      kind: 'error',
      status: 429,
      type: 'ThrottlingException',
      message: 'slow down',
    });
    await expect(
      sdk().send(
        new ConverseCommand({
          modelId: profile,
          messages: [{ role: 'user', content: [{ text: 'Hi' }] }],
        }),
      ),
    ).rejects.toMatchObject({ name: 'ThrottlingException', message: 'slow down' });
    const answer = await sdk().send(
      new ConverseCommand({
        modelId: profile,
        messages: [{ role: 'user', content: [{ text: 'Hi' }] }],
      }),
    );
    expect(answer.output?.message?.content).toEqual([{ text: 'Hello from Bedrock' }]);
    expect(answer.usage?.outputTokens).toBe(4);
  });
});

test('the event-stream reader gives the same messages whatever the chunking (here: one byte at a time)', async () => {
  const frames = textStream(['a', 'bc']).map(encodeStreamItem);
  const bytes = Buffer.concat(frames);
  let offset = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(new Uint8Array(bytes.subarray(offset, offset + 1)));
      offset += 1;
    },
  });
  const messages = [];
  for await (const message of readEventStream(body, bytes.length)) messages.push(message);
  expect(messages.map((message) => message.headers[':event-type'])).toEqual([
    'messageStart',
    'contentBlockDelta',
    'contentBlockDelta',
    'contentBlockStop',
    'messageStop',
    'metadata',
  ]);
  expect(JSON.parse(Buffer.from(messages[1].payload).toString('utf8'))).toEqual({
    contentBlockIndex: 0,
    delta: { text: 'a' },
    p: 'abcdefgh',
  });
});
