// First: the stand-in of the Lambda runtime's streaming interface, before the handler module reads it.
import {
  invokeStreaming,
  RecordingResponseStream,
  streamingMarker,
  httpIntegrationContentType,
} from '../../support/lambda-streaming';
import { handler, proxyLambdaSettings } from '../../../lambda/proxy/handler';
import { proxyConfigFromStage } from '../../../lambda/proxy/config';
import { clientKeySetVersion } from '../../../lambda/shared/client-keys';
import { generateApiKey, hashKey } from '../../../lambda/shared/keys';
import { resolveStageConfig } from '../../../lib/config';
import { startAwsStandIn, type AwsStandIn } from '../../support/aws-stand-in';
import { gate, openAiStream } from '../../support/fake-providers';
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
let aws: AwsStandIn;
let fixture: ProxyFixture;
const savedEnvironment = { ...process.env };
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
  // The OpenAI-compatible provider is configured (the stand-in); Gemini's key is still missing.
  aws.secret(secrets.provider, {
    current: JSON.stringify({
      openai_compatible_base_url: fixture.openAi.baseUrl,
      openai_compatible_api_key: 'fake-openai-key-0123456789',
    }),
  });
  Object.assign(process.env, {
    ...aws.environment,
    AWS_REGION: 'eu-west-1',
    PROXY_CONFIG: JSON.stringify({
      ...proxyConfigFromStage(resolveStageConfig('dev')),
      models: testModels,
    }),
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
  for (const value of Object.values(proxyLambdaSettings(process.env)))
    expect(JSON.stringify(value ?? null)).not.toContain(clientKey);
  expect(() => proxyLambdaSettings({ AWS_REGION: 'eu-west-1' })).toThrow(
    /refusing to start, missing configuration: PROXY_CONFIG, CLIENT_KEYS_SECRET_ARN/,
  );
});

test('CFG-02: a malformed PROXY_CONFIG refuses the start and names the field, instead of a proxy on a half-read configuration', () => {
  const config = JSON.parse(String(process.env.PROXY_CONFIG)) as Record<string, unknown>;
  const withConfig = (value: string) => ({ ...process.env, PROXY_CONFIG: value });
  expect(() => proxyLambdaSettings(withConfig('{"models": ['))).toThrow(
    'proxy: refusing to start, PROXY_CONFIG is not JSON',
  );
  expect(() =>
    proxyLambdaSettings(withConfig(JSON.stringify({ ...config, holdTimeoutSeconds: '300' }))),
  ).toThrow(
    'proxy: refusing to start, PROXY_CONFIG is not the proxy configuration: holdTimeoutSeconds: Invalid input: expected number, received string',
  );
  expect(() =>
    proxyLambdaSettings(withConfig(JSON.stringify({ ...config, models: [{ id: 'm' }] }))),
  ).toThrow(/PROXY_CONFIG is not the proxy configuration: models\.0\.provider: /);
  expect(() =>
    proxyLambdaSettings(withConfig(JSON.stringify({ ...config, holdTimeoutSecond: 300 }))),
  ).toThrow(/PROXY_CONFIG is not the proxy configuration: Unrecognized key: "holdTimeoutSecond"/);
  expect(() => proxyLambdaSettings({ ...process.env, LOG_LEVEL: 'TRACE' })).toThrow(
    'proxy: refusing to start, LOG_LEVEL must be one of DEBUG, INFO, WARN, ERROR, got "TRACE"',
  );
  expect(proxyLambdaSettings(process.env).config).toEqual(config);
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
