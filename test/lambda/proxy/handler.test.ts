import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { handler, proxyLambdaSettings } from '../../../lambda/proxy/handler';
import { proxyConfigFromStage } from '../../../lambda/proxy/config';
import { clientKeySetVersion } from '../../../lambda/shared/client-keys';
import { generateApiKey, hashKey } from '../../../lambda/shared/keys';
import { resolveStageConfig } from '../../../lib/config';
import { startProxyFixture, type ProxyFixture } from '../../support/proxy';

/**
 * The proxy Lambda behind the public ALB (multi-value headers on): ALB events in and out; its
 * secrets from Secrets Manager (mocked at the SDK); a real credits service on loopback.
 */

const arn = (name: string) => `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${name}-AbCdEf`;
const secrets = { clientKeys: arn('client-keys'), creditsKey: arn('proxy-credits-key'), provider: arn('provider') };
const clientKey = generateApiKey();
const secretsManager = mockClient(SecretsManagerClient);
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
  await fixture.topUp('lambda-client', '1.00');
  secretsManager.on(GetSecretValueCommand, { SecretId: secrets.clientKeys, VersionStage: 'AWSCURRENT' }).resolves({
    SecretString: JSON.stringify({
      version: clientKeySetVersion,
      keys: [{ id: 'key_lambda0001', user_id: 'lambda-client', sha256: hashKey(clientKey).toString('hex'), created_at: '2026-01-01T00:00:00Z', expires_at: '2099-01-01T00:00:00Z', disabled: false }],
    }),
  });
  secretsManager.on(GetSecretValueCommand, { SecretId: secrets.creditsKey, VersionStage: 'AWSCURRENT' }).resolves({ SecretString: fixture.proxyServiceKey });
  secretsManager.on(GetSecretValueCommand, { SecretId: secrets.provider, VersionStage: 'AWSCURRENT' }).resolves({ SecretString: '{}' });
  Object.assign(process.env, {
    AWS_REGION: 'eu-west-1',
    PROXY_CONFIG: JSON.stringify(proxyConfigFromStage(resolveStageConfig('dev'))),
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
});

function albEvent(method: string, path: string, headers: Record<string, string>, body?: unknown) {
  return {
    requestContext: { elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/proxy/0123456789abcdef' } },
    httpMethod: method,
    path,
    multiValueQueryStringParameters: {},
    multiValueHeaders: Object.fromEntries(Object.entries({ host: 'api.example.com', 'content-type': 'application/json', ...headers }).map(([name, value]) => [name, [value]])),
    body: body === undefined ? '' : JSON.stringify(body),
    isBase64Encoded: false,
  };
}

type AlbResult = { statusCode: number; body: string; multiValueHeaders?: Record<string, string[]> };

test('a billed echo completion through an ALB event, with the billing headers', async () => {
  const result = (await handler(
    albEvent('POST', '/v1/chat/completions', { authorization: `Bearer ${clientKey}` }, { model: 'echo', messages: [{ role: 'user', content: 'hi' }] }),
  )) as AlbResult;
  expect(result.statusCode).toBe(200);
  expect(JSON.parse(result.body)).toMatchObject({ object: 'chat.completion', choices: [{ message: { content: 'echo: hi' } }] });
  expect(result.multiValueHeaders?.['x-credits-charged-micros']).toEqual([expect.stringMatching(/^\d+$/)]);
  expect(await fixture.availableMicros('lambda-client')).toBeLessThan(1_000_000n);
});

test('MON-02: every invocation flushes its metrics as EMF (namespace AiProxy, service and stage dimensions)', async () => {
  stdoutLines.length = 0;
  await handler(albEvent('GET', '/v1/models', { authorization: `Bearer ${clientKey}` }));
  const documents = stdoutLines.filter((line) => line.includes('"_aws"')).map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(documents).toContainEqual(
    expect.objectContaining({
      _aws: expect.objectContaining({ CloudWatchMetrics: [expect.objectContaining({ Namespace: 'AiProxy', Dimensions: [['service', 'stage', 'route', 'outcome']] })] }),
      service: 'proxy',
      stage: 'test',
      route: '/v1/models',
      outcome: '2xx',
      Requests: 1,
    }),
  );
});

test('a provider whose secret is still the empty placeholder answers 503 "provider not configured"', async () => {
  const result = (await handler(
    albEvent('POST', '/v1/chat/completions', { authorization: `Bearer ${clientKey}` }, { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] }),
  )) as AlbResult;
  expect(result.statusCode).toBe(503);
  expect(JSON.parse(result.body)).toMatchObject({ error: { code: 'provider_not_configured' } });
});

test('CFG-02 / AUTH-08: the environment holds no secret, and without its secrets the function refuses to start', () => {
  for (const value of Object.values(proxyLambdaSettings(process.env))) expect(JSON.stringify(value ?? null)).not.toContain(clientKey);
  expect(() => proxyLambdaSettings({ AWS_REGION: 'eu-west-1' })).toThrow(/refusing to start, missing configuration: PROXY_CONFIG, CLIENT_KEYS_SECRET_ARN/);
});
