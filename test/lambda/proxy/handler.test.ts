// First: the stand-in of the Lambda runtime's streaming interface, before the handler module reads it.
import {
  invokeStreaming,
  RecordingResponseStream,
  streamingMarker,
  httpIntegrationContentType,
} from '../../support/lambda-streaming';
import { bakedModelCatalogue } from '../../../lambda/proxy/baked-catalogue';
import { handler, proxyLambdaSettings } from '../../../lambda/proxy/handler';
import { proxyConfigFromStage, splitProxyConfig } from '../../../lambda/proxy/config';
import { clientKeySetVersion } from '../../../lambda/shared/client-keys';
import { generateApiKey, hashKey } from '../../../runtime/keys';
import { resolveStageConfig } from '../../../lib/config';
import { startAwsStandIn, type AwsStandIn } from '../../support/aws-stand-in';
import { anthropicAnswer, gate, openAiStream } from '../../support/fake-providers';
import { startProxyFixture, testModels, type ProxyFixture } from '../../support/proxy';

/**
 * The proxy Lambda as a response-streaming function behind API Gateway's REST API (Lambda proxy
 * integration in STREAM mode): REST (format 1.0) events in, the runtime's response stream out,
 * driven through a local stand-in of `awslambda.streamifyResponse` / `HttpResponseStream`; its
 * secrets from Secrets Manager (a local stand-in speaking its JSON protocol, checking every
 * signature); a real credits service and a stand-in provider on loopback.
 */

const arn = (name: string) => `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${name}-AbCdEf`;
const secrets = {
  clientKeys: arn('client-keys'),
  creditsKey: arn('proxy-credits-key'),
  provider: arn('provider'),
};
const clientKey = generateApiKey();
const bedrockModel = {
  id: 'nova-lite',
  provider: 'bedrock' as const,
  upstreamModel: 'eu.amazon.nova-lite-v1:0',
  ledgerCode: 204,
  inferenceProfileRegions: ['eu-west-1'],
  inputMicrosPerMillionTokens: 60_000,
  outputMicrosPerMillionTokens: 240_000,
  defaultMaxOutputTokens: 100,
  outputTokensMax: 1000,
};
let aws: AwsStandIn;
let fixture: ProxyFixture;
const savedEnvironment = { ...process.env };
/** The config as the CDK app ships it: settings in the environment, the catalogue in the bundle. */
const shipped = splitProxyConfig({
  ...proxyConfigFromStage(resolveStageConfig('dev')),
  models: [...testModels, bedrockModel],
});
/** What the function wrote to stdout: its EMF documents. */
const stdoutLines: string[] = [];
let stdout: jest.SpyInstance;

beforeAll(async () => {
  stdout = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdoutLines.push(String(chunk));
    return true;
  });
  fixture = await startProxyFixture();
  aws = await startAwsStandIn('eu-west-1');
  await fixture.topUp('lambda-client', '1.00');
  aws.secret(secrets.clientKeys, {
    current: JSON.stringify({
      version: clientKeySetVersion,
      keys: [
        {
          id: 'key_lambda0001',
          user_id: 'lambda-client',
          sha256: hashKey(clientKey).toString('hex'),
          created_at: '2026-01-01T00:00:00Z',
          expires_at: '2099-01-01T00:00:00Z',
          disabled: false,
        },
      ],
    }),
  });
  aws.secret(secrets.creditsKey, { current: fixture.proxyServiceKey });
  // The OpenAI-compatible provider and Anthropic are configured (the stand-ins); Gemini's key is still missing.
  aws.secret(secrets.provider, {
    current: JSON.stringify({
      openai_compatible_base_url: fixture.openAi.baseUrl,
      openai_compatible_api_key: 'fake-openai-key-0123456789',
      anthropic_api_key: 'anthropic-key-from-the-secret-0123',
      anthropic_base_url: fixture.anthropic.baseUrl,
    }),
  });
  Object.assign(process.env, {
    ...aws.environment,
    AWS_REGION: 'eu-west-1',
    // Bedrock needs no secret: the role's credentials (the stand-in's, above) and its endpoint.
    AWS_ENDPOINT_URL_BEDROCK_RUNTIME: fixture.bedrock.url,
    PROXY_CONFIG: JSON.stringify(shipped.settings),
    // What esbuild bakes into the deployed bundle in place of `process.env.PROXY_MODEL_CATALOGUE`
    // (lib/constructs/lambda-bundling.ts); unbundled, the handler reads the same expression here.
    PROXY_MODEL_CATALOGUE: JSON.stringify(shipped.catalogue),
    CLIENT_KEYS_SECRET_ARN: secrets.clientKeys,
    CREDITS_URL: fixture.creditsServer.url,
    CREDITS_KEY_SECRET_ARN: secrets.creditsKey,
    PROVIDER_SECRET_ARN: secrets.provider,
    STAGE: 'test',
    LOG_LEVEL: 'ERROR',
  });
});

