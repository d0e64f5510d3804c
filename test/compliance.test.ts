import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { CfnBucket } from 'aws-cdk-lib/aws-s3';
import { cdkJsonContext, createStageApp } from '../lib/app';
import { createNagPacks, listAcknowledgments } from '../lib/compliance';
import { stageNames, type StageName } from '../lib/config';
import {
  deployableConfig,
  resourcesOf,
  synthesizeStage,
  type SynthesizedStage,
} from './support/synth';

const repoRoot = join(__dirname, '..');

const stages = {} as Record<StageName, SynthesizedStage>;
beforeAll(() => {
  // With CDK's CloudFormation schema validation, as errors (cdk.json): every stage's templates pass it.
  for (const stage of stageNames)
    stages[stage] = synthesizeStage(stage, { cloudFormationValidation: true });
});

function allTemplates(): {
  name: string;
  json: string;
  resources: ReturnType<typeof resourcesOf>;
}[] {
  return stageNames.flatMap((stage) =>
    Object.entries(stages[stage].templates).map(([part, template]) => ({
      name: `${stage}/${part}`,
      json: JSON.stringify(template.toJSON()),
      resources: resourcesOf(template),
    })),
  );
}

describe('cdk-nag: AwsSolutions, NIST 800-53 rev 5 and PCI DSS 3.2.1', () => {
  test.each(stageNames)('%s has zero unacknowledged findings', (stage) => {
    const { app } = createStageApp(deployableConfig(stage), {
      complianceChecks: false,
      bundling: false,
    });
    for (const pack of createNagPacks(app)) {
      const report = pack.validateScope(app);
      const findings = report.violations.map(
        (violation) =>
          `${violation.ruleName}: ${violation.violatingResources.map((resource) => resource.constructPath).join(', ')}`,
      );
      expect(findings).toEqual([]);
      expect(report.success).toBe(true);
    }
  });

  test('the packs do find problems when acknowledgments are missing (the check can fail)', () => {
    const app = new App({ context: cdkJsonContext() });
    const stack = new Stack(app, 'Probe', { env: { region: 'eu-west-1' } });
    new CfnBucket(stack, 'UnencryptedBucket');
    const [awsSolutions] = createNagPacks(app);
    const rules = awsSolutions.validateScope(app).violations.map((violation) => violation.ruleName);
    expect(rules).toContain('AwsSolutions-S1');
  });

  test('every acknowledgment carries a specific reason', () => {
    for (const stage of stageNames) {
      const { app } = createStageApp(deployableConfig(stage), {
        complianceChecks: false,
        bundling: false,
      });
      for (const acknowledgment of listAcknowledgments(app)) {
        expect(acknowledgment.reason.length).toBeGreaterThan(40);
        // Narrow scope: never a whole stack.
        expect(acknowledgment.path.split('/').length).toBeGreaterThan(1);
      }
    }
  });

  test('the CloudFormation schema validation is on: a property CloudFormation would reject fails synth', () => {
    expect(cdkJsonContext()['@aws-cdk/core:validateAgainstDefaultRules']).toBe(true);
    const app = new App({ context: cdkJsonContext() });
    const stack = new Stack(app, 'Probe', { env: { region: 'eu-west-1' } });
    new CfnBucket(stack, 'Bucket').addPropertyOverride('NoSuchProperty', 'x');
    expect(() => app.synth()).toThrow(/NoSuchProperty/);
  });
});

