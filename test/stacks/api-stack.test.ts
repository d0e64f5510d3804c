import { Match } from 'aws-cdk-lib/assertions';
import { proxyPathPatterns } from '../../lib/stacks/api-stack';
import { resourcesOf, synthesizeStage, type SynthesizedStage } from '../support/synth';

let production: SynthesizedStage;
let dev: SynthesizedStage;

beforeAll(() => {
  production = synthesizeStage('production', { overrides: { api: { creditsAdminCidrs: ['192.0.2.0/24'] } } });
  dev = synthesizeStage('dev');
});

type Resource = ReturnType<typeof resourcesOf>[number][1];

function functionNamed(stage: SynthesizedStage, logicalIdPrefix: string): Resource {
  const found = resourcesOf(stage.templates.api).find(([id, resource]) => resource.Type === 'AWS::Lambda::Function' && id.startsWith(logicalIdPrefix));
  if (!found) throw new Error(`no function ${logicalIdPrefix}`);
  return found[1];
}

function environmentOf(resource: Resource): Record<string, unknown> {
  return (resource.Properties?.Environment as { Variables: Record<string, unknown> }).Variables;
}

/** The secrets a role's policies allow GetSecretValue on, as logical ids or ARN strings. */
function secretsReadBy(stage: SynthesizedStage, rolePrefix: string): string[] {
  const policies = resourcesOf(stage.templates.api).filter(
    ([, resource]) => resource.Type === 'AWS::IAM::Policy' && JSON.stringify(resource.Properties?.Roles).includes(rolePrefix),
  );
  const statements = policies.flatMap(([, policy]) => (policy.Properties?.PolicyDocument as { Statement: { Action: string | string[]; Resource: unknown }[] }).Statement);
  return statements
    .filter((statement) => [statement.Action].flat().includes('secretsmanager:GetSecretValue'))
    .flatMap((statement) => [statement.Resource].flat().map((resource) => JSON.stringify(resource)));
}

