import { awsJsonClient, awsServiceEndpoint, type AwsCredentials } from './aws-json-client';

/**
 * What the services need of Secrets Manager: the secret string of one version stage. The Lambda
 * functions read it through the small signed client (./aws-json-client.ts); the gateway, which runs
 * in a container and already ships the SDK, through the SDK (./sdk-secret-reader.ts).
 */
export interface SecretReader {
  /** The SecretString of `stage`; undefined if that stage does not exist (AWSPREVIOUS before the first rotation). */
  readSecretString(
    secretId: string,
    stage: SecretStage,
    timeoutMilliseconds: number,
  ): Promise<string | undefined>;
}

export type SecretStage = 'AWSCURRENT' | 'AWSPREVIOUS';

interface GetSecretValueOutput {
  readonly SecretString?: string;
}

export interface FetchSecretReaderOptions {
  readonly region: string;
  /** Default: the regional endpoint, or `AWS_ENDPOINT_URL_SECRETS_MANAGER` (the SDK's variable). */
  readonly endpoint?: string;
  readonly credentials?: () => AwsCredentials;
  /** The backoff jitter's random source; default Math.random. */
  readonly random?: () => number;
}

/** GetSecretValue over Secrets Manager's JSON protocol (x-amz-json-1.1), SigV4-signed with the execution role's credentials. */
export function fetchSecretReader(options: FetchSecretReaderOptions): SecretReader {
  const client = awsJsonClient({
    signingName: 'secretsmanager',
    region: options.region,
    endpoint:
      options.endpoint ??
      awsServiceEndpoint('secretsmanager', 'AWS_ENDPOINT_URL_SECRETS_MANAGER', options.region),
    targetPrefix: 'secretsmanager',
    jsonVersion: '1.1',
    credentials: options.credentials,
    random: options.random,
  });
  return {
    async readSecretString(secretId, stage, timeoutMilliseconds) {
      let answer: GetSecretValueOutput;
      try {
        answer = await client.call<GetSecretValueOutput>(
          'GetSecretValue',
          { SecretId: secretId, VersionStage: stage },
          { timeoutMilliseconds },
        );
      } catch (error) {
        if (error instanceof Error && error.name === 'ResourceNotFoundException') return undefined;
        throw error;
      }
      if (typeof answer.SecretString !== 'string')
        throw new Error(`the ${stage} version of ${secretId} holds no SecretString`);
      return answer.SecretString;
    },
  };
}
