import OpenAI from 'openai';
import type { RunnableToolFunctionWithParse } from 'openai/lib/RunnableFunction';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { startServer, type RunningServer } from '../../../runtime/node-server';
import {
  geminiAnswer,
  geminiFunctionCallStream,
  openAiAnswer,
  openAiToolCallStream,
} from '../../support/fake-providers';
import { startProxyFixture, type ProxyFixture } from '../../support/proxy';

/**
 * End to end with the official `openai` client, as agent code uses it, against the proxy in the
 * Node server (as `npm run dev` runs it): a two-turn tool loop, streamed and not, `runTools`, and
 * `parse` with a JSON schema; against the echo model and the OpenAI-compatible stand-in.
 */

let fixture: ProxyFixture;
let server: RunningServer;
let client: OpenAI;

beforeEach(async () => {
  fixture = await startProxyFixture();
  server = await startServer({ fetch: fixture.app.fetch, hostname: '127.0.0.1', port: 0 });
  await fixture.topUp('alice', '1.00');
  client = new OpenAI({ apiKey: fixture.keys.alice, baseURL: `${server.url}/v1`, maxRetries: 0 });
});
afterEach(async () => {
  await server.close();
  await fixture.close();
});

const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' } },
      required: ['city'],
      additionalProperties: false,
    },
  },
};
const weatherIn = (city: string) => JSON.stringify({ city, celsius: city.length + 10 });

describe('the official SDK drives a tool loop', () => {
  test('two turns with create(): the call, its result, the final answer (echo)', async () => {
    const messages: ChatCompletionMessageParam[] = [
      { role: 'user', content: 'call get_weather {"city":"Paris"}' },
    ];
    const first = await client.chat.completions.create({
      model: 'echo',
      messages,
      tools: [weatherTool],
    });
    const choice = first.choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    const call = choice.message.tool_calls![0];
    if (call.type !== 'function') throw new Error('expected a function call');
    messages.push(choice.message);
    messages.push({
      role: 'tool',
      tool_call_id: call.id,
      content: weatherIn((JSON.parse(call.function.arguments) as { city: string }).city),
    });
    const second = await client.chat.completions.create({
      model: 'echo',
      messages,
      tools: [weatherTool],
    });
    expect(second.choices[0].message.content).toBe(
      'echo: get_weather: {"city":"Paris","celsius":15}',
    );
    expect(second.choices[0].finish_reason).toBe('stop');
  });

  test('streamed with chat.completions.stream(): the deltas assemble into the call (openai-compatible)', async () => {
    fixture.openAi.script(
      openAiToolCallStream([{ id: 'call_abc', name: 'get_weather', arguments: '{"city":"Lima"}' }]),
    );
    const stream = client.chat.completions.stream({
      model: 'fake-gpt',
      messages: [{ role: 'user', content: 'Weather in Lima?' }],
      tools: [weatherTool],
      stream_options: { include_usage: true },
    });
    const names: string[] = [];
    stream.on('tool_calls.function.arguments.done', (event) => names.push(event.name));
    const completion = await stream.finalChatCompletion();
    expect(names).toEqual(['get_weather']);
    expect(completion.choices[0].finish_reason).toBe('tool_calls');
    expect(completion.choices[0].message.tool_calls).toEqual([
      {
        id: 'call_abc',
        type: 'function',
        function: { name: 'get_weather', arguments: '{"city":"Lima"}' },
      },
    ]);
    expect(completion.usage).toMatchObject({ prompt_tokens: 40, completion_tokens: 12 });
  });

  test('a streamed two-turn loop against gemini: our call id comes back and finds the function', async () => {
    fixture.gemini.script(
      geminiFunctionCallStream([{ name: 'get_weather', args: { city: 'Oslo' } }]),
      geminiAnswer('4 °C in Oslo.'),
    );
    const messages: ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Oslo?' }];
    const first = await client.chat.completions
      .stream({ model: 'gemini-2.5-flash', messages, tools: [weatherTool] })
      .finalChatCompletion();
    const call = first.choices[0].message.tool_calls![0];
    if (call.type !== 'function') throw new Error('expected a function call');
    expect(first.choices[0].finish_reason).toBe('tool_calls');
    messages.push(first.choices[0].message, {
      role: 'tool',
      tool_call_id: call.id,
      content: weatherIn('Oslo'),
    });
    const second = await client.chat.completions.create({
      model: 'gemini-2.5-flash',
      messages,
      tools: [weatherTool],
    });
    expect(second.choices[0].message.content).toBe('4 °C in Oslo.');
    const contents = (fixture.gemini.requests[1].body as { contents: unknown[] }).contents;
    expect(contents.at(-1)).toEqual({
      role: 'user',
      parts: [
        { functionResponse: { name: 'get_weather', response: { city: 'Oslo', celsius: 14 } } },
      ],
    });
  });

  test.each([false, true])(
    'runTools (stream: %s) runs the whole loop against echo and ends in its final answer',
    async (stream) => {
      const called: string[] = [];
      const tools: RunnableToolFunctionWithParse<{ city: string }>[] = [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'The weather in a city',
            parameters: weatherTool.function.parameters,
            parse: (text: string) => JSON.parse(text) as { city: string },
            function: ({ city }: { city: string }) => {
              called.push(city);
              return weatherIn(city);
            },
          },
        },
      ];
      const messages: ChatCompletionMessageParam[] = [
        { role: 'user', content: 'call get_weather {"city":"Rome"}' },
      ];
      const runner = stream
        ? client.chat.completions.runTools({ model: 'echo', messages, tools, stream: true })
        : client.chat.completions.runTools({ model: 'echo', messages, tools });
      expect(await runner.finalContent()).toBe('echo: get_weather: {"city":"Rome","celsius":14}');
      expect(called).toEqual(['Rome']);
    },
  );
});

describe('the official SDK parses structured output', () => {
  const schema = {
    type: 'object',
    properties: { city: { type: 'string' }, celsius: { type: 'number', minimum: -50 } },
    required: ['city', 'celsius'],
    additionalProperties: false,
  };
  const responseFormat = {
    type: 'json_schema' as const,
    json_schema: { name: 'weather', schema, strict: true },
  };

  test('parse() with a JSON schema against echo: the parsed object satisfies it', async () => {
    const completion = await client.chat.completions.parse({
      model: 'echo',
      messages: [{ role: 'user', content: 'Paris' }],
      response_format: responseFormat,
    });
    expect(completion.choices[0].message.parsed).toEqual({ city: 'Paris', celsius: -50 });
  });

  test('parse() against the openai-compatible stand-in: the format reached it, the answer parsed', async () => {
    fixture.openAi.script(openAiAnswer('{"city":"Paris","celsius":18}'));
    const completion = await client.chat.completions.parse({
      model: 'fake-gpt',
      messages: [{ role: 'user', content: 'Weather in Paris as JSON' }],
      response_format: responseFormat,
    });
    expect(completion.choices[0].message.parsed).toEqual({ city: 'Paris', celsius: 18 });
    expect(
      (fixture.openAi.requests[0].body as { response_format: unknown }).response_format,
    ).toEqual(responseFormat);
  });
});
