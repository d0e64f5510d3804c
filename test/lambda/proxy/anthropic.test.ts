import OpenAI from 'openai';
import { startServer, type RunningServer } from '../../../runtime/node-server';
import { anthropicAnswer, anthropicError, anthropicStream } from '../../support/fake-providers';
import { startProxyFixture, type ProxyFixture } from '../../support/proxy';

/**
 * Anthropic through the proxy over HTTP: the real credits service and ledger behind, a local
 * server speaking Anthropic's JSON and SSE in front; cache reads and writes billed at their own
 * prices, to the micro, streamed or not. The model `fake-claude` costs 3 / 15 micros per token in
 * and out, 0.3 per cached token read and 3.75 per token written to the cache.
 */

let fixture: ProxyFixture;
beforeEach(async () => {
  fixture = await startProxyFixture();
  await fixture.topUp('alice', '1.00');
});
afterEach(() => fixture.close());

type Json = Record<string, unknown>;
const cachedUsage = {
  input_tokens: 40,
  output_tokens: 12,
  cache_read_input_tokens: 1000,
  cache_creation_input_tokens: 200,
};
// 40 x 3 + 1000 x 0.3 + 200 x 3.75 + 12 x 15 = 120 + 300 + 750 + 180 micros.
const cachedCostMicros = 1350n;
const ask = (extra: Json = {}) => ({
  body: {
    model: 'fake-claude',
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Say hello' },
    ],
    max_tokens: 100,
    ...extra,
  },
});

