import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import {
  InvokeCommand,
  LambdaClient,
  type InvokeCommandInput,
  type InvokeCommandOutput,
} from '@aws-sdk/client-lambda';
import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { stackName } from '../../lib/app';
import { stageNames } from '../../lib/config';
import { shippedStages } from '../../lib/config/stages';
import { handler } from '../../lambda/credits/handler';
import { generateApiKey } from '../../runtime/keys';
import { runCreditsCli } from '../../scripts/credits';
import { stageStackName } from '../../scripts/stack-outputs';
import {
  creditsFunctionSecretArns,
  startCreditsFunctionWorld,
  type CreditsFunctionWorld,
} from '../support/credits-function';
import { resourcesOf, synthesizeStage, type SynthesizedStage } from '../support/synth';

/**
 * `npm run credits` (NET-09: operators top up with no network route, as their own IAM identity).
 * CloudFormation, STS and the CLI's Secrets Manager calls are mocked at the SDK; the Lambda API's
 * transport is mocked too, but it hands each event to the real credits handler, which reads its keys
 * from a local stand-in of Secrets Manager's JSON protocol and serves the event from a real local
 * gateway over the embedded ledger. The api stack's operator policy must allow every call the CLI makes.
 */

const region = 'eu-west-1';
const functionArn =
  'arn:aws:lambda:eu-west-1:123456789012:function:ai-proxy-production-api-CreditsFunction-AbCdEf';
const secrets = creditsFunctionSecretArns(region);
const adminKey = generateApiKey();
const operatorArn = 'arn:aws:sts::123456789012:assumed-role/ai-proxy-operators/alice';

const cloudFormation = mockClient(CloudFormationClient);
const secretsManager = mockClient(SecretsManagerClient);
const sts = mockClient(STSClient);
const lambda = mockClient(LambdaClient);

let world: CreditsFunctionWorld;
let stdout: jest.SpyInstance;

interface Run {
  code: number;
  out: string;
  err: string;
}

