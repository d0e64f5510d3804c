import { imagePromptTokensHeld } from '../../../../lambda/proxy/pricing';
import { pseudonymize } from '../../../../runtime/logger';
import {
  gate,
  openAiAnswer,
  openAiStream,
  openAiToolCallAnswer,
  openAiToolCallStream,
} from '../../../support/fake-providers';
import { startProxyFixture, type ProxyFixture } from '../../../support/proxy';

/**
 * The openai-compatible provider passes tools, tool choice, parallel calls, structured output,
 * images and the options it declares through in OpenAI's own shape, and answers' tool calls back,
 * streamed as OpenAI's incremental deltas. Over HTTP against the app, in front of a real local
 * server speaking Chat Completions (JSON and SSE).
 */

let fixture: ProxyFixture;
beforeEach(async () => {
  fixture = await startProxyFixture();
  await fixture.topUp('alice', '10.00');
});
afterEach(() => fixture.close());

type Json = Record<string, unknown>;
const chat = (body: Json, key?: string) =>
  fixture.request('POST', '/v1/chat/completions', { body, key });
const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' } },
      required: ['city'],
      additionalProperties: false,
    },
    strict: true,
  },
};
const timeTool = {
  type: 'function',
  function: { name: 'get_time', parameters: { type: 'object', properties: {} } },
};
const question = { role: 'user', content: 'Weather and time in Paris?' };
const calls = [
  { id: 'call_weather_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
  { id: 'call_time_1', name: 'get_time', arguments: '{}' },
];
const assistantTurn = {
  role: 'assistant',
  content: null,
  tool_calls: calls.map((call) => ({
    id: call.id,
    type: 'function',
    function: { name: call.name, arguments: call.arguments },
  })),
};
const toolResults = [
  { role: 'tool', tool_call_id: 'call_weather_1', content: '{"celsius":18}' },
  { role: 'tool', tool_call_id: 'call_time_1', content: '{"time":"14:05"}' },
];

/** The SSE data events of a response, parsed, without [DONE]. */
async function chunks(response: Response): Promise<Json[]> {
  const text = await response.text();
  return text
    .split('\n\n')
    .filter((event) => event.startsWith('data: {'))
    .map((event) => JSON.parse(event.slice('data: '.length)) as Json);
}

describe('function calling, passed through', () => {
  test('a full tool loop: two parallel calls, their results, the final answer; each turn billed from its usage', async () => {
    fixture.openAi.script(
      openAiToolCallAnswer(calls, { prompt_tokens: 40, completion_tokens: 12 }),
      openAiAnswer('18 °C and 14:05 in Paris.', { prompt_tokens: 70, completion_tokens: 9 }),
    );
    const first = await chat({
      model: 'fake-gpt',
      messages: [question],
      tools: [weatherTool, timeTool],
      tool_choice: 'auto',
      parallel_tool_calls: true,
    });
    expect(first.status).toBe(200);
    const answer = (await first.json()) as Json;
    expect(answer.choices).toEqual([
      {
        index: 0,
        message: {
          role: 'assistant',
          content: null,
          refusal: null,
          tool_calls: assistantTurn.tool_calls,
        },
        logprobs: null,
        finish_reason: 'tool_calls',
      },
    ]);
    expect(first.headers.get('x-credits-charged-micros')).toBe(String(40 + 12 * 4));
    const sent = fixture.openAi.requests[0].body as Json;
    expect(sent.tools).toEqual([weatherTool, timeTool]);
    expect(sent.tool_choice).toBe('auto');
    expect(sent.parallel_tool_calls).toBe(true);

    const second = await chat({
      model: 'fake-gpt',
      messages: [question, assistantTurn, ...toolResults],
      tools: [weatherTool, timeTool],
    });
    expect(second.status).toBe(200);
    expect(((await second.json()) as { choices: Json[] }).choices[0]).toMatchObject({
      message: { role: 'assistant', content: '18 °C and 14:05 in Paris.' },
      finish_reason: 'stop',
    });
    const history = (fixture.openAi.requests[1].body as Json).messages;
    expect(history).toEqual([question, assistantTurn, ...toolResults]);
    expect(await fixture.availableMicros('alice')).toBe(10_000_000n - 88n - (70n + 36n));
  });

  test('streamed: the calls arrive as incremental tool_calls deltas (index, id, name, argument fragments)', async () => {
    fixture.openAi.script(openAiToolCallStream(calls));
    const response = await chat({
      model: 'fake-gpt',
      messages: [question],
      tools: [weatherTool, timeTool],
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(response.status).toBe(200);
    const events = await chunks(response);
    const deltas = events.flatMap(
      (event) => (event.choices as { delta: { tool_calls?: Json[] } }[])[0]?.delta.tool_calls ?? [],
    );
    expect(deltas[0]).toEqual({
      index: 0,
      id: 'call_weather_1',
      type: 'function',
      function: { name: 'get_weather', arguments: '' },
    });
    const assembled = new Map<number, { id?: unknown; name?: unknown; arguments: string }>();
    for (const delta of deltas as {
      index: number;
      id?: string;
      function: { name?: string; arguments: string };
    }[]) {
      const call = assembled.get(delta.index) ?? { arguments: '' };
      call.id ??= delta.id;
      call.name ??= delta.function.name;
      call.arguments += delta.function.arguments;
      assembled.set(delta.index, call);
    }
    expect([...assembled.values()]).toEqual(calls);
    expect(deltas.length).toBeGreaterThan(calls.length + 1); // the arguments came in fragments
    const finish = events.find(
      (event) =>
        (event.choices as Json[])[0]?.finish_reason !== null &&
        (event.choices as Json[]).length > 0,
    );
    expect((finish?.choices as Json[])[0].finish_reason).toBe('tool_calls');
    expect(events.at(-1)?.usage).toEqual({
      prompt_tokens: 40,
      completion_tokens: 12,
      total_tokens: 52,
    });
  });

  test('DATA-06: a stream cut in the middle of a tool call is billed an estimate that counts the call, never zero', async () => {
    const clientSawCall = gate();
    const pieces = openAiToolCallStream(calls).pieces;
    fixture.openAi.script({
      status: 200,
      pieces: [...pieces.slice(0, 4), clientSawCall.opened],
      after: 'cut',
    });
    const response = await chat({
      model: 'fake-gpt',
      messages: [question],
      tools: [weatherTool],
      stream: true,
    });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('"arguments":"{\\"cit'))
      text += decoder.decode((await reader.read()).value);
    clientSawCall.open();
    for (let read = await reader.read(); !read.done; read = await reader.read())
      text += decoder.decode(read.value);
    expect(text).toMatch(/event: error\ndata: .*cut the connection mid-response/);
    const settled = await fixture.logger.nextAudit('provider_failure');
    expect(settled).toMatchObject({ usage_source: 'estimate', ending: 'failed' });
    expect(settled.completion_tokens).toBeGreaterThan(0);
    const charged = BigInt(settled.charged_micros as string);
    expect(charged).toBeGreaterThan(0n);
    expect(await fixture.availableMicros('alice')).toBe(10_000_000n - charged);
  });

  test('a tool call the client did not ask for is a 502, billed what the provider reports', async () => {
    fixture.openAi.script(
      openAiToolCallAnswer(calls, { prompt_tokens: 40, completion_tokens: 12 }),
    );
    const response = await chat({ model: 'fake-gpt', messages: [question] });
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({
      error: { message: 'openai-compatible sent an unrequested tool call' },
    });
    expect(await fixture.availableMicros('alice')).toBe(10_000_000n - 88n);
  });

  test('a tool call the client did not ask for (no tools offered) ends the stream with an error event', async () => {
    fixture.openAi.script(openAiToolCallStream(calls));
    const response = await chat({ model: 'fake-gpt', messages: [question], stream: true });
    expect(await response.text()).toMatch(/event: error\ndata: .*sent an unrequested tool call/);
  });

  test('tool_choice required and named reach the provider in its shape', async () => {
    await chat({
      model: 'fake-gpt',
      messages: [question],
      tools: [weatherTool],
      tool_choice: 'required',
    });
    await chat({
      model: 'fake-gpt',
      messages: [question],
      tools: [weatherTool],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
    });
    expect((fixture.openAi.requests[0].body as Json).tool_choice).toBe('required');
    expect(fixture.openAi.requests[1].body).toMatchObject({
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
    });
  });

  test("the provider's 400 about what was passed through is the client's 400, and the hold is released", async () => {
    fixture.openAi.script({
      status: 400,
      body: {
        error: {
          message: "Invalid schema for function 'get_weather'",
          type: 'invalid_request_error',
        },
      },
    });
    const response = await chat({ model: 'fake-gpt', messages: [question], tools: [weatherTool] });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({
      error: {
        code: 'provider_rejected_request',
        message: expect.stringContaining('Invalid schema'),
      },
    });
    expect(await fixture.availableMicros('alice')).toBe(10_000_000n);
  });

  test('a malformed tool call from the provider is a 502 and nothing is charged', async () => {
    fixture.openAi.script(
      openAiToolCallAnswer([{ id: 'call_1', name: 'get_weather', arguments: '{}' }]),
    );
    fixture.openAi.script({
      status: 200,
      body: {
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: null, tool_calls: [{ type: 'function' }] },
            finish_reason: 'tool_calls',
          },
        ],
        usage: { prompt_tokens: 1, completion_tokens: 1 },
      },
    });
    expect(
      (await chat({ model: 'fake-gpt', messages: [question], tools: [weatherTool] })).status,
    ).toBe(200);
    const before = await fixture.availableMicros('alice');
    const response = await chat({ model: 'fake-gpt', messages: [question], tools: [weatherTool] });
    expect(response.status).toBe(502);
    expect(await fixture.availableMicros('alice')).toBe(before);
  });
});

