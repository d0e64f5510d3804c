import { Match } from 'aws-cdk-lib/assertions';
import { resourcesOf, synthesizeStage, type SynthesizedStage } from '../support/synth';

/**
 * Bedrock in the templates: the bedrock-runtime interface endpoint (private DNS, the endpoints'
 * security group, one ENI per endpoint AZ) so the proxy's Converse calls never need the NAT, and the
 * proxy role's permission to invoke exactly the configured models (no `*`); neither exists in a
 * stage without bedrock models.
 */

let production: SynthesizedStage;
let withoutBedrock: SynthesizedStage;

beforeAll(() => {
  production = synthesizeStage('production');
  withoutBedrock = synthesizeStage('dev', {
    overrides: {
      models: [
        {
          id: 'echo',
          provider: 'echo',
          upstreamModel: 'echo',
          ledgerCode: 3,
          inputMicrosPerMillionTokens: 1_000_000,
          outputMicrosPerMillionTokens: 1_000_000,
          defaultMaxOutputTokens: 100,
          outputTokensMax: 1000,
        },
      ],
    },
  });
});

interface Statement {
  Sid?: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

/** A template value with the pseudo parameters written out (partition `aws`, account `ACCOUNT`). */
function rendered(value: unknown): string {
  if (typeof value === 'string') return value;
  const object = value as Record<string, unknown>;
  if ('Ref' in object)
    return object.Ref === 'AWS::Partition'
      ? 'aws'
      : object.Ref === 'AWS::AccountId'
        ? 'ACCOUNT'
        : `{${String(object.Ref)}}`;
  if ('Fn::Join' in object) {
    const [separator, parts] = object['Fn::Join'] as [string, unknown[]];
    return parts.map(rendered).join(separator);
  }
  return JSON.stringify(value);
}

function statementsOf(stage: SynthesizedStage): { roles: string; statement: Statement }[] {
  return Object.values(stage.templates)
    .flatMap((template) => resourcesOf(template))
    .filter(([, resource]) => resource.Type === 'AWS::IAM::Policy')
    .flatMap(([, policy]) =>
      (policy.Properties?.PolicyDocument as { Statement: Statement[] }).Statement.map(
        (statement) => ({ roles: JSON.stringify(policy.Properties?.Roles), statement }),
      ),
    );
}

const bedrockStatements = (stage: SynthesizedStage) =>
  statementsOf(stage).filter(({ statement }) =>
    [statement.Action].flat().some((action) => action.startsWith('bedrock:')),
  );

const bedrockEndpoints = (stage: SynthesizedStage) =>
  resourcesOf(stage.templates.network).filter(
    ([, resource]) =>
      resource.Type === 'AWS::EC2::VPCEndpoint' &&
      JSON.stringify(resource.Properties?.ServiceName).includes('bedrock-runtime'),
  );

const profileArn = (profile: string) =>
  `arn:aws:bedrock:eu-west-1:ACCOUNT:inference-profile/${profile}`;
const modelArns = (model: string, regions: string[]) =>
  regions.map((region) => `arn:aws:bedrock:${region}::foundation-model/${model}`);
const novaRegions = ['eu-central-1', 'eu-north-1', 'eu-west-1', 'eu-west-3'];

describe('a stage with bedrock models', () => {
  test('NET-06: a bedrock-runtime interface endpoint with private DNS in every endpoint AZ, behind the endpoints security group', () => {
    const [[, endpoint]] = bedrockEndpoints(production);
    expect(bedrockEndpoints(production)).toHaveLength(1);
    production.templates.network.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      ServiceName: 'com.amazonaws.eu-west-1.bedrock-runtime',
      VpcEndpointType: 'Interface',
      PrivateDnsEnabled: true,
      SecurityGroupIds: [
        { 'Fn::GetAtt': [Match.stringLikeRegexp('^EndpointSecurityGroup'), 'GroupId'] },
      ],
    });
    expect(endpoint.Properties?.SubnetIds).toHaveLength(
      production.config.network.interfaceEndpointAzCount,
    );
  });

  test('AUTH-09: the proxy may invoke (and stream) exactly the configured profiles, and their models only through them, in the regions each routes to', () => {
    const statements = bedrockStatements(production);
    expect(new Set(statements.map(({ roles }) => roles)).size).toBe(1);
    expect(statements[0].roles).toMatch(/ProxyFunction.*Role/);
    const actions = ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'];
    expect(
      statements.map(({ statement }) => ({
        sid: statement.Sid,
        actions: statement.Action,
        resources: [statement.Resource].flat().map(rendered),
        condition: statement.Condition
          ? rendered(statement.Condition.StringEquals['bedrock:InferenceProfileArn'])
          : undefined,
      })),
    ).toEqual([
      {
        sid: 'InvokeBedrockModels',
        actions,
        resources: [
          profileArn('eu.amazon.nova-lite-v1:0'),
          profileArn('eu.amazon.nova-pro-v1:0'),
          profileArn('eu.anthropic.claude-sonnet-4-20250514-v1:0'),
        ],
        condition: undefined,
      },
      {
        sid: 'InvokeBedrockProfileModels0',
        actions,
        resources: modelArns('amazon.nova-lite-v1:0', novaRegions),
        condition: profileArn('eu.amazon.nova-lite-v1:0'),
      },
      {
        sid: 'InvokeBedrockProfileModels1',
        actions,
        resources: modelArns('amazon.nova-pro-v1:0', novaRegions),
        condition: profileArn('eu.amazon.nova-pro-v1:0'),
      },
      {
        sid: 'InvokeBedrockProfileModels2',
        actions,
        resources: modelArns('anthropic.claude-sonnet-4-20250514-v1:0', [
          'eu-central-1',
          'eu-north-1',
          'eu-south-1',
          'eu-south-2',
          'eu-west-1',
          'eu-west-3',
        ]),
        condition: profileArn('eu.anthropic.claude-sonnet-4-20250514-v1:0'),
      },
    ]);
  });

  test('AUTH-09: no bedrock action on a `*` resource, and no `bedrock:*` action, anywhere', () => {
    const statements = bedrockStatements(production);
    expect(statements.length).toBeGreaterThan(0);
    for (const { statement } of statements) {
      expect([statement.Action].flat().filter((action) => action.includes('*'))).toEqual([]);
      expect(
        [statement.Resource]
          .flat()
          .map(rendered)
          .filter((resource) => resource.includes('*')),
      ).toEqual([]);
    }
  });

  test('a model id (no profile) is granted as its foundation model in the stage region', () => {
    const stage = synthesizeStage('dev', {
      overrides: {
        models: [
          {
            id: 'lite',
            provider: 'bedrock',
            upstreamModel: 'amazon.nova-lite-v1:0',
            ledgerCode: 4,
            inputMicrosPerMillionTokens: 60_000,
            outputMicrosPerMillionTokens: 240_000,
            defaultMaxOutputTokens: 100,
            outputTokensMax: 1000,
          },
        ],
      },
    });
    expect(
      bedrockStatements(stage).map(({ statement }) => [statement.Resource].flat().map(rendered)),
    ).toEqual([modelArns('amazon.nova-lite-v1:0', ['eu-west-1'])]);
  });
});

describe('a stage without bedrock models', () => {
  test('has no bedrock-runtime endpoint (no ENI cost) and no bedrock permission', () => {
    expect(bedrockEndpoints(withoutBedrock)).toEqual([]);
    expect(bedrockStatements(withoutBedrock)).toEqual([]);
  });
});
