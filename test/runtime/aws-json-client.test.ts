import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AwsCallError,
  awsCallAttemptsMax,
  awsServiceEndpoint,
  environmentCredentials,
} from '../../runtime/aws-json-client';
import { fetchSecretReader } from '../../runtime/secrets-manager';
import { sqsSettlementQueue } from '../../lambda/proxy/settlement-queue';
import { standInCredentials, startAwsStandIn, type AwsStandIn } from '../support/aws-stand-in';

/**
 * The small signed client the Lambda functions use for Secrets Manager and SQS (instead of the AWS
 * SDK, for bundle size and cold start): against a real local stand-in of both JSON protocols that
 * verifies every SigV4 signature on its own. Retries as the SDK's standard mode (throttling and
 * transient errors, at most 3 attempts), a deadline per call, clear errors.
 */

const region = 'eu-west-1';
const secretArn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:proxy-credits-key-AbCdEf';
const job = {
  hold_id: '17',
  user_id: 'alice',
  action: 'settle' as const,
  amount_micros: '1200',
  request_id: 'req-1',
  expires_at_milliseconds: 1_900_000_000_000,
};
let standIn: AwsStandIn;

beforeAll(async () => {
  standIn = await startAwsStandIn(region);
  standIn.secret(secretArn, { current: 'current-value', previous: 'previous-value' });
});
afterAll(() => standIn.close());
beforeEach(() => {
  standIn.requests.length = 0;
  standIn.messages.length = 0;
});

// No jitter: every backoff pause is zero, so retries do not slow the suite (their count is what is checked).
const noJitter = () => 0;
const secrets = (credentials = () => standInCredentials) =>
  fetchSecretReader({ region, endpoint: standIn.url, credentials, random: noJitter });

test('GetSecretValue: signed (SigV4, session token, the secretsmanager scope of the region) and answered by stage', async () => {
  expect(await secrets().readSecretString(secretArn, 'AWSCURRENT', 2_000)).toBe('current-value');
  expect(await secrets().readSecretString(secretArn, 'AWSPREVIOUS', 2_000)).toBe('previous-value');
  expect(standIn.requests.map((request) => [request.target, request.body])).toEqual([
    ['secretsmanager.GetSecretValue', { SecretId: secretArn, VersionStage: 'AWSCURRENT' }],
    ['secretsmanager.GetSecretValue', { SecretId: secretArn, VersionStage: 'AWSPREVIOUS' }],
  ]);
  expect(standIn.requests[0].scope).toMatch(/^\d{8}\/eu-west-1\/secretsmanager\/aws4_request$/);
});

test('a missing stage (ResourceNotFoundException) is undefined, not an error', async () => {
  standIn.secret('no-previous', { current: 'only-current' });
  expect(await secrets().readSecretString('no-previous', 'AWSPREVIOUS', 2_000)).toBeUndefined();
});

test('a wrong secret key is refused by the stand-in (InvalidSignatureException, not retried): the stand-in really verifies', async () => {
  const wrong = fetchSecretReader({
    region,
    endpoint: standIn.url,
    credentials: () => ({
      ...standInCredentials,
      secretAccessKey: 'not-the-secret-access-key-0000000000000',
    }),
    random: noJitter,
  });
  await expect(wrong.readSecretString(secretArn, 'AWSCURRENT', 2_000)).rejects.toMatchObject({
    name: 'InvalidSignatureException',
    status: 403,
  });
  expect(standIn.requests).toHaveLength(0);
});

test('throttling is retried with backoff, like the SDK; the third attempt succeeds', async () => {
  standIn.failNext('secretsmanager.GetSecretValue', awsCallAttemptsMax - 1, {
    status: 400,
    type: 'ThrottlingException',
    message: 'Rate exceeded',
  });
  expect(await secrets().readSecretString(secretArn, 'AWSCURRENT', 10_000)).toBe('current-value');
  expect(standIn.requests).toHaveLength(awsCallAttemptsMax);
});

test('after the last attempt the error names the operation and the code; a client error (AccessDenied) is not retried', async () => {
  standIn.failNext('secretsmanager.GetSecretValue', awsCallAttemptsMax, {
    status: 503,
    type: 'ServiceUnavailable',
    message: 'try later',
  });
  await expect(secrets().readSecretString(secretArn, 'AWSCURRENT', 10_000)).rejects.toThrow(
    'secretsmanager.GetSecretValue: ServiceUnavailable (HTTP 503): try later',
  );
  expect(standIn.requests).toHaveLength(awsCallAttemptsMax);
  standIn.requests.length = 0;
  standIn.failNext('secretsmanager.GetSecretValue', 1, {
    status: 400,
    type: 'AccessDeniedException',
    message: 'not allowed',
  });
  await expect(secrets().readSecretString(secretArn, 'AWSCURRENT', 10_000)).rejects.toMatchObject({
    name: 'AccessDeniedException',
    status: 400,
  });
  expect(standIn.requests).toHaveLength(1);
});

