import { AwsV4Signer } from 'aws4fetch';

/**
 * A small client for AWS's JSON protocols (Secrets Manager's x-amz-json-1.1, SQS's x-amz-json-1.0),
 * for the Lambda functions on the request path: SigV4 over `fetch` (aws4fetch's signer), with the
 * execution role's credentials from the environment, a deadline per call, and the AWS SDK's
 * standard retry behaviour (up to 3 attempts, full-jitter exponential backoff, throttling and
 * transient errors only). The full SDK clients cost ~345 KiB and ~30 ms of cold import in the proxy
 * bundle for two operations (README, decisions); the rotation function, the gateway and the
 * scripts keep them.
 */

/** Attempts of one call, as the SDK's standard retry mode. */
export const awsCallAttemptsMax = 3;
/** Backoff bases of the SDK's standard retry mode: transient errors, and throttling (which needs a longer pause). */
export const awsRetryDelayBaseMilliseconds = 100;
export const awsThrottlingRetryDelayBaseMilliseconds = 500;
export const awsRetryDelayMaxMilliseconds = 20_000;

/** Error codes the SDK treats as throttling (@smithy/service-error-classification). */
const throttlingCodes = new Set([
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
  'LimitExceededException',
  'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ThrottledException',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'TransactionInProgressException',
]);
const transientCodes = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalFailure',
  'InternalServerError',
  'ServiceUnavailable',
]);
const transientStatuses = new Set([500, 502, 503, 504]);

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/**
 * The execution role's credentials, as the Lambda runtime puts them in the environment (the SDK's
 * `fromEnv`). Read at every call: cheap, and never stale if the runtime replaces them.
 */
export function environmentCredentials(
  environment: NodeJS.ProcessEnv = process.env,
): AwsCredentials {
  const accessKeyId = environment.AWS_ACCESS_KEY_ID;
  const secretAccessKey = environment.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey)
    throw new AwsCallError(
      'CredentialsMissing',
      'no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set',
      undefined,
    );
  return { accessKeyId, secretAccessKey, sessionToken: environment.AWS_SESSION_TOKEN || undefined };
}

/** The regional endpoint of a service; an `AWS_ENDPOINT_URL_<SERVICE>` override (the SDK's own variable) wins. */
export function awsServiceEndpoint(
  hostPrefix: string,
  endpointVariable: string,
  region: string,
  environment: NodeJS.ProcessEnv = process.env,
): string {
  const override = environment[endpointVariable] || environment.AWS_ENDPOINT_URL;
  if (override) return override;
  const dnsSuffix = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
  return `https://${hostPrefix}.${region}.${dnsSuffix}`;
}

/**
 * A failed call. `name` is the service's error code (`ResourceNotFoundException`,
 * `ThrottlingException`...), as the SDK's exceptions have it, so callers branch on the same names.
 */
export class AwsCallError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** The HTTP status; undefined when no answer arrived. */
    readonly status: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = code;
  }
}

export interface AwsJsonClientOptions {
  /** The SigV4 signing name: `secretsmanager`, `sqs`. */
  readonly signingName: string;
  readonly region: string;
  /** Where calls go unless a call names its own endpoint (SQS: the queue URL's origin). */
  readonly endpoint: string;
  /** `X-Amz-Target` is `<targetPrefix>.<Operation>`: `secretsmanager`, `AmazonSQS`. */
  readonly targetPrefix: string;
  readonly jsonVersion: '1.0' | '1.1';
  readonly credentials?: () => AwsCredentials;
  /** The random source of the backoff jitter (tests make it deterministic). */
  readonly random?: () => number;
}

export interface AwsCallOptions {
  /** The whole call's deadline, retries and pauses included. */
  readonly timeoutMilliseconds: number;
  readonly endpoint?: string;
}

export interface AwsJsonClient {
  call<Output>(
    operation: string,
    input: Record<string, unknown>,
    options: AwsCallOptions,
  ): Promise<Output>;
}

