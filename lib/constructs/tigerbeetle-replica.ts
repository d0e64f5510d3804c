import { Duration, Lazy, RemovalPolicy, Size, Stack, Tags } from 'aws-cdk-lib';
import {
  AutoScalingGroup,
  HealthChecks,
  Signals,
  UpdatePolicy,
  type CfnAutoScalingGroup,
} from 'aws-cdk-lib/aws-autoscaling';
import {
  BlockDeviceVolume,
  CfnNetworkInterface,
  EbsDeviceVolumeType,
  type IMachineImage,
  type InstanceType,
  type ISecurityGroup,
  type ISubnet,
  type IVpc,
  LaunchTemplate,
  UserData,
  Volume,
} from 'aws-cdk-lib/aws-ec2';
import type { IRole } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { ILogGroup } from 'aws-cdk-lib/aws-logs';
import {
  Capability,
  type ContainerImage,
  Ec2Service,
  Ec2TaskDefinition,
  type ICluster,
  LinuxParameters,
  LogDrivers,
  NetworkMode,
  PlacementConstraint,
  UlimitName,
} from 'aws-cdk-lib/aws-ecs';
import type { Asset } from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import { acknowledge, nistAndPci } from '../compliance';
import { type ReplicaPlacement, replicaPort } from './tigerbeetle-addresses';

/** Where the host mounts the replica's volume, and where the container sees it. */
export const replicaDataDirectory = '/var/lib/tigerbeetle';
/** The unprivileged user the replica runs as; the host makes it the owner of the data directory. */
export const replicaUser = '1000:1000';
const rootVolumeGiB = 30;
/** Time for a first format and start before failed health checks count. */
const replicaStartPeriod = Duration.minutes(5);
/**
 * How long a new host may take to be ready: attaching the volume and ENI (a replaced predecessor
 * may hold them for up to 15 minutes), boot, packages, ECS registration and the replica's start.
 */
const hostReadyTimeout = Duration.minutes(40);
/** The host's own bound on waiting for a healthy replica; below the CloudFormation timeout above. */
const replicaHealthySecondsMax = 35 * 60;
/** Where the AL2023 aws-cfn-bootstrap package installs cfn-signal. */
export const cfnSignal = '/opt/aws/bin/cfn-signal';

export interface TigerBeetleReplicaProps {
  readonly vpc: IVpc;
  readonly placement: ReplicaPlacement;
  readonly subnet: ISubnet;
  readonly clusterId: string;
  readonly replicaCount: number;
  readonly addressList: string;
  readonly cacheGridMiB: number;
  /** The SSM parameter that says whether the cluster has ever been formed (`forming`, then `formed`). */
  readonly formationParameterName: string;
  readonly memoryMiB: number;
  readonly instanceType: InstanceType;
  /** The hosts' AMI, pinned in the stage config (ledger.hostImage). */
  readonly machineImage: IMachineImage;
  readonly volume: {
    readonly sizeGiB: number;
    readonly iops: number;
    readonly throughputMiBps: number;
  };
  readonly dataKey: IKey;
  /** Tag (key, value) that the backup plan selects. */
  readonly backupTag: readonly [string, string];
  readonly hostRole: IRole;
  readonly hostSecurityGroup: ISecurityGroup;
  readonly replicaSecurityGroup: ISecurityGroup;
  /** The imported ECS cluster (its name and ARN), with EC2 capacity. */
  readonly ecsCluster: ICluster;
  readonly image: ContainerImage;
  readonly hostSetupScript: Asset;
  readonly seccompProfile: Asset;
  readonly logGroup: ILogGroup;
}

/**
 * One TigerBeetle replica: a fixed-address ENI and a gp3 volume in its AZ (both outlive any host),
 * an Auto Scaling group of one host that re-attaches them at boot (tigerbeetle/host/setup.sh), and
 * an ECS service of one task placed on that host by its `replica` attribute (desired 1, minimum
 * healthy 0, maximum 100: two tasks never open one data file).
 */
