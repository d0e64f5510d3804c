import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  InvalidParameterException,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';

/**
 * One Secrets Manager secret with versions and staging labels, behind aws-sdk-client-mock: enough
 * of the service's behaviour (RotateSecret stages AWSPENDING on the request token before calling
 * the function; moving AWSCURRENT moves AWSPREVIOUS to the old version) that a rotation can run its
 * four steps against it and the real verifiers can read the result.
 */

interface Version {
  value?: string;
  readonly stages: Set<string>;
}

const notFound = (message: string) => new ResourceNotFoundException({ message, $metadata: {} });

export class FakeSecret {
  readonly versions = new Map<string, Version>();
  rotationEnabled = true;
  readonly mock: AwsClientStub<SecretsManagerClient> = mockClient(SecretsManagerClient);

  constructor(
    readonly arn: string,
    initialValue: string,
  ) {
    this.versions.set('version-1', { value: initialValue, stages: new Set(['AWSCURRENT']) });
    this.install();
  }

  /** What RotateSecret does before it invokes the function: an empty version staged AWSPENDING. */
  startRotation(token: string): void {
    this.moveStage('AWSPENDING', token);
  }

  valueOf(stage: string): string | undefined {
    return [...this.versions.values()].find((version) => version.stages.has(stage))?.value;
  }

  versionOf(stage: string): string | undefined {
    return [...this.versions.entries()].find(([, version]) => version.stages.has(stage))?.[0];
  }

  restore(): void {
    this.mock.restore();
  }

  private moveStage(stage: string, versionId: string): void {
    for (const version of this.versions.values()) version.stages.delete(stage);
    const target = this.versions.get(versionId) ?? { stages: new Set<string>() };
    target.stages.add(stage);
    this.versions.set(versionId, target);
  }

  private checkId(secretId: string | undefined): void {
    if (secretId !== this.arn) throw notFound("Secrets Manager can't find the specified secret.");
  }

  private install(): void {
    const mock = this.mock;
    mock.on(DescribeSecretCommand).callsFake((input: { SecretId?: string }) => {
      this.checkId(input.SecretId);
      const stages = Object.fromEntries(
        [...this.versions.entries()].map(([id, version]) => [id, [...version.stages]]),
      );
      return { ARN: this.arn, RotationEnabled: this.rotationEnabled, VersionIdsToStages: stages };
    });
    mock
      .on(GetSecretValueCommand)
      .callsFake((input: { SecretId?: string; VersionId?: string; VersionStage?: string }) => {
        this.checkId(input.SecretId);
        const stage =
          input.VersionStage ?? (input.VersionId === undefined ? 'AWSCURRENT' : undefined);
        const entry = [...this.versions.entries()].find(
          ([id, version]) =>
            (input.VersionId === undefined || id === input.VersionId) &&
            (stage === undefined || version.stages.has(stage)),
        );
        if (entry === undefined || entry[1].value === undefined)
          throw notFound("Secrets Manager can't find the specified secret value.");
        return {
          ARN: this.arn,
          VersionId: entry[0],
          SecretString: entry[1].value,
          VersionStages: [...entry[1].stages],
        };
      });
    mock
      .on(PutSecretValueCommand)
      .callsFake(
        (input: {
          SecretId?: string;
          ClientRequestToken?: string;
          SecretString?: string;
          VersionStages?: string[];
        }) => {
          this.checkId(input.SecretId);
          const versionId = input.ClientRequestToken as string;
          const existing = this.versions.get(versionId);
          if (existing?.value !== undefined && existing.value !== input.SecretString)
            throw new ResourceExistsException({ message: 'version exists', $metadata: {} });
          for (const stage of input.VersionStages ?? ['AWSCURRENT'])
            this.moveStage(stage, versionId);
          (this.versions.get(versionId) as Version).value = input.SecretString;
          return { ARN: this.arn, VersionId: versionId };
        },
      );
    mock
      .on(UpdateSecretVersionStageCommand)
      .callsFake(
        (input: {
          SecretId?: string;
          VersionStage?: string;
          MoveToVersionId?: string;
          RemoveFromVersionId?: string;
        }) => {
          this.checkId(input.SecretId);
          const stage = input.VersionStage as string;
          const holder = this.versionOf(stage);
          if (
            holder !== undefined &&
            holder !== input.MoveToVersionId &&
            holder !== input.RemoveFromVersionId
          ) {
            throw new InvalidParameterException({
              message: `${stage} is attached to another version; name it in RemoveFromVersionId`,
              $metadata: {},
            });
          }
          if (!this.versions.has(input.MoveToVersionId as string))
            throw notFound('no such version');
          this.moveStage(stage, input.MoveToVersionId as string);
          if (stage === 'AWSCURRENT' && holder !== undefined && holder !== input.MoveToVersionId)
            this.moveStage('AWSPREVIOUS', holder);
          return { ARN: this.arn };
        },
      );
  }
}
