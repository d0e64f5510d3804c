import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  environmentOf,
  Findings,
  findResources,
  prop,
  type AuditTemplates,
  type FoundResource,
} from '../templates';
import type { EvidenceRules } from './rule';
import { serviceFunctions } from './shared';

/** The public ALB's targets on the streaming path: the ENIs of the execute-api endpoint (streaming-api.ts). */
function isStreamingEndpointGroup(group: FoundResource): boolean {
  return group.logicalId.startsWith('StreamingApiTargets') && prop(group, 'TargetType') === 'ip';
}

function healthChecks({ templates }: AuditTemplates) {
  const findings = new Findings();
  const groups = findResources(templates, 'AWS::ElasticLoadBalancingV2::TargetGroup');
  findings.expect(groups.length > 0, 'no target group');
  for (const group of groups) {
    const path = prop(group, 'HealthCheckPath');
    if (isStreamingEndpointGroup(group)) {
      // The execute-api endpoint's ENIs: a health check cannot name the API (no Host header), so the endpoint answers 403.
      const codes = String(prop(group, 'Matcher.HttpCode'));
      findings.expect(
        prop(group, 'HealthCheckProtocol') === 'HTTPS' && codes.split(',').includes('403'),
        `${group.logicalId} does not check the endpoint over HTTPS`,
      );
      findings.cite(group, {
        HealthCheckProtocol: prop(group, 'HealthCheckProtocol'),
        HealthCheckPath: path,
        Matcher: codes,
        TargetType: prop(group, 'TargetType'),
      });
      continue;
    }
    findings.expect(
      typeof path === 'string' && /\/(health|ready)$/.test(path),
      `${group.logicalId} has no health or readiness check`,
    );
    findings.cite(group, {
      HealthCheckPath: path,
      HealthCheckIntervalSeconds: prop(group, 'HealthCheckIntervalSeconds'),
      TargetType: prop(group, 'TargetType'),
    });
  }
  return findings.result();
}

/** Namespaces of the metrics an alarm reads (a single metric or a metric math expression). */
function alarmNamespaces(alarm: FoundResource): string[] {
  const single = prop(alarm, 'Namespace');
  const math = (
    (prop(alarm, 'Metrics') ?? []) as { MetricStat?: { Metric?: { Namespace?: string } } }[]
  ).map((metric) => metric.MetricStat?.Metric?.Namespace);
  return [single, ...math].filter(
    (namespace): namespace is string => typeof namespace === 'string',
  );
}

const awsNamespace = /^(AWS\/|ECS\/ContainerInsights)/;

function applicationMetrics({ templates }: AuditTemplates) {
  const findings = new Findings();
  let consumers = 0;
  for (const filter of findResources(templates, 'AWS::Logs::MetricFilter')) {
    const transformation = prop(filter, 'MetricTransformations.0') as
      { MetricNamespace?: string; MetricName?: string } | undefined;
    findings.cite(filter, {
      MetricNamespace: transformation?.MetricNamespace,
      MetricName: transformation?.MetricName,
    });
  }
  for (const alarm of findResources(templates, 'AWS::CloudWatch::Alarm')) {
    const custom = alarmNamespaces(alarm).filter((namespace) => !awsNamespace.test(namespace));
    if (custom.length === 0) continue;
    consumers += 1;
    findings.cite(alarm, {
      Namespace: [...new Set(custom)],
      MetricName: prop(alarm, 'MetricName') ?? '(metric math)',
    });
  }
  for (const dashboard of findResources(templates, 'AWS::CloudWatch::Dashboard')) {
    const body = JSON.stringify(prop(dashboard, 'DashboardBody'));
    const custom = [...body.matchAll(/\\+"(AiProxy[\w/]*)\\+"/g)].map((match) => match[1]);
    if (custom.length === 0) continue;
    consumers += 1;
    findings.cite(dashboard, { Namespace: [...new Set(custom)] });
  }
  for (const fn of serviceFunctions(templates)) {
    const namespace = environmentOf(fn).POWERTOOLS_METRICS_NAMESPACE;
    if (namespace !== undefined)
      findings.cite(fn, {
        POWERTOOLS_METRICS_NAMESPACE: namespace,
        POWERTOOLS_SERVICE_NAME: environmentOf(fn).POWERTOOLS_SERVICE_NAME,
      });
  }
  findings.expect(consumers > 0, 'no alarm or dashboard reads the application metrics');
  return findings.result();
}

