import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { type ISubnet, type IVpc, Port, SecurityGroup } from 'aws-cdk-lib/aws-ec2';
import {
  Capability,
  type ContainerImage,
  Ec2Service,
  Ec2TaskDefinition,
  type ICluster,
  LinuxParameters,
  LogDrivers,
  NetworkMode,
} from 'aws-cdk-lib/aws-ecs';
import {
  ListenerCertificate,
  NetworkLoadBalancer,
  NetworkTargetGroup,
  Protocol,
  SslPolicy,
  TargetType,
} from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { ILogGroup } from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { acknowledge, nistAndPci } from '../compliance';
import { internalName, type InternalTlsEndpoint } from './internal-tls';
import { acknowledgeHostModeTask } from './tigerbeetle-replica';

/** The gateway's port on the hosts and on the internal load balancer. */
export const gatewayPort = 7300;
/** The gateway image's user (`node` in the official Node image). */
export const gatewayUser = '1000:1000';
/** The gateway's name under the internal domain: ledger-gateway.<domain>. */
export const gatewayHostLabel = 'ledger-gateway';
/** Generated bearer tokens: 64 characters of letters and digits (about 380 bits; AUTH-02). */
const gatewayTokenLength = 64;

export interface LedgerGatewayProps {
  readonly vpc: IVpc;
  readonly subnets: ISubnet[];
  readonly ecsCluster: ICluster;
  readonly image: ContainerImage;
  readonly clusterId: string;
  readonly addressList: string;
  readonly memoryMiB: number;
  readonly logLevel: string;
  readonly logGroup: ILogGroup;
  /** The security group of the ledger hosts (their primary interfaces). */
  readonly hostSecurityGroup: SecurityGroup;
  readonly deletionProtection: boolean;
  /** With it, the load balancer listens with TLS as ledger-gateway.<domain> (NET-07); without (dev), plain TCP. */
  readonly internalTls?: InternalTlsEndpoint;
}

/**
 * The ledger gateway: one task on every ledger host (an ECS daemon service, host networking),
 * behind an internal NLB that only `clientSecurityGroup` may reach (DATA-05, NET-06). The container
 * runs as a non-root user with a read-only root filesystem and no capabilities (DEP-04), and reads
 * its bearer token from `tokenSecret` (generated, KMS-encrypted, retained; rotated by the ledger stack).
 */
export class LedgerGateway extends Construct {
  readonly tokenSecret: Secret;
  readonly clientSecurityGroup: SecurityGroup;
  readonly loadBalancerSecurityGroup: SecurityGroup;
  readonly loadBalancer: NetworkLoadBalancer;
  readonly targetGroup: NetworkTargetGroup;
  readonly service: Ec2Service;
  readonly taskDefinition: Ec2TaskDefinition;
  /** `https://ledger-gateway.<internal domain>:7300`, or in dev `http://<internal NLB DNS name>:7300` */
  readonly url: string;