export function awsJsonClient(options: AwsJsonClientOptions): AwsJsonClient {
  const credentials = options.credentials ?? (() => environmentCredentials());
  const random = options.random ?? Math.random;
  const contentType = `application/x-amz-json-${options.jsonVersion}`;
  const signingKeys = new Map<string, ArrayBuffer>(); // aws4fetch caches the derived key per day

  async function attempt(
    url: string,
    operation: string,
    body: string,
    signal: AbortSignal,
  ): Promise<Response> {
    const signer = new AwsV4Signer({
      url,
      method: 'POST',
      headers: {
        'content-type': contentType,
        'x-amz-target': `${options.targetPrefix}.${operation}`,
      },
      body,
      ...credentials(),
      service: options.signingName,
      region: options.region,
      cache: signingKeys,
    });
    const signed = await signer.sign();
    return fetch(signed.url, { method: 'POST', headers: signed.headers, body, signal });
  }

  return {
    async call<Output>(
      operation: string,
      input: Record<string, unknown>,
      callOptions: AwsCallOptions,
    ): Promise<Output> {
      // One signal for the whole call, kept referenced for its lifetime (an unreferenced timeout signal can be collected).
      const deadline = AbortSignal.timeout(callOptions.timeoutMilliseconds);
      const url = new URL('/', callOptions.endpoint ?? options.endpoint).toString();
      const body = JSON.stringify(input);
      const what = `${options.targetPrefix}.${operation}`;
      for (let attemptNumber = 1; ; attemptNumber += 1) {
        let failure: AwsCallError;
        try {
          const response = await attempt(url, operation, body, deadline);
          const text = await response.text();
          if (response.ok) return parsedAnswer<Output>(what, text);
          failure = serviceError(what, response, text);
        } catch (error) {
          if (deadline.aborted)
            throw new AwsCallError(
              'TimeoutError',
              `${what}: no answer within ${callOptions.timeoutMilliseconds} ms`,
              undefined,
              { cause: error },
            );
          if (error instanceof AwsCallError) throw error;
          // fetch rejects with a TypeError when the connection fails (reset, refused, DNS): transient.
          failure = new AwsCallError(
            'NetworkingError',
            `${what}: ${(error as Error).message}`,
            undefined,
            { cause: error },
          );
        }
        const retry = retryKind(failure);
        if (retry === undefined || attemptNumber >= awsCallAttemptsMax) throw failure;
        const base =
          retry === 'throttling'
            ? awsThrottlingRetryDelayBaseMilliseconds
            : awsRetryDelayBaseMilliseconds;
        await pause(
          Math.floor(Math.min(awsRetryDelayMaxMilliseconds, random() * 2 ** attemptNumber * base)),
          deadline,
        );
      }
    },
  };
}

function parsedAnswer<Output>(what: string, text: string): Output {
  try {
    return (text === '' ? {} : JSON.parse(text)) as Output;
  } catch {
    throw new AwsCallError('MalformedResponse', `${what}: the answer is not JSON`, 200);
  }
}

/** The error of a non-2xx answer: the code from `x-amzn-ErrorType` or the body's `__type`/`code`, as the SDK reads it. */
function serviceError(what: string, response: Response, text: string): AwsCallError {
  let parsed: Record<string, unknown> = {};
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null) parsed = value as Record<string, unknown>;
  } catch {
    // Not JSON (a load balancer's page): the status alone says what happened.
  }
  const raw =
    response.headers.get('x-amzn-errortype') ??
    stringField(parsed, '__type') ??
    stringField(parsed, 'code') ??
    `Http${response.status}`;
  // "com.amazonaws.sqs#QueueDoesNotExist" and "ThrottlingException:http://..." both name the bare code.
  const code = raw.split(':')[0].split('#').pop() as string;
  const message =
    stringField(parsed, 'message') ?? stringField(parsed, 'Message') ?? response.statusText;
  return new AwsCallError(
    code,
    `${what}: ${code} (HTTP ${response.status}): ${message}`,
    response.status,
  );
}

function stringField(object: Record<string, unknown>, name: string): string | undefined {
  const value = object[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function retryKind(error: AwsCallError): 'throttling' | 'transient' | undefined {
  if (error.status === 429 || throttlingCodes.has(error.code)) return 'throttling';
  if (
    error.code === 'NetworkingError' ||
    transientCodes.has(error.code) ||
    (error.status !== undefined && transientStatuses.has(error.status))
  )
    return 'transient';
  return undefined;
}

/** Waits, but no longer than the call's deadline. */
function pause(milliseconds: number, deadline: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, milliseconds);
    function done() {
      clearTimeout(timer);
      deadline.removeEventListener('abort', done);
      resolve();
    }
    deadline.addEventListener('abort', done, { once: true });
  });
}