afterAll(async () => {
  stdout.mockRestore();
  process.env = savedEnvironment;
  await fixture.close();
  await aws.close();
});

/** An API Gateway REST API proxy event (format 1.0), as the private API's `{proxy+}` resource sends it. */
function restEvent(method: string, path: string, headers: Record<string, string>, body?: unknown) {
  const allHeaders = {
    host: 'abcdef1234.execute-api.eu-west-1.amazonaws.com',
    'content-type': 'application/json',
    'x-forwarded-for': '203.0.113.7, 10.0.1.20',
    ...headers,
  };
  return {
    resource: '/{proxy+}',
    path,
    httpMethod: method,
    headers: allHeaders,
    multiValueHeaders: Object.fromEntries(
      Object.entries(allHeaders).map(([name, value]) => [name, [value]]),
    ),
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: { proxy: path.slice(1) },
    stageVariables: null,
    requestContext: {
      resourcePath: '/{proxy+}',
      httpMethod: method,
      path: `/v1${path}`,
      stage: 'v1',
      requestId: 'c6af9ac6-7b61-11e6-9a41-93e8deadbeef',
      identity: { sourceIp: '10.0.1.20' },
      domainName: 'abcdef1234.execute-api.eu-west-1.amazonaws.com',
      apiId: 'abcdef1234',
    },
    body: body === undefined ? null : JSON.stringify(body),
    isBase64Encoded: false,
  };
}

const bearer = () => ({ authorization: `Bearer ${clientKey}` });

test('the export is a streaming handler (marked by streamifyResponse)', () => {
  expect((handler as unknown as Record<symbol, unknown>)[streamingMarker]).toBe('response');
});

test('a billed echo completion: the metadata prelude carries the status and the billing headers, then the JSON body', async () => {
  const stream = await invokeStreaming(
    handler,
    restEvent('POST', '/v1/chat/completions', bearer(), {
      model: 'echo',
      messages: [{ role: 'user', content: 'hi' }],
    }),
  );
  expect(stream.contentType).toBe(httpIntegrationContentType);
  const { metadata, body } = stream.response();
  expect(metadata.statusCode).toBe(200);
  expect(metadata.headers['content-type']).toMatch(/^application\/json/);
  expect(metadata.headers['x-credits-charged-micros']).toMatch(/^\d+$/);
  expect(metadata.headers['x-request-id']).toEqual(expect.any(String));
  expect(JSON.parse(body)).toMatchObject({
    object: 'chat.completion',
    choices: [{ message: { content: 'echo: hi' } }],
  });
  expect(await fixture.availableMicros('lambda-client')).toBeLessThan(1_000_000n);
});

test("AUTH-09: a bedrock model through the Lambda handler: signed with the function's role credentials for its region, no secret, billed", async () => {
  const before = await fixture.availableMicros('lambda-client');
  fixture.bedrock.script({
    kind: 'converse',
    body: {
      output: { message: { role: 'assistant', content: [{ text: 'Hi from Nova' }] } },
      stopReason: 'end_turn',
      usage: { inputTokens: 10, outputTokens: 50 },
    },
  });
  const stream = await invokeStreaming(
    handler,
    restEvent('POST', '/v1/chat/completions', bearer(), {
      model: 'nova-lite',
      messages: [{ role: 'user', content: 'hi' }],
    }),
  );
  const { metadata, body } = stream.response();
  expect(metadata.statusCode).toBe(200);
  expect(JSON.parse(body)).toMatchObject({ choices: [{ message: { content: 'Hi from Nova' } }] });
  // ceil((10 x 60,000 + 50 x 240,000) / 10^6) = ceil(12.6) = 13 micros
  expect(metadata.headers['x-credits-charged-micros']).toBe('13');
  expect(await fixture.availableMicros('lambda-client')).toBe(before - 13n);
  const request = fixture.bedrock.requests.at(-1);
  expect(request?.modelId).toBe('eu.amazon.nova-lite-v1:0');
  expect(request?.scope).toMatch(/^\d{8}\/eu-west-1\/bedrock\/aws4_request$/);
});

