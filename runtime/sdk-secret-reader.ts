import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SecretReader } from './secrets-manager';

/** The SecretReader over the AWS SDK, for what runs outside Lambda's request path (the gateway's container). */
export function sdkSecretReader(client: SecretsManagerClient): SecretReader {
  return {
    async readSecretString(secretId, stage, timeoutMilliseconds) {
      let secretString: string | undefined;
      try {
        const answer = await client.send(
          new GetSecretValueCommand({ SecretId: secretId, VersionStage: stage }),
          { abortSignal: AbortSignal.timeout(timeoutMilliseconds) },
        );
        secretString = answer.SecretString;
      } catch (error) {
        if (error instanceof Error && error.name === 'ResourceNotFoundException') return undefined;
        throw error;
      }
      if (secretString === undefined)
        throw new Error(`the ${stage} version of ${secretId} holds no SecretString`);
      return secretString;
    },
  };
}
