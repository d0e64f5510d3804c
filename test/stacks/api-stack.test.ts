import { Match } from 'aws-cdk-lib/assertions';
import { timeoutChainOf, timeoutChainProblems } from '../../lib/config/timeouts';
import {
  endpointHealthyHttpCodes,
  streamingApiStageName,
} from '../../lib/constructs/streaming-api';
import { proxyConfigSchema } from '../../lambda/proxy/config';
import { proxyPathPatterns } from '../../lib/stacks/api-stack';
import { resourcesOf, synthesizeStage, type SynthesizedStage } from '../support/synth';

let production: SynthesizedStage;
let dev: SynthesizedStage;

beforeAll(() => {
  production = synthesizeStage('production', {
    overrides: { api: { creditsAdminCidrs: ['192.0.2.0/24'] } },
  });
  dev = synthesizeStage('dev');
});

type Resource = ReturnType<typeof resourcesOf>[number][1];

function functionNamed(stage: SynthesizedStage, logicalIdPrefix: string): Resource {
  const found = resourcesOf(stage.templates.api).find(
    ([id, resource]) => resource.Type === 'AWS::Lambda::Function' && id.startsWith(logicalIdPrefix),
  );
  if (!found) throw new Error(`no function ${logicalIdPrefix}`);
  return found[1];
}

function environmentOf(resource: Resource): Record<string, unknown> {
  return (resource.Properties?.Environment as { Variables: Record<string, unknown> }).Variables;
}

/** The secrets a role's policies allow GetSecretValue on, as logical ids or ARN strings. */
function secretsReadBy(stage: SynthesizedStage, rolePrefix: string): string[] {
  const policies = resourcesOf(stage.templates.api).filter(
    ([, resource]) =>
      resource.Type === 'AWS::IAM::Policy' &&
      JSON.stringify(resource.Properties?.Roles).includes(rolePrefix),
  );
  const statements = policies.flatMap(
    ([, policy]) =>
      (
        policy.Properties?.PolicyDocument as {
          Statement: { Action: string | string[]; Resource: unknown }[];
        }
      ).Statement,
  );
  return statements
    .filter((statement) => [statement.Action].flat().includes('secretsmanager:GetSecretValue'))
    .flatMap((statement) =>
      [statement.Resource].flat().map((resource) => JSON.stringify(resource)),
    );
}

