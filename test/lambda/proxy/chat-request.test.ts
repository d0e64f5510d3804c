import { imageBytesMax } from '../../../lambda/proxy/chat-request';
import { jsonSchemaBytesMax, jsonSchemaDepthMax } from '../../../lambda/proxy/json-schema';
import { toolsMax } from '../../../lambda/proxy/openai';
import { startProxyFixture, type ProxyFixture } from '../../support/proxy';

/**
 * The request side of tools, structured output, images and options, over HTTP against the app:
 * `null` means absent, bad input is a 400 naming the field, a parameter the model's provider does
 * not honour is a 400 naming it and the model; in every refusal the ledger is unchanged and no
 * provider is called.
 */

let fixture: ProxyFixture;
beforeEach(async () => {
  // Room for an image over its own limit: the body limit must not answer first.
  fixture = await startProxyFixture({ requestBodyBytesMax: 2 * imageBytesMax });
  await fixture.topUp('alice', '10.00');
});
afterEach(() => fixture.close());

type Json = Record<string, unknown>;
const chat = (body: Json) => fixture.request('POST', '/v1/chat/completions', { body });
const ask = (model: string, extra: Json = {}): Json => ({
  model,
  messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
  max_tokens: 50,
  ...extra,
});
const weatherTool = {
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
};
/** A 1x1 PNG. */
const pngBase64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const imageMessage = (url: string) => ({
  role: 'user',
  content: [
    { type: 'text', text: 'What is in this image?' },
    { type: 'image_url', image_url: { url } },
  ],
});

/** The 400's body, with the ledger and the providers checked untouched. */
async function refused(response: Response): Promise<{ message: string; param?: string }> {
  expect(response.status).toBe(400);
  const body = (await response.json()) as {
    error: { message: string; type: string; param?: string };
    request_id: string;
  };
  expect(body.error.type).toBe('invalid_request_error');
  expect(body.request_id).toEqual(expect.any(String));
  expect(await fixture.availableMicros('alice')).toBe(10_000_000n);
  expect(fixture.gemini.requests).toHaveLength(0);
  expect(fixture.openAi.requests).toHaveLength(0);
  return { message: body.error.message, param: body.error.param };
}

describe('null means absent', () => {
  test('every optional field sent as null is served like the same request without it', async () => {
    const nulls = Object.fromEntries(
      [
        'max_tokens',
        'max_completion_tokens',
        'temperature',
        'top_p',
        'stop',
        'n',
        'stream',
        'stream_options',
        'tools',
        'tool_choice',
        'parallel_tool_calls',
        'response_format',
        'seed',
        'presence_penalty',
        'frequency_penalty',
        'logit_bias',
        'logprobs',
        'top_logprobs',
        'reasoning_effort',
        'user',
        'metadata',
        'functions',
        'function_call',
        'audio',
        'modalities',
        'prediction',
        'web_search_options',
        'service_tier',
        'store',
        'verbosity',
        'prompt_cache_key',
        'prompt_cache_retention',
        'safety_identifier',
      ].map((name) => [name, null]),
    );
    const messages = [
      { role: 'system', content: 'Be brief.', name: null },
      { role: 'user', content: 'hello', name: null },
      { role: 'assistant', content: 'Hi.', tool_calls: null, name: null },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'And this?' },
          {
            type: 'image_url',
            image_url: { url: `data:image/png;base64,${pngBase64}`, detail: null },
          },
        ],
      },
    ];
    const withNulls = await chat({ model: 'echo', messages, ...nulls });
    expect(withNulls.status).toBe(200);
    const without = await chat({ model: 'echo', messages });
    const [a, b] = (await Promise.all([withNulls.json(), without.json()])) as Json[];
    expect(a.choices).toEqual(b.choices);
    expect(a.usage).toEqual(b.usage);
  });

  test('a parameter at the value that asks for nothing is accepted (store false, text modality, logprobs false)', async () => {
    const response = await chat(
      ask('echo', { store: false, modalities: ['text'], logprobs: false, n: 1 }),
    );
    expect(response.status).toBe(200);
  });
});