  constructor(scope: Construct, id: string, props: LedgerGatewayProps) {
    super(scope, id);
    this.tokenSecret = this.createTokenSecret();
    this.clientSecurityGroup = new SecurityGroup(this, 'ClientSecurityGroup', {
      vpc: props.vpc,
      description:
        'Ledger gateway clients (the credits function): may connect to the gateway load balancer only',
      allowAllOutbound: false,
    });
    this.loadBalancerSecurityGroup = new SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: props.vpc,
      description: 'Ledger gateway load balancer: the gateway port from its clients only',
      allowAllOutbound: false,
    });
    this.loadBalancerSecurityGroup.addIngressRule(
      this.clientSecurityGroup,
      Port.tcp(gatewayPort),
      'Gateway clients (credits function)',
    );
    this.loadBalancerSecurityGroup.addEgressRule(
      props.hostSecurityGroup,
      Port.tcp(gatewayPort),
      'Gateway tasks and health checks',
    );
    this.clientSecurityGroup.addEgressRule(
      this.loadBalancerSecurityGroup,
      Port.tcp(gatewayPort),
      'The ledger gateway',
    );
    props.hostSecurityGroup.addIngressRule(
      this.loadBalancerSecurityGroup,
      Port.tcp(gatewayPort),
      'Gateway load balancer (traffic and health checks)',
    );

    this.taskDefinition = this.createTaskDefinition(props);
    this.service = new Ec2Service(this, 'Service', {
      cluster: props.ecsCluster,
      taskDefinition: this.taskDefinition,
      daemon: true,
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      circuitBreaker: { enable: true, rollback: true },
      enableECSManagedTags: true,
    });
    this.loadBalancer = new NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc: props.vpc,
      internetFacing: false,
      vpcSubnets: { subnets: props.subnets },
      securityGroups: [this.loadBalancerSecurityGroup],
      crossZoneEnabled: true,
      deletionProtection: props.deletionProtection,
    });
    this.targetGroup = new NetworkTargetGroup(this, 'Targets', {
      vpc: props.vpc,
      port: gatewayPort,
      protocol: Protocol.TCP,
      targetType: TargetType.INSTANCE,
      // The hosts then see the load balancer's addresses, which their security group admits.
      preserveClientIp: false,
      deregistrationDelay: Duration.seconds(15),
      healthCheck: {
        protocol: Protocol.HTTP,
        path: '/ready',
        port: String(gatewayPort),
        interval: Duration.seconds(10),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 2,
      },
      targets: [
        this.service.loadBalancerTarget({ containerName: 'gateway', containerPort: gatewayPort }),
      ],
    });
    this.url = this.listen(props.internalTls);
    this.acknowledgeFindings(props);
  }

  /**
   * With internal TLS the load balancer terminates TLS (a TLS listener with the stage's internal
   * certificate) and forwards TCP to the gateway on its host: the private key never leaves ACM and
   * the gateway needs no certificate, at the price of a plain last hop from the load balancer to the
   * host, inside the VPC and between two security groups (NET-07). The listener keeps its id across
   * the protocol change, so CloudFormation updates it in place on the same port.
   */
  private listen(tls: InternalTlsEndpoint | undefined): string {
    if (tls) {
      this.loadBalancer.addListener('Gateway', {
        port: gatewayPort,
        protocol: Protocol.TLS,
        certificates: [ListenerCertificate.fromCertificateManager(tls.certificate)],
        sslPolicy: SslPolicy.TLS13_12_RES_PQ,
        defaultTargetGroups: [this.targetGroup],
      });
      return `https://${internalName(this, 'Name', tls, gatewayHostLabel, this.loadBalancer)}:${gatewayPort}`;
    }
    const listener = this.loadBalancer.addListener('Gateway', {
      port: gatewayPort,
      protocol: Protocol.TCP,
      defaultTargetGroups: [this.targetGroup],
    });
    acknowledge(
      listener,
      nistAndPci('ELBv2ACMCertificateRequired'),
      'Plain TCP only in a stage without internal TLS (dev): an internal listener between two security groups inside the VPC; staging and production listen with TLS, and production refuses to synthesize without it (lib/config/policy.ts).',
    );
    return `http://${this.loadBalancer.loadBalancerDnsName}:${gatewayPort}`;
  }

  private createTokenSecret(): Secret {
    const key = new Key(this, 'TokenKey', {
      description: 'Encrypts the ledger gateway bearer token',
      enableKeyRotation: true,
      pendingWindow: Duration.days(30),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const secret = new Secret(this, 'TokenSecret', {
      description:
        'Bearer token of the ledger gateway (JSON {"token": ...}); the credits function presents it',
      encryptionKey: key,
      generateSecretString: {
        secretStringTemplate: '{}',
        generateStringKey: 'token',
        passwordLength: gatewayTokenLength,
        excludePunctuation: true,
      },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    return secret;
  }

  private createTaskDefinition(props: LedgerGatewayProps): Ec2TaskDefinition {
    const taskDefinition = new Ec2TaskDefinition(this, 'Task', { networkMode: NetworkMode.HOST });
    const linuxParameters = new LinuxParameters(this, 'LinuxParameters', {
      initProcessEnabled: true,
    });
    linuxParameters.dropCapabilities(Capability.ALL);
    taskDefinition.addContainer('gateway', {
      image: props.image,
      memoryLimitMiB: props.memoryMiB,
      user: gatewayUser,
      readonlyRootFilesystem: true,
      privileged: false,
      dockerSecurityOptions: ['no-new-privileges'],
      linuxParameters,
      environment: {
        GATEWAY_HOST: '0.0.0.0',
        GATEWAY_PORT: String(gatewayPort),
        LEDGER_MODE: 'cluster',
        TB_CLUSTER_ID: props.clusterId,
        TB_ADDRESSES: props.addressList,
        GATEWAY_TOKEN_SECRET_ARN: this.tokenSecret.secretArn,
        LOG_LEVEL: props.logLevel,
      },
      portMappings: [{ containerPort: gatewayPort, hostPort: gatewayPort }],
      healthCheck: {
        command: [
          'CMD',
          'node',
          '-e',
          `fetch('http://127.0.0.1:${gatewayPort}/health',{signal:AbortSignal.timeout(2000)}).then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))`,
        ],
        interval: Duration.seconds(15),
        timeout: Duration.seconds(3),
        retries: 3,
        startPeriod: Duration.seconds(10),
      },
      stopTimeout: Duration.seconds(30),
      logging: LogDrivers.awsLogs({ logGroup: props.logGroup, streamPrefix: 'gateway' }),
    });
    this.tokenSecret.grantRead(taskDefinition.taskRole);
    acknowledgeHostModeTask(taskDefinition);
    acknowledge(
      taskDefinition.taskRole,
      nistAndPci('IAMNoInlinePolicy'),
      'The gateway task role only reads its token secret (and decrypts it with that secret key); the policy has no other user.',
    );
    acknowledge(
      taskDefinition,
      ['AwsSolutions-ECS2'],
      'The environment holds only non-secret settings: the cluster topology, the port, the log level and the ARN (not the value) of the token secret.',
    );
    return taskDefinition;
  }

  private acknowledgeFindings(props: LedgerGatewayProps): void {
    acknowledge(
      this.loadBalancer,
      ['AwsSolutions-ELB2', ...nistAndPci('ELBLoggingEnabled')],
      'An internal load balancer between two security groups: its connections are recorded by the VPC flow logs (all traffic, KMS-encrypted) and each request by the gateway request log with its request id; NLB access logs (TLS listeners only) would add only handshake fields.',
    );
    if (!props.deletionProtection) {
      acknowledge(
        this.loadBalancer,
        nistAndPci('ELBDeletionProtectionEnabled'),
        'Deletion protection is off only in non-production stages (the config policy refuses it in production).',
      );
    }
  }
}
