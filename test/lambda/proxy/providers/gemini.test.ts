import { thinkingBudgetTokens } from '../../../../lambda/proxy/providers/gemini-request';
import {
  geminiAnswer,
  geminiFunctionCallAnswer,
  geminiFunctionCallStream,
} from '../../../support/fake-providers';
import { startProxyFixture, type ProxyFixture } from '../../../support/proxy';

/**
 * Gemini's mapping of tools, structured output, images and options, field by field, over HTTP
 * against the app in front of a real local server speaking generateContent (JSON and SSE); and
 * what Gemini cannot express is a 400 naming the field, the ledger unchanged, Gemini never called.
 */

let fixture: ProxyFixture;
beforeEach(async () => {
  fixture = await startProxyFixture();
  await fixture.topUp('alice', '10.00');
});
afterEach(() => fixture.close());

type Json = Record<string, unknown>;
type ToolCallBody = { id: string; type: string; function: { name: string; arguments: string } };
const model = 'gemini-2.5-flash';
const chat = (body: Json) =>
  fixture.request('POST', '/v1/chat/completions', { body: { model, max_tokens: 100, ...body } });
const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: {
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties: {
        city: { type: 'string', description: 'The city', minLength: 1 },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        days: { type: 'integer', minimum: 1, maximum: 7 },
        email: { type: ['string', 'null'], format: 'email' },
        tags: { type: 'array', items: { $ref: '#/$defs/tag' }, maxItems: 3 },
      },
      required: ['city'],
      additionalProperties: false,
      $defs: { tag: { type: 'string', format: 'date-time' } },
    },
  },
};
/** What Gemini gets for weatherTool's parameters. */
const weatherParameters = {
  type: 'OBJECT',
  properties: {
    city: { type: 'STRING', description: 'The city', minLength: 1 },
    unit: { type: 'STRING', enum: ['celsius', 'fahrenheit'] },
    days: { type: 'INTEGER', minimum: 1, maximum: 7 },
    email: { type: 'STRING', nullable: true },
    tags: { type: 'ARRAY', items: { type: 'STRING', format: 'date-time' }, maxItems: 3 },
  },
  propertyOrdering: ['city', 'unit', 'days', 'email', 'tags'],
  required: ['city'],
};
const timeTool = { type: 'function', function: { name: 'get_time' } };
const question = { role: 'user', content: 'Weather and time in Paris?' };

async function refusedWithParam(response: Response): Promise<{ message: string; param: string }> {
  expect(response.status).toBe(400);
  const body = (await response.json()) as {
    error: { message: string; code: string; param: string };
  };
  expect(body.error.code).toBe('unsupported_parameter');
  expect(body.error.param).toEqual(expect.any(String));
  expect(await fixture.availableMicros('alice')).toBe(10_000_000n);
  expect(fixture.gemini.requests).toHaveLength(0);
  return body.error;
}
const refused = async (response: Response) => (await refusedWithParam(response)).message;