describe('ApiStack', () => {
  test('AUTH-03 / DATA-04: every secret is encrypted with the customer-managed secrets key (rotating, retained)', () => {
    const api = production.templates.api;
    api.hasResource('AWS::KMS::Key', {
      Properties: { EnableKeyRotation: true },
      DeletionPolicy: 'Retain',
    });
    const secrets = resourcesOf(api).filter(
      ([, resource]) => resource.Type === 'AWS::SecretsManager::Secret',
    );
    expect(secrets).toHaveLength(4);
    for (const [, secret] of secrets)
      expect(secret.Properties?.KmsKeyId).toEqual({
        'Fn::GetAtt': [expect.stringMatching(/^SecretsKey/), 'Arn'],
      });
  });

  test('CFG-02 / AUTH-03: function environments hold settings and secret ARNs, never a secret value', () => {
    for (const prefix of ['ProxyFunction', 'CreditsFunction', 'RotationFunction']) {
      for (const [name, value] of Object.entries(
        environmentOf(functionNamed(production, prefix)),
      )) {
        if (name.endsWith('_SECRET_ARN'))
          expect(JSON.stringify(value)).toMatch(/"Ref":"|Fn::ImportValue/);
        expect(JSON.stringify(value)).not.toMatch(/sk-[A-Za-z0-9_-]{43}/);
      }
    }
    // The two service-key secrets start generated, never with a value written in the template.
    production.templates.api.hasResourceProperties('AWS::SecretsManager::Secret', {
      Description: Match.stringLikeRegexp('proxy role key'),
      GenerateSecretString: Match.objectLike({ PasswordLength: 64 }),
    });
  });

  test("the credits service answers in the stage's currency: one value, from the stage config", () => {
    expect(environmentOf(functionNamed(production, 'CreditsFunction')).CREDITS_CURRENCY).toBe(
      production.config.currency,
    );
    expect(
      JSON.parse(String(environmentOf(functionNamed(production, 'ProxyFunction')).PROXY_CONFIG))
        .currency,
    ).toBe(production.config.currency);
  });

  test("the proxy function's PROXY_CONFIG is what the function's own schema reads at start", () => {
    const config = JSON.parse(
      String(environmentOf(functionNamed(production, 'ProxyFunction')).PROXY_CONFIG),
    ) as unknown;
    const parsed = proxyConfigSchema.safeParse(config);
    expect(parsed.success ? [] : parsed.error.issues).toEqual([]);
  });

  test('AUTH-04: the service keys rotate every 90 days through the rotation function', () => {
    const schedules = resourcesOf(production.templates.api).filter(
      ([, resource]) => resource.Type === 'AWS::SecretsManager::RotationSchedule',
    );
    expect(schedules).toHaveLength(2);
    for (const [, schedule] of schedules) {
      expect(schedule.Properties).toMatchObject({
        RotationLambdaARN: { 'Fn::GetAtt': [expect.stringMatching(/^RotationFunction/), 'Arn'] },
        RotationRules: { ScheduleExpression: 'rate(90 days)' },
      });
    }
    production.templates.ledger.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
      RotationRules: { ScheduleExpression: 'rate(90 days)' },
    });
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
    const read = (prefix: string) =>
      secretsReadBy(production, prefix).map((resource) => resource.replace(/[^A-Za-z]/g, ''));
    const matches = (resources: string[], names: string[]) =>
      names.every((name) => resources.some((resource) => resource.includes(name)));
    const proxy = read('ProxyFunctionServiceRole');
    expect(proxy).toHaveLength(3);
    expect(matches(proxy, ['ClientKeys', 'ProxyCreditsKey', 'ProviderCredentials'])).toBe(true);
    const credits = read('CreditsFunctionServiceRole');
    expect(credits).toHaveLength(3);
    expect(matches(credits, ['CreditsAdminKey', 'ProxyCreditsKey', 'GatewayTokenSecret'])).toBe(
      true,
    );
    const rotation = read('RotationFunctionServiceRole');
    expect(matches(rotation, ['ProxyCreditsKey', 'CreditsAdminKey'])).toBe(true);
    expect(
      rotation.some(
        (resource) => resource.includes('ClientKeys') || resource.includes('ProviderCredentials'),
      ),
    ).toBe(false);
  });

  test('the functions: latest Node.js runtime, ARM64, X-Ray tracing, in the VPC, reserved concurrency in production', () => {
    for (const prefix of ['ProxyFunction', 'CreditsFunction']) {
      const fn = functionNamed(production, prefix);
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        TracingConfig: { Mode: 'Active' },
        VpcConfig: expect.any(Object),
      });
      expect(fn.Properties?.ReservedConcurrentExecutions).toEqual(expect.any(Number));
    }
    expect(
      functionNamed(dev, 'ProxyFunction').Properties?.ReservedConcurrentExecutions,
    ).toBeUndefined();
  });

  test('LOG-03: each function logs to its own KMS-encrypted log group with retention', () => {
    for (const prefix of ['ProxyFunction', 'CreditsFunction', 'RotationFunction']) {
      const fn = functionNamed(production, prefix);
      expect(fn.Properties?.LoggingConfig).toMatchObject({
        LogFormat: 'JSON',
        LogGroup: { Ref: expect.stringMatching(/Logs/) },
      });
    }
    for (const [, group] of resourcesOf(production.templates.api).filter(
      ([, resource]) => resource.Type === 'AWS::Logs::LogGroup',
    )) {
      expect(group.Properties).toMatchObject({ RetentionInDays: 365, KmsKeyId: expect.anything() });
    }
  });

  test('NET-07: the credits service sits behind an internal ALB, and the proxy calls it there (over HTTPS by its internal name; dev: HTTP)', () => {
    const api = production.templates.api;
    api.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Scheme: 'internal' });
    const proxyEnvironment = environmentOf(functionNamed(production, 'ProxyFunction'));
    expect(proxyEnvironment.CREDITS_URL).toBe('https://credits.internal.acme-ai.net');
    api.hasResourceProperties('AWS::Route53::RecordSet', {
      Name: 'credits.internal.acme-ai.net.',
      Type: 'A',
      AliasTarget: Match.objectLike({
        DNSName: Match.objectLike({
          'Fn::Join': Match.arrayWith([
            Match.arrayWith([
              Match.objectLike({
                'Fn::GetAtt': Match.arrayWith([Match.stringLikeRegexp('^CreditsAlbLoadBalancer')]),
              }),
            ]),
          ]),
        }),
      }),
    });
    expect(JSON.stringify(environmentOf(functionNamed(dev, 'ProxyFunction')).CREDITS_URL)).toMatch(
      /"http:\/\/".*CreditsAlbLoadBalancer.*DNSName/,
    );
    api.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      TargetType: 'lambda',
      HealthCheckPath: '/api/v1/health',
    });
  });

  test('NET-09 / NET-06: only the proxy, the settle function and the configured operator ranges reach the credits load balancer', () => {
    const api = production.templates.api;
    const albGroup = resourcesOf(api).find(
      ([id, resource]) =>
        resource.Type === 'AWS::EC2::SecurityGroup' && id.startsWith('CreditsAlbSecurityGroup'),
    );
    expect(albGroup?.[1].Properties?.SecurityGroupIngress).toEqual([
      expect.objectContaining({ CidrIp: '192.0.2.0/24', FromPort: 443, ToPort: 443 }),
    ]);
    const fromGroups = resourcesOf(api).filter(
      ([, resource]) =>
        resource.Type === 'AWS::EC2::SecurityGroupIngress' &&
        JSON.stringify(resource.Properties?.GroupId).includes('CreditsAlbSecurityGroup'),
    );
    expect(
      fromGroups.map(([, rule]) => JSON.stringify(rule.Properties?.SourceSecurityGroupId)),
    ).toEqual([
      expect.stringMatching(/ProxySecurityGroup/),
      expect.stringMatching(/SettlementSettleSecurityGroup/),
    ]);
    // No function accepts inbound traffic.
    for (const [id, group] of resourcesOf(api).filter(
      ([, resource]) => resource.Type === 'AWS::EC2::SecurityGroup',
    )) {
      if (/^(Proxy|Credits|Rotation)SecurityGroup/.test(id))
        expect(group.Properties?.SecurityGroupIngress).toBeUndefined();
    }
  });

  test('DATA-05: the credits function is in the one security group the ledger gateway admits', () => {
    const credits = functionNamed(production, 'CreditsFunction');
    const groups = JSON.stringify(
      (credits.Properties?.VpcConfig as { SecurityGroupIds: unknown[] }).SecurityGroupIds,
    );
    expect(groups).toContain('ai-proxy-production-ledger');
    const proxyGroups = JSON.stringify(
      (
        functionNamed(production, 'ProxyFunction').Properties?.VpcConfig as {
          SecurityGroupIds: unknown[];
        }
      ).SecurityGroupIds,
    );
    expect(proxyGroups).not.toContain('ai-proxy-production-ledger');
  });
});

