import OpenAI from 'openai';
import type { RunnableToolFunctionWithParse } from 'openai/lib/RunnableFunction';
import { startServer, type RunningServer } from '../../../runtime/node-server';
import type { ModelConfig } from '../../../lib/config/schema';
import { textStream, toolUseBlock } from '../../support/bedrock-stand-in';
import { startProxyFixture, testModels, type ProxyFixture } from '../../support/proxy';

/**
 * A bedrock model over the proxy's HTTP API, end to end: the client's OpenAI request, the Converse
 * call Bedrock's stand-in receives (signed, with the profile id), the answer in OpenAI's shapes, and
 * the bill settled to the micro from Bedrock's usage (DATA-06), or nothing when Bedrock fails.
 */

const novaLite: ModelConfig = {
  id: 'nova-lite',
  provider: 'bedrock',
  upstreamModel: 'eu.amazon.nova-lite-v1:0',
  ledgerCode: 301,
  inferenceProfileRegions: ['eu-west-1', 'eu-central-1'],
  inputMicrosPerMillionTokens: 60_000,
  outputMicrosPerMillionTokens: 240_000,
  defaultMaxOutputTokens: 500,
  outputTokensMax: 5000,
};
const converse = (text: string, usage: Record<string, number>, stopReason = 'end_turn') => ({
  kind: 'converse' as const,
  body: {
    output: { message: { role: 'assistant', content: [{ text }] } },
    stopReason,
    usage,
    metrics: { latencyMs: 5 },
  },
});

let fixture: ProxyFixture;
let server: RunningServer;
let client: OpenAI;
beforeEach(async () => {
  fixture = await startProxyFixture({ models: [...testModels, novaLite] });
  await fixture.topUp('alice', '10.00');
  server = await startServer({ fetch: fixture.app.fetch, hostname: '127.0.0.1', port: 0 });
  client = new OpenAI({ apiKey: fixture.keys.alice, baseURL: `${server.url}/v1`, maxRetries: 0 });
});
afterEach(async () => {
  await server.close();
  await fixture.close();
});

