import { RemovalPolicy } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface EncryptedLogGroupProps {
  /** The customer-managed key; its policy must let CloudWatch Logs use it (see LogsKey). */
  readonly encryptionKey: IKey;
  /** Retention, days. */
  readonly retentionDays: number;
  /** Only for services that require a fixed name (WAF needs `aws-waf-logs-`). Default: generated. */
  readonly logGroupName?: string;
}

/**
 * A CloudWatch log group that is KMS-encrypted, has a retention period and is retained when its
 * stack is deleted (LOG-03, DATA-04, DR-04): logs are evidence.
 */
export class EncryptedLogGroup extends Construct {
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: EncryptedLogGroupProps) {
    super(scope, id);
    this.logGroup = new LogGroup(this, 'Resource', {
      encryptionKey: props.encryptionKey,
      retention: props.retentionDays as RetentionDays,
      logGroupName: props.logGroupName,
      // A fixed name is kept on delete, but not when its first create rolls back: a retry would
      // otherwise fail on the group the failed attempt left behind.
      removalPolicy:
        props.logGroupName === undefined
          ? RemovalPolicy.RETAIN
          : RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    });
  }
}
