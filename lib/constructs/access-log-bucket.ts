import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { type Construct } from 'constructs';
import { acknowledge, nistAndPci } from '../compliance';

export interface AccessLogBucketProps {
  /** Days to keep the logs. */
  readonly expirationDays: number;
}

/**
 * The bucket a load balancer writes its access logs to: encrypted (SSE-S3, the only encryption ALB
 * log delivery supports), TLS-only, private, versioned, expiring, retained when its stack is deleted.
 * A function rather than a wrapping construct, so the bucket's logical id is what it always was (DR-04).
 */
export function createAccessLogBucket(
  scope: Construct,
  id: string,
  props: AccessLogBucketProps,
): Bucket {
  const bucket = new Bucket(scope, id, {
    encryption: BucketEncryption.S3_MANAGED,
    enforceSSL: true,
    minimumTLSVersion: 1.2,
    blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
    objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
    versioned: true,
    lifecycleRules: [
      {
        expiration: Duration.days(props.expirationDays),
        noncurrentVersionExpiration: Duration.days(1),
        abortIncompleteMultipartUploadAfter: Duration.days(1),
      },
    ],
    removalPolicy: RemovalPolicy.RETAIN,
  });
  acknowledge(
    bucket,
    ['AwsSolutions-S1', ...nistAndPci('S3BucketLoggingEnabled')],
    'This bucket is the access log destination itself; logging it to another bucket would only move the question.',
  );
  acknowledge(
    bucket,
    nistAndPci('S3DefaultEncryptionKMS'),
    'ALB access logs support only SSE-S3 (AES-256) encryption, not SSE-KMS.',
  );
  acknowledge(
    bucket,
    nistAndPci('S3BucketReplicationEnabled'),
    'Access logs are versioned and retained in this region for their lifecycle; cross-region replication is not required for request logs.',
  );
  return bucket;
}
