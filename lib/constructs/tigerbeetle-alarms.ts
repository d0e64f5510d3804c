import { Duration } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  Metric,
  TreatMissingData,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { Volume } from 'aws-cdk-lib/aws-ec2';
import type { AutoScalingGroup } from 'aws-cdk-lib/aws-autoscaling';
import type { Ec2Service } from 'aws-cdk-lib/aws-ecs';
import type {
  NetworkLoadBalancer,
  NetworkTargetGroup,
} from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { FilterPattern, type ILogGroup, MetricFilter } from 'aws-cdk-lib/aws-logs';
import { type Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { createAlarmTopic } from './alarm-topic';

/** The gateway logs a request slower than this as a warning; p99 above it alarms. */
export const gatewayLatencyP99MillisecondsMax = 1000;
/** Gateway answers with a 5xx status in one minute before the alarm fires. */
export const gatewayServerErrorsPerMinuteMax = 5;
const metricNamespace = 'AiProxy/LedgerGateway';

export interface LedgerAlarmReplica {
  readonly replica: number;
  readonly service: Ec2Service;
  readonly volume: Volume;
  readonly autoScalingGroup: AutoScalingGroup;
}

export interface LedgerAlarmsProps {
  readonly clusterName: string;
  readonly replicas: readonly LedgerAlarmReplica[];
  readonly loadBalancer: NetworkLoadBalancer;
  readonly targetGroup: NetworkTargetGroup;
  readonly gatewayLogGroup: ILogGroup;
  readonly alarmEmail?: string;
}

/**
 * The ledger's alarms (MON-03), to an encrypted SNS topic: a replica task not running, a host
 * failing its status checks, a volume at its provisioned IOPS or throughput, gateway hosts
 * unhealthy, gateway 5xx answers and p99 latency (from the gateway's request log).
 */
export class LedgerAlarms extends Construct {
  readonly topic: Topic;
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: LedgerAlarmsProps) {
    super(scope, id);
    this.topic = createAlarmTopic(this, {
      keyId: 'TopicKey',
      topicId: 'Topic',
      keyDescription: 'Encrypts the ledger alarm topic',
      displayName: 'Ledger alarms',
    });
    if (props.alarmEmail) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));

    for (const replica of props.replicas) this.addReplicaAlarms(props.clusterName, replica);
    this.addGatewayAlarms(props);
  }

  /** Every alarm names the runbook the on-call engineer opens (MON-03); replica alarms default to the restore runbook. */
  private alarm(
    id: string,
    metric: IMetric,
    options: {
      threshold: number;
      evaluationPeriods: number;
      description: string;
      missing?: TreatMissingData;
      below?: boolean;
      runbook?: string;
    },
  ): void {
    const runbook = `docs/runbooks/${options.runbook ?? 'ledger-restore.md'}`;
    const alarm = new Alarm(this, id, {
      metric,
      threshold: options.threshold,
      evaluationPeriods: options.evaluationPeriods,
      comparisonOperator: options.below
        ? ComparisonOperator.LESS_THAN_THRESHOLD
        : ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: options.missing ?? TreatMissingData.NOT_BREACHING,
      alarmDescription: options.description.includes('runbook:')
        ? options.description
        : `${options.description} (runbook: ${runbook})`,
    });
    alarm.addAlarmAction(new SnsAction(this.topic));
    alarm.addOkAction(new SnsAction(this.topic));
    this.alarms.push(alarm);
  }

  private addReplicaAlarms(clusterName: string, replica: LedgerAlarmReplica): void {
    const index = replica.replica;
    const minute = Duration.minutes(1);
    this.alarm(
      `Replica${index}NotRunning`,
      new Metric({
        namespace: 'ECS/ContainerInsights',
        metricName: 'RunningTaskCount',
        dimensionsMap: { ClusterName: clusterName, ServiceName: replica.service.serviceName },
        statistic: 'Minimum',
        period: minute,
      }),
      {
        threshold: 1,
        below: true,
        evaluationPeriods: 3,
        missing: TreatMissingData.BREACHING,
        description: `TigerBeetle replica ${index} has no running task (runbook: docs/runbooks/ledger-restore.md)`,
      },
    );
    this.alarm(
      `Replica${index}HostStatusCheck`,
      new Metric({
        namespace: 'AWS/EC2',
        metricName: 'StatusCheckFailed',
        dimensionsMap: { AutoScalingGroupName: replica.autoScalingGroup.autoScalingGroupName },
        statistic: 'Maximum',
        period: minute,
      }),
      {
        threshold: 1,
        evaluationPeriods: 2,
        description: `The host of TigerBeetle replica ${index} fails its EC2 status checks`,
      },
    );
    for (const [check, what] of [
      ['VolumeIOPSExceededCheck', 'IOPS'],
      ['VolumeThroughputExceededCheck', 'throughput'],
    ] as const) {
      this.alarm(
        `Replica${index}Volume${what === 'IOPS' ? 'Iops' : 'Throughput'}Saturated`,
        new Metric({
          namespace: 'AWS/EBS',
          metricName: check,
          dimensionsMap: { VolumeId: replica.volume.volumeId },
          statistic: 'Average',
          period: minute,
        }),
        {
          threshold: 0.5,
          evaluationPeriods: 5,
          description: `The data volume of TigerBeetle replica ${index} runs at its provisioned ${what} (raise ledger.volume${what === 'IOPS' ? 'Iops' : 'ThroughputMiBps'})`,
          runbook: 'maintenance.md',
        },
      );
    }
  }

  private addGatewayAlarms(props: LedgerAlarmsProps): void {
    const minute = Duration.minutes(1);
    this.alarm(
      'GatewayUnhealthyHosts',
      props.targetGroup.metrics.unHealthyHostCount({ period: minute, statistic: 'Maximum' }),
      {
        threshold: 1,
        evaluationPeriods: 3,
        description:
          'A ledger gateway fails its /ready health check (it cannot reach the cluster, or is down)',
        runbook: 'credits-down.md',
      },
    );
    const serverErrors = new MetricFilter(this, 'GatewayServerErrorsFilter', {
      logGroup: props.gatewayLogGroup,
      filterPattern: FilterPattern.all(
        FilterPattern.stringValue('$.message', '=', 'request'),
        FilterPattern.numberValue('$.status', '>=', 500),
      ),
      metricNamespace,
      metricName: 'ServerErrors',
      metricValue: '1',
      defaultValue: 0,
    });
    this.alarm('GatewayServerErrors', serverErrors.metric({ statistic: 'Sum', period: minute }), {
      threshold: gatewayServerErrorsPerMinuteMax,
      evaluationPeriods: 3,
      description: `The ledger gateway answered ${gatewayServerErrorsPerMinuteMax} or more 5xx in a minute, three minutes running`,
      runbook: 'credits-down.md',
    });
    const latency = new MetricFilter(this, 'GatewayLatencyFilter', {
      logGroup: props.gatewayLogGroup,
      filterPattern: FilterPattern.stringValue('$.message', '=', 'request'),
      metricNamespace,
      metricName: 'RequestMilliseconds',
      metricValue: '$.duration_milliseconds',
      unit: undefined,
    });
    this.alarm(
      'GatewayLatency',
      latency.metric({ statistic: 'p99', period: Duration.minutes(5) }),
      {
        threshold: gatewayLatencyP99MillisecondsMax,
        evaluationPeriods: 3,
        description: `Ledger gateway p99 latency at or above ${gatewayLatencyP99MillisecondsMax} ms for 15 minutes`,
        runbook: 'credits-down.md',
      },
    );
  }
}
