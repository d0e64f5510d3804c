import { startProxyFixture, type ProxyFixture } from '../../../support/proxy';

/**
 * The echo model's tools and structured output, over HTTP against the app: the documented trigger
 * (`call NAME {json}` in the last user message), tool_choice, parallel calls, the tool results
 * echoed by name, JSON that satisfies the schema, images counted; streamed and not.
 */

let fixture: ProxyFixture;
beforeEach(async () => {
  fixture = await startProxyFixture();
  await fixture.topUp('alice', '10.00');
});
afterEach(() => fixture.close());

type Json = Record<string, unknown>;
type ToolCallBody = { id: string; type: string; function: { name: string; arguments: string } };
type Answer = {
  choices: {
    message: { content: string | null; tool_calls?: ToolCallBody[] };
    finish_reason: string;
  }[];
};
const chat = async (body: Json) => {
  const response = await fixture.request('POST', '/v1/chat/completions', {
    body: { model: 'echo', max_tokens: 200, ...body },
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as Answer).choices[0];
};
const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string' },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        days: { type: 'integer', minimum: 1 },
      },
      required: ['city', 'unit', 'days'],
    },
  },
};
const timeTool = {
  type: 'function',
  function: { name: 'get_time', parameters: { type: 'object', properties: {} } },
};
const user = (content: string) => ({ role: 'user', content });

describe('echo: tool calls by the documented trigger', () => {
  test('`call NAME {json}` is a call with those arguments; the result comes back named; the loop ends in text', async () => {
    const question = user(
      'Please call get_weather {"city": "Paris", "unit": "celsius", "days": 2}',
    );
    const first = await chat({ messages: [question], tools: [weatherTool, timeTool] });
    expect(first.finish_reason).toBe('tool_calls');
    expect(first.message.content).toBeNull();
    const calls = first.message.tool_calls!;
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ type: 'function', function: { name: 'get_weather' } });
    expect(JSON.parse(calls[0].function.arguments)).toEqual({
      city: 'Paris',
      unit: 'celsius',
      days: 2,
    });
    expect(calls[0].id).toMatch(/^call_[0-9a-f]{24}$/);
    // The same request gets the same ids: deterministic.
    expect(
      (await chat({ messages: [question], tools: [weatherTool, timeTool] })).message.tool_calls,
    ).toEqual(calls);

    const final = await chat({
      messages: [
        question,
        { role: 'assistant', content: null, tool_calls: calls },
        { role: 'tool', tool_call_id: calls[0].id, content: '{"celsius":18}' },
      ],
      tools: [weatherTool, timeTool],
    });
    expect(final).toMatchObject({
      finish_reason: 'stop',
      message: { content: 'echo: get_weather: {"celsius":18}' },
    });
  });

  test('without arguments in the text they are generated from the schema; two calls are parallel calls', async () => {
    const answer = await chat({
      messages: [user('call get_weather and call get_time')],
      tools: [weatherTool, timeTool],
    });
    const calls = answer.message.tool_calls!;
    expect(calls.map((call) => call.function.name)).toEqual(['get_weather', 'get_time']);
    expect(JSON.parse(calls[0].function.arguments)).toEqual({
      city: 'echo',
      unit: 'celsius',
      days: 1,
    });
    expect(calls[0].id).not.toBe(calls[1].id);
    const one = await chat({
      messages: [user('call get_weather and call get_time')],
      tools: [weatherTool, timeTool],
      parallel_tool_calls: false,
    });
    expect(one.message.tool_calls!.map((call) => call.function.name)).toEqual(['get_weather']);
  });

  test('tool_choice: none never calls, required calls the first tool, a named choice calls that one', async () => {
    const tools = [weatherTool, timeTool];
    const none = await chat({ messages: [user('call get_weather')], tools, tool_choice: 'none' });
    expect(none).toMatchObject({
      finish_reason: 'stop',
      message: { content: 'echo: call get_weather' },
    });
    const auto = await chat({ messages: [user('hello')], tools });
    expect(auto.message.tool_calls).toBeUndefined();
    const required = await chat({ messages: [user('hello')], tools, tool_choice: 'required' });
    expect(required.message.tool_calls!.map((call) => call.function.name)).toEqual(['get_weather']);
    const named = await chat({
      messages: [user('hello')],
      tools,
      tool_choice: { type: 'function', function: { name: 'get_time' } },
    });
    expect(named.message.tool_calls!.map((call) => call.function.name)).toEqual(['get_time']);
  });

  test('a call to a tool not offered is not a trigger', async () => {
    const answer = await chat({ messages: [user('call launch_rockets')], tools: [timeTool] });
    expect(answer.message).toMatchObject({ content: 'echo: call launch_rockets' });
  });

  test('streamed, the call arrives as tool_calls deltas that assemble to the same call', async () => {
    const body = {
      model: 'echo',
      messages: [user('call get_weather {"city":"Oslo","unit":"celsius","days":3}')],
      tools: [weatherTool],
      stream: true,
    };
    const response = await fixture.request('POST', '/v1/chat/completions', { body });
    const events = (await response.text())
      .split('\n\n')
      .filter((event) => event.startsWith('data: {'))
      .map(
        (event) =>
          JSON.parse(event.slice(6)) as {
            choices: { delta: Json; finish_reason: string | null }[];
          },
      );
    const deltas = events.flatMap((event) => (event.choices[0]?.delta.tool_calls as Json[]) ?? []);
    expect(deltas[0]).toMatchObject({
      index: 0,
      id: expect.stringMatching(/^call_/),
      type: 'function',
    });
    const args = deltas
      .map((delta) => (delta.function as { arguments: string }).arguments)
      .join('');
    expect(JSON.parse(args)).toEqual({ city: 'Oslo', unit: 'celsius', days: 3 });
    expect(events.at(-1)?.choices[0].finish_reason).toBe('tool_calls');
  });
});

