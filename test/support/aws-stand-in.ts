import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in of the two AWS APIs the Lambda functions call on their request path, speaking
 * their wire formats over real HTTP: Secrets Manager (x-amz-json-1.1, `X-Amz-Target:
 * secretsmanager.GetSecretValue`) and SQS (x-amz-json-1.0, `X-Amz-Target: AmazonSQS.SendMessage`).
 * Every request's SigV4 signature is checked with an implementation of its own (node:crypto, from
 * the specification), against the credentials the stand-in was given: a request signed wrong, or
 * for the wrong region or service, gets AWS's 403 `InvalidSignatureException`.
 */

export const standInCredentials = {
  accessKeyId: 'AKIDSTANDIN000000001',
  secretAccessKey: 'stand-in-secret-access-key-0123456789abcd',
  sessionToken: 'stand-in-session-token',
} as const;

export interface StandInRequest {
  readonly target: string;
  readonly body: Record<string, unknown>;
  readonly authorization: string;
  /** The SigV4 credential scope the request named: date/region/service/aws4_request. */
  readonly scope: string;
}

type Failure = { status: number; type: string; message: string };

export interface AwsStandIn {
  readonly url: string;
  /** The environment the handlers read: endpoint override and credentials. */
  readonly environment: Record<string, string>;
  /** A queue URL on the stand-in (the SQS client sends to the queue URL's host). */
  readonly queueUrl: string;
  readonly requests: StandInRequest[];
  /** Sent messages' bodies, in order. */
  readonly messages: string[];
  secret(secretId: string, stages: { current: string; previous?: string }): void;
  /** The next `count` requests for `target` fail with this error. */
  failNext(target: string, count: number, failure: Failure): void;
  /** SendMessage answers with a wrong MD5 of the body. */
  corruptMessageDigests(corrupt: boolean): void;
  close(): Promise<void>;
}

