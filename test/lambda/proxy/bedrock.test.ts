import OpenAI from 'openai';
import { startServer, type RunningServer } from '../../../lambda/shared/node-server';
import type { ModelConfig } from '../../../lib/config/schema';
import { textStream } from '../../support/bedrock-stand-in';
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