export class TigerBeetleReplica extends Construct {
  readonly networkInterface: CfnNetworkInterface;
  readonly volume: Volume;
  readonly autoScalingGroup: AutoScalingGroup;
  readonly service: Ec2Service;
  readonly taskDefinition: Ec2TaskDefinition;

  constructor(scope: Construct, id: string, props: TigerBeetleReplicaProps) {
    super(scope, id);
    const { placement } = props;
    this.networkInterface = new CfnNetworkInterface(this, 'Address', {
      subnetId: props.subnet.subnetId,
      privateIpAddress: placement.address,
      groupSet: [props.replicaSecurityGroup.securityGroupId],
      description: `TigerBeetle replica ${placement.replica}: fixed address ${placement.endpoint}`,
    });
    this.volume = new Volume(this, 'Data', {
      availabilityZone: props.subnet.availabilityZone,
      size: Size.gibibytes(props.volume.sizeGiB),
      volumeType: EbsDeviceVolumeType.GP3,
      iops: props.volume.iops,
      throughput: props.volume.throughputMiBps,
      encrypted: true,
      encryptionKey: props.dataKey,
      removalPolicy: RemovalPolicy.RETAIN, // DATA-01, DR-04
    });
    acknowledge(
      this.volume,
      ['CloudFormation-Validate::W3010'],
      'A replica volume must be in the AZ of its fixed-address subnet; the AZs are explicit in the stage config so synthesis stays offline and deterministic.',
    );
    Tags.of(this.volume).add(props.backupTag[0], props.backupTag[1]);
    Tags.of(this.volume).add('tigerbeetle-replica', String(placement.replica));
    this.autoScalingGroup = this.createHost(props);
    this.taskDefinition = this.createTaskDefinition(props);
    this.service = new Ec2Service(this, 'Service', {
      cluster: props.ecsCluster,
      taskDefinition: this.taskDefinition,
      desiredCount: 1,
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      placementConstraints: [
        PlacementConstraint.memberOf(`attribute:replica == ${placement.replica}`),
      ],
      circuitBreaker: { enable: true, rollback: false },
      enableECSManagedTags: true,
    });
  }