/** The one resource of a type whose logical id starts with the prefix. */
function resourceNamed(
  stage: SynthesizedStage,
  type: string,
  logicalIdPrefix: string,
): [string, Resource] {
  const found = resourcesOf(stage.templates.api).filter(
    ([id, resource]) => resource.Type === type && id.startsWith(logicalIdPrefix),
  );
  if (found.length !== 1)
    throw new Error(`expected one ${type} ${logicalIdPrefix}, found ${found.length}`);
  return found[0];
}

const ref = (logicalId: string) => ({ Ref: logicalId });

describe('StreamingApi: public ALB -> execute-api endpoint -> private REST API (STREAM) -> proxy function', () => {
  test('NET-08 / MON-01: the ALB forwards exactly /v1/*, /health and /ready, with the Host header rewritten to the private API and the stage put in front of the path', () => {
    const [, rule] = resourceNamed(
      production,
      'AWS::ElasticLoadBalancingV2::ListenerRule',
      'StreamingApiRoute',
    );
    const [apiId] = resourceNamed(production, 'AWS::ApiGateway::RestApi', 'StreamingApi');
    const [targetGroupId] = resourceNamed(
      production,
      'AWS::ElasticLoadBalancingV2::TargetGroup',
      'StreamingApiTargets',
    );
    expect(proxyPathPatterns).toEqual(['/v1/*', '/health', '/ready']);
    expect(rule.Properties).toMatchObject({
      Priority: 20,
      Conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: proxyPathPatterns } }],
      Actions: [{ Type: 'forward', TargetGroupArn: ref(targetGroupId) }],
      ListenerArn: {
        'Fn::ImportValue': expect.stringMatching(/^ai-proxy-production-edge:.*Https/),
      },
      Transforms: [
        {
          Type: 'host-header-rewrite',
          HostHeaderRewriteConfig: {
            Rewrites: [
              {
                Regex: '^.*$',
                Replace: {
                  'Fn::Join': ['', [ref(apiId), '.execute-api.eu-west-1.', ref('AWS::URLSuffix')]],
                },
              },
            ],
          },
        },
        {
          Type: 'url-rewrite',
          UrlRewriteConfig: {
            Rewrites: [{ Regex: '^/(.*)$', Replace: `/${streamingApiStageName}/$1` }],
          },
        },
      ],
    });
    // The internal paths' 404 (priority 1, edge stack) is evaluated first; /metrics is never forwarded.
    expect(rule.Properties?.Priority).toBeGreaterThan(1);
    expect(JSON.stringify(rule.Properties?.Conditions)).not.toContain('/metrics');
  });

  test('the old Lambda target group of the proxy is gone, and so is its load balancer permission', () => {
    const lambdaGroups = resourcesOf(production.templates.api).filter(
      ([, resource]) =>
        resource.Type === 'AWS::ElasticLoadBalancingV2::TargetGroup' &&
        resource.Properties?.TargetType === 'lambda',
    );
    expect(lambdaGroups.map(([id]) => id)).toEqual([expect.stringMatching(/^CreditsTargets/)]);
    const proxyPermissions = resourcesOf(production.templates.api).filter(
      ([, resource]) =>
        resource.Type === 'AWS::Lambda::Permission' &&
        JSON.stringify(resource.Properties?.FunctionName).includes('ProxyFunction'),
    );
    expect(proxyPermissions.length).toBeGreaterThan(0);
    for (const [, permission] of proxyPermissions)
      expect(permission.Properties?.Principal).toBe('apigateway.amazonaws.com');
  });

  test.each([
    ['production', 3],
    ['dev', 1],
  ])(
    'MON-01: %s: an IP target group on HTTPS 443 whose targets are the endpoint ENI addresses, one lookup per zone, health-checked on the endpoint',
    (stageName, zones) => {
      const stage = stageName === 'production' ? production : dev;
      const [, group] = resourceNamed(
        stage,
        'AWS::ElasticLoadBalancingV2::TargetGroup',
        'StreamingApiTargets',
      );
      const lookups = resourcesOf(stage.templates.api).filter(
        ([id, resource]) =>
          resource.Type === 'Custom::AWS' && id.startsWith('StreamingApiEndpointAddress'),
      );
      expect(lookups).toHaveLength(zones);
      expect(stage.config.network.interfaceEndpointAzCount).toBe(zones);
      expect(group.Properties).toMatchObject({
        TargetType: 'ip',
        Protocol: 'HTTPS',
        Port: 443,
        HealthCheckEnabled: true,
        HealthCheckProtocol: 'HTTPS',
        HealthCheckPath: '/',
        Matcher: { HttpCode: endpointHealthyHttpCodes },
        // Targets in zone order, each the address its zone's lookup found.
        Targets: lookups.map(([id]) => ({
          Id: { 'Fn::GetAtt': [id, 'NetworkInterfaces.0.PrivateIpAddress'] },
          Port: 443,
        })),
      });
      expect(endpointHealthyHttpCodes.split(',')).toEqual(['200', '403']);
      const attributes = Object.fromEntries(
        (group.Properties?.TargetGroupAttributes as { Key: string; Value: string }[]).map(
          ({ Key, Value }) => [Key, Value],
        ),
      );
      expect(attributes['deregistration_delay.timeout_seconds']).toBe(
        String(stage.config.api.gateway.integrationTimeoutSeconds),
      );
    },
  );

  test('the address lookups: EC2 DescribeNetworkInterfaces of the endpoint, filtered to one subnet each, with a stable physical id and read-only permission', () => {
    const [endpointId] = resourceNamed(production, 'AWS::EC2::VPCEndpoint', 'StreamingApiEndpoint');
    const lookups = resourcesOf(production.templates.api).filter(
      ([id, resource]) =>
        resource.Type === 'Custom::AWS' && id.startsWith('StreamingApiEndpointAddress'),
    );
    const subnets = lookups.map(([, lookup]) => {
      const create = JSON.stringify(lookup.Properties?.Create);
      expect(create).toContain('DescribeNetworkInterfaces');
      expect(create).toContain('VPC Endpoint Interface ');
      expect(create).toContain(JSON.stringify(ref(endpointId)));
      expect(JSON.stringify(lookup.Properties?.Update)).toBe(create);
      return create.match(/ExportsOutputRefVpcprivateSubnet(\d)/)?.[1];
    });
    expect(subnets).toEqual(['1', '2', '3']);
    const policies = resourcesOf(production.templates.api).filter(
      ([id, resource]) =>
        resource.Type === 'AWS::IAM::Policy' && id.startsWith('StreamingApiEndpointAddress'),
    );
    expect(policies).toHaveLength(3);
    for (const [, policy] of policies) {
      expect((policy.Properties?.PolicyDocument as { Statement: unknown[] }).Statement).toEqual([
        { Action: 'ec2:DescribeNetworkInterfaces', Effect: 'Allow', Resource: '*' },
      ]);
    }
  });

  test('NET-06 / NET-07: an execute-api interface endpoint in the private subnets, without private DNS, that admits HTTPS only from the public ALB', () => {
    const [endpointId, endpoint] = resourceNamed(
      production,
      'AWS::EC2::VPCEndpoint',
      'StreamingApiEndpoint',
    );
    const [groupId, group] = resourceNamed(
      production,
      'AWS::EC2::SecurityGroup',
      'StreamingApiEndpointSecurityGroup',
    );
    expect(endpoint.Properties).toMatchObject({
      ServiceName: 'com.amazonaws.eu-west-1.execute-api',
      VpcEndpointType: 'Interface',
      PrivateDnsEnabled: false,
      SecurityGroupIds: [{ 'Fn::GetAtt': [groupId, 'GroupId'] }],
    });
    expect(
      JSON.stringify(endpoint.Properties?.SubnetIds).match(/ExportsOutputRefVpcprivateSubnet\d/g),
    ).toEqual([
      'ExportsOutputRefVpcprivateSubnet1',
      'ExportsOutputRefVpcprivateSubnet2',
      'ExportsOutputRefVpcprivateSubnet3',
    ]);
    // The endpoint carries invocations of this account's APIs only.
    expect(endpoint.Properties?.PolicyDocument).toMatchObject({
      Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Principal: { AWS: '*' } }],
    });
    expect(JSON.stringify(endpoint.Properties?.PolicyDocument)).toContain(
      '{"Ref":"AWS::AccountId"}',
    );
    // No inline ingress, no egress; the one ingress rule is 443 from the public ALB's group.
    expect(group.Properties?.SecurityGroupIngress).toBeUndefined();
    expect(group.Properties?.SecurityGroupEgress).toEqual([
      expect.objectContaining({ CidrIp: '255.255.255.255/32' }),
    ]);
    const ingress = resourcesOf(production.templates.api).filter(
      ([, rule]) =>
        rule.Type === 'AWS::EC2::SecurityGroupIngress' &&
        JSON.stringify(rule.Properties?.GroupId).includes(groupId),
    );
    expect(ingress.map(([, rule]) => rule.Properties)).toEqual([
      expect.objectContaining({
        IpProtocol: 'tcp',
        FromPort: 443,
        ToPort: 443,
        SourceSecurityGroupId: {
          'Fn::ImportValue': expect.stringMatching(
            /^ai-proxy-production-edge:.*PublicAlbSecurityGroup/,
          ),
        },
      }),
    ]);
    // The ALB's only egress: 443 to the endpoint (written in this stack, so the edge stack does not depend on it).
    const egress = resourcesOf(production.templates.api).filter(
      ([, rule]) =>
        rule.Type === 'AWS::EC2::SecurityGroupEgress' &&
        JSON.stringify(rule.Properties?.GroupId).includes('PublicAlbSecurityGroup'),
    );
    expect(egress.map(([, rule]) => rule.Properties)).toEqual([
      expect.objectContaining({
        IpProtocol: 'tcp',
        FromPort: 443,
        ToPort: 443,
        DestinationSecurityGroupId: { 'Fn::GetAtt': [groupId, 'GroupId'] },
      }),
    ]);
    expect(JSON.stringify(production.templates.edge.toJSON())).not.toContain('execute-api');
    expect(endpointId).toMatch(/^StreamingApiEndpoint/);
  });

  test('NET-07: the REST API is private and its resource policy admits only that endpoint', () => {
    const [endpointId] = resourceNamed(production, 'AWS::EC2::VPCEndpoint', 'StreamingApiEndpoint');
    const [, api] = resourceNamed(production, 'AWS::ApiGateway::RestApi', 'StreamingApi');
    expect(api.Properties?.EndpointConfiguration).toEqual({ Types: ['PRIVATE'] });
    const invoke = {
      Action: 'execute-api:Invoke',
      Principal: { AWS: '*' },
      Resource: 'execute-api:/*',
    };
    expect(api.Properties?.Policy).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          ...invoke,
          Effect: 'Deny',
          Condition: { StringNotEquals: { 'aws:SourceVpce': ref(endpointId) } },
        },
        {
          ...invoke,
          Effect: 'Allow',
          Condition: { StringEquals: { 'aws:SourceVpce': ref(endpointId) } },
        },
      ],
    });
  });

  test('every method is a Lambda proxy integration in STREAM mode (InvokeWithResponseStream) on the proxy function, for exactly the forwarded paths', () => {
    const [apiId] = resourceNamed(production, 'AWS::ApiGateway::RestApi', 'StreamingApi');
    const resources = resourcesOf(production.templates.api).filter(
      ([, resource]) => resource.Type === 'AWS::ApiGateway::Resource',
    );
    expect(resources.map(([, resource]) => resource.Properties?.PathPart).sort()).toEqual(
      ['health', 'ready', 'v1', '{proxy+}'].sort(),
    );
    const methods = resourcesOf(production.templates.api).filter(
      ([, resource]) => resource.Type === 'AWS::ApiGateway::Method',
    );
    expect(methods).toHaveLength(3);
    for (const [, method] of methods) {
      expect(method.Properties).toMatchObject({
        RestApiId: ref(apiId),
        HttpMethod: 'ANY',
        AuthorizationType: 'NONE',
        Integration: {
          Type: 'AWS_PROXY',
          IntegrationHttpMethod: 'POST',
          ResponseTransferMode: 'STREAM',
          TimeoutInMillis: production.config.api.gateway.integrationTimeoutSeconds * 1000,
        },
      });
      const uri = JSON.stringify((method.Properties?.Integration as { Uri: unknown }).Uri);
      expect(uri).toContain('lambda:path/2021-11-15/functions/');
      expect(uri).toContain('/response-streaming-invocations');
      expect(uri).toMatch(/ProxyFunction/);
    }
  });

  test('LOG-03 / MON-02: the stage has access logs and error-level execution logs in KMS-encrypted log groups, X-Ray tracing and throttling from the config', () => {
    const [accessLogsId, accessLogs] = resourceNamed(
      production,
      'AWS::Logs::LogGroup',
      'StreamingApiAccessLogs',
    );
    const [, executionLogs] = resourceNamed(
      production,
      'AWS::Logs::LogGroup',
      'StreamingApiExecutionLogs',
    );
    const [apiId] = resourceNamed(production, 'AWS::ApiGateway::RestApi', 'StreamingApi');
    for (const group of [accessLogs, executionLogs]) {
      expect(group.Properties).toMatchObject({
        RetentionInDays: 365,
        KmsKeyId: {
          'Fn::ImportValue': expect.stringMatching(/^ai-proxy-production-network:.*LogsKey/),
        },
      });
    }
    expect(executionLogs.Properties?.LogGroupName).toEqual({
      'Fn::Join': ['', ['API-Gateway-Execution-Logs_', ref(apiId), `/${streamingApiStageName}`]],
    });
    for (const [stage, rate, burst] of [
      [production, 100, 200],
      [dev, 20, 40],
    ] as const) {
      const [, apiStage] = resourceNamed(
        stage,
        'AWS::ApiGateway::Stage',
        'StreamingApiDeploymentStage',
      );
      expect(stage.config.api.gateway).toMatchObject({
        throttlingRateRequestsPerSecond: rate,
        throttlingBurstRequests: burst,
      });
      expect(apiStage.Properties).toMatchObject({
        StageName: streamingApiStageName,
        TracingEnabled: true,
        MethodSettings: [
          {
            HttpMethod: '*',
            ResourcePath: '/*',
            ThrottlingRateLimit: rate,
            ThrottlingBurstLimit: burst,
            LoggingLevel: 'ERROR',
            DataTraceEnabled: false,
            MetricsEnabled: true,
          },
        ],
      });
    }
    const [, apiStage] = resourceNamed(
      production,
      'AWS::ApiGateway::Stage',
      'StreamingApiDeploymentStage',
    );
    const accessLogSetting = apiStage.Properties?.AccessLogSetting as {
      DestinationArn: unknown;
      Format: string;
    };
    expect(JSON.stringify(accessLogSetting.DestinationArn)).toContain(accessLogsId);
    const format = JSON.parse(accessLogSetting.Format) as Record<string, string>;
    expect(format).toMatchObject({
      requestId: '$context.requestId',
      status: '$context.status',
      integrationLatencyMs: '$context.integration.latency',
      sourceIp: '$context.identity.sourceIp',
    });
    // Never a header (API keys) or a body (prompts).
    expect(accessLogSetting.Format).not.toMatch(/header|body|authorization/i);
    // Execution logs are written only after their encrypted group exists.
    expect(
      resourcesOf(production.templates.api).find(([id]) =>
        id.startsWith('StreamingApiDeploymentStage'),
      )?.[1],
    ).toMatchObject({
      DependsOn: expect.arrayContaining([expect.stringMatching(/^StreamingApiExecutionLogs/)]),
    });
  });

  test('timeouts: provider budget < proxy function <= API Gateway integration < ALB idle, as synthesized', () => {
    for (const stage of [production, dev]) {
      const chain = timeoutChainOf(stage.config);
      expect(timeoutChainProblems(chain)).toEqual([]);
      expect(functionNamed(stage, 'ProxyFunction').Properties?.Timeout).toBe(
        chain.lambdaTimeoutSeconds,
      );
      const [, method] = resourcesOf(stage.templates.api).find(
        ([, resource]) => resource.Type === 'AWS::ApiGateway::Method',
      )!;
      expect((method.Properties?.Integration as { TimeoutInMillis: number }).TimeoutInMillis).toBe(
        chain.integrationTimeoutSeconds * 1000,
      );
      const [[, alb]] = resourcesOf(stage.templates.edge).filter(
        ([, resource]) => resource.Type === 'AWS::ElasticLoadBalancingV2::LoadBalancer',
      );
      const idle = (
        alb.Properties?.LoadBalancerAttributes as { Key: string; Value: string }[]
      ).find(({ Key }) => Key === 'idle_timeout.timeout_seconds')?.Value;
      expect(Number(idle)).toBe(chain.albIdleTimeoutSeconds);
      expect(chain.providerBudgetSeconds).toBeLessThan(chain.lambdaTimeoutSeconds);
      expect(chain.lambdaTimeoutSeconds).toBeLessThanOrEqual(chain.integrationTimeoutSeconds);
      expect(chain.integrationTimeoutSeconds).toBeLessThan(chain.albIdleTimeoutSeconds);
    }
  });
});