describe('structured output, passed through', () => {
  test('json_schema with strict reaches the provider exactly, and json_object too', async () => {
    const schema = {
      type: 'object',
      properties: { city: { type: 'string' }, celsius: { type: 'number' } },
      required: ['city', 'celsius'],
      additionalProperties: false,
    };
    fixture.openAi.script(openAiAnswer('{"city":"Paris","celsius":18}'));
    const response = await chat({
      model: 'fake-gpt',
      messages: [question],
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'weather', description: 'A reading', schema, strict: true },
      },
    });
    expect(response.status).toBe(200);
    expect((fixture.openAi.requests[0].body as Json).response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 'weather', description: 'A reading', schema, strict: true },
    });
    await chat({
      model: 'fake-gpt',
      messages: [question],
      response_format: { type: 'json_object' },
    });
    expect((fixture.openAi.requests[1].body as Json).response_format).toEqual({
      type: 'json_object',
    });
  });
});

describe('images, passed through', () => {
  const png =
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
  test('a data: URL and an https URL (which the provider fetches, never the proxy) reach it as image_url parts', async () => {
    const content = [
      { type: 'text', text: 'Compare these.' },
      { type: 'image_url', image_url: { url: `data:image/png;base64,${png}`, detail: 'low' } },
      { type: 'image_url', image_url: { url: 'https://images.example.com/cat.jpg' } },
    ];
    const response = await chat({ model: 'fake-gpt', messages: [{ role: 'user', content }] });
    expect(response.status).toBe(200);
    expect((fixture.openAi.requests[0].body as { messages: Json[] }).messages[0]).toEqual({
      role: 'user',
      content,
    });
  });

  test('each image is held at its documented bound, tool definitions as prompt input', async () => {
    const required = async (body: Json) => {
      const response = await chat(body, fixture.keys.bob); // bob has no credits: the 402 names the hold
      expect(response.status).toBe(402);
      return BigInt(
        ((await response.json()) as { error: { required_micros: string } }).error.required_micros,
      );
    };
    const text = await required({ model: 'fake-gpt', messages: [question], max_tokens: 10 });
    const image = { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } };
    const withImages = await required({
      model: 'fake-gpt',
      messages: [
        { role: 'user', content: [{ type: 'text', text: question.content }, image, image] },
      ],
      max_tokens: 10,
    });
    // fake-gpt costs one micro per input token: two images, two bounds.
    expect(withImages - text).toBe(BigInt(2 * imagePromptTokensHeld));
    const withTools = await required({
      model: 'fake-gpt',
      messages: [question],
      tools: [weatherTool],
      max_tokens: 10,
    });
    expect(withTools - text).toBeGreaterThan(
      BigInt(JSON.stringify(weatherTool.function.parameters).length),
    );
    expect(fixture.openAi.requests).toHaveLength(0);
  });
});

describe('generation options: forwarded where honoured', () => {
  test('seed, penalties, logit_bias, reasoning_effort, stop and user (as a pseudonym) reach the provider', async () => {
    const response = await chat({
      model: 'fake-gpt',
      messages: [question],
      seed: 42,
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      logit_bias: { '50256': -100 },
      reasoning_effort: 'low',
      stop: ['END'],
      user: 'alice@example.com',
    });
    expect(response.status).toBe(200);
    const sent = fixture.openAi.requests[0].body as Json;
    expect(sent).toMatchObject({
      seed: 42,
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      logit_bias: { '50256': -100 },
      reasoning_effort: 'low',
      stop: ['END'],
      user: pseudonymize('alice@example.com'),
    });
    expect(JSON.stringify(sent)).not.toContain('alice@example.com');
  });

  test('a request without options sends none of them', async () => {
    fixture.openAi.script(openAiStream(['hi']));
    await chat({ model: 'fake-gpt', messages: [question], stream: true });
    const sent = fixture.openAi.requests[0].body as Json;
    for (const field of ['tools', 'tool_choice', 'response_format', 'seed', 'user', 'logit_bias'])
      expect(sent).not.toHaveProperty(field);
  });
});