export async function startAwsStandIn(region = 'eu-west-1'): Promise<AwsStandIn> {
  const secrets = new Map<string, { AWSCURRENT: string; AWSPREVIOUS?: string }>();
  const failures = new Map<string, Failure[]>();
  const requests: StandInRequest[] = [];
  const messages: string[] = [];
  let corruptDigests = false;

  function answer(
    response: ServerResponse,
    status: number,
    contentType: string,
    body: unknown,
  ): void {
    response.writeHead(status, {
      'content-type': contentType,
      'x-amzn-requestid': `stand-in-${requests.length}`,
    });
    response.end(JSON.stringify(body));
  }

  function handle(request: IncomingMessage, raw: Buffer, response: ServerResponse): void {
    const target = String(request.headers['x-amz-target'] ?? '');
    const service = target.startsWith('secretsmanager.')
      ? 'secretsmanager'
      : target.startsWith('AmazonSQS.')
        ? 'sqs'
        : undefined;
    const contentType =
      service === 'sqs' ? 'application/x-amz-json-1.0' : 'application/x-amz-json-1.1';
    if (service === undefined)
      return answer(response, 400, contentType, {
        __type: 'UnknownOperationException',
        message: `unknown target ${target}`,
      });
    if (request.headers['content-type'] !== contentType)
      return answer(response, 400, contentType, {
        __type: 'SerializationException',
        message: 'wrong content type',
      });
    const signature = checkSignature(request, raw, region, service);
    if (signature.problem)
      return answer(response, 403, contentType, {
        __type: 'InvalidSignatureException',
        message: signature.problem,
      });
    const body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    requests.push({
      target,
      body,
      authorization: String(request.headers.authorization),
      scope: signature.scope,
    });
    const failure = failures.get(target)?.shift();
    if (failure)
      return answer(response, failure.status, contentType, {
        __type: service === 'sqs' ? `com.amazonaws.sqs#${failure.type}` : failure.type,
        message: failure.message,
      });
    if (target === 'secretsmanager.GetSecretValue') {
      const stages = secrets.get(String(body.SecretId));
      const stage = String(body.VersionStage ?? 'AWSCURRENT') as 'AWSCURRENT' | 'AWSPREVIOUS';
      const value = stages?.[stage];
      if (value === undefined)
        return answer(response, 400, contentType, {
          __type: 'ResourceNotFoundException',
          Message: "Secrets Manager can't find the specified secret value for staging label",
        });
      return answer(response, 200, contentType, {
        ARN: body.SecretId,
        Name: 'stand-in',
        VersionId: `${stage}-version`,
        SecretString: value,
        VersionStages: [stage],
        CreatedDate: 1_780_000_000,
      });
    }
    if (target === 'AmazonSQS.SendMessage') {
      if (body.QueueUrl !== queueUrl || typeof body.MessageBody !== 'string')
        return answer(response, 400, contentType, {
          __type: 'com.amazonaws.sqs#QueueDoesNotExist',
          message: 'The specified queue does not exist.',
        });
      messages.push(body.MessageBody);
      const digest = createHash('md5')
        .update(corruptDigests ? `${body.MessageBody}!` : body.MessageBody, 'utf8')
        .digest('hex');
      return answer(response, 200, contentType, {
        MessageId: `message-${messages.length}`,
        MD5OfMessageBody: digest,
      });
    }
    return answer(response, 400, contentType, {
      __type: 'UnknownOperationException',
      message: `unknown target ${target}`,
    });
  }

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => handle(request, Buffer.concat(chunks), response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const queueUrl = `${url}/123456789012/settlements`;
  return {
    url,
    queueUrl,
    requests,
    messages,
    environment: {
      AWS_ENDPOINT_URL_SECRETS_MANAGER: url,
      AWS_ACCESS_KEY_ID: standInCredentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: standInCredentials.secretAccessKey,
      AWS_SESSION_TOKEN: standInCredentials.sessionToken,
    },
    secret(secretId, stages) {
      secrets.set(secretId, { AWSCURRENT: stages.current, AWSPREVIOUS: stages.previous });
    },
    failNext(target, count, failure) {
      failures.set(target, [
        ...(failures.get(target) ?? []),
        ...Array.from({ length: count }, () => failure),
      ]);
    },
    corruptMessageDigests(corrupt) {
      corruptDigests = corrupt;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

const authorizationPattern =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/;

/**
 * SigV4 verification from the specification: canonical request, string to sign, derived key, HMAC.
 * The canonical URI is the request's path URI-encoded once more (every service but S3 signs it so:
 * Bedrock's `/model/eu.amazon.nova-lite-v1%3A0/converse` is signed as `...v1%253A0...`).
 */
export function checkSignature(
  request: IncomingMessage,
  body: Buffer,
  region: string,
  service: string,
  requiredSignedHeaders: readonly string[] = [
    'host',
    'x-amz-date',
    'x-amz-security-token',
    'x-amz-target',
  ],
): { problem?: string; scope: string } {
  const match = authorizationPattern.exec(String(request.headers.authorization ?? ''));
  if (!match)
    return { problem: 'the Authorization header is not a well-formed SigV4 header', scope: '' };
  const [, accessKeyId, date, signedRegion, signedService, signedHeaders, signature] = match;
  const scope = `${date}/${signedRegion}/${signedService}/aws4_request`;
  if (accessKeyId !== standInCredentials.accessKeyId)
    return { problem: 'unknown access key id', scope };
  if (signedRegion !== region || signedService !== service)
    return {
      problem: `signed for ${signedRegion}/${signedService}, not ${region}/${service}`,
      scope,
    };
  const amzDate = String(request.headers['x-amz-date'] ?? '');
  if (!/^\d{8}T\d{6}Z$/.test(amzDate) || !amzDate.startsWith(date))
    return { problem: 'X-Amz-Date is missing or not of the credential date', scope };
  const headers = signedHeaders.split(';');
  for (const required of requiredSignedHeaders) {
    if (!headers.includes(required)) return { problem: `${required} is not signed`, scope };
  }
  if (request.headers['x-amz-security-token'] !== standInCredentials.sessionToken)
    return { problem: 'the session token is missing', scope };
  const canonicalHeaders = headers
    .map(
      (name) =>
        `${name}:${String(request.headers[name] ?? '')
          .trim()
          .replace(/\s+/g, ' ')}\n`,
    )
    .join('');
  const canonicalRequest = [
    request.method,
    canonicalUri(new URL(request.url ?? '/', 'http://stand-in').pathname),
    '',
    canonicalHeaders,
    signedHeaders,
    sha256Hex(body),
  ].join('\n');
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    amzDate,
    scope,
    sha256Hex(Buffer.from(canonicalRequest, 'utf8')),
  ].join('\n');
  let key: Buffer = Buffer.from(`AWS4${standInCredentials.secretAccessKey}`, 'utf8');
  for (const part of [date, signedRegion, signedService, 'aws4_request'])
    key = createHmac('sha256', key).update(part, 'utf8').digest();
  const expected = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  return expected === signature
    ? { scope }
    : {
        problem: 'The request signature we calculated does not match the signature you provided.',
        scope,
      };
}

function canonicalUri(path: string): string {
  return path
    .split('/')
    .map((segment) =>
      encodeURIComponent(segment).replace(
        /[!'()*]/g,
        (character) => `%${character.charCodeAt(0).toString(16).toUpperCase()}`,
      ),
    )
    .join('/');
}

function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