describe('ApiStack', () => {
  test('AUTH-03 / DATA-04: every secret is encrypted with the customer-managed secrets key (rotating, retained)', () => {
    const api = production.templates.api;
    api.hasResource('AWS::KMS::Key', { Properties: { EnableKeyRotation: true }, DeletionPolicy: 'Retain' });
    const secrets = resourcesOf(api).filter(([, resource]) => resource.Type === 'AWS::SecretsManager::Secret');
    expect(secrets).toHaveLength(4);
    for (const [, secret] of secrets) expect(secret.Properties?.KmsKeyId).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^SecretsKey/), 'Arn'] });
  });

  test('CFG-02 / AUTH-03: function environments hold settings and secret ARNs, never a secret value', () => {
    for (const prefix of ['ProxyFunction', 'CreditsFunction', 'RotationFunction']) {
      for (const [name, value] of Object.entries(environmentOf(functionNamed(production, prefix)))) {
        if (name.endsWith('_SECRET_ARN')) expect(JSON.stringify(value)).toMatch(/"Ref":"|Fn::GetStackOutput/);
        expect(JSON.stringify(value)).not.toMatch(/sk-[A-Za-z0-9_-]{43}/);
      }
    }
    // The two service-key secrets start generated, never with a value written in the template.
    production.templates.api.hasResourceProperties('AWS::SecretsManager::Secret', { Description: Match.stringLikeRegexp('proxy role key'), GenerateSecretString: Match.objectLike({ PasswordLength: 64 }) });
  });

  test('AUTH-04: the service keys rotate every 90 days through the rotation function', () => {
    const schedules = resourcesOf(production.templates.api).filter(([, resource]) => resource.Type === 'AWS::SecretsManager::RotationSchedule');
    expect(schedules).toHaveLength(2);
    for (const [, schedule] of schedules) {
      expect(schedule.Properties).toMatchObject({ RotationLambdaARN: { 'Fn::GetAtt': [expect.stringMatching(/^RotationFunction/), 'Arn'] }, RotationRules: { ScheduleExpression: 'rate(90 days)' } });
    }
    production.templates.ledger.hasResourceProperties('AWS::SecretsManager::RotationSchedule', { RotationRules: { ScheduleExpression: 'rate(90 days)' } });
  });

  test('AUTH-05: the proxy and the credits service use different key sets', () => {
    const proxy = JSON.stringify(environmentOf(functionNamed(production, 'ProxyFunction')));
    const credits = JSON.stringify(environmentOf(functionNamed(production, 'CreditsFunction')));
    expect(proxy).toContain('ClientKeys');
    expect(credits).not.toContain('ClientKeys');
    expect(credits).toContain('CreditsAdminKey');
    expect(proxy).not.toContain('CreditsAdminKey');
  });

  test('AUTH-09: each function reads only its own secrets', () => {
    const read = (prefix: string) => secretsReadBy(production, prefix).map((resource) => resource.replace(/[^A-Za-z]/g, ''));
    const matches = (resources: string[], names: string[]) => names.every((name) => resources.some((resource) => resource.includes(name)));
    const proxy = read('ProxyFunctionServiceRole');
    expect(proxy).toHaveLength(3);
    expect(matches(proxy, ['ClientKeys', 'ProxyCreditsKey', 'ProviderCredentials'])).toBe(true);
    const credits = read('CreditsFunctionServiceRole');
    expect(credits).toHaveLength(3);
    expect(matches(credits, ['CreditsAdminKey', 'ProxyCreditsKey', 'GatewayTokenSecret'])).toBe(true);
    const rotation = read('RotationFunctionServiceRole');
    expect(matches(rotation, ['ProxyCreditsKey', 'CreditsAdminKey'])).toBe(true);
    expect(rotation.some((resource) => resource.includes('ClientKeys') || resource.includes('ProviderCredentials'))).toBe(false);
  });

  test('the functions: latest Node.js runtime, ARM64, X-Ray tracing, in the VPC, reserved concurrency in production', () => {
    for (const prefix of ['ProxyFunction', 'CreditsFunction']) {
      const fn = functionNamed(production, prefix);
      expect(fn.Properties).toMatchObject({ Runtime: 'nodejs24.x', Architectures: ['arm64'], TracingConfig: { Mode: 'Active' }, VpcConfig: expect.any(Object) });
      expect(fn.Properties?.ReservedConcurrentExecutions).toEqual(expect.any(Number));
    }
    expect(functionNamed(dev, 'ProxyFunction').Properties?.ReservedConcurrentExecutions).toBeUndefined();
  });

  test('LOG-03: each function logs to its own KMS-encrypted log group with retention', () => {
    for (const prefix of ['ProxyFunction', 'CreditsFunction', 'RotationFunction']) {
      const fn = functionNamed(production, prefix);
      expect(fn.Properties?.LoggingConfig).toMatchObject({ LogFormat: 'JSON', LogGroup: { Ref: expect.stringMatching(/Logs/) } });
    }
    for (const [, group] of resourcesOf(production.templates.api).filter(([, resource]) => resource.Type === 'AWS::Logs::LogGroup')) {
      expect(group.Properties).toMatchObject({ RetentionInDays: 365, KmsKeyId: expect.anything() });
    }
  });

  test('the public ALB routes /v1/*, /health and /ready to the proxy, with multi-value headers and a health check', () => {
    const api = production.templates.api;
    api.hasResourceProperties('AWS::ElasticLoadBalancingV2::ListenerRule', {
      Priority: 10,
      Conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: proxyPathPatterns } }],
      ListenerArn: { 'Fn::GetStackOutput': Match.objectLike({ StackName: 'ai-proxy-production-edge' }) },
    });
    api.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      TargetType: 'lambda',
      HealthCheckEnabled: true,
      HealthCheckPath: '/health',
      TargetGroupAttributes: Match.arrayWith([{ Key: 'lambda.multi_value_headers.enabled', Value: 'true' }]),
    });
  });

  test('NET-07: the credits service sits behind an internal ALB, and the proxy calls it there', () => {
    const api = production.templates.api;
    api.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Scheme: 'internal' });
    const proxyEnvironment = environmentOf(functionNamed(production, 'ProxyFunction'));
    expect(JSON.stringify(proxyEnvironment.CREDITS_URL)).toMatch(/CreditsAlbLoadBalancer.*DNSName/);
    api.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', { TargetType: 'lambda', HealthCheckPath: '/api/v1/health' });
  });

  test('NET-09 / NET-06: only the proxy, the settle function and the configured operator ranges reach the credits load balancer', () => {
    const api = production.templates.api;
    const albGroup = resourcesOf(api).find(([id, resource]) => resource.Type === 'AWS::EC2::SecurityGroup' && id.startsWith('CreditsAlbSecurityGroup'));
    expect(albGroup?.[1].Properties?.SecurityGroupIngress).toEqual([expect.objectContaining({ CidrIp: '192.0.2.0/24', FromPort: 80, ToPort: 80 })]);
    const fromGroups = resourcesOf(api).filter(([, resource]) => resource.Type === 'AWS::EC2::SecurityGroupIngress');
    expect(fromGroups.map(([, rule]) => JSON.stringify(rule.Properties?.SourceSecurityGroupId))).toEqual([
      expect.stringMatching(/ProxySecurityGroup/),
      expect.stringMatching(/SettlementSettleSecurityGroup/),
    ]);
    // No function accepts inbound traffic.
    for (const [id, group] of resourcesOf(api).filter(([, resource]) => resource.Type === 'AWS::EC2::SecurityGroup')) {
      if (/^(Proxy|Credits|Rotation)SecurityGroup/.test(id)) expect(group.Properties?.SecurityGroupIngress).toBeUndefined();
    }
  });

  test('DATA-05: the credits function is in the one security group the ledger gateway admits', () => {
    const credits = functionNamed(production, 'CreditsFunction');
    const groups = JSON.stringify((credits.Properties?.VpcConfig as { SecurityGroupIds: unknown[] }).SecurityGroupIds);
    expect(groups).toContain('ai-proxy-production-ledger');
    const proxyGroups = JSON.stringify((functionNamed(production, 'ProxyFunction').Properties?.VpcConfig as { SecurityGroupIds: unknown[] }).SecurityGroupIds);
    expect(proxyGroups).not.toContain('ai-proxy-production-ledger');
  });
});
