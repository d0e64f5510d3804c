import { CfnOutput, Duration, Token } from 'aws-cdk-lib';
import {
  type IMachineImage,
  MachineImage,
  Peer,
  Port,
  type ISecurityGroup,
  type ISubnet,
  type IVpc,
} from 'aws-cdk-lib/aws-ec2';
import { AmiHardwareType, EcsOptimizedImage } from 'aws-cdk-lib/aws-ecs';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { StageConfig } from '../config';
import { hostImageReleaseParameter } from '../config/ledger-hosts';
import { scopeServicePermissionsToAccount } from '../constructs/proactive-controls';
import { entryPaths } from '../deployed-code';
import { ServiceFunction } from '../constructs/service-function';
import type { InternalTlsEndpoint } from '../constructs/internal-tls';
import { ledgerSubnetCidrs } from '../constructs/tigerbeetle-addresses';
import { TigerBeetleCluster } from '../constructs/tigerbeetle-cluster';
import { subnetGroups } from './network-stack';
import { StageStack, type StageStackProps } from './stage-stack';

export interface LedgerStackProps extends StageStackProps {
  readonly vpc: IVpc;
  readonly logsKey: IKey;
  /** TLS for the gateway's load balancer under the internal domain (unset in dev: plain TCP). */
  readonly internalTls?: InternalTlsEndpoint;
}

/**
 * The stateful ledger of a stage: the TigerBeetle cluster, its gateway, backups and alarms
 * (termination-protected in production). The api stack uses only `gatewayUrl`,
 * `gatewayTokenSecret` and `gatewayClientSecurityGroup`.
 */
export class LedgerStack extends StageStack {
  readonly cluster: TigerBeetleCluster;
  /** The internal base URL of the ledger gateway: https://ledger-gateway.<internal domain>:7300 (dev: http://<NLB DNS>:7300). */
  readonly gatewayUrl: string;
  /** The gateway's bearer token (Secrets Manager, generated, KMS-encrypted, retained). */
  readonly gatewayTokenSecret: ISecret;
  /** Put the credits function in this group: the only one the gateway load balancer admits (DATA-05). */
  readonly gatewayClientSecurityGroup: ISecurityGroup;
  /** Rotates the gateway token; its errors feed the stage's rotation alarm. */
  readonly tokenRotation: ServiceFunction;

  constructor(scope: Construct, id: string, props: LedgerStackProps) {
    super(scope, id, props);
    const { config } = props;
    const { ledger } = config;
    const subnetCidrs = ledgerSubnetCidrs(config.network.vpcCidr, config.availabilityZones.length);
    this.cluster = new TigerBeetleCluster(this, 'TigerBeetle', {
      vpc: props.vpc,
      subnets: ledgerSubnetsInZoneOrder(props.vpc, config.availabilityZones, subnetCidrs),
      subnetCidrs,
      endpointAvailabilityZones: config.availabilityZones.slice(
        0,
        config.network.interfaceEndpointAzCount,
      ),
      logsKey: props.logsKey,
      logRetentionDays: config.logRetentionDays,
      logLevel: config.logLevel,
      clusterId: ledger.clusterId,
      replicaCount: ledger.replicaCount,
      instanceType: ledger.instanceType,
      machineImage: hostMachineImage(ledger.hostImage, config.region),
      volume: {
        sizeGiB: ledger.volumeSizeGiB,
        iops: ledger.volumeIops,
        throughputMiBps: ledger.volumeThroughputMiBps,
      },
      tigerbeetleVersion: ledger.tigerbeetleVersion,
      fixedAddressOffset: ledger.fixedAddressOffset,
      cacheGridMiB: ledger.cacheGridMiB,
      replicaMemoryMiB: ledger.replicaMemoryMiB,
      gatewayMemoryMiB: ledger.gatewayMemoryMiB,
      backup: ledger.backup,
      deletionProtection: config.deletionProtection,
      alarmEmail: config.alarmEmail,
      backupTagValue: `ai-proxy-${config.stage}-ledger`,
      internalTls: props.internalTls,
    });
    this.gatewayUrl = this.cluster.gateway.url;
    this.gatewayTokenSecret = this.cluster.gateway.tokenSecret;
    this.gatewayClientSecurityGroup = this.cluster.gateway.clientSecurityGroup;
    this.tokenRotation = this.rotateGatewayToken(props);
    new CfnOutput(this, 'ReplicaAddresses', {
      description:
        'TigerBeetle replica addresses in replica order (the --addresses of every replica and client)',
      value: this.cluster.addresses.addressList,
    });
    new CfnOutput(this, 'GatewayUrl', {
      description: 'Internal base URL of the ledger gateway',
      value: this.gatewayUrl,
    });
  }