test('DATA-06: a completion is billed with its cache reads and writes at their own prices, to the micro', async () => {
  fixture.anthropic.script(anthropicAnswer(['Hello.'], cachedUsage));
  const before = await fixture.availableMicros('alice');
  const response = await fixture.request('POST', '/v1/chat/completions', ask());
  expect(response.status).toBe(200);
  expect(await response.json()).toMatchObject({
    model: 'fake-claude',
    choices: [{ message: { role: 'assistant', content: 'Hello.' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1240, completion_tokens: 12, total_tokens: 1252 },
  });
  expect(response.headers.get('x-credits-charged-micros')).toBe(cachedCostMicros.toString());
  expect(before - (await fixture.availableMicros('alice'))).toBe(cachedCostMicros);
  expect((await fixture.anthropic.request(0)).body).toMatchObject({
    system: 'Be brief.',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hello' }] }],
    max_tokens: 100,
  });
});

test('a stream is billed the same, from message_start and message_delta usage', async () => {
  fixture.anthropic.script(anthropicStream(['Hel', 'lo.'], cachedUsage));
  const before = await fixture.availableMicros('alice');
  const response = await fixture.request(
    'POST',
    '/v1/chat/completions',
    ask({ stream: true, stream_options: { include_usage: true } }),
  );
  expect(response.status).toBe(200);
  const events = (await response.text()).split('\n\n').filter((event) => event !== '');
  const chunks = events
    .filter((event) => event !== 'data: [DONE]')
    .map((event) => JSON.parse(event.replace(/^data: /, '')) as Json);
  const text = chunks
    .map((chunk) => (chunk.choices as { delta?: { content?: string } }[])[0]?.delta?.content ?? '')
    .join('');
  expect(text).toBe('Hello.');
  expect(chunks.at(-1)).toMatchObject({
    model: 'fake-claude',
    usage: { prompt_tokens: 1240, completion_tokens: 12 },
    x_credits_charged: '0.001350',
  });
  // Cache reads are reported as OpenAI reports cached prompt tokens.
  expect((chunks.at(-1) as { usage: Json }).usage).toMatchObject({
    prompt_tokens_details: { cached_tokens: 1000 },
  });
  expect(events.at(-1)).toBe('data: [DONE]');
  expect((await fixture.logger.nextAudit('chat_completion')).charged_micros).toBe('1350');
  expect(before - (await fixture.availableMicros('alice'))).toBe(cachedCostMicros);
});

test('the hold prices the prompt at the dearest input price (the cache write) and the output at the output price', async () => {
  // Bob has nothing: the 402 names what the hold needed. The prompt estimate is one token per byte
  // plus 8 per message: (9 + 8) + (9 + 8) = 34 tokens x 3.75 + 100 x 15 = 127.5 + 1500 -> 1628 micros.
  const response = await fixture.request('POST', '/v1/chat/completions', {
    ...ask(),
    key: fixture.keys.bob,
  });
  expect(response.status).toBe(402);
  expect(((await response.json()) as { error: Json }).error).toMatchObject({
    required_micros: '1628',
  });
  expect(fixture.anthropic.requests).toHaveLength(0);
});

test('overloaded (529) is retried once; the second answer is billed, the first not', async () => {
  fixture.anthropic.script(
    anthropicError(529, 'overloaded_error', 'Overloaded'),
    anthropicAnswer(['ok']),
  );
  const before = await fixture.availableMicros('alice');
  const response = await fixture.request('POST', '/v1/chat/completions', ask());
  expect(response.status).toBe(200);
  expect(fixture.anthropic.requests).toHaveLength(2);
  // The stand-in's default usage: 25 in x 3 + 9 out x 15 = 210 micros.
  expect(before - (await fixture.availableMicros('alice'))).toBe(210n);
});

test("anthropic's 400 about what the client sent is the client's 400, not retried, nothing charged", async () => {
  fixture.anthropic.script(
    anthropicError(400, 'invalid_request_error', 'messages: roles must alternate'),
  );
  const before = await fixture.availableMicros('alice');
  const response = await fixture.request('POST', '/v1/chat/completions', ask());
  expect(response.status).toBe(400);
  expect(((await response.json()) as { error: Json }).error).toMatchObject({
    type: 'invalid_request_error',
    code: 'provider_rejected_request',
    message: 'anthropic answered 400: messages: roles must alternate',
  });
  expect(fixture.anthropic.requests).toHaveLength(1);
  expect(await fixture.availableMicros('alice')).toBe(before);
});

describe('a tool loop through Anthropic with the official openai client', () => {
  let server: RunningServer;
  let client: OpenAI;
  beforeEach(async () => {
    server = await startServer({ fetch: fixture.app.fetch, hostname: '127.0.0.1', port: 0 });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: fixture.keys.alice, maxRetries: 0 });
  });
  afterEach(() => server.close());

  const tools: OpenAI.ChatCompletionFunctionTool[] = [
    {
      type: 'function',
      function: {
        name: 'get_weather',
        description: 'The weather in a city',
        parameters: {
          type: 'object',
          properties: { city: { type: 'string' } },
          required: ['city'],
        },
      },
    },
  ];

  test('the call comes back as tool_calls, the answer goes back as tool_result, each turn billed', async () => {
    fixture.anthropic.script(
      anthropicAnswer(
        [{ type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Paris' } }],
        { input_tokens: 300, output_tokens: 20 },
        'tool_use',
      ),
      anthropicAnswer(['Sunny in Paris.'], { input_tokens: 350, output_tokens: 6 }),
    );
    const before = await fixture.availableMicros('alice');
    const question: OpenAI.ChatCompletionMessageParam = {
      role: 'user',
      content: 'Weather in Paris?',
    };
    const first = await client.chat.completions.create({
      model: 'fake-claude',
      messages: [question],
      tools,
      tool_choice: 'required',
      parallel_tool_calls: false,
    });
    expect(first.choices[0]).toMatchObject({
      finish_reason: 'tool_calls',
      message: {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id: 'toolu_01',
            type: 'function',
            function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
          },
        ],
      },
    });
    expect((await fixture.anthropic.request(0)).body).toMatchObject({
      tools: [{ name: 'get_weather', input_schema: tools[0].function.parameters }],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
    });
    const second = await client.chat.completions.create({
      model: 'fake-claude',
      messages: [
        question,
        first.choices[0].message,
        { role: 'tool', tool_call_id: 'toolu_01', content: '{"sky":"clear"}' },
      ],
      tools,
    });
    expect(second.choices[0].message.content).toBe('Sunny in Paris.');
    expect(((await fixture.anthropic.request(1)).body as Json).messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] },
      {
        role: 'assistant',
        content: [
          { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Paris' } },
        ],
      },
      {
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: '{"sky":"clear"}' }],
      },
    ]);
    // (300 x 3 + 20 x 15) + (350 x 3 + 6 x 15) = 1200 + 1140 micros.
    expect(before - (await fixture.availableMicros('alice'))).toBe(2340n);
  });

  test('streamed: the SDK assembles the tool call from the deltas', async () => {
    fixture.anthropic.script(
      anthropicStream(
        [
          'Let me check. ',
          {
            toolUse: { id: 'toolu_02', name: 'get_weather', inputJson: ['{"city"', ':"Oslo"}'] },
          },
        ],
        { input_tokens: 300, output_tokens: 25 },
        'tool_use',
      ),
    );
    const before = await fixture.availableMicros('alice');
    const stream = client.chat.completions.stream({
      model: 'fake-claude',
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
      tools,
      stream_options: { include_usage: true },
    });
    const completion = await stream.finalChatCompletion();
    expect(completion.choices[0]).toMatchObject({
      finish_reason: 'tool_calls',
      message: {
        content: 'Let me check. ',
        tool_calls: [
          { id: 'toolu_02', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
        ],
      },
    });
    expect(completion.usage).toMatchObject({ prompt_tokens: 300, completion_tokens: 25 });
    // 300 x 3 + 25 x 15 micros.
    expect(before - (await fixture.availableMicros('alice'))).toBe(1275n);
  });

  test('what Anthropic cannot take is a 400 naming it, before any hold or call', async () => {
    const before = await fixture.availableMicros('alice');
    await expect(
      client.chat.completions.create({
        model: 'fake-claude',
        messages: [{ role: 'user', content: 'hi' }],
        temperature: 1.5,
      }),
    ).rejects.toMatchObject({
      status: 400,
      param: 'temperature',
      message: expect.stringContaining('temperature: anthropic accepts 0 to 1'),
    });
    await expect(
      client.chat.completions.create({
        model: 'fake-claude',
        messages: [{ role: 'user', content: 'hi' }],
        seed: 7,
      }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringContaining('seed') });
    expect(fixture.anthropic.requests).toHaveLength(0);
    expect(await fixture.availableMicros('alice')).toBe(before);
  });
});

test('images go to Anthropic as base64 data and as https URLs it fetches itself', async () => {
  // A 1x1 PNG.
  const png =
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';
  fixture.anthropic.script(
    anthropicAnswer(['Two cats.'], { input_tokens: 3000, output_tokens: 4 }),
  );
  const before = await fixture.availableMicros('alice');
  const response = await fixture.request('POST', '/v1/chat/completions', {
    body: {
      model: 'fake-claude',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is in these?' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
            { type: 'image_url', image_url: { url: 'https://images.example.com/cat.jpg' } },
          ],
        },
      ],
      max_tokens: 50,
    },
  });
  expect(response.status).toBe(200);
  expect((await fixture.anthropic.request(0)).body).toMatchObject({
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is in these?' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } },
          { type: 'image', source: { type: 'url', url: 'https://images.example.com/cat.jpg' } },
        ],
      },
    ],
  });
  // 3000 x 3 + 4 x 15 micros.
  expect(before - (await fixture.availableMicros('alice'))).toBe(9060n);
});