/** What the checklist asks the alarms to cover, recognized in the alarm's metric, expression or description. */
const alarmCoverage: { name: string; pattern: RegExp }[] = [
  { name: '5xx rate', pattern: /5XX|5xx|ServerErrors|server.?error/ },
  { name: 'p99 latency', pattern: /p99/i },
  { name: 'billing failures', pattern: /BillingFailure/i },
  { name: 'credits service down', pattern: /credits/i },
  { name: 'ledger replica down', pattern: /RunningTaskCount/ },
  { name: 'rate-limit spike', pattern: /RateLimit/i },
];

function alarms({ templates, repoRoot }: AuditTemplates) {
  const findings = new Findings();
  const all = findResources(templates, 'AWS::CloudWatch::Alarm');
  const topics = new Set(
    findResources(templates, 'AWS::SNS::Topic').map((topic) => topic.logicalId),
  );
  findings.expect(all.length > 0, 'no alarm');
  for (const alarm of all) {
    const actions = (prop(alarm, 'AlarmActions') ?? []) as unknown[];
    findings.expect(
      actions.some((action) => topics.has(String((action as { Ref?: string }).Ref))),
      `${alarm.logicalId} notifies no SNS topic of the stage`,
    );
    const description = String(prop(alarm, 'AlarmDescription') ?? '');
    const runbook = /docs\/runbooks\/[\w-]+\.md/.exec(description)?.[0];
    // The checklist asks for the alarms; a runbook link is cited when present, and must not be broken.
    if (runbook && repoRoot)
      findings.expect(
        existsSync(join(repoRoot, runbook)),
        `${alarm.logicalId} links ${runbook}, which does not exist`,
      );
    findings.cite(alarm, {
      metric: prop(alarm, 'MetricName') ?? '(metric math)',
      statistic: prop(alarm, 'ExtendedStatistic') ?? prop(alarm, 'Statistic'),
      threshold: prop(alarm, 'Threshold'),
      runbook: runbook ?? '(none)',
    });
  }
  const texts = all.map((alarm) => JSON.stringify(alarm.resource.Properties));
  for (const coverage of alarmCoverage) {
    findings.expect(
      texts.some((text) => coverage.pattern.test(text)),
      `no alarm covers ${coverage.name}`,
    );
  }
  for (const subscription of findResources(templates, 'AWS::SNS::Subscription')) {
    findings.cite(subscription, {
      Protocol: prop(subscription, 'Protocol'),
      TopicArn: prop(subscription, 'TopicArn'),
    });
  }
  return findings.result();
}

function dashboards({ templates }: AuditTemplates) {
  const findings = new Findings();
  const all = findResources(templates, 'AWS::CloudWatch::Dashboard');
  findings.expect(all.length > 0, 'no CloudWatch dashboard');
  for (const dashboard of all) {
    const body = JSON.stringify(prop(dashboard, 'DashboardBody'));
    const titles = [...body.matchAll(/\\+"title\\+":\\+"([^"\\]+)/g)].map((match) => match[1]);
    findings.cite(dashboard, {
      DashboardName: prop(dashboard, 'DashboardName'),
      widgets: titles.length,
      titles,
    });
  }
  return findings.result();
}

export const monitoringRules: EvidenceRules = {
  'MON-01': {
    how: 'Each service has /health (liveness) and /ready (readiness: a round trip to its dependencies); the load balancers health-check them (credits /api/v1/health, gateway /ready); the proxy answers /health and /ready through the public ALB, whose own check watches the execute-api endpoint in front of it (HTTPS, 403 without an API named).',
    template: healthChecks,
  },
  'MON-02': {
    how: 'Both services emit CloudWatch embedded metric format through Powertools metrics (lambda/shared/metrics.ts): requests by route and outcome, completions by model, tokens, cost, billing failures, refusals, latency; the ledger gateway through metric filters.',
    template: applicationMetrics,
  },
  'MON-03': {
    how: 'CloudWatch alarms to an encrypted SNS topic with the on-call e-mail subscribed (production refuses to synthesize without one); each alarm description links its runbook.',
    template: alarms,
  },
  'MON-04': {
    how: 'One CloudWatch dashboard per stage: traffic, errors, latency, tokens and cost by model, refused balances, ledger health.',
    template: dashboards,
  },
  'MON-05': {
    how: 'Every charge, top-up and adjustment is a ledger transfer on the client account; the credits API serves balance and history per client, and the proxy serves GET /v1/balance.',
  },
};