test('a streamed completion is written to the response stream chunk by chunk, the first before the provider finished', async () => {
  const clientSawFirst = gate();
  fixture.openAi.script(
    openAiStream(['First', clientSawFirst.opened, ' and the rest'], {
      prompt_tokens: 20,
      completion_tokens: 5,
    }),
  );
  const stream = new RecordingResponseStream();
  // The provider sends the rest only once the first content chunk has reached Lambda's response stream.
  stream.onWrite((write) => {
    if (write.toString('utf8').includes('"content":"First"')) clientSawFirst.open();
  });
  await invokeStreaming(
    handler,
    restEvent('POST', '/v1/chat/completions', bearer(), {
      model: 'fake-gpt',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    }),
    stream,
  );
  const { metadata, body } = stream.response();
  expect(metadata.statusCode).toBe(200);
  expect(metadata.headers['content-type']).toBe('text/event-stream; charset=utf-8');
  expect(metadata.headers['cache-control']).toBe('no-cache');
  expect(metadata.headers['content-length']).toBeUndefined();
  const writes = stream.writes.map((write) => write.toString('utf8'));
  const first = writes.findIndex((write) => write.includes('"content":"First"'));
  const rest = writes.findIndex((write) => write.includes('"content":" and the rest"'));
  expect(first).toBeGreaterThan(1); // after the metadata and the delimiter
  expect(rest).toBeGreaterThan(first); // a later, separate write
  expect(body).toContain('"x_credits_charged":"0.000040"');
  expect(body.endsWith('data: [DONE]\n\n')).toBe(true);
});

test('an anthropic completion is sent with the key from the provider secret and billed with its cache tokens', async () => {
  fixture.anthropic.script(
    anthropicAnswer(['Hi.'], {
      input_tokens: 40,
      output_tokens: 12,
      cache_read_input_tokens: 1000,
      cache_creation_input_tokens: 200,
    }),
  );
  const index = fixture.anthropic.requests.length;
  const stream = await invokeStreaming(
    handler,
    restEvent('POST', '/v1/chat/completions', bearer(), {
      model: 'fake-claude',
      messages: [{ role: 'user', content: 'hi' }],
    }),
  );
  const sent = await fixture.anthropic.request(index);
  expect(sent.headers['x-api-key']).toBe('anthropic-key-from-the-secret-0123');
  expect(sent.headers['anthropic-version']).toBe('2023-06-01');
  const { metadata, body } = stream.response();
  expect(metadata.statusCode).toBe(200);
  // 40 x 3 + 1000 x 0.3 + 200 x 3.75 + 12 x 15 micros = 1350 micros.
  expect(metadata.headers['x-credits-charged-micros']).toBe('1350');
  expect(JSON.parse(body)).toMatchObject({
    model: 'fake-claude',
    usage: { prompt_tokens: 1240, completion_tokens: 12 },
  });
});

