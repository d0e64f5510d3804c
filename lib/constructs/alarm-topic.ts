import { Aws, Duration, RemovalPolicy } from 'aws-cdk-lib';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';

export interface AlarmTopicProps {
  /** Construct ids of the key and the topic (kept stable: the key is retained, DR-04). */
  readonly keyId: string;
  readonly topicId: string;
  readonly keyDescription: string;
  readonly displayName: string;
}

/**
 * An SNS topic for alarms, encrypted with a customer-managed key (rotating, retained) that CloudWatch
 * alarms of this account and region may use to publish (aws:SourceAccount and aws:SourceArn, so no
 * other account's alarm can use the key), and reachable over TLS only. A function, so the ids stay
 * the caller's.
 */
export function createAlarmTopic(scope: Construct, props: AlarmTopicProps): Topic {
  const key = new Key(scope, props.keyId, {
    description: props.keyDescription,
    enableKeyRotation: true,
    pendingWindow: Duration.days(30),
    removalPolicy: RemovalPolicy.RETAIN,
  });
  key.addToResourcePolicy(
    new PolicyStatement({
      sid: 'AllowCloudWatchAlarmsToPublish',
      principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      resources: ['*'],
      conditions: {
        StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
        ArnLike: {
          'aws:SourceArn': `arn:${Aws.PARTITION}:cloudwatch:${Aws.REGION}:${Aws.ACCOUNT_ID}:alarm:*`,
        },
      },
    }),
  );
  return new Topic(scope, props.topicId, {
    displayName: props.displayName,
    masterKey: key,
    enforceSSL: true,
  });
}