async function cli(...args: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCreditsCli(args, {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

function secretHolds(secretArn: string, current: string): void {
  secretsManager
    .on(GetSecretValueCommand, { SecretId: secretArn, VersionStage: 'AWSCURRENT' })
    .resolves({ SecretString: current });
  secretsManager
    .on(GetSecretValueCommand, { SecretId: secretArn, VersionStage: 'AWSPREVIOUS' })
    .rejects(new ResourceNotFoundException({ message: 'no such version', $metadata: {} }));
  world.aws.secret(secretArn, { current });
}

/** An Invoke answer's payload, as the SDK hands it over (bytes that can also read themselves as text). */
function payloadOf(value: unknown): InvokeCommandOutput['Payload'] {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  return Object.assign(bytes, { transformToString: () => new TextDecoder().decode(bytes) });
}

/** The Lambda API's transport: the event goes to the real handler, its answer comes back as the payload. */
async function invokeRealHandler(input: InvokeCommandInput) {
  const event: unknown = JSON.parse(new TextDecoder().decode(input.Payload as Uint8Array));
  const result = await handler(event);
  return { StatusCode: 200, ExecutedVersion: '$LATEST', Payload: payloadOf(result) };
}

function stackHasOutputs(outputs: Record<string, string>): void {
  cloudFormation.on(DescribeStacksCommand, { StackName: 'ai-proxy-production-api' }).resolves({
    Stacks: [
      {
        StackName: 'ai-proxy-production-api',
        CreationTime: new Date(),
        StackStatus: 'UPDATE_COMPLETE',
        Outputs: Object.entries(outputs).map(([OutputKey, OutputValue]) => ({
          OutputKey,
          OutputValue,
        })),
      },
    ],
  });
}

const deployedOutputs = {
  CreditsFunctionArn: functionArn,
  CreditsAdminKeySecretArn: secrets.admin,
  CreditsInternalUrl: 'http://internal-credits.example',
};

/** Synthesized first: a synth blocks the event loop for seconds, long enough to age the gateway's idle connections. */
let dev: SynthesizedStage;

beforeAll(async () => {
  dev = synthesizeStage('dev');
  stdout = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  world = await startCreditsFunctionWorld({ region, stage: 'production' });
});

beforeEach(() => {
  for (const mock of [cloudFormation, secretsManager, sts, lambda]) mock.reset();
  secretHolds(secrets.admin, adminKey);
  secretHolds(secrets.proxy, generateApiKey());
  sts
    .on(GetCallerIdentityCommand)
    .resolves({ Arn: operatorArn, Account: '123456789012', UserId: 'AROAEXAMPLE:alice' });
  lambda.on(InvokeCommand, { FunctionName: functionArn }).callsFake(invokeRealHandler);
  stackHasOutputs(deployedOutputs);
});

afterAll(async () => {
  stdout.mockRestore();
  await world.close();
});

describe('NET-09: npm run credits tops up through the Lambda API with the operator identity', () => {
  test('topup finds the function and the admin key in the stack outputs, prints progress and the new balance', async () => {
    const run = await cli('topup', '--stage', 'production', '--user', 'alice', '--amount', '25.50');
    expect(run).toMatchObject({ code: 0 });
    expect(run.out).toMatch(
      /^Topped up 25\.500000 USD, transfer \d+\nalice: available 25\.500000 USD, held 0\.000000, credited 25\.500000, spent 0\.000000$/,
    );
    expect(run.err).toContain('Reading the outputs of ai-proxy-production-api in eu-west-1');
    expect(run.err).toContain(`Calling as ${operatorArn} (CloudTrail records this identity)`);
    expect(run.err).toMatch(
      /Idempotency key: operator-[0-9a-f-]{36} \(to retry this exact topup safely/,
    );
    expect(`${run.out}${run.err}`).not.toContain(adminKey);
    // The admin key travels only inside the invocation's payload.
    const [invocation] = lambda.commandCalls(InvokeCommand);
    const event = JSON.parse(
      new TextDecoder().decode(invocation.args[0].input.Payload as Uint8Array),
    ) as Record<string, unknown>;
    expect(event).toMatchObject({
      operatorInvocation: 1,
      adminKey,
      operation: { action: 'topup', userId: 'alice', amount: '25.50' },
    });
    expect(invocation.args[0].input.InvocationType).toBe('RequestResponse');
  });

  test('a retry with the printed idempotency key is applied once', async () => {
    const args = [
      'topup',
      '--stage',
      'production',
      '--user',
      'bob',
      '--amount',
      '3',
      '--idempotency-key',
      'ticket-4711-topup',
    ];
    expect((await cli(...args)).code).toBe(0);
    const retry = await cli(...args);
    expect(retry.code).toBe(0);
    expect(retry.out).toContain(
      'already applied earlier with this idempotency key: nothing moved now',
    );
    expect(retry.out).toContain('bob: available 3.000000 USD');
  });

  test('balance, history and adjust with --function and --secret-id need no stack lookup', async () => {
    const where = [
      '--stage',
      'production',
      '--function',
      functionArn,
      '--secret-id',
      secrets.admin,
    ];
    expect((await cli('topup', ...where, '--user', 'carol', '--amount', '10.000001')).code).toBe(0);
    const adjust = await cli(
      'adjust',
      ...where,
      '--user',
      'carol',
      '--amount',
      '0.000001',
      '--direction',
      'debit',
      '--reason',
      'rounding correction',
    );
    expect(adjust.out).toContain('Adjusted (debit) 0.000001 USD');
    const balance = await cli('balance', ...where, '--user', 'carol');
    expect(balance.out).toBe(
      'carol: available 10.000000 USD, held 0.000000, credited 10.000001, spent 0.000001',
    );
    const history = await cli('history', ...where, '--user', 'carol', '--limit', '1');
    expect(history.out).toMatch(
      /^1 transfer\(s\) of carol, newest first:\n\d+ {2}adjustment\S* +debit +0\.000001 {2}\d+\nMore: --before \d+$/,
    );
    const json = await cli('balance', ...where, '--user', 'carol', '--json');
    expect(JSON.parse(json.out)).toMatchObject({ user_id: 'carol', available_micros: '10000000' });
    expect(cloudFormation.commandCalls(DescribeStacksCommand)).toHaveLength(0);
  });

  test("the service's refusals are clear, with the request id, and exit 1", async () => {
    const unknown = await cli('balance', '--stage', 'production', '--user', 'nobody');
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(
      /credits: refused: 404 user_not_found: No credits account for this user.* \(request [0-9a-f-]{36}\)/,
    );
    await cli('topup', '--stage', 'production', '--user', 'dave', '--amount', '1.00');
    const overdraw = await cli(
      'adjust',
      '--stage',
      'production',
      '--user',
      'dave',
      '--amount',
      '2.00',
      '--direction',
      'debit',
      '--reason',
      'too much',
    );
    expect(overdraw.code).toBe(1);
    expect(overdraw.err).toMatch(
      /refused: 402 insufficient_credits: The debit exceeds the available balance \(available 1\.000000\) \(request [0-9a-f-]{36}\)/,
    );
    expect(overdraw.err).not.toContain('Idempotency-Key was used');
  });
});

describe('clear errors', () => {
  test.each([
    [['topup', '--user', 'a', '--amount', '1'], '--stage is required'],
    [['topup', '--stage', 'prod', '--user', 'a', '--amount', '1'], "unknown stage 'prod'"],
    [['refund', '--stage', 'production'], "unknown command 'refund'"],
    [
      ['topup', '--stage', 'production', '--user', 'a', '--amount', '1e3'],
      "--amount '1e3' is not a decimal amount",
    ],
    [['topup', '--stage', 'production', '--user', 'a', '--amount=-5'], 'is not a decimal amount'],
    [
      ['topup', '--stage', 'production', '--user', 'a', '--amount', '0.0000001'],
      'at most 6 decimal places',
    ],
    [['topup', '--stage', 'production', '--amount', '1'], '--user is required'],
    [
      [
        'adjust',
        '--stage',
        'production',
        '--user',
        'a',
        '--amount',
        '1',
        '--direction',
        'up',
        '--reason',
        'x',
      ],
      '--direction must be credit or debit',
    ],
    [
      ['balance', '--stage', 'production', '--user', 'a', '--amount', '1'],
      '--amount does not apply to balance',
    ],
    [
      ['history', '--stage', 'production', '--user', 'a', '--limit', '0'],
      '--limit must be a whole number',
    ],
    [
      [
        'topup',
        '--stage',
        'production',
        '--user',
        'a',
        '--amount',
        '1',
        '--idempotency-key',
        'short',
      ],
      '--idempotency-key must be 8 to 128',
    ],
  ])('usage %j: exit 2 naming the problem, no AWS call', async (args, message) => {
    const run = await cli(...args);
    expect(run.code).toBe(2);
    expect(run.err).toContain(message);
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(0);
  });

  test('a stage that is not deployed says so', async () => {
    cloudFormation.reset();
    cloudFormation.on(DescribeStacksCommand).rejects(
      Object.assign(new Error('Stack with id ai-proxy-production-api does not exist'), {
        name: 'ValidationError',
      }),
    );
    const run = await cli('balance', '--stage', 'production', '--user', 'alice');
    expect(run.code).toBe(1);
    expect(run.err).toContain(
      'credits: failed: stack ai-proxy-production-api does not exist in eu-west-1; deploy the stage first, or pass --function and --secret-id',
    );
  });

  test('an api stack without the function output asks for a redeploy', async () => {
    stackHasOutputs({ CreditsAdminKeySecretArn: secrets.admin });
    const run = await cli('balance', '--stage', 'production', '--user', 'alice');
    expect(run.err).toContain(
      'ai-proxy-production-api has no output CreditsFunctionArn: deploy the current api stack, or pass --function',
    );
  });

  test('access denied points at the operator policy', async () => {
    secretsManager.reset();
    secretsManager
      .on(GetSecretValueCommand)
      .rejects(
        Object.assign(
          new Error('User is not authorized to perform secretsmanager:GetSecretValue'),
          { name: 'AccessDeniedException' },
        ),
      );
    const run = await cli('balance', '--stage', 'production', '--user', 'alice');
    expect(run.code).toBe(1);
    expect(run.err).toContain(
      "attach the api stack's CreditsOperatorPolicyArn policy to your role",
    );
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
  });

  test('a failed function (its cold start could not read a secret) is reported with its error, not as a refusal', async () => {
    lambda.reset();
    lambda.on(InvokeCommand).resolves({
      StatusCode: 200,
      FunctionError: 'Unhandled',
      Payload: payloadOf({
        errorType: 'Error',
        errorMessage: 'credits: refusing to start, missing configuration: GATEWAY_URL',
      }),
    });
    const run = await cli('balance', '--stage', 'production', '--user', 'alice');
    expect(run.code).toBe(1);
    expect(run.err).toContain(
      'the credits function failed (Unhandled): Error: credits: refusing to start, missing configuration: GATEWAY_URL',
    );
  });

  test('an answer outside the credits contract (a function of another version) is a clear failure, not a crash', async () => {
    lambda.reset();
    lambda.on(InvokeCommand).resolves({
      StatusCode: 200,
      Payload: payloadOf({
        status: 200,
        body: { user_id: 'alice', available_micros: 12 },
        requestId: 'operator-1',
        replayed: false,
      }),
    });
    const run = await cli('balance', '--stage', 'production', '--user', 'alice');
    expect(run.code).toBe(1);
    expect(run.err).toContain(
      'credits: failed: the credits function answered 200 with a body outside the credits contract; is the deployed api stack older than this CLI? (request operator-1)',
    );
  });

  test('no credentials is a clear message', async () => {
    sts.reset();
    sts.on(GetCallerIdentityCommand).rejects(
      Object.assign(new Error('Could not load credentials from any providers'), {
        name: 'CredentialsProviderError',
      }),
    );
    const run = await cli(
      'balance',
      '--stage',
      'production',
      '--user',
      'alice',
      '--function',
      functionArn,
      '--secret-id',
      secrets.admin,
    );
    expect(run.err).toContain(
      'no AWS credentials (Could not load credentials from any providers); set AWS_PROFILE or log in',
    );
  });

  test('--help prints the usage', async () => {
    const run = await cli('--help');
    expect(run.code).toBe(0);
    expect(run.out).toContain(
      'Usage: npm run credits -- <command> --stage <dev|staging|production>',
    );
  });

  test("the CLI's stack names are the app's", () => {
    for (const stage of stageNames)
      expect(stageStackName(stage, 'api')).toBe(stackName(shippedStages[stage], 'api'));
  });
});

describe("AUTH-09: the api stack's operator policy allows exactly what the CLI calls", () => {
  function operatorPolicy() {
    const found = resourcesOf(dev.templates.api).filter(
      ([id, resource]) =>
        resource.Type === 'AWS::IAM::ManagedPolicy' && id.startsWith('CreditsOperatorPolicy'),
    );
    expect(found).toHaveLength(1);
    return found[0][1].Properties as {
      PolicyDocument: {
        Statement: { Action: string | string[]; Resource: unknown; Condition?: unknown }[];
      };
      Roles?: unknown;
      Users?: unknown;
      Groups?: unknown;
    };
  }

  test('invoke the credits function, read the admin key, decrypt through Secrets Manager only, read the stack', () => {
    const statements = operatorPolicy().PolicyDocument.Statement;
    const byAction = new Map(statements.map((statement) => [String(statement.Action), statement]));
    expect(JSON.stringify(byAction.get('lambda:InvokeFunction')?.Resource)).toMatch(
      /CreditsFunction[0-9A-F]+","Arn"/,
    );
    expect(JSON.stringify(byAction.get('secretsmanager:GetSecretValue')?.Resource)).toMatch(
      /"Ref":"CreditsAdminKey[0-9A-F]+"/,
    );
    expect(byAction.get('kms:Decrypt')?.Condition).toEqual({
      StringEquals: { 'kms:ViaService': 'secretsmanager.eu-west-1.amazonaws.com' },
    });
    expect(byAction.get('cloudformation:DescribeStacks')?.Resource).toEqual({
      Ref: 'AWS::StackId',
    });
    expect(statements).toHaveLength(4);
  });

  test('it is attached to no one by the stack: the platform team attaches it to its operators', () => {
    const policy = operatorPolicy();
    expect([policy.Roles, policy.Users, policy.Groups]).toEqual([undefined, undefined, undefined]);
  });

  test('the stack outputs what the CLI reads', () => {
    const outputs = dev.templates.api.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(JSON.stringify(outputs.CreditsFunctionArn.Value)).toMatch(
      /CreditsFunction[0-9A-F]+","Arn"/,
    );
    expect(JSON.stringify(outputs.CreditsAdminKeySecretArn.Value)).toMatch(/CreditsAdminKey/);
    expect(JSON.stringify(outputs.CreditsOperatorPolicyArn.Value)).toMatch(
      /"Ref":"CreditsOperatorPolicy/,
    );
  });

  test('every AWS call of a top-up is covered by the policy (GetCallerIdentity needs no permission)', async () => {
    const run = await cli('topup', '--stage', 'production', '--user', 'erin', '--amount', '1');
    expect(run.err).not.toContain('refused');
    expect(run.code).toBe(0);
    const calledActions = [
      ...cloudFormation
        .commandCalls(DescribeStacksCommand)
        .map(() => 'cloudformation:DescribeStacks'),
      ...secretsManager
        .commandCalls(GetSecretValueCommand)
        .map(() => 'secretsmanager:GetSecretValue'),
      ...lambda.commandCalls(InvokeCommand).map(() => 'lambda:InvokeFunction'),
    ];
    const allowed = operatorPolicy().PolicyDocument.Statement.map((statement) =>
      String(statement.Action),
    );
    expect(new Set(calledActions)).toEqual(
      new Set([
        'cloudformation:DescribeStacks',
        'secretsmanager:GetSecretValue',
        'lambda:InvokeFunction',
      ]),
    );
    for (const action of calledActions) expect(allowed).toContain(action);
  });
});