describe('unknown parameters are refused by name, as OpenAI does, never dropped', () => {
  test('an unknown top-level parameter is a 400 naming it', async () => {
    const error = await refused(await chat(ask('echo', { foo_bar: 1 })));
    expect(error.message).toBe('Unrecognized request argument supplied: foo_bar');
    expect(error.param).toBe('foo_bar');
  });

  test('several unknown parameters are all named', async () => {
    const error = await refused(await chat(ask('echo', { foo_bar: 1, baz: null })));
    expect(error.message).toBe('Unrecognized request arguments supplied: foo_bar, baz');
    expect(error.param).toBe('foo_bar');
  });

  test('the defaults the SDKs send stay accepted (verbosity medium, in-memory cache retention)', async () => {
    const response = await chat(
      ask('echo', {
        store: false,
        service_tier: 'auto',
        verbosity: 'medium',
        prompt_cache_retention: 'in-memory',
        parallel_tool_calls: true,
      }),
    );
    expect(response.status).toBe(200);
  });

  test('stream_options without stream: true is a 400, as OpenAI answers', async () => {
    for (const stream of [undefined, false]) {
      const error = await refused(
        await chat(ask('echo', { stream, stream_options: { include_usage: true } })),
      );
      expect(error.message).toBe(
        "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
      );
      expect(error.param).toBe('stream_options');
    }
  });

  test('stream_options with stream: true is served', async () => {
    const response = await chat(
      ask('echo', { stream: true, stream_options: { include_usage: true } }),
    );
    expect(response.status).toBe(200);
    await response.text();
  });
});

describe('the output bound: a 400 naming the field', () => {
  test.each([
    [{ max_tokens: 4097 }, 'max_tokens'],
    [{ max_tokens: undefined, max_completion_tokens: 4097 }, 'max_completion_tokens'],
  ])('over the model bound (%j) is max_tokens_too_large', async (fields, param) => {
    const response = await chat(ask('fake-gpt', fields));
    const body = (await response.clone().json()) as { error: { code: string } };
    expect(body.error.code).toBe('max_tokens_too_large');
    const error = await refused(response);
    expect(error.message).toBe('max_tokens must be at most 4096 for fake-gpt');
    expect(error.param).toBe(param);
  });

  test('max_tokens and max_completion_tokens that disagree', async () => {
    const error = await refused(await chat(ask('echo', { max_completion_tokens: 60 })));
    expect(error.message).toMatch(/max_tokens and max_completion_tokens disagree/);
    expect(error.param).toBe('max_tokens');
  });
});