test('MON-02: every invocation flushes its metrics as EMF (namespace AiProxy, service and stage dimensions)', async () => {
  stdoutLines.length = 0;
  await invokeStreaming(handler, restEvent('GET', '/v1/models', bearer()));
  const documents = stdoutLines
    .filter((line) => line.includes('"_aws"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(documents).toContainEqual(
    expect.objectContaining({
      _aws: expect.objectContaining({
        CloudWatchMetrics: [
          expect.objectContaining({
            Namespace: 'AiProxy',
            Dimensions: [['service', 'stage', 'route', 'outcome']],
          }),
        ],
      }),
      service: 'proxy',
      stage: 'test',
      route: '/v1/models',
      outcome: '2xx',
      Requests: 1,
    }),
  );
});

test('a provider without credentials answers 503 "provider not configured" in the prelude and body', async () => {
  const stream = await invokeStreaming(
    handler,
    restEvent('POST', '/v1/chat/completions', bearer(), {
      model: 'gemini-2.5-flash',
      messages: [{ role: 'user', content: 'hi' }],
    }),
  );
  const { metadata, body } = stream.response();
  expect(metadata.statusCode).toBe(503);
  expect(JSON.parse(body)).toMatchObject({ error: { code: 'provider_not_configured' } });
});

test('CFG-02 / AUTH-08: the environment holds no secret, and without its secrets the function refuses to start', () => {
  for (const value of Object.values(proxyLambdaSettings(process.env, bakedModelCatalogue())))
    expect(JSON.stringify(value ?? null)).not.toContain(clientKey);
  expect(() => proxyLambdaSettings({ AWS_REGION: 'eu-west-1' }, undefined)).toThrow(
    /refusing to start, missing configuration: PROXY_CONFIG, CLIENT_KEYS_SECRET_ARN.*, PROXY_MODEL_CATALOGUE \(baked into the bundle at synth\)$/,
  );
});

test('CFG-02: the settings come from the environment and the models from the baked catalogue, and either malformed refuses the start naming the field', () => {
  const settings = proxyLambdaSettings(process.env, bakedModelCatalogue());
  expect(settings.config).toEqual({ ...shipped.settings, ...shipped.catalogue });
  expect(settings.config.models.map((model) => model.id)).toContain('nova-lite');
  const catalogue = JSON.stringify(shipped.catalogue);
  const withConfig = (value: string) => ({ ...process.env, PROXY_CONFIG: value });
  expect(() => proxyLambdaSettings(withConfig('{'), catalogue)).toThrow(
    'proxy: refusing to start, PROXY_CONFIG is not JSON',
  );
  expect(() => proxyLambdaSettings(withConfig('[]'), catalogue)).toThrow(
    /PROXY_CONFIG is not the proxy settings: /,
  );
  expect(() =>
    proxyLambdaSettings(
      withConfig(JSON.stringify({ ...shipped.settings, holdTimeoutSeconds: '300' })),
      catalogue,
    ),
  ).toThrow(
    'proxy: refusing to start, PROXY_CONFIG is not the proxy settings: holdTimeoutSeconds: Invalid input: expected number, received string',
  );
  expect(() =>
    proxyLambdaSettings(
      withConfig(JSON.stringify({ ...shipped.settings, holdTimeoutSecond: 300 })),
      catalogue,
    ),
  ).toThrow(/PROXY_CONFIG is not the proxy settings: Unrecognized key: "holdTimeoutSecond"/);
  expect(() => proxyLambdaSettings({ ...process.env, LOG_LEVEL: 'TRACE' }, catalogue)).toThrow(
    'proxy: refusing to start, LOG_LEVEL must be one of DEBUG, INFO, WARN, ERROR, got "TRACE"',
  );
  expect(() => proxyLambdaSettings(process.env, undefined)).toThrow(
    'proxy: refusing to start, missing configuration: PROXY_MODEL_CATALOGUE (baked into the bundle at synth)',
  );
  expect(() => proxyLambdaSettings(process.env, '{"models":')).toThrow(
    'proxy: refusing to start, PROXY_MODEL_CATALOGUE (baked into the bundle at synth) is not JSON',
  );
  expect(() =>
    proxyLambdaSettings(
      process.env,
      JSON.stringify({ ...shipped.catalogue, models: [{ id: 'm' }] }),
    ),
  ).toThrow(
    /PROXY_MODEL_CATALOGUE \(baked into the bundle at synth\) is not the model catalogue: models\.0\.provider: /,
  );
  for (const malformed of [
    { models: [], embeddingModels: [] },
    { models: shipped.catalogue.models },
    [shipped.catalogue],
  ]) {
    expect(() => proxyLambdaSettings(process.env, JSON.stringify(malformed))).toThrow(
      /refusing to start, PROXY_MODEL_CATALOGUE \(baked into the bundle at synth\) is not the model catalogue: /,
    );
  }
});

test('its secrets were read from Secrets Manager by signed GetSecretValue calls (each signature verified by the stand-in)', () => {
  const read = aws.requests
    .filter((request) => request.target === 'secretsmanager.GetSecretValue')
    .map((request) => request.body.SecretId);
  expect(new Set(read)).toEqual(
    new Set([secrets.clientKeys, secrets.creditsKey, secrets.provider]),
  );
  for (const request of aws.requests)
    expect(request.scope).toMatch(/^\d{8}\/eu-west-1\/secretsmanager\/aws4_request$/);
});