describe('gemini: function calling', () => {
  test('a full tool loop, field by field: declarations, calls with our ids, responses named from the history', async () => {
    fixture.gemini.script(
      geminiFunctionCallAnswer([
        { name: 'get_weather', args: { city: 'Paris', unit: 'celsius' } },
        { name: 'get_time', args: {} },
      ]),
      geminiAnswer('18 °C at 14:05.'),
    );
    const first = await chat({ messages: [question], tools: [weatherTool, timeTool] });
    expect(first.status).toBe(200);
    const choice = ((await first.json()) as { choices: Json[] }).choices[0] as {
      message: { content: string | null; tool_calls: ToolCallBody[] };
      finish_reason: string;
    };
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    const calls = choice.message.tool_calls;
    expect(
      calls.map((call) => [call.type, call.function.name, JSON.parse(call.function.arguments)]),
    ).toEqual([
      ['function', 'get_weather', { city: 'Paris', unit: 'celsius' }],
      ['function', 'get_time', {}],
    ]);
    for (const call of calls) expect(call.id).toMatch(/^call_[0-9a-f]{24}$/);
    expect(calls[0].id).not.toBe(calls[1].id);
    const sent = fixture.gemini.requests[0].body as Json;
    expect(sent.tools).toEqual([
      {
        functionDeclarations: [
          {
            name: 'get_weather',
            description: 'The weather in a city',
            parameters: weatherParameters,
          },
          { name: 'get_time' },
        ],
      },
    ]);
    expect(sent.toolConfig).toEqual({ functionCallingConfig: { mode: 'AUTO' } });

    const second = await chat({
      messages: [
        { role: 'system', content: 'Be brief.' },
        question,
        { role: 'assistant', content: null, tool_calls: calls },
        { role: 'tool', tool_call_id: calls[0].id, content: '{"celsius":18}' },
        { role: 'tool', tool_call_id: calls[1].id, content: '14:05' },
      ],
      tools: [weatherTool, timeTool],
    });
    expect(second.status).toBe(200);
    expect(((await second.json()) as { choices: Json[] }).choices[0]).toMatchObject({
      message: { content: '18 °C at 14:05.' },
      finish_reason: 'stop',
    });
    const history = fixture.gemini.requests[1].body as Json;
    expect(history.systemInstruction).toEqual({ parts: [{ text: 'Be brief.' }] });
    expect(history.contents).toEqual([
      { role: 'user', parts: [{ text: 'Weather and time in Paris?' }] },
      {
        role: 'model',
        parts: [
          { functionCall: { name: 'get_weather', args: { city: 'Paris', unit: 'celsius' } } },
          { functionCall: { name: 'get_time', args: {} } },
        ],
      },
      {
        role: 'user',
        parts: [
          { functionResponse: { name: 'get_weather', response: { celsius: 18 } } },
          { functionResponse: { name: 'get_time', response: { result: '14:05' } } },
        ],
      },
    ]);
  });

  test('streamed: each call Gemini sends whole is one tool_calls delta with id, name and arguments', async () => {
    fixture.gemini.script(
      geminiFunctionCallStream([
        { name: 'get_weather', args: { city: 'Paris' } },
        { name: 'get_time', args: {} },
      ]),
    );
    const response = await chat({
      messages: [question],
      tools: [weatherTool, timeTool],
      stream: true,
      stream_options: { include_usage: true },
    });
    const events = (await response.text())
      .split('\n\n')
      .filter((event) => event.startsWith('data: {'))
      .map(
        (event) =>
          JSON.parse(event.slice(6)) as {
            choices: { delta: Json; finish_reason: string | null }[];
            usage?: Json;
          },
      );
    const deltas = events.flatMap((event) => (event.choices[0]?.delta.tool_calls as Json[]) ?? []);
    expect(deltas).toEqual([
      {
        index: 0,
        id: expect.stringMatching(/^call_/),
        type: 'function',
        function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
      },
      {
        index: 1,
        id: expect.stringMatching(/^call_/),
        type: 'function',
        function: { name: 'get_time', arguments: '{}' },
      },
    ]);
    expect(events.find((event) => event.choices[0]?.finish_reason)?.choices[0].finish_reason).toBe(
      'tool_calls',
    );
    expect(events.at(-1)?.usage).toMatchObject({ prompt_tokens: 30, completion_tokens: 10 });
  });

  test.each([
    ['none', { mode: 'NONE' }],
    ['required', { mode: 'ANY' }],
    [
      { type: 'function', function: { name: 'get_time' } },
      { mode: 'ANY', allowedFunctionNames: ['get_time'] },
    ],
  ])('tool_choice %j is functionCallingConfig %j', async (toolChoice, config) => {
    await chat({ messages: [question], tools: [weatherTool, timeTool], tool_choice: toolChoice });
    expect((fixture.gemini.requests[0].body as Json).toolConfig).toEqual({
      functionCallingConfig: config,
    });
  });

  test('a strict tool asks Gemini to validate calls against the schema (mode VALIDATED)', async () => {
    await chat({
      messages: [question],
      tools: [{ ...weatherTool, function: { ...weatherTool.function, strict: true } }],
    });
    expect((fixture.gemini.requests[0].body as Json).toolConfig).toEqual({
      functionCallingConfig: { mode: 'VALIDATED' },
    });
  });

  test('a malformed function call from Gemini is a 502, billed only what Gemini reports it used', async () => {
    fixture.gemini.script({
      status: 200,
      body: {
        candidates: [
          { content: { role: 'model', parts: [] }, finishReason: 'MALFORMED_FUNCTION_CALL' },
        ],
        usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 0 },
      },
    });
    const response = await chat({ messages: [question], tools: [weatherTool] });
    expect(response.status).toBe(502);
    // 10 prompt tokens at 0.30 per million: 3 micros, the rest of the hold returned.
    expect(response.headers.get('x-credits-charged-micros')).toBe('3');
    expect(await fixture.availableMicros('alice')).toBe(10_000_000n - 3n);
  });
});