describe('LOG-02 / DATA-06: bad input is a 400 naming the field, the ledger unchanged', () => {
  const deep = (levels: number): Json =>
    levels === 0 ? { type: 'string' } : { type: 'object', properties: { next: deep(levels - 1) } };
  const toolWith = (parameters: unknown) => ({
    type: 'function',
    function: { name: 'broken', parameters },
  });
  const cases: [string, Json, RegExp, string][] = [
    [
      'tool parameters that are not an object schema',
      ask('fake-gpt', { tools: [toolWith({ type: 'string' })] }),
      /tools\[0\]\.function\.parameters\.type must be object/,
      'tools[0].function.parameters',
    ],
    [
      'a property schema of an unknown type',
      ask('fake-gpt', {
        tools: [toolWith({ type: 'object', properties: { city: { type: 'text' } } })],
      }),
      /parameters\.properties\.city\.type must be one of/,
      'tools[0].function.parameters',
    ],
    [
      'properties that are not a map of schemas',
      ask('fake-gpt', { tools: [toolWith({ type: 'object', properties: ['city'] })] }),
      /parameters\.properties must map names to schemas/,
      'tools[0].function.parameters',
    ],
    [
      'required that is not a list of names',
      ask('fake-gpt', { tools: [toolWith({ type: 'object', required: 'city' })] }),
      /parameters\.required must be a list of property names/,
      'tools[0].function.parameters',
    ],
    [
      'a schema nested too deep',
      ask('fake-gpt', { tools: [toolWith(deep(jsonSchemaDepthMax))] }),
      new RegExp(`nests deeper than ${jsonSchemaDepthMax} levels`),
      'tools[0].function.parameters',
    ],
    [
      'a schema too large',
      ask('fake-gpt', {
        tools: [
          toolWith({
            type: 'object',
            description: 'x'.repeat(jsonSchemaBytesMax),
          }),
        ],
      }),
      new RegExp(`over ${jsonSchemaBytesMax} bytes`),
      'tools[0].function.parameters',
    ],
    [
      'parameters that are not an object',
      ask('fake-gpt', { tools: [toolWith('a string')] }),
      /tools\[0\]\.function\.parameters/,
      'tools[0].function.parameters',
    ],
    [
      'a tool name OpenAI would refuse',
      ask('fake-gpt', {
        tools: [{ type: 'function', function: { name: 'get weather!', parameters: {} } }],
      }),
      /tools\[0\]\.function\.name: must be 1 to 64 letters/,
      'tools[0].function.name',
    ],
    [
      'a tool of another type',
      ask('fake-gpt', { tools: [{ type: 'retrieval' }] }),
      /tools\[0\]\.type: tools\[\]\.type must be function/,
      'tools[0].type',
    ],
    [
      'the same tool twice',
      ask('fake-gpt', { tools: [weatherTool, weatherTool] }),
      /get_weather is offered twice/,
      'tools[1].function.name',
    ],
    [
      'too many tools',
      ask('fake-gpt', {
        tools: Array.from({ length: toolsMax + 1 }, (_, index) => ({
          type: 'function',
          function: { name: `tool_${index}` },
        })),
      }),
      /tools: /,
      'tools',
    ],
    [
      'a tool_choice naming a function that is not offered',
      ask('fake-gpt', {
        tools: [weatherTool],
        tool_choice: { type: 'function', function: { name: 'get_time' } },
      }),
      /tool_choice names get_time, which is not in tools/,
      'tool_choice',
    ],
    [
      'a required tool_choice without tools',
      ask('fake-gpt', { tool_choice: 'required' }),
      /tool_choice needs tools/,
      'tool_choice',
    ],
    [
      'an unknown tool_choice',
      ask('fake-gpt', { tools: [weatherTool], tool_choice: 'always' }),
      /^tool_choice must be none, auto, required/, // the message names the field once
      'tool_choice',
    ],
    [
      'a tool message without a matching call',
      ask('fake-gpt', {
        tools: [weatherTool],
        messages: [
          { role: 'user', content: 'Weather in Paris?' },
          { role: 'tool', tool_call_id: 'call_never_made', content: '{"temp": 18}' },
        ],
      }),
      /messages\[1\]\.tool_call_id answers no tool call/,
      'messages[1].tool_call_id',
    ],
    [
      'a tool message before the call it answers',
      ask('fake-gpt', {
        tools: [weatherTool],
        messages: [
          { role: 'user', content: 'Weather in Paris?' },
          { role: 'tool', tool_call_id: 'call_1', content: '{"temp": 18}' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              {
                id: 'call_1',
                type: 'function',
                function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
              },
            ],
          },
        ],
      }),
      /messages\[1\]\.tool_call_id answers no tool call/,
      'messages[1].tool_call_id',
    ],
    [
      'a tool message without tool_call_id',
      ask('fake-gpt', { messages: [{ role: 'tool', content: 'x' }] }),
      /messages\[0\]\.tool_call_id: tool_call_id is required/,
      'messages[0].tool_call_id',
    ],
    [
      'an assistant message with neither content nor tool calls',
      ask('fake-gpt', {
        messages: [
          { role: 'user', content: 'x' },
          { role: 'assistant', content: null },
        ],
      }),
      /an assistant message needs content or tool_calls/,
      'messages[1]',
    ],
    [
      'an image over the size limit',
      ask('fake-gpt', {
        messages: [
          imageMessage(
            `data:image/png;base64,${pngBase64.slice(0, 12)}${'A'.repeat(4 * Math.ceil(imageBytesMax / 3) + 4)}`,
          ),
        ],
      }),
      new RegExp(`the image is over ${imageBytesMax} bytes`),
      'messages[0].content[1].image_url.url',
    ],
    [
      'an image whose bytes are not its declared type',
      ask('fake-gpt', { messages: [imageMessage(`data:image/jpeg;base64,${pngBase64}`)] }),
      /the data is not a image\/jpeg image/,
      'messages[0].content[1].image_url.url',
    ],
    [
      'an image of a type no provider takes',
      ask('fake-gpt', { messages: [imageMessage(`data:image/svg+xml;base64,PHN2Zz4=`)] }),
      /image type image\/svg\+xml is not one of png, jpeg, webp, gif/,
      'messages[0].content[1].image_url.url',
    ],
    [
      'an image that is not base64',
      ask('fake-gpt', { messages: [imageMessage('data:image/png;base64,not*base64')] }),
      /is not valid base64/,
      'messages[0].content[1].image_url.url',
    ],
    [
      'an image at a plain http URL',
      ask('fake-gpt', { messages: [imageMessage('http://example.com/cat.png')] }),
      /must be a base64 data: URL or an https URL/,
      'messages[0].content[1].image_url.url',
    ],
    [
      'an unknown response_format type',
      ask('fake-gpt', { response_format: { type: 'xml' } }),
      /response_format\.type must be text, json_object or json_schema/,
      'response_format.type',
    ],
    [
      'a json_schema response_format without a schema',
      ask('fake-gpt', {
        response_format: { type: 'json_schema', json_schema: { name: 'answer' } },
      }),
      /json_schema\.schema must be a JSON Schema object/,
      'response_format.json_schema.schema',
    ],
    [
      'a malformed json_schema response_format',
      ask('fake-gpt', {
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'answer', schema: { type: 'object', properties: { a: 3 } } },
        },
      }),
      /response_format\.json_schema\.schema\.properties\.a must be a JSON Schema object/,
      'response_format.json_schema.schema',
    ],
    [
      'a logit_bias key that is not a token id',
      ask('fake-gpt', { logit_bias: { hello: 5 } }),
      /logit_bias keys must be token ids/,
      'logit_bias',
    ],
    [
      'a presence_penalty out of range',
      ask('fake-gpt', { presence_penalty: 3 }),
      /presence_penalty/,
      'presence_penalty',
    ],
    [
      'an unknown reasoning_effort',
      ask('fake-gpt', { reasoning_effort: 'extreme' }),
      /reasoning_effort/,
      'reasoning_effort',
    ],
  ];

  test.each(cases)('%s', async (_name, body, message, param) => {
    const error = await refused(await chat(body));
    expect(error.message).toMatch(message);
    expect(error.param).toBe(param);
  });
});

