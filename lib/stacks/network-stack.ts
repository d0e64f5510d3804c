import {
  FlowLogDestination,
  FlowLogTrafficType,
  GatewayVpcEndpointAwsService,
  InterfaceVpcEndpointAwsService,
  IpAddresses,
  Peer,
  Port,
  SecurityGroup,
  SubnetType,
  Vpc,
} from 'aws-cdk-lib/aws-ec2';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';
import { acknowledge, nistAndPci } from '../compliance';
import { EncryptedLogGroup } from '../constructs/encrypted-log-group';
import { InternalTls } from '../constructs/internal-tls';
import { LogsKey } from '../constructs/logs-key';
import { StageStack, type StageStackProps } from './stage-stack';

/** Interface endpoints for the AWS APIs the workloads call, so that traffic stays in the VPC. */
const interfaceEndpoints: Record<string, InterfaceVpcEndpointAwsService> = {
  SecretsManager: InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
  CloudWatchLogs: InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
  Kms: InterfaceVpcEndpointAwsService.KMS,
  EcrApi: InterfaceVpcEndpointAwsService.ECR,
  EcrDocker: InterfaceVpcEndpointAwsService.ECR_DOCKER,
  Ssm: InterfaceVpcEndpointAwsService.SSM,
  SsmMessages: InterfaceVpcEndpointAwsService.SSM_MESSAGES,
  Ec2Messages: InterfaceVpcEndpointAwsService.EC2_MESSAGES,
};

/**
 * Bedrock's runtime, only in a stage that configures bedrock models: the proxy's Converse calls
 * stay on AWS's network (PrivateLink, private DNS for the regional name) and never need the NAT;
 * a stage without bedrock models does not pay for the endpoint's ENIs.
 */
export function interfaceEndpointsOf(config: {
  readonly models: readonly { readonly provider: string }[];
}): Record<string, InterfaceVpcEndpointAwsService> {
  return config.models.some((model) => model.provider === 'bedrock')
    ? { ...interfaceEndpoints, BedrockRuntime: InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME }
    : interfaceEndpoints;
}

/** Subnet group names, used by the other stacks to select subnets. */
export const subnetGroups = { public: 'public', private: 'private', ledger: 'ledger' } as const;

/**
 * The network of a stage: a VPC over the configured AZs with public subnets (the ALB and NAT only),
 * private subnets with egress (Lambda functions) and isolated subnets (the ledger), flow logs to an
 * encrypted log group, VPC endpoints, and a default security group with no rules.
 */
export class NetworkStack extends StageStack {
  readonly vpc: Vpc;
  readonly logsKey: IKey;
  /** The private zone and certificate of the internal TLS names; unset when the stage has none (dev). */
  readonly internalTls?: InternalTls;

  constructor(scope: Construct, id: string, props: StageStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.logsKey = new LogsKey(this, 'LogsKey').key;
    const flowLogs = new EncryptedLogGroup(this, 'FlowLogs', {
      encryptionKey: this.logsKey,
      retentionDays: config.logRetentionDays,
    });
    this.vpc = new Vpc(this, 'Vpc', {
      ipAddresses: IpAddresses.cidr(config.network.vpcCidr),
      availabilityZones: config.availabilityZones,
      natGateways: config.network.natGateways,
      subnetConfiguration: [
        {
          name: subnetGroups.public,
          subnetType: SubnetType.PUBLIC,
          cidrMask: 24,
          mapPublicIpOnLaunch: false,
        },
        { name: subnetGroups.private, subnetType: SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
        { name: subnetGroups.ledger, subnetType: SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      restrictDefaultSecurityGroup: true,
      flowLogs: {
        all: {
          destination: FlowLogDestination.toCloudWatchLogs(flowLogs.logGroup),
          trafficType: FlowLogTrafficType.ALL,
        },
      },
    });
    this.addEndpoints(
      interfaceEndpointsOf(config),
      config.network.vpcCidr,
      config.availabilityZones.slice(0, config.network.interfaceEndpointAzCount),
    );
    if (config.internalTls)
      this.internalTls = new InternalTls(this, 'InternalTls', {
        ...config.internalTls,
        vpc: this.vpc,
      });
    this.acknowledgePublicRoutes();
    acknowledge(
      this.vpc,
      ['CloudFormation-Validate::W3010'],
      'Availability zones are explicit by design: synthesis is offline and deterministic, and the ledger replicas need their AZ (and fixed address) known at synth.',
    );
    acknowledge(
      this.vpc.node.findChild('all').node.findChild('IAMRole'),
      nistAndPci('IAMNoInlinePolicy'),
      'The flow log role is created by CDK with one inline policy scoped to the flow log group; it has no other use to share.',
    );
  }

  private addEndpoints(
    endpoints: Record<string, InterfaceVpcEndpointAwsService>,
    vpcCidr: string,
    endpointZones: string[],
  ): void {
    // One security group for all interface endpoints: HTTPS from inside the VPC only.
    const endpointSecurityGroup = new SecurityGroup(this, 'EndpointSecurityGroup', {
      vpc: this.vpc,
      description: 'VPC interface endpoints: HTTPS from inside the VPC',
      allowAllOutbound: false,
    });
    endpointSecurityGroup.addIngressRule(
      Peer.ipv4(vpcCidr),
      Port.tcp(443),
      'AWS APIs from workloads in the VPC',
    );
    this.vpc.addGatewayEndpoint('S3', {
      service: GatewayVpcEndpointAwsService.S3,
      subnets: [
        { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
        { subnetType: SubnetType.PRIVATE_ISOLATED },
      ],
    });
    for (const [name, service] of Object.entries(endpoints)) {
      this.vpc.addInterfaceEndpoint(name, {
        service,
        privateDnsEnabled: true,
        open: false,
        securityGroups: [endpointSecurityGroup],
        subnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS, availabilityZones: endpointZones },
      });
    }
  }

  private acknowledgePublicRoutes(): void {
    for (const subnet of this.vpc.publicSubnets) {
      acknowledge(
        subnet.node.findChild('DefaultRoute'),
        nistAndPci('VPCNoUnrestrictedRouteToIGW'),
        'Public subnets hold only the internet-facing ALB and the NAT gateways, which need a route to the internet gateway; workloads run in private and isolated subnets.',
      );
    }
  }
}