describe('gemini: structured output, images, options', () => {
  test('json_schema is responseMimeType application/json with the schema converted; json_object the MIME type alone', async () => {
    await chat({
      messages: [question],
      response_format: {
        type: 'json_schema',
        json_schema: {
          name: 'weather',
          strict: true,
          schema: {
            type: 'object',
            properties: { city: { type: 'string' }, celsius: { type: 'number' } },
            required: ['city', 'celsius'],
            additionalProperties: false,
          },
        },
      },
    });
    expect(
      (fixture.gemini.requests[0].body as { generationConfig: Json }).generationConfig,
    ).toMatchObject({
      responseMimeType: 'application/json',
      responseSchema: {
        type: 'OBJECT',
        properties: { city: { type: 'STRING' }, celsius: { type: 'NUMBER' } },
        propertyOrdering: ['city', 'celsius'],
        required: ['city', 'celsius'],
      },
    });
    await chat({ messages: [question], response_format: { type: 'json_object' } });
    const config = (fixture.gemini.requests[1].body as { generationConfig: Json }).generationConfig;
    expect(config.responseMimeType).toBe('application/json');
    expect(config).not.toHaveProperty('responseSchema');
  });

  test('an image sent as a data: URL is inlineData; the text around it stays in order', async () => {
    const png =
      'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
    await chat({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is ' },
            { type: 'text', text: 'this?' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
          ],
        },
      ],
    });
    expect((fixture.gemini.requests[0].body as Json).contents).toEqual([
      {
        role: 'user',
        parts: [{ text: 'What is this?' }, { inlineData: { mimeType: 'image/png', data: png } }],
      },
    ]);
  });

  test('seed, presence_penalty, frequency_penalty and reasoning_effort reach generationConfig', async () => {
    const response = await chat({
      messages: [question],
      seed: 7,
      presence_penalty: 0.25,
      frequency_penalty: 0.5,
      reasoning_effort: 'medium',
    });
    expect(response.status).toBe(200);
    expect(
      (fixture.gemini.requests[0].body as { generationConfig: Json }).generationConfig,
    ).toMatchObject({
      seed: 7,
      presencePenalty: 0.25,
      frequencyPenalty: 0.5,
      thinkingConfig: { thinkingBudget: thinkingBudgetTokens.medium },
    });
  });
});

