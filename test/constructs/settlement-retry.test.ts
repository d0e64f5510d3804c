import { Match } from 'aws-cdk-lib/assertions';
import { settlementRetryWindowProblems } from '../../lib/constructs/settlement-retry';
import { synthesizeStage, type SynthesizedStage } from '../support/synth';

/** The durable retry path of settlement in AWS (issue 11): queue, dead letters, settle function, alarm. */

let stage: SynthesizedStage;
beforeAll(() => {
  stage = synthesizeStage('production');
});

test('DATA-04: the settlement queues are KMS-encrypted with a key of their own and refuse plain HTTP', () => {
  const queues = stage.templates.api.findResources('AWS::SQS::Queue');
  expect(Object.keys(queues)).toHaveLength(2);
  for (const queue of Object.values(queues))
    expect(queue.Properties).toMatchObject({
      KmsMasterKeyId: { 'Fn::GetAtt': [expect.stringMatching(/^SettlementQueueKey/), 'Arn'] },
    });
  stage.templates.api.hasResourceProperties('AWS::SQS::QueuePolicy', {
    PolicyDocument: {
      Statement: Match.arrayWith([
        Match.objectLike({
          Effect: 'Deny',
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        }),
      ]),
    },
  });
});

test('DATA-06: a settlement that keeps failing goes to the dead-letter queue after its retries, all within the hold timeout', () => {
  stage.templates.api.hasResourceProperties('AWS::SQS::Queue', {
    VisibilityTimeout: 30,
    RedrivePolicy: { maxReceiveCount: 5, deadLetterTargetArn: Match.anyValue() },
  });
  // Queued up to 140 s after the hold (the proxy's timeout), then 5 receives 30 s apart: 290 s < 300 s.
  expect(
    settlementRetryWindowProblems({ holdTimeoutSeconds: 300, queuedWithinSeconds: 140 }),
  ).toEqual([]);
  expect(
    settlementRetryWindowProblems({ holdTimeoutSeconds: 300, queuedWithinSeconds: 160 }),
  ).toEqual([
    expect.stringMatching(
      /^settlement retries end too late: a settlement queued up to 160 s after its hold .* ends 310 s after the hold, not before the hold expires \(300 s\)/,
    ),
  ]);
});

test('the settle function drains the queue, reporting failed items, and reaches the credits service', () => {
  // One message per invocation: its one credits call (5 s) always fits the function's 25 s.
  stage.templates.api.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
    BatchSize: 1,
    FunctionResponseTypes: ['ReportBatchItemFailures'],
  });
  stage.templates.api.hasResourceProperties('AWS::Lambda::Function', {
    Description: Match.stringLikeRegexp('Settles holds'),
    Environment: {
      Variables: Match.objectLike({
        CREDITS_URL: Match.anyValue(),
        CREDITS_KEY_SECRET_ARN: Match.anyValue(),
        SETTLEMENT_RECEIVES_MAX: '5',
      }),
    },
  });
});

test('the proxy may send to the settlement queue and knows its URL', () => {
  stage.templates.api.hasResourceProperties('AWS::Lambda::Function', {
    Description: Match.stringLikeRegexp('AI proxy'),
    Environment: { Variables: Match.objectLike({ SETTLEMENT_QUEUE_URL: Match.anyValue() }) },
  });
  stage.templates.api.hasResourceProperties('AWS::IAM::Policy', {
    PolicyDocument: {
      Statement: Match.arrayWith([
        Match.objectLike({ Action: 'sqs:SendMessage' }),
        Match.objectLike({ Action: ['kms:Decrypt', 'kms:GenerateDataKey'] }),
      ]),
    },
  });
});

test('MON-03: unsettled holds raise an alarm that links its runbook', () => {
  stage.templates.observability.hasResourceProperties('AWS::CloudWatch::Alarm', {
    MetricName: 'UnsettledHolds',
    Threshold: 0,
    AlarmDescription: Match.stringLikeRegexp('Runbook: docs/runbooks/credits-down.md'),
  });
});

test('MON-03: a settlement in the dead-letter queue, or a failing settle function, raises an alarm that links its runbook', () => {
  const observability = stage.templates.observability;
  observability.hasResourceProperties('AWS::CloudWatch::Alarm', {
    MetricName: 'ApproximateNumberOfMessagesVisible',
    Namespace: 'AWS/SQS',
    Threshold: 0,
    AlarmDescription: Match.stringLikeRegexp('dead-letter.*Runbook: docs/runbooks/credits-down.md'),
  });
  observability.hasResourceProperties('AWS::CloudWatch::Alarm', {
    MetricName: 'Errors',
    Namespace: 'AWS/Lambda',
    Threshold: 0,
    AlarmDescription: Match.stringLikeRegexp(
      'settle function.*Runbook: docs/runbooks/credits-down.md',
    ),
  });
});

test('no function environment holds a secret value (CFG-02)', () => {
  const functions = stage.templates.api.findResources('AWS::Lambda::Function');
  for (const resource of Object.values(functions)) {
    const variables = JSON.stringify(resource.Properties?.Environment?.Variables ?? {});
    expect(variables).not.toMatch(/sk-[A-Za-z0-9_-]{20,}/);
  }
});
