import { Arn, ArnFormat, Stack } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { CfnLoggingConfiguration, CfnWebACL, CfnWebACLAssociation } from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { apiKeyPatternSource } from '../deployed-code';
import { decimalGreaterThanPattern } from './decimal-pattern';
import { EncryptedLogGroup } from './encrypted-log-group';

/** WAF rate-based rules count over this window (seconds). */
export const rateWindowSeconds = 60;

/** Headers that carry API keys: counted per key, redacted from the WAF logs. */
export const apiKeyHeaders = ['authorization', 'x-api-key'] as const;

export interface ApiWebAclProps {
  /** The ARN of the resource to protect (the public ALB). */
  readonly resourceArn: string;
  readonly ipRequestsPerMinute: number;
  readonly keyRequestsPerMinute: number;
  readonly anonymousRequestsPerMinute: number;
  readonly requestBodyBytesMax: number;
  /** Body-inspecting rules of the common rule set to count instead of block (SizeRestrictions_BODY always is). */
  readonly countOnlyCommonRules: readonly string[];
  readonly logsKey: IKey;
  readonly logRetentionDays: number;
}

type Rule = CfnWebACL.RuleProperty;

const responseBodies = {
  rateLimited: {
    message: 'Too many requests; slow down and retry after a minute',
    type: 'rate_limit_error',
    code: 'rate_limited',
  },
  tooLarge: {
    message: 'Request body too large',
    type: 'invalid_request_error',
    code: 'request_too_large',
  },
  forbidden: { message: 'Request blocked', type: 'invalid_request_error', code: 'forbidden' },
};

function visibility(metricName: string): CfnWebACL.VisibilityConfigProperty {
  return { cloudWatchMetricsEnabled: true, metricName, sampledRequestsEnabled: true };
}

function block(
  responseCode: number,
  bodyKey: keyof typeof responseBodies,
): CfnWebACL.RuleActionProperty {
  return { block: { customResponse: { responseCode, customResponseBodyKey: bodyKey } } };
}

function managedRuleGroup(name: string, priority: number, countOnly: readonly string[] = []): Rule {
  return {
    name: `AWS-${name}`,
    priority,
    overrideAction: { none: {} },
    statement: {
      managedRuleGroupStatement: {
        vendorName: 'AWS',
        name,
        ruleActionOverrides:
          countOnly.length > 0
            ? countOnly.map((ruleName) => ({ name: ruleName, actionToUse: { count: {} } }))
            : undefined,
      },
    },
    visibilityConfig: visibility(`AWS-${name}`),
  };
}

function headerMatchesApiKey(header: (typeof apiKeyHeaders)[number]): CfnWebACL.StatementProperty {
  const regexString =
    header === 'authorization' ? `^[Bb]earer ${apiKeyPatternSource}$` : `^${apiKeyPatternSource}$`;
  return {
    regexMatchStatement: {
      fieldToMatch: { singleHeader: { Name: header } },
      regexString,
      textTransformations: [{ priority: 0, type: 'NONE' }],
    },
  };
}

function rateRules(props: ApiWebAclProps): Rule[] {
  const perIp: Rule = {
    name: 'RatePerIp',
    priority: 10,
    action: block(429, 'rateLimited'),
    statement: {
      rateBasedStatement: {
        limit: props.ipRequestsPerMinute,
        evaluationWindowSec: rateWindowSeconds,
        aggregateKeyType: 'IP',
      },
    },
    visibilityConfig: visibility('RatePerIp'),
  };
  // Requests without a well-formed key cannot be billed; a low per-IP limit slows key guessing (RATE-05).
  const anonymousPerIp: Rule = {
    name: 'RatePerIpWithoutApiKey',
    priority: 11,
    action: block(429, 'rateLimited'),
    statement: {
      rateBasedStatement: {
        limit: props.anonymousRequestsPerMinute,
        evaluationWindowSec: rateWindowSeconds,
        aggregateKeyType: 'IP',
        scopeDownStatement: {
          notStatement: {
            statement: {
              orStatement: {
                statements: apiKeyHeaders.map((header) => headerMatchesApiKey(header)),
              },
            },
          },
        },
      },
    },
    visibilityConfig: visibility('RatePerIpWithoutApiKey'),
  };
  const perKey = apiKeyHeaders.map((header, index): Rule => ({
    name: `RatePerKey-${header}`,
    priority: 12 + index,
    action: block(429, 'rateLimited'),
    statement: {
      rateBasedStatement: {
        limit: props.keyRequestsPerMinute,
        evaluationWindowSec: rateWindowSeconds,
        aggregateKeyType: 'CUSTOM_KEYS',
        customKeys: [
          { header: { name: header, textTransformations: [{ priority: 0, type: 'NONE' }] } },
        ],
      },
    },
    visibilityConfig: visibility(`RatePerKey-${header}`),
  }));
  return [perIp, anonymousPerIp, ...perKey];
}

