import { metricDefinitions, metricsNamespace } from '../../lambda/shared/metrics';
import { resourcesOf, synthesizeStage, type SynthesizedStage } from '../support/synth';

let production: SynthesizedStage;
let dev: SynthesizedStage;

beforeAll(() => {
  production = synthesizeStage('production');
  // Thresholds come from the config: a changed one shows in the template.
  dev = synthesizeStage('dev', {
    overrides: {
      alarms: { latencyP99MillisecondsMax: 12_000, rateLimitRefusalsPerFiveMinutesMax: 42 },
    },
  });
});

type Resource = ReturnType<typeof resourcesOf>[number][1];
interface MetricQuery {
  Id: string;
  Expression?: string;
  MetricStat?: {
    Metric: {
      Namespace: string;
      MetricName: string;
      Dimensions: { Name: string; Value: unknown }[];
    };
    Stat: string;
  };
}

function alarmsOf(stage: SynthesizedStage): Map<string, Resource> {
  const alarms = resourcesOf(stage.templates.observability).filter(
    ([, resource]) => resource.Type === 'AWS::CloudWatch::Alarm',
  );
  // Logical ids are the construct id plus a hash.
  return new Map(alarms.map(([id, alarm]) => [id.replace(/[0-9A-F]{8}$/, ''), alarm]));
}

function alarm(stage: SynthesizedStage, name: string): Record<string, unknown> {
  const found = alarmsOf(stage).get(name);
  if (!found) throw new Error(`no alarm ${name}`);
  return found.Properties as Record<string, unknown>;
}

/** Every metric an alarm reads, directly or through its math expression. */
function metricsOf(
  properties: Record<string, unknown>,
): { namespace: string; name: string; dimensions: Record<string, unknown>; statistic: string }[] {
  if (properties.MetricName) {
    const dimensions = Object.fromEntries(
      ((properties.Dimensions as { Name: string; Value: unknown }[] | undefined) ?? []).map(
        (dimension) => [dimension.Name, dimension.Value],
      ),
    );
    return [
      {
        namespace: properties.Namespace as string,
        name: properties.MetricName as string,
        dimensions,
        statistic: (properties.Statistic ?? properties.ExtendedStatistic) as string,
      },
    ];
  }
  return ((properties.Metrics as MetricQuery[]) ?? [])
    .filter((query) => query.MetricStat)
    .map(({ MetricStat }) => ({
      namespace: MetricStat!.Metric.Namespace,
      name: MetricStat!.Metric.MetricName,
      dimensions: Object.fromEntries(
        MetricStat!.Metric.Dimensions.map((dimension) => [dimension.Name, dimension.Value]),
      ),
      statistic: MetricStat!.Stat,
    }));
}

function expressionOf(properties: Record<string, unknown>): string {
  return (
    ((properties.Metrics as MetricQuery[]).find((query) => query.Expression)
      ?.Expression as string) ?? ''
  );
}

/** The dashboard body with every token (a cross-stack reference, the region) as TOKEN, parsed. */
function dashboardBody(stage: SynthesizedStage): {
  widgets: { type: string; properties: Record<string, unknown> }[];
} {
  const [[, dashboard]] = resourcesOf(stage.templates.observability).filter(
    ([, resource]) => resource.Type === 'AWS::CloudWatch::Dashboard',
  );
  const body = dashboard.Properties?.DashboardBody as string | { 'Fn::Join': [string, unknown[]] };
  const text =
    typeof body === 'string'
      ? body
      : body['Fn::Join'][1].map((part) => (typeof part === 'string' ? part : 'TOKEN')).join('');
  return JSON.parse(text) as { widgets: { type: string; properties: Record<string, unknown> }[] };
}

const expectedAlarms: [string, string, (stage: SynthesizedStage) => number][] = [
  [
    'ServerErrorRate',
    'deploy-rollback.md',
    (stage) => stage.config.alarms.serverErrorRatePercentMax,
  ],
  [
    'LatencyP99',
    'provider-outage.md',
    (stage) => stage.config.alarms.latencyP99MillisecondsMax / 1000,
  ],
  [
    'BillingFailures',
    'credits-down.md',
    (stage) => stage.config.alarms.billingFailuresPerFiveMinutesMax,
  ],
  // Any completion delivered and never billed is one too many.
  ['UnsettledHolds', 'credits-down.md', () => 0],
  // A settlement given up by the queue, or a settle function that fails: each one is worth a look.
  ['SettlementDeadLetters', 'credits-down.md', () => 0],
  ['SettleFunctionErrors', 'credits-down.md', () => 0],
  [
    'CreditsUnavailable',
    'credits-down.md',
    (stage) => stage.config.alarms.creditsUnavailablePerMinuteMax,
  ],
  [
    'RateLimitRefusals',
    'incident-response.md',
    (stage) => stage.config.alarms.rateLimitRefusalsPerFiveMinutesMax,
  ],
  [
    'WafBlockedRequests',
    'incident-response.md',
    (stage) => stage.config.alarms.wafBlockedRequestsPerFiveMinutesMax,
  ],
  ['RotationFailed', 'keys.md', (stage) => stage.config.alarms.rotationErrorsPerFiveMinutesMax],
];