  /**
   * The token rotates with the other service keys (AUTH-04), by a rotation function of this stack:
   * rotating it from the api stack would make the two stacks depend on each other.
   */
  private rotateGatewayToken(props: LedgerStackProps): ServiceFunction {
    const rotation = rotationFunction(this, props);
    this.cluster.gateway.tokenSecret.addRotationSchedule('Rotation', {
      rotationLambda: rotation.function,
      automaticallyAfter: Duration.days(props.config.api.serviceKeyRotationDays),
    });
    scopeServicePermissionsToAccount(rotation.function);
    return rotation;
  }
}

/** Functions of this stack, like every other, come from the one factory. */
function rotationFunction(stack: LedgerStack, props: LedgerStackProps): ServiceFunction {
  const rotation = new ServiceFunction(stack, 'TokenRotation', {
    entry: entryPaths.rotation,
    description: 'Rotates the ledger gateway token (Secrets Manager rotation steps)',
    vpc: props.vpc,
    logsKey: props.logsKey,
    logRetentionDays: props.config.logRetentionDays,
    logLevel: props.config.logLevel,
    timeout: Duration.seconds(60),
  });
  rotation.securityGroup.addEgressRule(
    Peer.ipv4(props.config.network.vpcCidr),
    Port.tcp(443),
    'Secrets Manager and KMS through the VPC endpoints',
  );
  return rotation;
}

/**
 * The hosts' AMI from the config. `release` and `id` are fixed values, so the launch templates
 * change (and the hosts roll) only when the config does; `recommended` (dev only) follows AWS.
 */
function hostMachineImage(
  image: StageConfig['ledger']['hostImage'],
  region: string,
): IMachineImage {
  switch (image.kind) {
    case 'release':
      return MachineImage.fromSsmParameter(hostImageReleaseParameter(image.name));
    case 'id':
      return MachineImage.genericLinux({ [region]: image.imageId });
    case 'recommended':
      return EcsOptimizedImage.amazonLinux2023(AmiHardwareType.ARM);
  }
}

/**
 * The network stack's ledger subnets in the configured zone order, checked against the CIDR blocks
 * the addresses are computed from: a drift between the two fails synth instead of misplacing a replica.
 */
function ledgerSubnetsInZoneOrder(
  vpc: IVpc,
  zones: readonly string[],
  expectedCidrs: readonly string[],
): ISubnet[] {
  const ledgerSubnets = vpc.selectSubnets({ subnetGroupName: subnetGroups.ledger }).subnets;
  return zones.map((zone, index) => {
    const subnet = ledgerSubnets.find((candidate) => candidate.availabilityZone === zone);
    if (subnet === undefined) throw new Error(`the network has no ledger subnet in ${zone}`);
    const actual = subnet.ipv4CidrBlock;
    if (!Token.isUnresolved(actual) && actual !== expectedCidrs[index]) {
      throw new Error(
        `the ledger subnet in ${zone} is ${actual}, but the replica addresses were computed for ${expectedCidrs[index]}; update ledgerSubnetCidrs with the network layout`,
      );
    }
    return subnet;
  });
}
