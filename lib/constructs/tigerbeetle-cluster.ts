import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import {
  type IMachineImage,
  InstanceType,
  InterfaceVpcEndpoint,
  InterfaceVpcEndpointAwsService,
  type ISubnet,
  type IVpc,
  Peer,
  Port,
  SecurityGroup,
} from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import { Cluster, ContainerImage, ContainerInsights } from 'aws-cdk-lib/aws-ecs';
import { ManagedPolicy, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key, type IKey } from 'aws-cdk-lib/aws-kms';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import { ParameterTier, StringParameter } from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { acknowledge, nistAndPci } from '../compliance';
import {
  gatewayImage,
  gatewayImageExcludes,
  ledgerHostFiles,
  replicaImage,
  repositoryPath,
} from '../deployed-code';
import { EncryptedLogGroup } from './encrypted-log-group';
import { LedgerAlarms } from './tigerbeetle-alarms';
import {
  type ReplicaAddressPlan,
  planReplicaAddresses,
  replicaPort,
} from './tigerbeetle-addresses';
import { LedgerBackup } from './tigerbeetle-backup';
import type { InternalTlsEndpoint } from './internal-tls';
import { LedgerGateway } from './tigerbeetle-gateway';
import { TigerBeetleReplica } from './tigerbeetle-replica';
import { assertTigerBeetleVersionsAgree } from './tigerbeetle-version';

/** The values of the cluster marker (tigerbeetle/replica/entrypoint.sh reads them from the host's copy). */
export const clusterFormation = { forming: 'forming', formed: 'formed' } as const;

/** AWS APIs the ledger hosts call that the network stack has no endpoint for (the subnets have no internet route). */
const hostEndpoints: Record<string, InterfaceVpcEndpointAwsService> = {
  Ecs: InterfaceVpcEndpointAwsService.ECS,
  EcsAgent: InterfaceVpcEndpointAwsService.ECS_AGENT,
  EcsTelemetry: InterfaceVpcEndpointAwsService.ECS_TELEMETRY,
  Ec2: InterfaceVpcEndpointAwsService.EC2,
  // A replaced host signals CloudFormation once its replica is healthy (health-gated replacement).
  CloudFormation: InterfaceVpcEndpointAwsService.CLOUDFORMATION,
};

export interface TigerBeetleClusterProps {
  readonly vpc: IVpc;
  /** The ledger subnet of each availability zone, in the configured zone order. */
  readonly subnets: readonly ISubnet[];
  /** Their CIDR blocks, computed from the config (the addresses are derived from these). */
  readonly subnetCidrs: readonly string[];
  /** Zones of the private subnets that carry the ECS and EC2 interface endpoints (as the network stack's). */
  readonly endpointAvailabilityZones: readonly string[];
  readonly logsKey: IKey;
  readonly logRetentionDays: number;
  readonly logLevel: string;
  readonly clusterId: string;
  readonly replicaCount: number;
  readonly instanceType: string;
  /** The hosts' AMI (pinned: ledger.hostImage). */
  readonly machineImage: IMachineImage;
  readonly volume: {
    readonly sizeGiB: number;
    readonly iops: number;
    readonly throughputMiBps: number;
  };
  readonly tigerbeetleVersion: string;
  readonly fixedAddressOffset: number;
  readonly cacheGridMiB: number;
  readonly replicaMemoryMiB: number;
  readonly gatewayMemoryMiB: number;
  readonly backup: { readonly retentionDays: number; readonly copyToVaultArn?: string };
  readonly deletionProtection: boolean;
  readonly alarmEmail?: string;
  /** A value unique to the stage, for the backup selection tag. */
  readonly backupTagValue: string;
  /** TLS for the gateway's load balancer (see LedgerGatewayProps.internalTls). */
  readonly internalTls?: InternalTlsEndpoint;
}

/**
 * The TigerBeetle cluster: fixed-address replicas on dedicated Graviton ECS hosts with their own
 * encrypted volumes, the ledger gateway in front of them, daily backups and alarms. See the
 * design, "TigerBeetle on ECS", and docs/runbooks/ledger-*.md.
 */
export class TigerBeetleCluster extends Construct {
  readonly addresses: ReplicaAddressPlan;
  readonly dataKey: Key;
  readonly replicas: TigerBeetleReplica[] = [];
  readonly gateway: LedgerGateway;
  readonly backup: LedgerBackup;
  readonly alarms: LedgerAlarms;
  readonly ecsCluster: Cluster;
  readonly hostSecurityGroup: SecurityGroup;
  readonly replicaSecurityGroup: SecurityGroup;
  /** The cluster marker: `forming` until every replica of the new cluster is up, then `formed` (DATA-01). */
  readonly formationMarker: StringParameter;
  /** Its name, literal: the hosts' user data and IAM name it without a token. */
  readonly formationParameterName: string;