describe('LOG-02 / DATA-06: what gemini cannot express is a 400 naming the field, the ledger unchanged', () => {
  const toolWith = (parameters: Json, name = 'lookup') => ({
    type: 'function',
    function: { name, parameters },
  });
  test.each([
    [
      'oneOf',
      {
        tools: [
          toolWith({
            type: 'object',
            properties: { id: { oneOf: [{ type: 'string' }, { type: 'integer' }] } },
          }),
        ],
      },
      'tools[0].function.parameters.properties.id.oneOf: Gemini cannot express this keyword',
    ],
    [
      'an open object',
      {
        tools: [
          toolWith({
            type: 'object',
            properties: { a: { type: 'string' } },
            additionalProperties: { type: 'string' },
          }),
        ],
      },
      'tools[0].function.parameters.additionalProperties: Gemini cannot express open objects',
    ],
    [
      'an enum of numbers',
      {
        tools: [
          toolWith({ type: 'object', properties: { level: { type: 'integer', enum: [1, 2, 3] } } }),
        ],
      },
      "tools[0].function.parameters.properties.level.enum: Gemini's enum takes strings only",
    ],
    [
      'two types in one schema',
      { tools: [toolWith({ type: 'object', properties: { v: { type: ['string', 'number'] } } })] },
      'tools[0].function.parameters.properties.v.type: Gemini takes one type per schema (use anyOf)',
    ],
    [
      'a recursive schema',
      {
        tools: [
          toolWith({
            type: 'object',
            properties: { tree: { $ref: '#/$defs/node' } },
            $defs: { node: { type: 'object', properties: { child: { $ref: '#/$defs/node' } } } },
          }),
        ],
      },
      'Gemini cannot express a recursive schema',
    ],
    [
      'a schema without a type',
      { tools: [toolWith({ type: 'object', properties: { anything: {} } })] },
      'tools[0].function.parameters.properties.anything: Gemini needs a type for every value',
    ],
    [
      'a function name Gemini refuses',
      { tools: [toolWith({ type: 'object', properties: { a: { type: 'string' } } }, '1st-tool')] },
      'tools[0].function.name: Gemini wants a function name that starts with a letter or an underscore',
    ],
    [
      'a response schema with not',
      {
        response_format: {
          type: 'json_schema',
          json_schema: {
            name: 'x',
            schema: { type: 'object', properties: { a: { type: 'string', not: { const: 'b' } } } },
          },
        },
      },
      'response_format.json_schema.schema.properties.a.not: Gemini cannot express this keyword',
    ],
    [
      "a call's arguments that are not a JSON object",
      {
        tools: [weatherTool],
        messages: [
          question,
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              {
                id: 'call_1',
                type: 'function',
                function: { name: 'get_weather', arguments: '"Paris"' },
              },
            ],
          },
          { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
        ],
      },
      "messages[1].tool_calls[0].function.arguments: Gemini takes a call's arguments as a JSON object",
    ],
  ])('%s', async (_name, extra, message) => {
    const { message: text, param } = await refusedWithParam(
      await chat({ messages: [question], ...extra }),
    );
    expect(text).toContain(`model ${model}: `);
    expect(text).toContain(message);
    // The param is the field the message names first.
    const named = /^([^ ]+): /.exec(message)?.[1];
    if (named) expect(param).toBe(named);
    else expect(param).toMatch(/^tools\[0\]\.function\.parameters\.properties\.tree\..*\$ref$/);
  });

  test('parallel_tool_calls: Gemini has no such switch', async () => {
    const text = await refused(
      await chat({ messages: [question], tools: [weatherTool], parallel_tool_calls: false }),
    );
    expect(text).toBe(`parallel_tool_calls: model ${model} does not support parallel_tool_calls`);
  });

  test('an https image URL: the proxy never fetches URLs, so Gemini takes images only as data: URLs', async () => {
    const text = await refused(
      await chat({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is this?' },
              { type: 'image_url', image_url: { url: 'https://images.example.com/cat.png' } },
            ],
          },
        ],
      }),
    );
    expect(text).toBe(
      `messages[0].content[1].image_url.url: model ${model} does not support image URLs (send the image as a data: URL; this proxy never fetches URLs)`,
    );
  });
});
