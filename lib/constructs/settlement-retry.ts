import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Peer, Port, type IVpc } from 'aws-cdk-lib/aws-ec2';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Key, type IKey } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { entryPaths } from '../deployed-code';
import { ServiceFunction } from './service-function';

/** Receives of one settlement before it is given up and counted unsettled: with the visibility timeout, 2.5 minutes. */
export const settlementReceivesMax = 5;
/** A settlement that failed comes back after this. */
export const settlementVisibilitySeconds = 30;

export interface SettlementRetryProps {
  readonly vpc: IVpc;
  readonly logsKey: IKey;
  readonly logRetentionDays: number;
  readonly logLevel: string;
  readonly stage: string;
  /** The proxy's key of the credits service: the settle function settles as the proxy would. */
  readonly creditsKeySecret: ISecret;
  /** The longest hold: every retry must happen before the hold expires. */
  readonly holdTimeoutSeconds: number;
  /** The latest a settlement is queued after its hold was placed: the proxy function's timeout. */
  readonly queuedWithinSeconds: number;
}

/** Every problem with the retry window: the last receive must come before the hold expires. */
export function settlementRetryWindowProblems(input: {
  holdTimeoutSeconds: number;
  queuedWithinSeconds: number;
}): string[] {
  const lastReceiveSeconds =
    input.queuedWithinSeconds + settlementReceivesMax * settlementVisibilitySeconds;
  if (lastReceiveSeconds < input.holdTimeoutSeconds) return [];
  return [
    `settlement retries end too late: a settlement queued up to ${input.queuedWithinSeconds} s after its hold (the proxy's function timeout), ` +
      `then ${settlementReceivesMax} receives ${settlementVisibilitySeconds} s apart, ends ${lastReceiveSeconds} s after the hold, ` +
      `not before the hold expires (${input.holdTimeoutSeconds} s)`,
  ];
}

/**
 * The durable retry path of settlement (issue 11): an SQS queue, KMS-encrypted with a key of its
 * own and TLS-only, that the proxy sends a settlement to when the credits service could not apply it
 * inline, and the settle function that drains it through the credits service. A message that keeps
 * failing returns `settlementReceivesMax` times, then goes to the dead-letter queue; the function
 * counts it as `UnsettledHolds` first (alarmed in the observability stack). Wire it with
 * `allowProxy`, and `connectCredits` once the credits URL is known.
 */
export class SettlementRetry extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly settle: ServiceFunction;
  private readonly queueKey: Key;

  constructor(scope: Construct, id: string, props: SettlementRetryProps) {
    super(scope, id);
    const problems = settlementRetryWindowProblems(props);
    if (problems.length > 0) throw new Error(problems.join('; '));
    const encryptionMasterKey = (this.queueKey = new Key(this, 'QueueKey', {
      description: 'Encrypts the settlement retry queues (hold ids, user ids and amounts)',
      enableKeyRotation: true,
      pendingWindow: Duration.days(30),
      removalPolicy: RemovalPolicy.RETAIN,
    }));
    const encryption = { encryption: QueueEncryption.KMS, encryptionMasterKey, enforceSSL: true };
    this.deadLetterQueue = new Queue(this, 'DeadLetters', {
      ...encryption,
      retentionPeriod: Duration.days(14),
    });
    this.queue = new Queue(this, 'Settlements', {
      ...encryption,
      visibilityTimeout: Duration.seconds(settlementVisibilitySeconds),
      // Nothing in it can be applied after the longest hold has expired.
      retentionPeriod: Duration.seconds(Math.max(props.holdTimeoutSeconds, 60)),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: settlementReceivesMax },
    });
    this.settle = new ServiceFunction(this, 'Settle', {
      vpc: props.vpc,
      logsKey: props.logsKey,
      logRetentionDays: props.logRetentionDays,
      logLevel: props.logLevel,
      entry: entryPaths.settlement,
      description: 'Settles holds the proxy could not settle inline (from the settlement queue)',
      // Below the visibility timeout: a message is never handled twice at once.
      timeout: Duration.seconds(settlementVisibilitySeconds - 5),
      asynchronousFailures:
        'a message that fails returns to the settlement queue and, after its last receive, goes to the dead-letter queue of that queue',
      environment: {
        CREDITS_KEY_SECRET_ARN: props.creditsKeySecret.secretArn,
        STAGE: props.stage,
        SETTLEMENT_RECEIVES_MAX: String(settlementReceivesMax),
      },
    });
    props.creditsKeySecret.grantRead(this.settle.function);
    // Secrets Manager and KMS through the VPC's interface endpoints.
    this.settle.securityGroup.addEgressRule(
      Peer.ipv4(props.vpc.vpcCidrBlock),
      Port.tcp(443),
      'AWS APIs through the VPC endpoints',
    );
    // One message per invocation: its one credits call always fits the function's timeout.
    this.settle.function.addEventSource(
      new SqsEventSource(this.queue, { batchSize: 1, reportBatchItemFailures: true }),
    );
  }

  /**
   * Lets a function send settlements: SendMessage on the queue, and the two KMS actions SSE-KMS
   * needs for it on the queue's key (named, not the wildcards `grantSendMessages` writes).
   */
  allowSend(fn: IFunction): void {
    fn.addToRolePolicy(
      new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [this.queue.queueArn] }),
    );
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [this.queueKey.keyArn],
      }),
    );
  }

  /** The credits service's URL, once its load balancer exists. */
  connectCredits(creditsUrl: string): void {
    this.settle.function.addEnvironment('CREDITS_URL', creditsUrl);
  }
}