  constructor(scope: Construct, id: string, props: TigerBeetleClusterProps) {
    super(scope, id);
    assertTigerBeetleVersionsAgree(props.tigerbeetleVersion);
    this.addresses = planReplicaAddresses({
      subnetCidrs: props.subnetCidrs,
      replicaCount: props.replicaCount,
      firstHostOffset: props.fixedAddressOffset,
    });
    this.dataKey = new Key(this, 'DataKey', {
      description: 'Encrypts the TigerBeetle replica volumes and their backup vault',
      enableKeyRotation: true,
      pendingWindow: Duration.days(30),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.hostSecurityGroup = new SecurityGroup(this, 'HostSecurityGroup', {
      vpc: props.vpc,
      description:
        'Ledger hosts: the gateway port from the gateway load balancer only; no SSH (SSM Session Manager)',
      allowAllOutbound: false,
    });
    this.replicaSecurityGroup = new SecurityGroup(this, 'ReplicaSecurityGroup', {
      vpc: props.vpc,
      description:
        'TigerBeetle replica addresses: the replica port from the ledger hosts (replicas and gateways) only',
      allowAllOutbound: false,
    });
    this.connectSecurityGroups();
    this.addHostEndpoints(props.vpc, props.endpointAvailabilityZones);

    this.ecsCluster = new Cluster(this, 'EcsCluster', {
      vpc: props.vpc,
      containerInsightsV2: ContainerInsights.ENABLED,
    });
    // The hosts register themselves (tigerbeetle/host/setup.sh); the services see a cluster with EC2 capacity.
    const ecsClusterRef = Cluster.fromClusterAttributes(this, 'EcsClusterRef', {
      clusterName: this.ecsCluster.clusterName,
      clusterArn: this.ecsCluster.clusterArn,
      vpc: props.vpc,
      securityGroups: [],
      hasEc2Capacity: true,
    });
    const logs = new EncryptedLogGroup(this, 'Logs', {
      encryptionKey: props.logsKey,
      retentionDays: props.logRetentionDays,
    });
    const gatewayLogs = new EncryptedLogGroup(this, 'GatewayLogs', {
      encryptionKey: props.logsKey,
      retentionDays: props.logRetentionDays,
    });
    const hostSetupScript = new Asset(this, 'HostSetupScript', {
      path: repositoryPath(ledgerHostFiles.setupScript),
    });
    const seccompProfile = new Asset(this, 'SeccompProfile', {
      path: repositoryPath(ledgerHostFiles.seccompProfile),
    });
    const setupFiles = [hostSetupScript, seccompProfile].map((asset) =>
      asset.bucket.arnForObjects(asset.s3ObjectKey),
    );
    const replicaContainerImage = ContainerImage.fromAsset(repositoryPath(replicaImage.context), {
      platform: Platform.LINUX_ARM64,
      buildArgs: { TIGERBEETLE_VERSION: props.tigerbeetleVersion },
    });

    this.formationParameterName = `/${Stack.of(this).stackName}/tigerbeetle-${props.clusterId}/formation`;
    this.formationMarker = this.createFormationMarker();
    const volumeProps = props.volume;
    for (const placement of this.addresses.replicas) {
      const hostRole = this.createHostRole(placement.replica);
      hostRole.addToPolicy(
        new PolicyStatement({
          sid: 'ReadTheHostSetupFiles',
          actions: ['s3:GetObject'],
          resources: setupFiles,
        }),
      );
      const replica = new TigerBeetleReplica(this, `Replica${placement.replica}`, {
        vpc: props.vpc,
        placement,
        subnet: props.subnets[placement.zoneIndex],
        clusterId: props.clusterId,
        replicaCount: props.replicaCount,
        addressList: this.addresses.addressList,
        cacheGridMiB: props.cacheGridMiB,
        formationParameterName: this.formationParameterName,
        memoryMiB: props.replicaMemoryMiB,
        instanceType: new InstanceType(props.instanceType),
        machineImage: props.machineImage,
        volume: volumeProps,
        dataKey: this.dataKey,
        backupTag: ['ai-proxy:backup', props.backupTagValue],
        hostRole,
        hostSecurityGroup: this.hostSecurityGroup,
        replicaSecurityGroup: this.replicaSecurityGroup,
        ecsCluster: ecsClusterRef,
        image: replicaContainerImage,
        hostSetupScript,
        seccompProfile,
        logGroup: logs.logGroup,
      });
      // One host at a time: CloudFormation replaces replica i's host only after replica i-1's.
      const previous = this.replicas[this.replicas.length - 1];
      if (previous) replica.autoScalingGroup.node.addDependency(previous.autoScalingGroup);
      // An upgrade replaces one replica task at a time (CloudFormation waits for each service to be stable).
      if (previous) replica.service.node.addDependency(previous.service);
      this.replicas.push(replica);
      this.grantHostAttachments(hostRole, replica);
      this.grantFormationMarker(hostRole, placement.replica === props.replicaCount - 1);
    }

    this.gateway = new LedgerGateway(this, 'Gateway', {
      vpc: props.vpc,
      subnets: [...props.subnets],
      ecsCluster: ecsClusterRef,
      image: ContainerImage.fromAsset(repositoryPath(gatewayImage.context), {
        file: gatewayImage.dockerfile,
        platform: Platform.LINUX_ARM64,
        // What the build copies (the Dockerfile itself kept), minus the other host pieces (they would only invalidate the image).
        exclude: gatewayImageExcludes(),
      }),
      clusterId: props.clusterId,
      addressList: this.addresses.addressList,
      memoryMiB: props.gatewayMemoryMiB,
      logLevel: props.logLevel,
      logGroup: gatewayLogs.logGroup,
      hostSecurityGroup: this.hostSecurityGroup,
      deletionProtection: props.deletionProtection,
      internalTls: props.internalTls,
    });
    // The client is upgraded only after every replica: it must never be newer than the cluster.
    for (const replica of this.replicas) this.gateway.service.node.addDependency(replica.service);
    // The load balancer takes dynamic addresses in the ledger subnets: after the fixed ones exist.
    for (const replica of this.replicas)
      this.gateway.loadBalancer.node.addDependency(replica.networkInterface);

    this.backup = new LedgerBackup(this, 'Backup', {
      encryptionKey: this.dataKey,
      volumes: this.replicas.map((replica) => replica.volume),
      backupTag: ['ai-proxy:backup', props.backupTagValue],
      retentionDays: props.backup.retentionDays,
      copyToVaultArn: props.backup.copyToVaultArn,
    });
    this.alarms = new LedgerAlarms(this, 'Alarms', {
      clusterName: this.ecsCluster.clusterName,
      replicas: this.replicas.map((replica, index) => ({
        replica: index,
        service: replica.service,
        volume: replica.volume,
        autoScalingGroup: replica.autoScalingGroup,
      })),
      loadBalancer: this.gateway.loadBalancer,
      targetGroup: this.gateway.targetGroup,
      gatewayLogGroup: gatewayLogs.logGroup,
      alarmEmail: props.alarmEmail,
    });
  }

  /** Replicas talk to each other (and gateways to replicas) from the hosts' primary addresses. */
  private connectSecurityGroups(): void {
    this.replicaSecurityGroup.addIngressRule(
      this.hostSecurityGroup,
      Port.tcp(replicaPort),
      'Replicas and gateways on the ledger hosts',
    );
    this.hostSecurityGroup.addEgressRule(
      this.replicaSecurityGroup,
      Port.tcp(replicaPort),
      'Other replicas (and the gateway to the replicas)',
    );
    // The subnets have no internet route: 443 reaches only the VPC endpoints and the S3 gateway
    // endpoint (whose prefix list cannot be named offline).
    this.hostSecurityGroup.addEgressRule(
      Peer.anyIpv4(),
      Port.tcp(443),
      'AWS APIs through the VPC endpoints (ECS, ECR, S3, Logs, SSM, Secrets Manager, EC2)',
    );
  }

  private addHostEndpoints(vpc: IVpc, zones: readonly string[]): void {
    const endpointSecurityGroup = new SecurityGroup(this, 'EndpointSecurityGroup', {
      vpc,
      description: 'ECS and EC2 endpoints for the ledger hosts: HTTPS from the ledger hosts only',
      allowAllOutbound: false,
    });
    endpointSecurityGroup.addIngressRule(this.hostSecurityGroup, Port.tcp(443), 'Ledger hosts');
    for (const [name, service] of Object.entries(hostEndpoints)) {
      new InterfaceVpcEndpoint(this, `${name}Endpoint`, {
        vpc,
        service,
        privateDnsEnabled: true,
        open: false,
        securityGroups: [endpointSecurityGroup],
        subnets: { subnetGroupName: 'private', availabilityZones: [...zones] },
      });
    }
  }

  /** One role per replica's hosts: each may attach only its own replica's volume and address. */
  private createHostRole(replica: number): Role {
    const role = new Role(this, `HostRole${replica}`, {
      assumedBy: new ServicePrincipal('ec2.amazonaws.com'),
      description: `Ledger hosts of replica ${replica}: register with ECS, SSM Session Manager, attach the replica's ENI and volume`,
      managedPolicies: [
        ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonEC2ContainerServiceforEC2Role'),
        ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore'),
      ],
    });
    acknowledge(
      role,
      ['service-role/AmazonEC2ContainerServiceforEC2Role', 'AmazonSSMManagedInstanceCore'].map(
        (name) => `AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/${name}]`,
      ),
      'AmazonEC2ContainerServiceforEC2Role and AmazonSSMManagedInstanceCore are the AWS-maintained policies for ECS container instances and Session Manager (no SSH); they track new agent API calls.',
    );
    return role;
  }

  /**
   * The durable record of whether this cluster has ever been formed, read by every host at boot
   * and copied onto its volume for the replica's entrypoint (format only while `forming`; a
   * missing data file of a formed cluster is recovered). The stack creates it as `forming` and
   * never changes that value (CloudFormation updates a parameter only when its template value
   * changes); the last replica's host writes `formed`. Its lifetime is the stack's, like the
   * cluster's: a new stack makes new volumes, a new cluster. The fixed name makes a replacement of
   * the parameter fail loudly (the name is taken) instead of silently starting over at `forming`.
   */
  private createFormationMarker(): StringParameter {
    return new StringParameter(this, 'FormationMarker', {
      parameterName: this.formationParameterName,
      stringValue: clusterFormation.forming,
      description:
        'TigerBeetle cluster formation: forming until every replica of the new cluster is up, then formed (written by the last replica host)',
      tier: ParameterTier.STANDARD,
    });
  }

  /**
   * Every host reads the marker; only the last replica's host (its own role) may write it. Writing
   * `formed` early could only make replicas recover or refuse, never format.
   */
  private grantFormationMarker(role: Role, marksFormation: boolean): void {
    role.addToPolicy(
      new PolicyStatement({
        sid: marksFormation ? 'ReadAndMarkTheClusterFormation' : 'ReadTheClusterFormation',
        actions: marksFormation ? ['ssm:GetParameter', 'ssm:PutParameter'] : ['ssm:GetParameter'],
        resources: [this.formationMarker.parameterArn],
      }),
    );
  }

  private grantHostAttachments(role: Role, replica: TigerBeetleReplica): void {
    const stack = Stack.of(this);
    const instances = stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' });
    role.addToPolicy(
      new PolicyStatement({
        sid: 'AttachTheReplicaVolumeAndAddress',
        actions: ['ec2:AttachVolume', 'ec2:AttachNetworkInterface'],
        resources: [
          instances,
          stack.formatArn({
            service: 'ec2',
            resource: 'volume',
            resourceName: replica.volume.volumeId,
          }),
          stack.formatArn({
            service: 'ec2',
            resource: 'network-interface',
            resourceName: replica.networkInterface.ref,
          }),
        ],
      }),
    );
    role.addToPolicy(
      new PolicyStatement({
        sid: 'SeeAttachmentState',
        actions: ['ec2:DescribeVolumes', 'ec2:DescribeNetworkInterfaces'],
        resources: ['*'],
      }),
    );
    role.addToPolicy(
      new PolicyStatement({
        sid: 'SignalThatTheReplicaIsHealthy',
        actions: ['cloudformation:SignalResource'],
        resources: [stack.stackId],
      }),
    );
    // Attaching an encrypted volume makes EC2 create a grant on the data key for the instance.
    role.addToPolicy(
      new PolicyStatement({
        sid: 'UseTheDataKeyForAttachedVolumes',
        actions: ['kms:CreateGrant'],
        resources: [this.dataKey.keyArn],
        conditions: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
      }),
    );
    this.dataKey.grant(role, 'kms:Decrypt', 'kms:DescribeKey');
    acknowledge(
      role,
      ['AwsSolutions-IAM5[Resource::*]'],
      'ec2:DescribeVolumes and ec2:DescribeNetworkInterfaces have no resource-level permissions; the host polls them while a replaced predecessor releases the volume and ENI.',
    );
    acknowledge(
      role,
      [`AwsSolutions-IAM5[Resource::${instances.replace(stack.account, '<AWS::AccountId>')}]`],
      "Attach names the replica's own volume and ENI exactly; the instance side must be any instance of the account because a replacement host gets a new instance id.",
    );
    acknowledge(
      role,
      nistAndPci('IAMNoInlinePolicy'),
      "The host policy is specific to this replica's hosts (its volume, ENI, the data key and the cluster marker) and has no other user.",
    );
  }
}