describe('echo: structured output', () => {
  test('json_schema answers JSON that satisfies the schema (nested objects, arrays, enums, bounds, refs)', async () => {
    const schema = {
      type: 'object',
      properties: {
        title: { type: 'string', maxLength: 10 },
        rating: { type: 'number', minimum: 3, maximum: 5 },
        tags: { type: 'array', items: { type: 'string' }, minItems: 2 },
        status: { enum: ['draft', 'final'] },
        author: { $ref: '#/$defs/person' },
        note: { type: ['string', 'null'] },
        published: { type: 'boolean' },
      },
      required: ['title', 'rating', 'tags', 'status', 'author', 'note', 'published'],
      additionalProperties: false,
      $defs: {
        person: {
          type: 'object',
          properties: { name: { type: 'string' }, age: { type: 'integer', exclusiveMinimum: 17 } },
          required: ['name', 'age'],
        },
      },
    };
    const answer = await chat({
      messages: [user('Review the film')],
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'review', schema, strict: true },
      },
    });
    expect(JSON.parse(answer.message.content!)).toEqual({
      title: 'Review the',
      rating: 3,
      tags: ['Review the film', 'Review the film'],
      status: 'draft',
      author: { name: 'Review the film', age: 18 },
      note: 'Review the film',
      published: false,
    });
  });

  test('json_object answers a JSON object', async () => {
    const answer = await chat({ messages: [user('hi')], response_format: { type: 'json_object' } });
    expect(JSON.parse(answer.message.content!)).toEqual({ echo: 'hi' });
  });
});

describe('echo: stop sequences', () => {
  test('the answer ends before the first stop sequence', async () => {
    const answer = await chat({ messages: [user('one two three four')], stop: ['three', 'four'] });
    expect(answer).toMatchObject({ finish_reason: 'stop', message: { content: 'echo: one two ' } });
  });
});

describe('echo: images', () => {
  test('image parts are counted in the answer, never read', async () => {
    const png =
      'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
    const answer = await chat({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What are these?' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
            { type: 'image_url', image_url: { url: 'https://images.example.com/cat.jpg' } },
          ],
        },
      ],
    });
    expect(answer.message.content).toBe('echo: What are these? [2 images]');
  });
});
