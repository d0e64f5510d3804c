import { Duration } from 'aws-cdk-lib';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  MathExpression,
  Metric,
  TreatMissingData,
  type IAlarm,
  type IMetric,
  type IWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import {
  HttpCodeElb,
  HttpCodeTarget,
  type ApplicationLoadBalancer,
  type ApplicationTargetGroup,
} from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { type Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import { createAlarmTopic } from '../constructs/alarm-topic';
import {
  metricDefinitions,
  metricsNamespace,
  type MetricName,
  type MetricsService,
} from '../deployed-code';
import { ApiWebAcl } from '../constructs/api-web-acl';
import type { SettlementRetry } from '../constructs/settlement-retry';
import type { StreamingApi } from '../constructs/streaming-api';
import { StageStack, type StageStackProps } from './stage-stack';

export interface ObservabilityStackProps extends StageStackProps {
  /** The public ALB (edge stack). */
  readonly publicLoadBalancer: ApplicationLoadBalancer;
  /** The credits service's internal ALB and its target group (api stack). */
  readonly creditsLoadBalancer: ApplicationLoadBalancer;
  readonly creditsTargets: ApplicationTargetGroup;
  /** The path that streams the proxy's answers: its private API and the ALB's targets on its endpoint (api stack). */
  readonly streamingApi: StreamingApi;
  /** The secret rotation functions of the api and ledger stacks. */
  readonly rotationFunctions: readonly IFunction[];
  /** The settlement queue's dead letters and its settle function (api stack). */
  readonly settlement: Pick<SettlementRetry, 'deadLetterQueue' | 'settle'>;
  /** The ledger's own alarms (replica down, hosts, volumes, gateway), shown on the dashboard. */
  readonly ledgerAlarms: readonly IAlarm[];
}

/** The runbooks the alarm descriptions link to (docs/runbooks/). */
export type Runbook =
  | 'deploy-rollback.md'
  | 'provider-outage.md'
  | 'credits-down.md'
  | 'ledger-restore.md'
  | 'incident-response.md'
  | 'keys.md';

interface AlarmSpec {
  readonly metric: IMetric;
  readonly threshold: number;
  readonly evaluationPeriods: number;
  /** Why missing data is treated the way it is, for each alarm on purpose. */
  readonly treatMissingData: TreatMissingData;
  readonly summary: string;
  readonly runbook: Runbook;
}

const fiveMinutes = Duration.minutes(5);
const oneMinute = Duration.minutes(1);

/**
 * Alarms (MON-03) and the dashboard (MON-04) of a stage. It depends on every other stack and nothing
 * depends on it. Alarms notify one KMS-encrypted SNS topic (e-mail from `alarmEmail`); each
 * description links its runbook. The ledger stack keeps its own alarm topic: it is stateful and
 * deployed on its own schedule, and moving its alarms here would make the two stacks depend on each
 * other; its alarms are shown on this dashboard. Service metrics come from the EMF namespace
 * `AiProxy` (MON-02, lambda/shared/metrics.ts) with the `service` and `stage` dimensions.
 */
export class ObservabilityStack extends StageStack {
  readonly topic: Topic;
  readonly alarms: Record<string, Alarm> = {};
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: ObservabilityStackProps) {
    super(scope, id, props);
    this.topic = this.createTopic();
    this.createAlarms(props);
    this.dashboard = new Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
      widgets: this.widgets(props),
    });
  }

  /** A metric the services emit (EMF), with its declared dimensions. */
  serviceMetric<N extends MetricName>(
    service: MetricsService,
    name: N,
    dimensions: Record<(typeof metricDefinitions)[N]['dimensions'][number], string>,
    options: { statistic?: string; period?: Duration; label?: string } = {},
  ): Metric {
    return new Metric({
      namespace: metricsNamespace,
      metricName: name,
      dimensionsMap: { service, stage: this.config.stage, ...dimensions },
      statistic: options.statistic ?? 'Sum',
      period: options.period ?? fiveMinutes,
      label: options.label,
    });
  }

  private createTopic(): Topic {
    const topic = createAlarmTopic(this, {
      keyId: 'AlarmTopicKey',
      topicId: 'AlarmTopic',
      keyDescription: `Encrypts the alarm topic of the ${this.config.stage} stage`,
      displayName: `AI proxy ${this.config.stage} alarms`,
    });
    if (this.config.alarmEmail)
      topic.addSubscription(new EmailSubscription(this.config.alarmEmail));
    return topic;
  }

  private alarm(id: string, spec: AlarmSpec): void {
    const alarm = new Alarm(this, id, {
      metric: spec.metric,
      threshold: spec.threshold,
      evaluationPeriods: spec.evaluationPeriods,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: spec.treatMissingData,
      alarmDescription: `${spec.summary} Runbook: docs/runbooks/${spec.runbook}`,
    });
    alarm.addAlarmAction(new SnsAction(this.topic));
    alarm.addOkAction(new SnsAction(this.topic));
    this.alarms[id] = alarm;
  }

  private createAlarms(props: ObservabilityStackProps): void {
    const thresholds = this.config.alarms;
    this.alarm('ServerErrorRate', {
      metric: this.serverErrorRate(props.publicLoadBalancer),
      threshold: thresholds.serverErrorRatePercentMax,
      evaluationPeriods: 1,
      // No data is no traffic, and no traffic is no error.
      treatMissingData: TreatMissingData.NOT_BREACHING,
      summary: `More than ${thresholds.serverErrorRatePercentMax}% of the public API's requests answered 5xx over 5 minutes (from ${thresholds.serverErrorRateRequestsMin} requests).`,
      runbook: 'deploy-rollback.md',
    });
    this.alarm('LatencyP99', {
      metric: props.publicLoadBalancer.metrics.targetResponseTime({
        statistic: 'p99',
        period: fiveMinutes,
      }),
      threshold: thresholds.latencyP99MillisecondsMax / 1000,
      evaluationPeriods: 2,
      // Latency exists only for requests; without requests there is nothing slow.
      treatMissingData: TreatMissingData.NOT_BREACHING,
      // Streamed answers start when the proxy sends its headers: this is the time to the first byte, as clients feel it.
      summary: `p99 time to the first byte of the public API's answers above ${thresholds.latencyP99MillisecondsMax} ms for 10 minutes (a slow provider, or the credits path).`,
      runbook: 'provider-outage.md',
    });
    this.alarm('BillingFailures', {
      metric: this.serviceMetric('proxy', 'BillingFailures', {}),
      threshold: thresholds.billingFailuresPerFiveMinutesMax,
      evaluationPeriods: 1,
      // The metric is emitted only when a failure happens.
      treatMissingData: TreatMissingData.NOT_BREACHING,
      summary: `More than ${thresholds.billingFailuresPerFiveMinutesMax} billing failures in 5 minutes: a settle or release was not applied (the hold expires by itself; check the audit log for billing_failure).`,
      runbook: 'credits-down.md',
    });
    this.alarm('UnsettledHolds', {
      metric: this.serviceMetric('proxy', 'UnsettledHolds', {}),
      threshold: 0,
      evaluationPeriods: 1,
      // The metric is emitted only when a settlement is given up.
      treatMissingData: TreatMissingData.NOT_BREACHING,
      summary:
        'A completion was delivered and its hold could not be settled before it expired (inline retries and the settlement queue both failed): revenue lost; check the audit log for unsettled_hold.',
      runbook: 'credits-down.md',
    });
    this.alarm('SettlementDeadLetters', {
      metric: props.settlement.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        statistic: 'Maximum',
        period: fiveMinutes,
      }),
      threshold: 0,
      evaluationPeriods: 1,
      // SQS reports an empty queue as zero; no data is an idle queue.
      treatMissingData: TreatMissingData.NOT_BREACHING,
      summary:
        'A settlement reached the dead-letter queue: the settle function gave up on it (or died on it); each message names a hold and an amount to settle by hand if it has not expired.',
      runbook: 'credits-down.md',
    });
    this.alarm('SettleFunctionErrors', {
      metric: props.settlement.settle.function.metricErrors({ period: fiveMinutes }),
      threshold: 0,
      evaluationPeriods: 1,
      // Emitted for every invocation; no invocations, no errors.
      treatMissingData: TreatMissingData.NOT_BREACHING,
      summary:
        'The settle function failed (a timeout, or it could not start): settlements wait in the queue and may expire unbilled.',
      runbook: 'credits-down.md',
    });
    this.alarm('CreditsUnavailable', {
      metric: this.creditsUnavailable(props),
      threshold: thresholds.creditsUnavailablePerMinuteMax,
      evaluationPeriods: 2,
      // Every term is emitted only on failure or filled with zero; no data is a healthy service.
      treatMissingData: TreatMissingData.NOT_BREACHING,
      summary:
        'The credits service is unavailable two minutes running: the proxy answers 503 credits_unavailable, or the internal load balancer sees 5xx or an unhealthy target.',
      runbook: 'credits-down.md',
    });
    this.alarm('RateLimitRefusals', {
      metric: this.serviceMetric('proxy', 'RateLimitRefusals', {}),
      threshold: thresholds.rateLimitRefusalsPerFiveMinutesMax,
      evaluationPeriods: 1,
      // Emitted only on refusals.
      treatMissingData: TreatMissingData.NOT_BREACHING,
      summary: `More than ${thresholds.rateLimitRefusalsPerFiveMinutesMax} rate-limit refusals in 5 minutes: a client in a loop, abuse, or key guessing.`,
      runbook: 'incident-response.md',
    });
    this.alarm('WafBlockedRequests', {
      metric: new Metric({
        namespace: 'AWS/WAFV2',
        metricName: 'BlockedRequests',
        dimensionsMap: { WebACL: ApiWebAcl.metricName, Region: this.region, Rule: 'ALL' },
        statistic: 'Sum',
        period: fiveMinutes,
      }),
      threshold: thresholds.wafBlockedRequestsPerFiveMinutesMax,
      evaluationPeriods: 1,
      // WAF publishes BlockedRequests only when it blocks.
      treatMissingData: TreatMissingData.NOT_BREACHING,
      summary: `The web ACL blocked more than ${thresholds.wafBlockedRequestsPerFiveMinutesMax} requests in 5 minutes: an attack or a misbehaving client.`,
      runbook: 'incident-response.md',
    });
    this.alarm('RotationFailed', {
      metric: this.rotationErrors(props.rotationFunctions),
      threshold: thresholds.rotationErrorsPerFiveMinutesMax,
      evaluationPeriods: 1,
      // Rotations run every few months; between them there is no data, and that is healthy.
      treatMissingData: TreatMissingData.NOT_BREACHING,
      summary:
        'A secret rotation step failed (service keys or the ledger gateway token); the previous key keeps working until it is fixed.',
      runbook: 'keys.md',
    });
  }

  /** 5xx of the targets and of the ALB itself over all requests, in percent; 0 below the minimum traffic. */
  private serverErrorRate(loadBalancer: ApplicationLoadBalancer): MathExpression {
    const options = { statistic: 'Sum', period: fiveMinutes };
    return new MathExpression({
      expression: `IF(requests >= ${this.config.alarms.serverErrorRateRequestsMin}, 100 * (FILL(targetErrors, 0) + FILL(balancerErrors, 0)) / requests, 0)`,
      usingMetrics: {
        requests: loadBalancer.metrics.requestCount(options),
        targetErrors: loadBalancer.metrics.httpCodeTarget(HttpCodeTarget.TARGET_5XX_COUNT, options),
        balancerErrors: loadBalancer.metrics.httpCodeElb(HttpCodeElb.ELB_5XX_COUNT, options),
      },
      label: '5xx rate (%)',
      period: fiveMinutes,
    });
  }

  private creditsUnavailable(props: ObservabilityStackProps): MathExpression {
    const options = { statistic: 'Sum', period: oneMinute };
    return new MathExpression({
      expression:
        'FILL(proxyUnavailable, 0) + FILL(targetErrors, 0) + FILL(balancerErrors, 0) + FILL(unhealthy, 0)',
      usingMetrics: {
        proxyUnavailable: this.serviceMetric('proxy', 'CreditsUnavailable', {}, options),
        targetErrors: props.creditsLoadBalancer.metrics.httpCodeTarget(
          HttpCodeTarget.TARGET_5XX_COUNT,
          options,
        ),
        balancerErrors: props.creditsLoadBalancer.metrics.httpCodeElb(
          HttpCodeElb.ELB_5XX_COUNT,
          options,
        ),
        unhealthy: props.creditsTargets.metrics.unhealthyHostCount({
          statistic: 'Maximum',
          period: oneMinute,
        }),
      },
      label: 'credits unavailable signals',
      period: oneMinute,
    });
  }

  private rotationErrors(functions: readonly IFunction[]): MathExpression {
    const usingMetrics = Object.fromEntries(
      functions.map((fn, index) => [
        `rotation${index}`,
        fn.metricErrors({ statistic: 'Sum', period: fiveMinutes }),
      ]),
    );
    return new MathExpression({
      expression: Object.keys(usingMetrics)
        .map((id) => `FILL(${id}, 0)`)
        .join(' + '),
      usingMetrics,
      label: 'rotation errors',
      period: fiveMinutes,
    });
  }

  /** Every series of one metric across its dimension values (e.g. ProviderErrors by provider and kind). */
  private search(service: MetricsService, name: MetricName, label: string): MathExpression {
    const dimensions = ['service', 'stage', ...metricDefinitions[name].dimensions].sort().join(',');
    return new MathExpression({
      expression: `SEARCH('{${metricsNamespace},${dimensions}} MetricName="${name}" service="${service}" stage="${this.config.stage}"', 'Sum', 300)`,
      usingMetrics: {},
      label,
      period: fiveMinutes,
    });
  }

  /** The streaming path behind the ALB: API Gateway's answers and durations, and the endpoint ENIs' health. */
  private streamingWidgets(streaming: StreamingApi, width: number): IWidget[] {
    const sum = { statistic: 'Sum', period: fiveMinutes };
    const p99 = { statistic: 'p99', period: fiveMinutes };
    const targets = streaming.targetGroup.metrics;
    return [
      new GraphWidget({
        title: 'Streaming API (API Gateway)',
        width,
        left: [
          streaming.api.metricServerError({ ...sum, label: '5xx' }),
          streaming.api.metricClientError({ ...sum, label: '4xx (429 throttled included)' }),
        ],
        right: [
          streaming.api.metricLatency({ ...p99, label: 'whole stream p99 (ms)' }),
          streaming.api.metricIntegrationLatency({ ...p99, label: 'integration p99 (ms)' }),
        ],
      }),
      new GraphWidget({
        title: 'execute-api endpoint targets (public ALB)',
        width,
        left: [
          targets.healthyHostCount({
            statistic: 'Minimum',
            period: oneMinute,
            label: 'healthy ENIs',
          }),
          targets.unhealthyHostCount({
            statistic: 'Maximum',
            period: oneMinute,
            label: 'unhealthy ENIs',
          }),
        ],
        right: [
          targets.httpCodeTarget(HttpCodeTarget.TARGET_5XX_COUNT, { ...sum, label: 'target 5xx' }),
        ],
      }),
    ];
  }

  private widgets(props: ObservabilityStackProps): IWidget[][] {
    const alb = props.publicLoadBalancer.metrics;
    const sum = { statistic: 'Sum', period: fiveMinutes };
    const models = this.config.models.map((model) => model.id);
    const providers = [...new Set(this.config.models.map((model) => model.provider))];
    const waf = (metricName: string) =>
      new Metric({
        namespace: 'AWS/WAFV2',
        metricName,
        dimensionsMap: { WebACL: ApiWebAcl.metricName, Region: this.region, Rule: 'ALL' },
        ...sum,
      });
    const width = 12;
    return [
      [
        new GraphWidget({
          title: 'Traffic',
          width,
          left: [
            alb.requestCount({ ...sum, label: 'requests (public ALB)' }),
            waf('AllowedRequests'),
            waf('BlockedRequests'),
          ],
          right: [this.search('proxy', 'ChatCompletions', 'completions')],
        }),
        new GraphWidget({
          title: 'Errors',
          width,
          left: [
            alb.httpCodeTarget(HttpCodeTarget.TARGET_5XX_COUNT, sum),
            alb.httpCodeElb(HttpCodeElb.ELB_5XX_COUNT, sum),
            this.search('proxy', 'ProviderErrors', 'provider errors'),
            this.search('proxy', 'ModelFallbacks', 'fallbacks'),
          ],
          right: [
            this.serviceMetric('proxy', 'BillingFailures', {}),
            this.serviceMetric('proxy', 'CreditsUnavailable', {}),
            this.serviceMetric('credits', 'LedgerUnavailable', {}),
          ],
        }),
      ],
      [
        new GraphWidget({
          title: 'Latency',
          width,
          left: [
            alb.targetResponseTime({ statistic: 'p50', period: fiveMinutes, label: 'p50 (s)' }),
            alb.targetResponseTime({ statistic: 'p99', period: fiveMinutes, label: 'p99 (s)' }),
          ],
          right: providers.map((provider) =>
            this.serviceMetric(
              'proxy',
              'ProviderLatency',
              { provider },
              { statistic: 'p99', label: `${provider} p99 (ms)` },
            ),
          ),
          leftAnnotations: [
            { value: this.config.alarms.latencyP99MillisecondsMax / 1000, label: 'p99 alarm' },
          ],
        }),
        new GraphWidget({
          title: 'Tokens by model',
          width,
          left: models.map((model) =>
            this.serviceMetric('proxy', 'PromptTokens', { model }, { label: `${model} prompt` }),
          ),
          right: models.map((model) =>
            this.serviceMetric(
              'proxy',
              'CompletionTokens',
              { model },
              { label: `${model} completion` },
            ),
          ),
        }),
      ],
      [
        new GraphWidget({
          title: 'Cost charged by model (micros)',
          width,
          left: models.map((model) =>
            this.serviceMetric('proxy', 'CostChargedMicros', { model }, { label: model }),
          ),
        }),
        new GraphWidget({
          title: 'Balances refused',
          width,
          left: [
            this.serviceMetric(
              'proxy',
              'InsufficientBalanceRefusals',
              {},
              { label: 'insufficient credits (402)' },
            ),
            this.serviceMetric('proxy', 'RateLimitRefusals', {}, { label: 'rate limited (429)' }),
          ],
          right: [
            this.serviceMetric('proxy', 'AuthFailures', {}, { label: 'proxy auth failures' }),
            this.serviceMetric('credits', 'AuthFailures', {}, { label: 'credits auth failures' }),
          ],
        }),
      ],
      [
        new GraphWidget({
          title: 'Ledger operations',
          width,
          left: (['Holds', 'Settles', 'Releases', 'TopUps'] as const).map((name) =>
            this.serviceMetric('credits', name, {}),
          ),
          right: [this.serviceMetric('credits', 'LedgerUnavailable', {})],
        }),
        new AlarmStatusWidget({ title: 'Ledger health', width, alarms: [...props.ledgerAlarms] }),
      ],
      this.streamingWidgets(props.streamingApi, width),
      [new AlarmStatusWidget({ title: 'Alarms', width: 24, alarms: Object.values(this.alarms) })],
    ];
  }
}
