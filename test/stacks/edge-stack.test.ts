import { Match } from 'aws-cdk-lib/assertions';
import { internalPathPatterns, notFoundBody } from '../../lib/constructs/hardened-alb';
import { resourcesOf, synthesizeStage, type SynthesizedStage } from '../support/synth';

let production: SynthesizedStage;
let dev: SynthesizedStage;

beforeAll(() => {
  production = synthesizeStage('production');
  dev = synthesizeStage('dev');
});

function loadBalancerAttributes(stage: SynthesizedStage): Record<string, string> {
  const [[, alb]] = resourcesOf(stage.templates.edge).filter(
    ([, resource]) => resource.Type === 'AWS::ElasticLoadBalancingV2::LoadBalancer',
  );
  const attributes = alb.Properties?.LoadBalancerAttributes as { Key: string; Value: string }[];
  return Object.fromEntries(attributes.map(({ Key, Value }) => [Key, Value]));
}

function webAclRules(stage: SynthesizedStage): Record<string, Record<string, unknown>> {
  const [[, acl]] = resourcesOf(stage.templates.edge).filter(
    ([, resource]) => resource.Type === 'AWS::WAFv2::WebACL',
  );
  const rules = acl.Properties?.Rules as Record<string, unknown>[];
  return Object.fromEntries(rules.map((rule) => [rule.Name as string, rule]));
}

describe('HardenedAlb', () => {
  test('NET-06: the only internet-facing resource is the ALB, in the public subnets', () => {
    production.templates.edge.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Scheme: 'internet-facing',
      Subnets: Match.arrayWith([
        {
          'Fn::ImportValue': Match.stringLikeRegexp('^ai-proxy-production-network:.*publicSubnet'),
        },
      ]),
    });
    const internetFacing = resourcesOf(production.templates.edge).filter(
      ([, resource]) => resource.Properties?.Scheme === 'internet-facing',
    );
    expect(internetFacing).toHaveLength(1);
  });

  test('NET-03: HTTPS on 443 with an ACM certificate and a TLS 1.3 policy that keeps TLS 1.2 as the minimum', () => {
    production.templates.edge.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 443,
      Protocol: 'HTTPS',
      SslPolicy: 'ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09',
      Certificates: [{ CertificateArn: { Ref: Match.stringLikeRegexp('^Certificate') } }],
    });
    production.templates.edge.hasResourceProperties('AWS::CertificateManager::Certificate', {
      DomainName: 'api.acme-ai.net',
      ValidationMethod: 'DNS',
    });
  });

  test('NET-04: HTTP on 80 redirects permanently to HTTPS', () => {
    production.templates.edge.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 80,
      Protocol: 'HTTP',
      DefaultActions: [
        {
          Type: 'redirect',
          RedirectConfig: { Protocol: 'HTTPS', Port: '443', StatusCode: 'HTTP_301' },
        },
      ],
    });
  });

  test('NET-11: invalid header fields are dropped and desync mitigation is strictest', () => {
    const attributes = loadBalancerAttributes(production);
    expect(attributes['routing.http.drop_invalid_header_fields.enabled']).toBe('true');
    expect(attributes['routing.http.desync_mitigation_mode']).toBe('strictest');
  });

  test('RATE-05: X-Forwarded-For is appended to (the proxy throttles by the address the ALB saw)', () => {
    expect(loadBalancerAttributes(production)['routing.http.xff_header_processing.mode']).toBe(
      'append',
    );
  });

  test('the idle timeout leaves room for slow LLM completions', () => {
    expect(
      Number(loadBalancerAttributes(production)['idle_timeout.timeout_seconds']),
    ).toBeGreaterThanOrEqual(120);
  });

  test('DR-04: deletion protection is on in production and off in dev', () => {
    expect(loadBalancerAttributes(production)['deletion_protection.enabled']).toBe('true');
    expect(loadBalancerAttributes(dev)['deletion_protection.enabled']).toBe('false');
  });

  test('NET-08: /metrics and the internal paths answer a JSON 404 at the ALB', () => {
    production.templates.edge.hasResourceProperties('AWS::ElasticLoadBalancingV2::ListenerRule', {
      Priority: 1,
      Conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: internalPathPatterns } }],
      Actions: [
        {
          Type: 'fixed-response',
          FixedResponseConfig: {
            StatusCode: '404',
            ContentType: 'application/json',
            MessageBody: notFoundBody,
          },
        },
      ],
    });
    expect(internalPathPatterns).toEqual(expect.arrayContaining(['/metrics', '/metrics/*']));
  });

  test('an unknown path gets the JSON 404 (the listener default)', () => {
    production.templates.edge.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 443,
      DefaultActions: [
        {
          Type: 'fixed-response',
          FixedResponseConfig: {
            StatusCode: '404',
            ContentType: 'application/json',
            MessageBody: notFoundBody,
          },
        },
      ],
    });
    expect(JSON.parse(notFoundBody)).toEqual({
      error: { message: 'Not found', type: 'invalid_request_error', code: 'not_found' },
    });
  });

  test('NET-06: the ALB security group admits only 80 and 443 and opens no egress by default', () => {
    production.templates.edge.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: Match.stringLikeRegexp('^Public API load balancer'),
      SecurityGroupIngress: [
        Match.objectLike({ CidrIp: '0.0.0.0/0', FromPort: 80, ToPort: 80 }),
        Match.objectLike({ CidrIp: '0.0.0.0/0', FromPort: 443, ToPort: 443 }),
      ],
      SecurityGroupEgress: [Match.objectLike({ CidrIp: '255.255.255.255/32' })],
    });
  });

  test('DATA-04: access logs go to an encrypted, TLS-only, private, expiring bucket that is retained', () => {
    const edge = production.templates.edge;
    edge.hasResource('AWS::S3::Bucket', {
      Properties: {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            { ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } },
          ],
        },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        LifecycleConfiguration: {
          Rules: Match.arrayWith([Match.objectLike({ ExpirationInDays: 365, Status: 'Enabled' })]),
        },
        VersioningConfiguration: { Status: 'Enabled' },
      },
      DeletionPolicy: 'Retain',
    });
    edge.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
          Match.objectLike({
            Effect: 'Deny',
            Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } },
          }),
        ]),
      },
    });
    expect(loadBalancerAttributes(production)['access_logs.s3.enabled']).toBe('true');
  });

  test('dev, without a certificate, serves HTTP only and opens no 443', () => {
    const edge = dev.templates.edge;
    edge.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 1);
    edge.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 80,
      Protocol: 'HTTP',
    });
    edge.resourceCountIs('AWS::CertificateManager::Certificate', 0);
  });
});