describe('CFG-02: no secret values in the repository or the templates', () => {
  const secretPatterns: [string, RegExp][] = [
    ['an API key', /sk-[A-Za-z0-9_-]{43}/],
    ['an AWS access key id', /\b(AKIA|ASIA)[0-9A-Z]{16}\b/],
    ['a private key', /-----BEGIN [A-Z ]*PRIVATE KEY-----/],
    ['a Google API key', /AIza[0-9A-Za-z_-]{35}/],
    [
      'a literal password or token property',
      /"(Password|MasterUserPassword|SecretString|Token|ApiKey)":\s*"[^"{]/,
    ],
  ];

  test('no template carries a secret', () => {
    for (const template of allTemplates()) {
      for (const [what, pattern] of secretPatterns) {
        if (pattern.test(template.json)) throw new Error(`${template.name} contains ${what}`);
      }
    }
  });

  test('no function environment carries a value that looks like a secret', () => {
    for (const template of allTemplates()) {
      for (const [id, resource] of template.resources.filter(
        ([, r]) => r.Type === 'AWS::Lambda::Function',
      )) {
        const variables = ((
          resource.Properties?.Environment as { Variables?: Record<string, unknown> }
        )?.Variables ?? {}) as Record<string, unknown>;
        for (const name of Object.keys(variables)) {
          expect(`${template.name}/${id}/${name}`).not.toMatch(/(SECRET|PASSWORD|TOKEN|API_KEY)$/);
        }
      }
    }
  });

  test('no tracked file carries a secret', () => {
    const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard'], {
      cwd: repoRoot,
      encoding: 'utf8',
    })
      .split('\n')
      .filter((file) => file && !file.startsWith('test/') && !file.endsWith('package-lock.json'));
    expect(files.length).toBeGreaterThan(10);
    for (const file of files) {
      let text: string;
      try {
        text = readFileSync(join(repoRoot, file), 'utf8');
      } catch {
        continue; // deleted in the work tree
      }
      for (const [what, pattern] of secretPatterns.slice(0, 4)) {
        if (pattern.test(text)) throw new Error(`${file} contains ${what}`);
      }
    }
  });

  test('the secret detectors detect (the checks can fail)', () => {
    const samples = [
      `sk-${'a'.repeat(43)}`,
      'AKIAABCDEFGHIJKLMNOP',
      '-----BEGIN RSA PRIVATE KEY-----',
      `AIza${'b'.repeat(35)}`,
      '"Password": "hunter2"',
    ];
    samples.forEach((sample, index) => expect(secretPatterns[index][1].test(sample)).toBe(true));
  });
});

describe('NET-13: no SSH anywhere', () => {
  test('no security group opens port 22 and no key pair exists', () => {
    for (const template of allTemplates()) {
      for (const [id, resource] of template.resources) {
        expect(`${template.name}/${id}: ${resource.Type}`).not.toMatch(/AWS::EC2::KeyPair/);
        expect(resource.Properties?.KeyName).toBeUndefined();
        const ingress =
          (resource.Properties?.SecurityGroupIngress as
            { FromPort?: number; ToPort?: number }[] | undefined) ?? [];
        const standalone =
          resource.Type === 'AWS::EC2::SecurityGroupIngress'
            ? [resource.Properties as { FromPort?: number; ToPort?: number }]
            : [];
        for (const rule of [...ingress, ...standalone]) {
          const opensSsh =
            rule.FromPort === undefined ||
            (rule.FromPort <= 22 && (rule.ToPort ?? rule.FromPort) >= 22);
          if (opensSsh) throw new Error(`${template.name}/${id} admits port 22`);
        }
      }
    }
  });
});

describe('DR-01: a staging stage is modelled in code next to production', () => {
  test('staging and production synthesize to separate stacks and networks', () => {
    expect(stages.staging.stacks.network.stackName).toBe('ai-proxy-staging-network');
    expect(stages.production.stacks.network.stackName).toBe('ai-proxy-production-network');
    expect(stages.staging.config.network.vpcCidr).not.toBe(
      stages.production.config.network.vpcCidr,
    );
    // Staging mirrors production's shape: HTTPS, WAF, a multi-replica ledger.
    stages.staging.templates.edge.resourceCountIs('AWS::WAFv2::WebACL', 1);
    stages.staging.templates.edge.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Protocol: 'HTTPS',
    });
    expect(stages.staging.config.ledger.replicaCount).toBeGreaterThanOrEqual(3);
  });
});