test('DATA-06: a completion through Bedrock is billed to the micro from its usage', async () => {
  fixture.bedrock.script(converse('Bonjour!', { inputTokens: 30, outputTokens: 250 }));
  const response = await fixture.request('POST', '/v1/chat/completions', {
    body: {
      model: 'nova-lite',
      messages: [
        { role: 'system', content: 'Answer in French.' },
        { role: 'user', content: 'Hello' },
      ],
      max_tokens: 300,
      temperature: 0.5,
      stop: ['\n\n'],
    },
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as {
    model: string;
    choices: { message: { content: string }; finish_reason: string }[];
    usage: { prompt_tokens: number; completion_tokens: number };
  };
  expect(body.model).toBe('nova-lite');
  expect(body.choices[0]).toMatchObject({
    message: { content: 'Bonjour!' },
    finish_reason: 'stop',
  });
  expect(body.usage).toMatchObject({ prompt_tokens: 30, completion_tokens: 250 });
  // ceil((30 x 60,000 + 250 x 240,000) / 1,000,000) = ceil(1.8 + 60) = 62 micros
  expect(response.headers.get('x-credits-charged-micros')).toBe('62');
  expect(await fixture.availableMicros('alice')).toBe(10_000_000n - 62n);
  const [request] = fixture.bedrock.requests;
  expect(request.modelId).toBe('eu.amazon.nova-lite-v1:0');
  expect(request.body).toMatchObject({
    system: [{ text: 'Answer in French.' }],
    messages: [{ role: 'user', content: [{ text: 'Hello' }] }],
    inferenceConfig: { maxTokens: 300, temperature: 0.5, stopSequences: ['\n\n'] },
  });
});

test('DATA-06: a stream through Bedrock, read by the OpenAI client: deltas, finish reason, the usage of the metadata event, billed', async () => {
  fixture.bedrock.script({
    kind: 'stream',
    items: textStream(['Hel', 'lo', ' there'], {
      inputTokens: 9,
      outputTokens: 900,
      totalTokens: 909,
    }),
  });
  const stream = await client.chat.completions.create({
    model: 'nova-lite',
    messages: [{ role: 'user', content: 'Hi' }],
    max_tokens: 1000,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  const finishReasons: string[] = [];
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? '';
    if (chunk.choices[0]?.finish_reason) finishReasons.push(chunk.choices[0].finish_reason);
    usage = chunk.usage ?? usage;
  }
  expect(text).toBe('Hello there');
  expect(finishReasons).toEqual(['stop']);
  expect(usage).toMatchObject({ prompt_tokens: 9, completion_tokens: 900 });
  // ceil((9 x 60,000 + 900 x 240,000) / 1,000,000) = ceil(0.54 + 216) = 217 micros
  expect(await fixture.availableMicros('alice')).toBe(10_000_000n - 217n);
  expect(fixture.bedrock.requests[0].operation).toBe('converse-stream');
});

test('Bedrock throttling: one retry; throttled twice is a 503 and nothing is charged', async () => {
  const throttled = {
    kind: 'error' as const,
    status: 429,
    type: 'ThrottlingException',
    message: 'Too many requests, please wait before trying again.',
  };
  fixture.bedrock.script(throttled, converse('ok', { inputTokens: 100, outputTokens: 10 }));
  const retried = await fixture.request('POST', '/v1/chat/completions', {
    body: { model: 'nova-lite', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 50 },
  });
  expect(retried.status).toBe(200);
  // ceil((100 x 60,000 + 10 x 240,000) / 1,000,000) = ceil(8.4) = 9 micros, once
  expect(retried.headers.get('x-credits-charged-micros')).toBe('9');
  expect(fixture.bedrock.requests).toHaveLength(2);

  fixture.bedrock.script(throttled, throttled);
  const refused = await fixture.request('POST', '/v1/chat/completions', {
    body: { model: 'nova-lite', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 50 },
  });
  expect(refused.status).toBe(503);
  expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
    'provider_unavailable',
  );
  expect(await fixture.availableMicros('alice')).toBe(10_000_000n - 9n);
});

test('LOG-02: Bedrock denying the role is a 503 "provider not configured", with no ARN or account id, nothing charged', async () => {
  fixture.bedrock.script({
    kind: 'error',
    status: 403,
    type: 'AccessDeniedException',
    message:
      'User: arn:aws:sts::123456789012:assumed-role/ai-proxy-production-api-ProxyRole/fn is not authorized to perform: bedrock:InvokeModel',
  });
  const response = await fixture.request('POST', '/v1/chat/completions', {
    body: { model: 'nova-lite', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 50 },
  });
  expect(response.status).toBe(503);
  const text = await response.text();
  expect(JSON.parse(text)).toMatchObject({
    error: { code: 'provider_not_configured' },
    request_id: expect.any(String),
  });
  expect(text).not.toMatch(/arn:|123456789012|ProxyRole/);
  expect(fixture.bedrock.requests).toHaveLength(1);
  expect(await fixture.availableMicros('alice')).toBe(10_000_000n);
});

describe('tools through Bedrock, over HTTP', () => {
  const weatherTool: OpenAI.ChatCompletionTool = {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'The weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  };
  const question: OpenAI.ChatCompletionMessageParam = {
    role: 'user',
    content: 'Weather in Paris and Lyon?',
  };

  test('a full tool loop: two calls, their results in one user turn, the final answer; each turn billed', async () => {
    fixture.bedrock.script(
      {
        kind: 'converse',
        body: {
          output: {
            message: {
              role: 'assistant',
              content: [
                {
                  toolUse: {
                    toolUseId: 'tooluse_p',
                    name: 'get_weather',
                    input: { city: 'Paris' },
                  },
                },
                {
                  toolUse: { toolUseId: 'tooluse_l', name: 'get_weather', input: { city: 'Lyon' } },
                },
              ],
            },
          },
          stopReason: 'tool_use',
          usage: { inputTokens: 40, outputTokens: 30 },
        },
      },
      converse('Sunny in both.', { inputTokens: 60, outputTokens: 5 }),
    );
    const first = await client.chat.completions.create({
      model: 'nova-lite',
      messages: [question],
      tools: [weatherTool],
      tool_choice: 'required',
      max_tokens: 100,
    });
    const calls = first.choices[0].message.tool_calls ?? [];
    expect(first.choices[0].finish_reason).toBe('tool_calls');
    expect(
      calls.map((call) =>
        call.type === 'function' ? [call.id, call.function.name, call.function.arguments] : [],
      ),
    ).toEqual([
      ['tooluse_p', 'get_weather', '{"city":"Paris"}'],
      ['tooluse_l', 'get_weather', '{"city":"Lyon"}'],
    ]);
    expect(fixture.bedrock.requests[0].body.toolConfig).toEqual({
      tools: [
        {
          toolSpec: {
            name: 'get_weather',
            description: 'The weather in a city',
            inputSchema: { json: weatherTool.function.parameters },
          },
        },
      ],
      toolChoice: { any: {} },
    });

    const second = await client.chat.completions.create({
      model: 'nova-lite',
      messages: [
        question,
        first.choices[0].message,
        { role: 'tool', tool_call_id: 'tooluse_p', content: '18 C' },
        { role: 'tool', tool_call_id: 'tooluse_l', content: '20 C' },
      ],
      tools: [weatherTool],
      max_tokens: 100,
    });
    expect(second.choices[0].message.content).toBe('Sunny in both.');
    expect(fixture.bedrock.requests[1].body.messages).toEqual([
      { role: 'user', content: [{ text: 'Weather in Paris and Lyon?' }] },
      {
        role: 'assistant',
        content: [
          { toolUse: { toolUseId: 'tooluse_p', name: 'get_weather', input: { city: 'Paris' } } },
          { toolUse: { toolUseId: 'tooluse_l', name: 'get_weather', input: { city: 'Lyon' } } },
        ],
      },
      {
        role: 'user',
        content: [
          { toolResult: { toolUseId: 'tooluse_p', content: [{ text: '18 C' }] } },
          { toolResult: { toolUseId: 'tooluse_l', content: [{ text: '20 C' }] } },
        ],
      },
    ]);
    // ceil((40 x 60,000 + 30 x 240,000) / 10^6) = ceil(9.6) = 10; ceil((60 x 60,000 + 5 x 240,000) / 10^6) = ceil(4.8) = 5
    expect(await fixture.availableMicros('alice')).toBe(10_000_000n - 10n - 5n);
  });

  test('streamed: tool calls arrive as incremental deltas the OpenAI client assembles', async () => {
    fixture.bedrock.script({
      kind: 'stream',
      items: [
        { event: 'messageStart', payload: { role: 'assistant' } },
        ...toolUseBlock(0, 'tooluse_s', 'get_weather', ['{"ci', 'ty":"Oslo"}']),
        { event: 'messageStop', payload: { stopReason: 'tool_use' } },
        { event: 'metadata', payload: { usage: { inputTokens: 20, outputTokens: 15 } } },
      ],
    });
    const stream = await client.chat.completions.create({
      model: 'nova-lite',
      messages: [question],
      tools: [weatherTool],
      max_tokens: 100,
      stream: true,
      stream_options: { include_usage: true },
    });
    const assembled: { id?: string; name?: string; arguments: string }[] = [];
    let finishReason: string | null = null;
    for await (const chunk of stream) {
      for (const delta of chunk.choices[0]?.delta.tool_calls ?? []) {
        assembled[delta.index] ??= { arguments: '' };
        const call = assembled[delta.index];
        call.id ??= delta.id;
        call.name ??= delta.function?.name;
        call.arguments += delta.function?.arguments ?? '';
      }
      finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
    }
    expect(assembled).toEqual([
      { id: 'tooluse_s', name: 'get_weather', arguments: '{"city":"Oslo"}' },
    ]);
    expect(finishReason).toBe('tool_calls');
    // ceil((20 x 60,000 + 15 x 240,000) / 10^6) = ceil(4.8) = 5 micros
    expect(await fixture.availableMicros('alice')).toBe(10_000_000n - 5n);
  });

  test("the OpenAI client's runTools drives the loop through Bedrock, streamed, to the final answer", async () => {
    fixture.bedrock.script(
      {
        kind: 'stream',
        items: [
          { event: 'messageStart', payload: { role: 'assistant' } },
          ...toolUseBlock(0, 'tooluse_r', 'get_weather', ['{"city":"Rome"}']),
          { event: 'messageStop', payload: { stopReason: 'tool_use' } },
          { event: 'metadata', payload: { usage: { inputTokens: 20, outputTokens: 10 } } },
        ],
      },
      { kind: 'stream', items: textStream(['Rome: 14 C.'], { inputTokens: 30, outputTokens: 5 }) },
    );
    const called: string[] = [];
    const tools: RunnableToolFunctionWithParse<{ city: string }>[] = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'The weather in a city',
          parameters: weatherTool.function.parameters ?? {},
          parse: (text: string) => JSON.parse(text) as { city: string },
          function: ({ city }: { city: string }) => {
            called.push(city);
            return '14 C';
          },
        },
      },
    ];
    const runner = client.chat.completions.runTools({
      model: 'nova-lite',
      messages: [{ role: 'user', content: 'Weather in Rome?' }],
      tools,
      stream: true,
    });
    expect(await runner.finalContent()).toBe('Rome: 14 C.');
    expect(called).toEqual(['Rome']);
    expect(
      (fixture.bedrock.requests[1].body.messages as { content: unknown[] }[])[2].content,
    ).toEqual([{ toolResult: { toolUseId: 'tooluse_r', content: [{ text: '14 C' }] } }]);
  });

  test('an image sent as data reaches Bedrock as bytes', async () => {
    const png =
      'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
    await client.chat.completions.create({
      model: 'nova-lite',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is this?' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
          ],
        },
      ],
      max_tokens: 50,
    });
    expect(fixture.bedrock.requests[0].body.messages).toEqual([
      {
        role: 'user',
        content: [{ text: 'What is this?' }, { image: { format: 'png', source: { bytes: png } } }],
      },
    ]);
  });

  test.each([
    [
      'response_format json_schema (Converse has no JSON mode)',
      {
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'answer', schema: { type: 'object', properties: {} } },
        },
      },
      'response_format',
    ],
    [
      'response_format json_object',
      { response_format: { type: 'json_object' } },
      'response_format',
    ],
    [
      'an https image URL (Converse takes bytes; the proxy never fetches)',
      {
        messages: [
          {
            role: 'user',
            content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }],
          },
        ],
      },
      'messages[0].content[0].image_url.url',
    ],
    [
      'parallel_tool_calls',
      { tools: [weatherTool], parallel_tool_calls: false },
      'parallel_tool_calls',
    ],
    ['seed', { seed: 7 }, 'seed'],
  ])(
    '%s is refused before admission: 400 naming it, nothing sent, nothing held',
    async (_what, extra, param) => {
      const response = await fixture.request('POST', '/v1/chat/completions', {
        body: { model: 'nova-lite', messages: [question], max_tokens: 50, ...extra },
      });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { param?: string } }).error.param).toBe(param);
      expect(fixture.bedrock.requests).toEqual([]);
      expect(await fixture.availableMicros('alice')).toBe(10_000_000n);
    },
  );

  test('a strict tool is refused by name (Bedrock cannot enforce it), before admission', async () => {
    const response = await fixture.request('POST', '/v1/chat/completions', {
      body: {
        model: 'nova-lite',
        messages: [question],
        max_tokens: 50,
        tools: [{ ...weatherTool, function: { ...weatherTool.function, strict: true } }],
      },
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(
      /tools\[0\]\.function\.strict/,
    );
    expect(fixture.bedrock.requests).toEqual([]);
  });

  test("Bedrock's ValidationException is the client's 400 (sanitized), the hold released", async () => {
    fixture.bedrock.script({
      kind: 'error',
      status: 400,
      type: 'ValidationException',
      message: 'Input is too long for requested model.',
    });
    const response = await fixture.request('POST', '/v1/chat/completions', {
      body: { model: 'nova-lite', messages: [question], max_tokens: 50 },
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: unknown }).error).toMatchObject({
      code: 'provider_rejected_request',
      message: 'bedrock refused the request: Input is too long for requested model.',
    });
    expect(await fixture.availableMicros('alice')).toBe(10_000_000n);
  });
});