  private createHost(props: TigerBeetleReplicaProps): AutoScalingGroup {
    const { placement } = props;
    const userData = UserData.forLinux();
    this.signalFailureAtOnce(userData, 'Host');
    // The downloads need the AWS CLI, which the minimal ECS-optimized AMI does not carry (the AL2023
    // repositories are reached through the VPC's S3 gateway endpoint).
    // The region is explicit: without it the CLI would use the global S3 endpoint, which the
    // subnets cannot reach.
    userData.addCommands(
      `export AWS_DEFAULT_REGION=${Stack.of(this).region}`,
      'command -v aws >/dev/null || dnf install -y -q awscli-2',
    );
    const setupPath = userData.addS3DownloadCommand({
      bucket: props.hostSetupScript.bucket,
      bucketKey: props.hostSetupScript.s3ObjectKey,
    });
    const profilePath = userData.addS3DownloadCommand({
      bucket: props.seccompProfile.bucket,
      bucketKey: props.seccompProfile.s3ObjectKey,
    });
    userData.addCommands(
      [
        'bash',
        setupPath,
        Stack.of(this).region,
        props.ecsCluster.clusterName,
        String(placement.replica),
        this.volume.volumeId,
        this.networkInterface.ref,
        placement.address,
        profilePath,
        props.formationParameterName,
      ].join(' '),
    );
    const launchTemplate = new LaunchTemplate(this, 'LaunchTemplate', {
      machineImage: props.machineImage,
      instanceType: props.instanceType,
      role: props.hostRole,
      securityGroup: props.hostSecurityGroup,
      userData,
      requireImdsv2: true,
      httpPutResponseHopLimit: 1,
      detailedMonitoring: true,
      associatePublicIpAddress: false,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: BlockDeviceVolume.ebs(rootVolumeGiB, {
            encrypted: true,
            volumeType: EbsDeviceVolumeType.GP3,
            deleteOnTermination: true,
          }),
        },
      ],
    });
    const group = new AutoScalingGroup(this, 'Host', {
      vpc: props.vpc,
      vpcSubnets: { subnets: [props.subnet] },
      launchTemplate,
      minCapacity: 1,
      maxCapacity: 1,
      healthChecks: HealthChecks.ec2({ gracePeriod: Duration.minutes(10) }),
      // Health-gated: CloudFormation waits for the new host's signal that its replica is healthy
      // before it replaces the next replica's host, so a rolling update never costs the quorum.
      signals: Signals.waitForMinCapacity({ timeout: hostReadyTimeout }),
      updatePolicy: UpdatePolicy.rollingUpdate({ maxBatchSize: 1, minInstancesInService: 0 }),
    });
    this.signalWhenReplicaHealthy(userData, props);
    // The ENI must hold its fixed address before any host takes a dynamic one from the subnet.
    group.node.addDependency(this.networkInterface);
    acknowledge(
      group,
      ['AwsSolutions-AS3'],
      'A replica host is replaced by its group of one without a person; the replica-down and status-check alarms notify, and scaling events are in the group activity history.',
    );
    acknowledge(
      group,
      nistAndPci('AutoScalingGroupELBHealthCheckRequired'),
      'The replica hosts are not load-balancer targets of their group; the gateway target group registers the gateway tasks, and EC2 status checks replace a failed host.',
    );
    return group;
  }

  /** The cfn-signal command for this replica's group (its logical id is fixed before the group exists). */
  private signalCommand(code: 0 | 1, groupId: string): string {
    const stack = Stack.of(this);
    const resource = stack.getLogicalId(
      this.node.findChild(groupId).node.defaultChild as CfnAutoScalingGroup,
    );
    return `${cfnSignal} -e ${code} --stack ${stack.stackName} --resource ${resource} --region ${stack.region}`;
  }

  /**
   * The first lines of the user data: any failing command before the health wait signals failure
   * to CloudFormation at once (instead of leaving it waiting for the creation policy's timeout) and
   * stops the script. cfn-signal is installed first so that it exists for every later failure;
   * only a failure to install it leaves CloudFormation waiting for the timeout.
   */
  private signalFailureAtOnce(userData: UserData, groupId: string): void {
    userData.addCommands(
      'set -Eeuo pipefail',
      'signal_failure() {',
      '  echo "ledger host user data failed at line $1; signalling CloudFormation" >&2',
      `  ${this.signalCommandPlaceholder(1, groupId)} || true`,
      '}',
      "trap 'signal_failure $LINENO' ERR",
      `command -v ${cfnSignal} >/dev/null || dnf install -y -q aws-cfn-bootstrap`,
    );
  }

  /** The group does not exist yet when the user data starts: its logical id is resolved lazily. */
  private signalCommandPlaceholder(code: 0 | 1, groupId: string): string {
    return Lazy.string({ produce: () => this.signalCommand(code, groupId) });
  }

  /**
   * After the host is set up, a systemd unit waits until the replica container reports healthy and
   * then signals CloudFormation (success), or signals failure when it never does within the bound,
   * which makes CloudFormation stop the update before the next replica is touched. The last
   * replica's host also records that the cluster is formed (the cluster marker): CloudFormation
   * creates the hosts one after another, each after the previous replica is healthy, so the last
   * replica healthy means every replica has been formatted and is up.
   */
  private signalWhenReplicaHealthy(userData: UserData, props: TigerBeetleReplicaProps): void {
    const isLast = props.placement.replica === props.replicaCount - 1;
    const markFormed = `aws ssm put-parameter --region ${Stack.of(this).region} --name ${props.formationParameterName} --type String --value formed --overwrite >/dev/null`;
    userData.addCommands(
      "cat > /usr/local/bin/ledger-signal-when-healthy.sh <<'SCRIPT'",
      '#!/bin/bash',
      `deadline=$((SECONDS + ${replicaHealthySecondsMax}))`,
      "until docker ps --filter 'label=com.amazonaws.ecs.container-name=replica' --filter health=healthy --format '{{.ID}}' | grep -q .; do",
      `  [ "$SECONDS" -lt "$deadline" ] || { ${this.signalCommandPlaceholder(1, 'Host')}; exit 1; }`,
      '  sleep 15',
      'done',
      ...(isLast
        ? [`${markFormed} || { ${this.signalCommandPlaceholder(1, 'Host')}; exit 1; }`]
        : []),
      this.signalCommandPlaceholder(0, 'Host'),
      'SCRIPT',
      'chmod 0755 /usr/local/bin/ledger-signal-when-healthy.sh',
      'systemd-run --unit ledger-signal-when-healthy --no-block /usr/local/bin/ledger-signal-when-healthy.sh',
      // The health wait signals from here on; a failure of the user data itself is over.
      'trap - ERR',
    );
  }

  private createTaskDefinition(props: TigerBeetleReplicaProps): Ec2TaskDefinition {
    const { placement } = props;
    const taskDefinition = new Ec2TaskDefinition(this, 'Task', {
      networkMode: NetworkMode.HOST,
      volumes: [{ name: 'data', host: { sourcePath: replicaDataDirectory } }],
    });
    const linuxParameters = new LinuxParameters(this, 'LinuxParameters', {
      initProcessEnabled: true,
    });
    linuxParameters.dropCapabilities(Capability.ALL);
    const container = taskDefinition.addContainer('replica', {
      image: props.image,
      memoryLimitMiB: props.memoryMiB,
      user: replicaUser,
      readonlyRootFilesystem: true,
      privileged: false,
      dockerSecurityOptions: ['no-new-privileges'],
      linuxParameters,
      // TigerBeetle locks its memory; an unlimited memlock limit replaces CAP_IPC_LOCK for a non-root process.
      ulimits: [{ name: UlimitName.MEMLOCK, softLimit: -1, hardLimit: -1 }],
      environment: {
        TB_CLUSTER_ID: props.clusterId,
        TB_REPLICA: String(placement.replica),
        TB_REPLICA_COUNT: String(props.replicaCount),
        TB_ADDRESSES: props.addressList,
        TB_CACHE_GRID: `${props.cacheGridMiB}MiB`,
        TB_DATA_DIR: replicaDataDirectory,
      },
      portMappings: [{ containerPort: replicaPort, hostPort: replicaPort }],
      healthCheck: {
        command: ['CMD', '/usr/local/bin/tigerbeetle-replica', 'health'],
        interval: Duration.seconds(30),
        timeout: Duration.seconds(5),
        retries: 3,
        startPeriod: replicaStartPeriod,
      },
      stopTimeout: Duration.seconds(60),
      logging: LogDrivers.awsLogs({
        logGroup: props.logGroup,
        streamPrefix: `replica-${placement.replica}`,
      }),
    });
    container.addMountPoints({
      sourceVolume: 'data',
      containerPath: replicaDataDirectory,
      readOnly: false,
    });
    acknowledge(
      taskDefinition,
      ['AwsSolutions-ECS2'],
      'The environment holds only the non-secret cluster topology (cluster id, replica index, ordered addresses, cache size), computed at synth.',
    );
    acknowledgeHostModeTask(taskDefinition);
    return taskDefinition;
  }
}

/** Findings every ledger task definition shares (host networking, the execution role CDK writes). */
export function acknowledgeHostModeTask(taskDefinition: Ec2TaskDefinition): void {
  acknowledge(
    taskDefinition,
    nistAndPci('ECSTaskDefinitionUserForHostMode'),
    'The containers run as a non-root user (1000) with every capability dropped and privileged off; the rule also asks for privileged mode, which would grant all capabilities, so it is deliberately not met.',
  );
  const executionRole = taskDefinition.executionRole;
  if (executionRole) {
    acknowledge(
      executionRole,
      ['AwsSolutions-IAM5[Resource::*]'],
      'ecr:GetAuthorizationToken has no resource-level permissions; image pulls and log writes are scoped to the image repository and the log group.',
    );
    acknowledge(
      executionRole,
      nistAndPci('IAMNoInlinePolicy'),
      'The execution role and its policy are generated by CDK for this one task definition (image pull, log stream); nothing else uses them.',
    );
  }
}
