import { App, Aspects, Aws, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { ProactiveControls } from '../../lib/constructs/proactive-controls';
import {
  proactiveControlsByDesign,
  serviceAccessScoped,
} from '../../scripts/checklist-audit/rules/proactive-controls';
import type { CfnTemplate, StageTemplates } from '../../scripts/checklist-audit/templates';
import { resourcesOf, synthesizeStage } from '../support/synth';

/**
 * AWS Control Tower's proactive controls (cfn-guard) on every stage: Lambda permissions name their
 * source, KMS key statements for AWS services say on whose behalf, kms:CreateGrant only for AWS
 * resources (AUTH-09 least privilege, DATA-04 keys). Each rule also has its failing case: a stack
 * that breaks it does not synthesize.
 */

type Statement = {
  Sid?: string;
  Effect: string;
  Principal?: { Service?: unknown; AWS?: unknown };
  Action: string | string[];
  Condition?: Record<string, Record<string, unknown>>;
};

const stages = ['dev', 'staging', 'production'] as const;
const templatesByStage = new Map<string, Template[]>();
const auditTemplates = new Map<string, StageTemplates>();

beforeAll(() => {
  for (const stage of stages) {
    const { templates } = synthesizeStage(stage);
    templatesByStage.set(stage, Object.values(templates));
    auditTemplates.set(
      stage,
      Object.fromEntries(
        Object.entries(templates).map(([part, template]) => [
          part,
          template.toJSON() as CfnTemplate,
        ]),
      ),
    );
  }
});

function resourcesOfType(stage: string, type: string) {
  return (templatesByStage.get(stage) ?? [])
    .flatMap((template) => resourcesOf(template))
    .filter(([, resource]) => resource.Type === type);
}

function keyStatements(stage: string): [string, Statement][] {
  return resourcesOfType(stage, 'AWS::KMS::Key').flatMap(([logicalId, key]) =>
    (key.Properties?.KeyPolicy as { Statement: Statement[] }).Statement.map(
      (statement) => [logicalId, statement] as [string, Statement],
    ),
  );
}

function conditionKeys(statement: Statement): string[] {
  return Object.values(statement.Condition ?? {}).flatMap((entries) => Object.keys(entries));
}

function actions(statement: Statement): string[] {
  return [statement.Action].flat();
}

describe.each(stages)('AUTH-09 / DATA-04: proactive controls in %s', (stage) => {
  test('AUTH-09: every Lambda permission names its source (SourceArn or SourceAccount)', () => {
    const permissions = resourcesOfType(stage, 'AWS::Lambda::Permission');
    expect(permissions.length).toBeGreaterThanOrEqual(3);
    const unscoped = permissions.filter(
      ([, permission]) =>
        permission.Properties?.SourceArn === undefined &&
        permission.Properties?.SourceAccount === undefined,
    );
    expect(unscoped.map(([logicalId]) => logicalId)).toEqual([]);
    const loadBalancer = permissions.filter(
      ([, permission]) => permission.Properties?.Principal === 'elasticloadbalancing.amazonaws.com',
    );
    expect(loadBalancer.length).toBeGreaterThanOrEqual(1);
    for (const [, permission] of loadBalancer)
      expect(JSON.stringify(permission.Properties?.SourceArn)).toContain(':targetgroup/*');
  });

  test('DATA-04: every key statement that lets an AWS service use a key says on whose behalf', () => {
    const serviceStatements = keyStatements(stage).filter(
      ([, statement]) => statement.Effect === 'Allow' && statement.Principal?.Service !== undefined,
    );
    expect(serviceStatements.length).toBeGreaterThanOrEqual(2);
    for (const [logicalId, statement] of serviceStatements) {
      const keys = conditionKeys(statement);
      const isLogs = JSON.stringify(statement.Principal?.Service).includes('logs.');
      // CloudWatch Logs: the encryption context of this account's log groups (named in the audit report as by design).
      const scoped =
        keys.includes('aws:SourceAccount') ||
        keys.includes('aws:SourceArn') ||
        (isLogs && keys.includes('kms:EncryptionContext:aws:logs:arn'));
      expect([logicalId, statement.Sid, scoped]).toEqual([logicalId, statement.Sid, true]);
    }
    const alarms = serviceStatements.filter(
      ([, statement]) => statement.Principal?.Service === 'cloudwatch.amazonaws.com',
    );
    expect(alarms.length).toBeGreaterThanOrEqual(1);
    for (const [, statement] of alarms) {
      expect(statement.Condition?.StringEquals?.['aws:SourceAccount']).toEqual({
        Ref: 'AWS::AccountId',
      });
      expect(JSON.stringify(statement.Condition?.ArnLike?.['aws:SourceArn'])).toContain(':alarm:*');
    }
  });

  test('DATA-04: every kms:CreateGrant (key policies and IAM policies) is only for AWS resources', () => {
    const inKeys = keyStatements(stage).map(([, statement]) => statement);
    const inPolicies = resourcesOfType(stage, 'AWS::IAM::Policy').flatMap(
      ([, policy]) => (policy.Properties?.PolicyDocument as { Statement: Statement[] }).Statement,
    );
    const grants = [...inKeys, ...inPolicies].filter(
      (statement) => statement.Effect === 'Allow' && actions(statement).includes('kms:CreateGrant'),
    );
    expect(grants.length).toBeGreaterThanOrEqual(1);
    for (const statement of grants)
      expect(statement.Condition?.Bool?.['kms:GrantIsForAWSResource']).toBe('true');
    // Wildcards other than the account root's administrative statement would hide a CreateGrant.
    const wildcards = [...inKeys, ...inPolicies].filter((statement) =>
      actions(statement).some((action) => /^kms:(\*|Create\*)$/.test(action)),
    );
    expect(
      wildcards.every((statement) =>
        JSON.stringify(statement.Principal?.AWS ?? '').includes(':root'),
      ),
    ).toBe(true);
  });

  test('AUTH-09: the audit finds no problem and names what stays by design, with reasons', () => {
    const templates = auditTemplates.get(stage) ?? {};
    expect(serviceAccessScoped({ stage, templates, otherStages: {} }).problems).toEqual([]);
    const byDesign = proactiveControlsByDesign(templates);
    expect(byDesign.map((entry) => entry.control)).toEqual(
      expect.arrayContaining([
        'KMS key policy: kms:* to the account root',
        'KMS key policy: CloudWatch Logs without aws:SourceAccount',
        'Lambda permission: SourceArn is a pattern',
        'Lambda permission: SourceAccount, not SourceArn',
      ]),
    );
    expect(byDesign.every((entry) => entry.reason.length > 40 && entry.logicalId !== '')).toBe(
      true,
    );
  });
});

describe('AUTH-09 / DATA-04: the proactive controls refuse what breaks them (failing cases)', () => {
  function guardedStack(): Stack {
    // The controls are under test, not CloudFormation's schema (test/compliance.test.ts): no validation engine to load.
    const app = new App({ builtinCloudFormationValidation: false });
    const stack = new Stack(app, 'Fixture', {
      env: { account: '111111111111', region: 'eu-west-1' },
    });
    Aspects.of(stack).add(new ProactiveControls());
    return stack;
  }

  function fixtureFunction(stack: Stack): LambdaFunction {
    return new LambdaFunction(stack, 'Function', {
      runtime: Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: Code.fromInline('exports.handler = async () => 1;'),
    });
  }

  test('a Lambda permission for a service without a source does not synthesize', () => {
    const stack = guardedStack();
    fixtureFunction(stack).addPermission('Bare', {
      principal: new ServicePrincipal('events.amazonaws.com'),
    });
    expect(() => Template.fromStack(stack)).toThrow(
      /Fixture\/Function\/Bare: the Lambda permission for events.amazonaws.com names no SourceArn or SourceAccount/,
    );
  });

  test('a Lambda permission with a source synthesizes', () => {
    const stack = guardedStack();
    fixtureFunction(stack).addPermission('Scoped', {
      principal: new ServicePrincipal('events.amazonaws.com'),
      sourceAccount: Aws.ACCOUNT_ID,
    });
    expect(() => Template.fromStack(stack)).not.toThrow();
  });

  test('a key statement for a service without a source condition does not synthesize', () => {
    const stack = guardedStack();
    new Key(stack, 'Key').addToResourcePolicy(
      new PolicyStatement({
        sid: 'Bare',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt'],
        resources: ['*'],
      }),
    );
    expect(() => Template.fromStack(stack)).toThrow(
      /Fixture\/Key\/Resource: the key policy statement Bare lets cloudwatch.amazonaws.com use the key without aws:SourceAccount or aws:SourceArn/,
    );
  });

  test("an encryption context of another service does not count as a source; CloudWatch Logs' own does", () => {
    const other = guardedStack();
    new Key(other, 'Key').addToResourcePolicy(
      new PolicyStatement({
        sid: 'Context',
        principals: [new ServicePrincipal('sns.amazonaws.com')],
        actions: ['kms:Decrypt'],
        resources: ['*'],
        conditions: {
          ArnLike: {
            'kms:EncryptionContext:aws:logs:arn': `arn:aws:logs:eu-west-1:${Aws.ACCOUNT_ID}:*`,
          },
        },
      }),
    );
    expect(() => Template.fromStack(other)).toThrow(
      /statement Context lets sns.amazonaws.com use the key/,
    );
    const logs = guardedStack();
    new Key(logs, 'Key').addToResourcePolicy(
      new PolicyStatement({
        sid: 'Logs',
        principals: [new ServicePrincipal(`logs.${Aws.REGION}.amazonaws.com`)],
        actions: ['kms:Decrypt'],
        resources: ['*'],
        conditions: {
          ArnLike: {
            'kms:EncryptionContext:aws:logs:arn': `arn:aws:logs:eu-west-1:${Aws.ACCOUNT_ID}:*`,
          },
        },
      }),
    );
    expect(() => Template.fromStack(logs)).not.toThrow();
  });

  test('kms:CreateGrant without kms:GrantIsForAWSResource gets the condition; other statements are left as written', () => {
    const stack = guardedStack();
    const key = new Key(stack, 'Key');
    key.addToResourcePolicy(
      new PolicyStatement({
        sid: 'Grants',
        principals: [
          new ServicePrincipal('ec2.amazonaws.com').withConditions({
            StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
          }),
        ],
        actions: ['kms:CreateGrant', 'kms:Decrypt'],
        resources: ['*'],
      }),
    );
    const statements = (
      resourcesOf(Template.fromStack(stack)).find(
        ([, resource]) => resource.Type === 'AWS::KMS::Key',
      )?.[1].Properties?.KeyPolicy as { Statement: Statement[] }
    ).Statement;
    expect(statements.find((statement) => statement.Sid === 'Grants')?.Condition).toEqual({
      StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
      Bool: { 'kms:GrantIsForAWSResource': 'true' },
    });
    expect(
      statements.find((statement) => actions(statement).includes('kms:*'))?.Condition,
    ).toBeUndefined();
  });
});
