import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { BackupPlan, BackupPlanRule, BackupResource, BackupVault } from 'aws-cdk-lib/aws-backup';
import { Schedule } from 'aws-cdk-lib/aws-events';
import type { Volume } from 'aws-cdk-lib/aws-ec2';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { acknowledge } from '../compliance';

export interface LedgerBackupProps {
  readonly encryptionKey: IKey;
  readonly volumes: readonly Volume[];
  /** The tag every replica volume carries; restored volumes that keep it are selected too. */
  readonly backupTag: readonly [string, string];
  readonly retentionDays: number;
  /** Copy every recovery point to this vault (another region). Default: no copy. */
  readonly copyToVaultArn?: string;
}

/**
 * Daily snapshots of the replica volumes, kept `retentionDays` (35 by default) in a KMS-encrypted
 * vault that is retained with the stack (DATA-02, DR-04). The selection names every volume and the backup
 * tag. Restores: docs/runbooks/ledger-restore.md.
 */
export class LedgerBackup extends Construct {
  readonly vault: BackupVault;
  readonly plan: BackupPlan;

  constructor(scope: Construct, id: string, props: LedgerBackupProps) {
    super(scope, id);
    this.vault = new BackupVault(this, 'Vault', {
      encryptionKey: props.encryptionKey,
      // Kept when the stack is deleted, but not when its first create rolls back: the vault's name is
      // fixed at synth (AWS Backup requires one), so a retained empty vault would make the retry fail.
      removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
      // Recovery points expire by the plan's lifecycle only: nobody deletes them by hand (DATA-02).
      blockRecoveryPointDeletion: true,
    });
    const deleteAfter = Duration.days(props.retentionDays);
    this.plan = new BackupPlan(this, 'Plan', {
      backupVault: this.vault,
      backupPlanRules: [
        new BackupPlanRule({
          ruleName: 'DailyLedgerVolumes',
          // 03:00 UTC, a quiet hour; TigerBeetle's data file is crash-consistent, so a volume
          // snapshot restores like a replica that lost power.
          scheduleExpression: Schedule.cron({ minute: '0', hour: '3' }),
          startWindow: Duration.hours(1),
          completionWindow: Duration.hours(4),
          deleteAfter,
          copyActions: props.copyToVaultArn
            ? [
                {
                  destinationBackupVault: BackupVault.fromBackupVaultArn(
                    this,
                    'CopyVault',
                    props.copyToVaultArn,
                  ),
                  deleteAfter,
                },
              ]
            : undefined,
        }),
      ],
    });
    const [tagKey, tagValue] = props.backupTag;
    this.plan.addSelection('ReplicaVolumes', {
      resources: [
        ...props.volumes.map((volume) =>
          BackupResource.fromArn(
            Stack.of(this).formatArn({
              service: 'ec2',
              resource: 'volume',
              resourceName: volume.volumeId,
            }),
          ),
        ),
        BackupResource.fromTag(tagKey, tagValue),
      ],
    });
    acknowledge(
      this.plan.node.findChild('ReplicaVolumes'),
      [
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup]',
      ],
      'The backup selection role uses AWSBackupServiceRolePolicyForBackup, the AWS-maintained policy AWS Backup requires to snapshot EBS volumes.',
    );
  }
}