describe('DR-04: stateful resources keep their logical ids and are retained on delete', () => {
  const stateful: [keyof SynthesizedStage['templates'], string, string][] = [
    ['network', 'LogsKey195F8DFC', 'AWS::KMS::Key'],
    ['network', 'FlowLogs91F8F4DF', 'AWS::Logs::LogGroup'],
    ['edge', 'PublicAlbAccessLogsACBFC34D', 'AWS::S3::Bucket'],
    ['edge', 'WebAclLogs3CC57E89', 'AWS::Logs::LogGroup'],
    ['ledger', 'TigerBeetleDataKey1B3E7980', 'AWS::KMS::Key'],
    ['ledger', 'TigerBeetleReplica0Data787816BF', 'AWS::EC2::Volume'],
    ['ledger', 'TigerBeetleBackupVault304D2065', 'AWS::Backup::BackupVault'],
    ['ledger', 'TigerBeetleGatewayTokenKeyD757F1B6', 'AWS::KMS::Key'],
    ['ledger', 'TigerBeetleGatewayTokenSecret635EA4E3', 'AWS::SecretsManager::Secret'],
    ['ledger', 'TigerBeetleAlarmsTopicKey15C60792', 'AWS::KMS::Key'],
    ['ledger', 'TigerBeetleLogs5461FA56', 'AWS::Logs::LogGroup'],
    ['ledger', 'TigerBeetleGatewayLogs4C66A586', 'AWS::Logs::LogGroup'],
    ['ledger', 'TokenRotationLogs692C9E7D', 'AWS::Logs::LogGroup'],
    ['api', 'SecretsKey317DCF94', 'AWS::KMS::Key'],
    ['api', 'ClientKeys90C0FF16', 'AWS::SecretsManager::Secret'],
    ['api', 'ProxyCreditsKeyE078BE80', 'AWS::SecretsManager::Secret'],
    ['api', 'CreditsAdminKey51B5F7AA', 'AWS::SecretsManager::Secret'],
    ['api', 'ProviderCredentials9BA01DC4', 'AWS::SecretsManager::Secret'],
    ['api', 'CreditsLogs396DF3B9', 'AWS::Logs::LogGroup'],
    ['api', 'ProxyLogs5EF0D16A', 'AWS::Logs::LogGroup'],
    ['api', 'RotationLogsDFFD74B6', 'AWS::Logs::LogGroup'],
    ['api', 'CreditsAlbAccessLogs6CB1B02C', 'AWS::S3::Bucket'],
    ['api', 'StreamingApiAccessLogs12A09BB0', 'AWS::Logs::LogGroup'],
    ['api', 'StreamingApiExecutionLogs3049F7E5', 'AWS::Logs::LogGroup'],
    ['api', 'StreamingApiAddressLookupLogsFE6D1D3C', 'AWS::Logs::LogGroup'],
    ['api', 'SettlementQueueKeyEF456F50', 'AWS::KMS::Key'],
    ['api', 'SettlementSettleLogs932AEF61', 'AWS::Logs::LogGroup'],
    ['observability', 'AlarmTopicKey57B0D3A7', 'AWS::KMS::Key'],
  ];

  test.each(stateful)('%s %s (%s)', (part, logicalId, type) => {
    for (const stage of stageNames) {
      const resource = stages[stage].templates[part].toJSON().Resources[logicalId];
      // RetainExceptOnCreate (fixed names) keeps the resource on delete too; test/stacks/retained-names.test.ts.
      expect(resource).toMatchObject({
        Type: type,
        DeletionPolicy: expect.stringMatching(/^Retain(ExceptOnCreate)?$/),
        UpdateReplacePolicy: 'Retain',
      });
    }
  });

  test('every key, log group, bucket and secret is in the list above', () => {
    const listed = new Set(stateful.map(([, logicalId]) => logicalId));
    for (const template of allTemplates()) {
      for (const [id, resource] of template.resources) {
        if (
          [
            'AWS::KMS::Key',
            'AWS::Logs::LogGroup',
            'AWS::S3::Bucket',
            'AWS::SecretsManager::Secret',
          ].includes(resource.Type)
        )
          expect(listed).toContain(id);
      }
    }
  });
});