describe('ObservabilityStack', () => {
  test('stack ai-proxy-<stage>-observability; nothing depends on it', () => {
    expect(production.stacks.observability.stackName).toBe('ai-proxy-production-observability');
    for (const stack of [
      production.stacks.network,
      production.stacks.edge,
      production.stacks.ledger,
      production.stacks.api,
    ]) {
      expect(stack.dependencies).not.toContain(production.stacks.observability);
    }
  });

  test('MON-03: one KMS-encrypted SNS topic for the stage, TLS only, with the e-mail subscription from the config', () => {
    const template = production.templates.observability;
    template.resourceCountIs('AWS::SNS::Topic', 1);
    const [[, topic]] = resourcesOf(template).filter(
      ([, resource]) => resource.Type === 'AWS::SNS::Topic',
    );
    expect(topic.Properties?.KmsMasterKeyId).toEqual({
      'Fn::GetAtt': [expect.stringMatching(/^AlarmTopicKey/), 'Arn'],
    });
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: production.config.alarmEmail,
    });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: [{ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }],
      },
    });
    // dev sets no address: no subscription.
    dev.templates.observability.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  test.each(expectedAlarms)(
    'MON-03: alarm %s exists with its threshold from the config, its runbook (%s) and the SNS actions',
    (name, runbook, threshold) => {
      for (const stage of [production, dev]) {
        const properties = alarm(stage, name);
        expect(properties.Threshold).toBe(threshold(stage));
        expect(properties.ComparisonOperator).toBe('GreaterThanThreshold');
        expect(properties.AlarmDescription).toContain(`Runbook: docs/runbooks/${runbook}`);
        expect(properties.AlarmActions).toEqual([{ Ref: expect.stringMatching(/^AlarmTopic/) }]);
        expect(properties.OKActions).toEqual([{ Ref: expect.stringMatching(/^AlarmTopic/) }]);
        expect(properties.TreatMissingData).toBe('notBreaching');
      }
    },
  );

  test('MON-03: the thresholds follow the config (overridden in dev)', () => {
    expect(alarm(dev, 'LatencyP99').Threshold).toBe(12);
    expect(alarm(dev, 'RateLimitRefusals').Threshold).toBe(42);
    expect(alarm(production, 'LatencyP99').Threshold).toBe(30);
    expect([...alarmsOf(production).keys()].sort()).toEqual(
      expectedAlarms.map(([name]) => name).sort(),
    );
  });

  test('MON-03: the 5xx rate is target and load balancer 5xx over requests at the public ALB, in percent, over 5 minutes', () => {
    const properties = alarm(production, 'ServerErrorRate');
    expect(
      metricsOf(properties)
        .map((metric) => metric.name)
        .sort(),
    ).toEqual(['HTTPCode_ELB_5XX_Count', 'HTTPCode_Target_5XX_Count', 'RequestCount']);
    for (const metric of metricsOf(properties))
      expect(JSON.stringify(metric.dimensions.LoadBalancer)).toContain('ai-proxy-production-edge');
    expect(expressionOf(properties)).toBe(
      'IF(requests >= 20, 100 * (FILL(targetErrors, 0) + FILL(balancerErrors, 0)) / requests, 0)',
    );
    expect(properties.EvaluationPeriods).toBe(1);
    expect(
      (properties.Metrics as { MetricStat?: { Period: number } }[])
        .filter((query) => query.MetricStat)
        .every((query) => query.MetricStat?.Period === 300),
    ).toBe(true);
  });

  test('MON-03: p99 latency is the public ALB target response time; WAF blocks and rotation errors are watched', () => {
    expect(metricsOf(alarm(production, 'LatencyP99'))).toEqual([
      expect.objectContaining({
        namespace: 'AWS/ApplicationELB',
        name: 'TargetResponseTime',
        statistic: 'p99',
      }),
    ]);
    expect(metricsOf(alarm(production, 'WafBlockedRequests'))).toEqual([
      expect.objectContaining({
        namespace: 'AWS/WAFV2',
        name: 'BlockedRequests',
        dimensions: { WebACL: 'ApiWebAcl', Region: 'eu-west-1', Rule: 'ALL' },
      }),
    ]);
    const rotation = metricsOf(alarm(production, 'RotationFailed'));
    expect(rotation).toHaveLength(2);
    expect(JSON.stringify(rotation.map((metric) => metric.dimensions.FunctionName))).toMatch(
      /ai-proxy-production-api.*ai-proxy-production-ledger/,
    );
  });

  test('MON-03 / MON-04: on the streaming path the public ALB forwards to the execute-api endpoint, so its 5xx and response times still watch the proxy; the dashboard adds API Gateway and the endpoint ENIs', () => {
    // The only target group the public ALB forwards the API to is the endpoint's: the ALB metrics of the alarms are the proxy's.
    const forwarded = resourcesOf(production.templates.api).filter(
      ([, resource]) =>
        resource.Type === 'AWS::ElasticLoadBalancingV2::ListenerRule' &&
        JSON.stringify(resource.Properties?.ListenerArn).includes('PublicAlb'),
    );
    expect(forwarded.map(([id]) => id)).toEqual([expect.stringMatching(/^StreamingApiRoute/)]);
    expect(alarm(production, 'LatencyP99').AlarmDescription).toMatch(
      /time to the first byte.*Runbook: docs\/runbooks\/provider-outage\.md$/,
    );
    const widgets = dashboardBody(production).widgets;
    const metricsText = (title: string) =>
      JSON.stringify(
        widgets.find((widget) => widget.properties.title === title)?.properties.metrics,
      );
    const apiName = production.stacks.api.streamingApi.api.restApiName;
    expect(apiName).toBe('ai-proxy-production-api-streaming');
    for (const name of ['5XXError', '4XXError', 'Latency', 'IntegrationLatency'])
      expect(metricsText('Streaming API (API Gateway)')).toContain(
        `"AWS/ApiGateway","${name}","ApiName","${apiName}"`,
      );
    for (const name of ['HealthyHostCount', 'UnHealthyHostCount', 'HTTPCode_Target_5XX_Count'])
      expect(metricsText('execute-api endpoint targets (public ALB)')).toContain(`"${name}"`);
  });

  test('MON-03: credits unavailable combines the proxy metric with the internal ALB 5xx and unhealthy targets', () => {
    const names = metricsOf(alarm(production, 'CreditsUnavailable')).map(
      (metric) => `${metric.namespace}/${metric.name}`,
    );
    expect(names.sort()).toEqual(
      [
        `${metricsNamespace}/CreditsUnavailable`,
        'AWS/ApplicationELB/HTTPCode_ELB_5XX_Count',
        'AWS/ApplicationELB/HTTPCode_Target_5XX_Count',
        'AWS/ApplicationELB/UnHealthyHostCount',
      ].sort(),
    );
  });

  test('MON-03: the ledger replica-down alarms stay in the ledger stack (its own topic) and are shown on the dashboard', () => {
    const replicaAlarms = resourcesOf(production.templates.ledger).filter(
      ([id, resource]) =>
        resource.Type === 'AWS::CloudWatch::Alarm' && /Replica\dNotRunning/.test(id),
    );
    expect(replicaAlarms).toHaveLength(production.config.ledger.replicaCount);
    const ledgerHealth = dashboardBody(production).widgets.find(
      (widget) => widget.properties.title === 'Ledger health',
    );
    expect(ledgerHealth?.type).toBe('alarm');
    expect((ledgerHealth?.properties.alarms as unknown[]).length).toBe(
      production.stacks.ledger.cluster.alarms.alarms.length,
    );
  });

  test("MON-02: the alarms read the services' EMF metrics (namespace AiProxy, service and stage dimensions)", () => {
    const emf = [...alarmsOf(production).values()]
      .flatMap((resource) => metricsOf(resource.Properties as Record<string, unknown>))
      .filter((metric) => metric.namespace === metricsNamespace);
    expect(emf.map((metric) => metric.name).sort()).toEqual([
      'BillingFailures',
      'CreditsUnavailable',
      'RateLimitRefusals',
      'UnsettledHolds',
    ]);
    for (const metric of emf) {
      expect(Object.keys(metricDefinitions)).toContain(metric.name);
      expect(metric.dimensions).toEqual({ service: 'proxy', stage: 'production' });
    }
    // The functions know their stage, the value of the `stage` dimension.
    const functions = resourcesOf(production.templates.api).filter(
      ([id, resource]) =>
        resource.Type === 'AWS::Lambda::Function' && /^(Proxy|Credits)Function/.test(id),
    );
    expect(functions).toHaveLength(2);
    for (const [, fn] of functions)
      expect(
        (fn.Properties?.Environment as { Variables: Record<string, unknown> }).Variables.STAGE,
      ).toBe('production');
  });

  test('MON-04: one dashboard with traffic, errors, latency, tokens and cost by model, balances refused and ledger health', () => {
    production.templates.observability.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    const widgets = dashboardBody(production).widgets;
    const titles = widgets.map((widget) => widget.properties.title);
    expect(titles).toEqual(
      expect.arrayContaining([
        'Traffic',
        'Errors',
        'Latency',
        'Tokens by model',
        'Cost charged by model (micros)',
        'Balances refused',
        'Ledger operations',
        'Ledger health',
        'Alarms',
      ]),
    );
    const metricsText = (title: string) =>
      JSON.stringify(
        widgets.find((widget) => widget.properties.title === title)?.properties.metrics,
      );
    for (const model of production.config.models) {
      expect(metricsText('Tokens by model')).toContain(`"PromptTokens","model","${model.id}"`);
      expect(metricsText('Cost charged by model (micros)')).toContain(
        `"CostChargedMicros","model","${model.id}"`,
      );
    }
    expect(metricsText('Balances refused')).toContain('InsufficientBalanceRefusals');
    expect(metricsText('Errors')).toContain('SEARCH(');
  });
});
