import { Match } from 'aws-cdk-lib/assertions';
import { synthesizeStage, type SynthesizedStage } from '../support/synth';

/** The durable retry path of settlement in AWS (issue 11): queue, dead letters, settle function, alarm. */

let stage: SynthesizedStage;
beforeAll(() => {
  stage = synthesizeStage('production');
});

test('DATA-04: the settlement queues are KMS-encrypted with a key of their own and refuse plain HTTP', () => {
  const queues = stage.templates.api.findResources('AWS::SQS::Queue');
  expect(Object.keys(queues)).toHaveLength(2);
  for (const queue of Object.values(queues)) expect(queue.Properties).toMatchObject({ KmsMasterKeyId: { 'Fn::GetAtt': [expect.stringMatching(/^SettlementQueueKey/), 'Arn'] } });
  stage.templates.api.hasResourceProperties('AWS::SQS::QueuePolicy', {
    PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
  });
});

test('DATA-06: a settlement that keeps failing goes to the dead-letter queue after its retries, all within the hold timeout', () => {
  stage.templates.api.hasResourceProperties('AWS::SQS::Queue', {
    VisibilityTimeout: 30,
    RedrivePolicy: { maxReceiveCount: 8, deadLetterTargetArn: Match.anyValue() },
  });
});

test('the settle function drains the queue, reporting failed items, and reaches the credits service', () => {
  stage.templates.api.hasResourceProperties('AWS::Lambda::EventSourceMapping', { BatchSize: 10, FunctionResponseTypes: ['ReportBatchItemFailures'] });
  stage.templates.api.hasResourceProperties('AWS::Lambda::Function', {
    Description: Match.stringLikeRegexp('Settles holds'),
    Environment: { Variables: Match.objectLike({ CREDITS_URL: Match.anyValue(), CREDITS_KEY_SECRET_ARN: Match.anyValue(), SETTLEMENT_RECEIVES_MAX: '8' }) },
  });
});

test('the proxy may send to the settlement queue and knows its URL', () => {
  stage.templates.api.hasResourceProperties('AWS::Lambda::Function', {
    Description: Match.stringLikeRegexp('AI proxy'),
    Environment: { Variables: Match.objectLike({ SETTLEMENT_QUEUE_URL: Match.anyValue() }) },
  });
  stage.templates.api.hasResourceProperties('AWS::IAM::Policy', {
    PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'sqs:SendMessage' }), Match.objectLike({ Action: ['kms:Decrypt', 'kms:GenerateDataKey'] })]) },
  });
});

test('MON-03: unsettled holds raise an alarm that links its runbook', () => {
  stage.templates.observability.hasResourceProperties('AWS::CloudWatch::Alarm', {
    MetricName: 'UnsettledHolds',
    Threshold: 0,
    AlarmDescription: Match.stringLikeRegexp('Runbook: docs/runbooks/credits-down.md'),
  });
});

test('no function environment holds a secret value (CFG-02)', () => {
  const functions = stage.templates.api.findResources('AWS::Lambda::Function');
  for (const resource of Object.values(functions)) {
    const variables = JSON.stringify(resource.Properties?.Environment?.Variables ?? {});
    expect(variables).not.toMatch(/sk-[A-Za-z0-9_-]{20,}/);
  }
});