describe('deadlines and connection failures', () => {
  let hanging: Server;
  let hangingUrl: string;
  beforeAll(async () => {
    hanging = createServer(() => {}); // accepts, never answers
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    hangingUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
  });
  afterAll(
    () =>
      new Promise<void>((resolve) => {
        hanging.closeAllConnections();
        hanging.close(() => resolve());
      }),
  );

  test('a service that never answers: TimeoutError at the deadline', async () => {
    const reader = fetchSecretReader({
      region,
      endpoint: hangingUrl,
      credentials: () => standInCredentials,
    });
    await expect(reader.readSecretString(secretArn, 'AWSCURRENT', 200)).rejects.toMatchObject({
      name: 'TimeoutError',
      message: 'secretsmanager.GetSecretValue: no answer within 200 ms',
    });
  });

  test('a refused connection is retried, then a NetworkingError', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const reader = fetchSecretReader({
      region,
      endpoint: `http://127.0.0.1:${port}`,
      credentials: () => standInCredentials,
      random: noJitter,
    });
    await expect(reader.readSecretString(secretArn, 'AWSCURRENT', 10_000)).rejects.toMatchObject({
      name: 'NetworkingError',
    });
  });
});

test('credentials come from the environment the Lambda runtime sets; without them, a clear error', () => {
  expect(
    environmentCredentials({
      AWS_ACCESS_KEY_ID: 'AKID',
      AWS_SECRET_ACCESS_KEY: 'secret',
      AWS_SESSION_TOKEN: 'token',
    }),
  ).toEqual({ accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'token' });
  expect(() => environmentCredentials({})).toThrow(
    new AwsCallError(
      'CredentialsMissing',
      'no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set',
      undefined,
    ),
  );
});

test('the endpoint is the regional one (amazonaws.com.cn in China), unless the SDK variable overrides it', () => {
  expect(
    awsServiceEndpoint('secretsmanager', 'AWS_ENDPOINT_URL_SECRETS_MANAGER', 'eu-west-1', {}),
  ).toBe('https://secretsmanager.eu-west-1.amazonaws.com');
  expect(
    awsServiceEndpoint('secretsmanager', 'AWS_ENDPOINT_URL_SECRETS_MANAGER', 'cn-north-1', {}),
  ).toBe('https://secretsmanager.cn-north-1.amazonaws.com.cn');
  expect(
    awsServiceEndpoint('secretsmanager', 'AWS_ENDPOINT_URL_SECRETS_MANAGER', 'eu-west-1', {
      AWS_ENDPOINT_URL_SECRETS_MANAGER: 'http://127.0.0.1:4566',
    }),
  ).toBe('http://127.0.0.1:4566');
});

describe('the settlement queue (SendMessage over SQS JSON)', () => {
  const queue = () =>
    sqsSettlementQueue({
      region,
      queueUrl: standIn.queueUrl,
      credentials: () => standInCredentials,
      random: noJitter,
    });

  test("a job is sent to the queue URL's host, signed for sqs, and its body is the validated job", async () => {
    await queue().enqueue(job);
    expect(standIn.messages.map((message) => JSON.parse(message) as unknown)).toEqual([job]);
    expect(standIn.requests[0]).toMatchObject({
      target: 'AmazonSQS.SendMessage',
      body: { QueueUrl: standIn.queueUrl },
    });
    expect(standIn.requests[0].scope).toMatch(/\/eu-west-1\/sqs\/aws4_request$/);
  });

  test('throttled (RequestThrottled) sends are retried; a namespaced error code reads bare', async () => {
    standIn.failNext('AmazonSQS.SendMessage', 1, {
      status: 400,
      type: 'RequestThrottled',
      message: 'slow down',
    });
    await queue().enqueue(job);
    expect(standIn.messages).toHaveLength(1);
    const missing = sqsSettlementQueue({
      region,
      queueUrl: `${standIn.url}/123456789012/no-such-queue`,
      credentials: () => standInCredentials,
      random: noJitter,
    });
    await expect(missing.enqueue(job)).rejects.toMatchObject({
      name: 'QueueDoesNotExist',
      status: 400,
    });
  });

  test('an answer whose MD5 of the body does not match is an error (the SDK checks it too)', async () => {
    standIn.corruptMessageDigests(true);
    try {
      await expect(queue().enqueue(job)).rejects.toMatchObject({ name: 'InvalidChecksumError' });
    } finally {
      standIn.corruptMessageDigests(false);
    }
  });

  test('a job that is not a settlement job is refused before anything is sent', async () => {
    await expect(queue().enqueue({ ...job, hold_id: '0' })).rejects.toThrow();
    expect(standIn.requests).toHaveLength(0);
  });
});