describe('ApiWebAcl', () => {
  test('NET-10: a regional web ACL with the IP reputation, common and known bad inputs rule groups guards the ALB', () => {
    const rules = webAclRules(production);
    for (const group of [
      'AWSManagedRulesAmazonIpReputationList',
      'AWSManagedRulesCommonRuleSet',
      'AWSManagedRulesKnownBadInputsRuleSet',
    ]) {
      expect(rules[`AWS-${group}`]).toMatchObject({
        Statement: { ManagedRuleGroupStatement: { VendorName: 'AWS', Name: group } },
        OverrideAction: { None: {} },
      });
    }
    production.templates.edge.hasResourceProperties('AWS::WAFv2::WebACL', {
      Scope: 'REGIONAL',
      DefaultAction: { Allow: {} },
    });
    production.templates.edge.hasResourceProperties('AWS::WAFv2::WebACLAssociation', {
      ResourceArn: { Ref: Match.stringLikeRegexp('^PublicAlbLoadBalancer') },
      WebACLArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^WebAcl'), 'Arn'] },
    });
  });

  test("NET-12: the common set's 8 KB body rule counts, and our own rule answers 413 above the configured limit", () => {
    const rules = webAclRules(production);
    const overrides = (
      rules['AWS-AWSManagedRulesCommonRuleSet'].Statement as {
        ManagedRuleGroupStatement: { RuleActionOverrides: unknown[] };
      }
    ).ManagedRuleGroupStatement.RuleActionOverrides;
    expect(overrides).toContainEqual({ Name: 'SizeRestrictions_BODY', ActionToUse: { Count: {} } });
    const bodyRule = rules.BodyTooLarge as {
      Action: unknown;
      Statement: { RegexMatchStatement: { RegexString: string; FieldToMatch: unknown } };
    };
    expect(bodyRule.Action).toEqual({
      Block: { CustomResponse: { ResponseCode: 413, CustomResponseBodyKey: 'tooLarge' } },
    });
    expect(bodyRule.Statement.RegexMatchStatement.FieldToMatch).toEqual({
      SingleHeader: { Name: 'content-length' },
    });
    const pattern = new RegExp(bodyRule.Statement.RegexMatchStatement.RegexString);
    expect(pattern.test(String(production.config.requestBodyBytesMax))).toBe(false);
    expect(pattern.test(String(production.config.requestBodyBytesMax + 1))).toBe(true);
  });

  test('RATE-03: a per-IP rate rule and per-key rate rules on Authorization and X-API-Key, over 60 seconds', () => {
    const rules = webAclRules(production);
    expect(rules.RatePerIp).toMatchObject({
      Statement: {
        RateBasedStatement: { AggregateKeyType: 'IP', EvaluationWindowSec: 60, Limit: 600 },
      },
      Action: { Block: { CustomResponse: { ResponseCode: 429 } } },
    });
    for (const header of ['authorization', 'x-api-key']) {
      expect(rules[`RatePerKey-${header}`]).toMatchObject({
        Statement: {
          RateBasedStatement: {
            AggregateKeyType: 'CUSTOM_KEYS',
            EvaluationWindowSec: 60,
            Limit: 120,
            CustomKeys: [
              { Header: { Name: header, TextTransformations: [{ Priority: 0, Type: 'NONE' }] } },
            ],
          },
        },
      });
    }
  });

  test('RATE-05: requests without a well-formed API key get a much lower per-IP limit', () => {
    const rule = webAclRules(production).RatePerIpWithoutApiKey as {
      Statement: {
        RateBasedStatement: {
          Limit: number;
          ScopeDownStatement: {
            NotStatement: {
              Statement: {
                OrStatement: { Statements: { RegexMatchStatement: { RegexString: string } }[] };
              };
            };
          };
        };
      };
    };
    expect(rule.Statement.RateBasedStatement.Limit).toBe(30);
    const [authorization, xApiKey] =
      rule.Statement.RateBasedStatement.ScopeDownStatement.NotStatement.Statement.OrStatement.Statements.map(
        (statement) => new RegExp(statement.RegexMatchStatement.RegexString),
      );
    const wellFormedKey = `sk-${'A'.repeat(43)}`;
    expect(authorization.test(`Bearer ${wellFormedKey}`)).toBe(true);
    expect(authorization.test('Bearer guess')).toBe(false);
    expect(xApiKey.test(wellFormedKey)).toBe(true);
    expect(xApiKey.test(`${wellFormedKey}x`)).toBe(false);
  });

  test('blocks answer in the API JSON error shape', () => {
    const [[, acl]] = resourcesOf(production.templates.edge).filter(
      ([, resource]) => resource.Type === 'AWS::WAFv2::WebACL',
    );
    const bodies = acl.Properties?.CustomResponseBodies as Record<
      string,
      { ContentType: string; Content: string }
    >;
    for (const body of Object.values(bodies)) {
      expect(body.ContentType).toBe('APPLICATION_JSON');
      expect(JSON.parse(body.Content)).toEqual({
        error: { message: expect.any(String), type: expect.any(String), code: expect.any(String) },
      });
    }
  });

  test('LOG-03: WAF logs go to an encrypted aws-waf-logs- group with the key headers redacted', () => {
    const edge = production.templates.edge;
    edge.hasResource('AWS::Logs::LogGroup', {
      Properties: {
        LogGroupName: 'aws-waf-logs-ai-proxy-production-edge',
        RetentionInDays: 365,
        KmsKeyId: Match.anyValue(),
      },
      DeletionPolicy: 'RetainExceptOnCreate',
    });
    edge.hasResourceProperties('AWS::WAFv2::LoggingConfiguration', {
      LogDestinationConfigs: [
        { 'Fn::Join': ['', Match.arrayWith([':log-group:aws-waf-logs-ai-proxy-production-edge'])] },
      ],
      RedactedFields: [
        { SingleHeader: { Name: 'authorization' } },
        { SingleHeader: { Name: 'x-api-key' } },
      ],
    });
  });
});