function bodySizeRule(requestBodyBytesMax: number): Rule {
  // The WAF sees only the first 8 KB of an ALB request body, so the declared length is what it checks;
  // the app enforces the same limit on the bytes it actually reads (NET-12).
  return {
    name: 'BodyTooLarge',
    priority: 20,
    action: block(413, 'tooLarge'),
    statement: {
      regexMatchStatement: {
        fieldToMatch: { singleHeader: { Name: 'content-length' } },
        regexString: decimalGreaterThanPattern(requestBodyBytesMax),
        textTransformations: [{ priority: 0, type: 'NONE' }],
      },
    },
    visibilityConfig: visibility('BodyTooLarge'),
  };
}

/**
 * The regional web ACL in front of the public ALB (NET-10): AWS's IP reputation, common and known
 * bad inputs rule groups, rate limits per IP, per API key and for requests without a key (RATE-03,
 * RATE-05), and a body size limit (NET-12). Blocks answer in the API's JSON error shape. Logs go to
 * an encrypted log group with the key headers redacted.
 */
export class ApiWebAcl extends Construct {
  /** The `WebACL` dimension of the web ACL's CloudWatch metrics (its visibility config's metric name). */
  static readonly metricName = 'ApiWebAcl';
  readonly webAcl: CfnWebACL;
  readonly logGroup: EncryptedLogGroup;

  constructor(scope: Construct, id: string, props: ApiWebAclProps) {
    super(scope, id);
    const countOnly = [
      'SizeRestrictions_BODY',
      ...props.countOnlyCommonRules.filter((rule) => rule !== 'SizeRestrictions_BODY'),
    ];
    this.webAcl = new CfnWebACL(this, 'Resource', {
      scope: 'REGIONAL',
      description: 'Public AI proxy API',
      defaultAction: { allow: {} },
      customResponseBodies: Object.fromEntries(
        Object.entries(responseBodies).map(([key, error]) => [
          key,
          { contentType: 'APPLICATION_JSON', content: JSON.stringify({ error }) },
        ]),
      ),
      rules: [
        managedRuleGroup('AWSManagedRulesAmazonIpReputationList', 0),
        ...rateRules(props),
        bodySizeRule(props.requestBodyBytesMax),
        managedRuleGroup('AWSManagedRulesCommonRuleSet', 30, countOnly),
        managedRuleGroup('AWSManagedRulesKnownBadInputsRuleSet', 31),
      ],
      visibilityConfig: visibility(ApiWebAcl.metricName),
    });
    new CfnWebACLAssociation(this, 'Association', {
      resourceArn: props.resourceArn,
      webAclArn: this.webAcl.attrArn,
    });

    const stack = Stack.of(this);
    const logGroupName = `aws-waf-logs-${stack.stackName}`;
    this.logGroup = new EncryptedLogGroup(this, 'Logs', {
      encryptionKey: props.logsKey,
      retentionDays: props.logRetentionDays,
      logGroupName,
    });
    const logging = new CfnLoggingConfiguration(this, 'Logging', {
      resourceArn: this.webAcl.attrArn,
      // WAF wants the log group ARN without the ':*' suffix that LogGroup.logGroupArn carries.
      logDestinationConfigs: [
        Arn.format(
          {
            service: 'logs',
            resource: 'log-group',
            resourceName: logGroupName,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          },
          stack,
        ),
      ],
      redactedFields: apiKeyHeaders.map((header) => ({ singleHeader: { Name: header } })),
    });
    logging.node.addDependency(this.logGroup);
  }
}