describe('one policy for parameters: forwarded where honoured, else a 400 naming it and the model', () => {
  test.each([
    [
      'functions',
      [{ name: 'f', parameters: {} }],
      /functions is not supported by this proxy \(use tools\)/,
    ],
    ['function_call', 'auto', /function_call is not supported by this proxy \(use tools\)/],
    ['audio', { voice: 'alloy', format: 'mp3' }, /audio is not supported/],
    ['modalities', ['text', 'audio'], /modalities is not supported/],
    ['prediction', { type: 'content', content: 'x' }, /prediction is not supported/],
    ['web_search_options', {}, /web_search_options is not supported/],
    ['service_tier', 'flex', /service_tier is not supported/],
    ['store', true, /store is not supported/],
    ['verbosity', 'low', /verbosity is not supported/],
    ['prompt_cache_key', 'k1', /prompt_cache_key is not supported/],
    ['prompt_cache_retention', '24h', /prompt_cache_retention is not supported/],
    ['safety_identifier', 'user-1', /safety_identifier is not supported/],
  ])('%s, which no provider here serves', async (name, value, message) => {
    const error = await refused(await chat(ask('fake-gpt', { [name]: value })));
    expect(error.message).toMatch(message);
    expect(error.param).toBe(name);
  });

  test.each([
    ['gemini-2.5-flash', 'logit_bias', { '50256': -100 }],
    ['gemini-2.5-flash', 'logprobs', true],
    ['gemini-2.5-flash', 'top_logprobs', 3],
    ['gemini-2.5-flash', 'metadata', { purpose: 'test' }],
    ['gemini-2.5-flash', 'user', 'end-user-1'],
    ['fake-gpt', 'logprobs', true],
    ['echo', 'presence_penalty', 0.5],
    ['echo', 'frequency_penalty', 0.5],
    ['echo', 'reasoning_effort', 'low'],
  ])('%s refuses %s', async (model, name, value) => {
    const error = await refused(await chat(ask(model, { [name]: value })));
    expect(error.message).toBe(`${name}: model ${model} does not support ${name}`);
    expect(error.param).toBe(name);
  });
});
