import { Duration } from 'aws-cdk-lib';
import {
  Peer,
  Port,
  SecurityGroup,
  SubnetType,
  type ISecurityGroup,
  type IVpc,
} from 'aws-cdk-lib/aws-ec2';
import {
  ApplicationLoadBalancer,
  ApplicationProtocol,
  DesyncMitigationMode,
  ListenerAction,
  SslPolicy,
  type ApplicationListener,
} from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { Construct } from 'constructs';
import { acknowledge, nistAndPci } from '../compliance';
import { createAccessLogBucket } from './access-log-bucket';
import { internalName, type InternalTlsEndpoint } from './internal-tls';
import { notFoundBody } from './hardened-alb';

export interface InternalServiceAlbProps {
  readonly vpc: IVpc;
  readonly description: string;
  /** Callers allowed in, by security group (e.g. the proxy function). */
  readonly allowedSecurityGroups: readonly ISecurityGroup[];
  /** Callers allowed in, by address range (operators' networks for admin calls, NET-09). */
  readonly allowedCidrs: readonly string[];
  /**
   * With it the listener is HTTPS on 443 under `<hostLabel>.<internal domain>` (NET-07); without
   * (dev), HTTP on 80 inside the VPC.
   */
  readonly internalTls?: InternalTlsEndpoint;
  /** The service's name under the internal domain, e.g. credits. */
  readonly hostLabel: string;
  readonly accessLogExpirationDays: number;
  readonly deletionProtection: boolean;
  readonly idleTimeoutSeconds: number;
}

/**
 * An internal ALB in the private subnets for a service that must never be reachable from the
 * internet (NET-07): the same hardening as the public one (invalid headers dropped, strictest desync
 * mitigation, access logs), and a security group that admits only the listed callers.
 */
export class InternalServiceAlb extends Construct {
  readonly loadBalancer: ApplicationLoadBalancer;
  readonly securityGroup: SecurityGroup;
  readonly listener: ApplicationListener;
  /** Base URL callers use: https://<hostLabel>.<internal domain>, or in dev http://<load balancer DNS name>. */
  readonly url: string;
  /** The listener's port: 443 with TLS, 80 without. */
  readonly port: number;

  constructor(scope: Construct, id: string, props: InternalServiceAlbProps) {
    super(scope, id);
    const port = props.internalTls ? 443 : 80;
    this.port = port;
    this.securityGroup = new SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: `${props.description}: only from the listed callers`,
      allowAllOutbound: false,
    });
    for (const caller of props.allowedSecurityGroups)
      this.securityGroup.addIngressRule(caller, Port.tcp(port), 'a caller of the service');
    for (const cidr of props.allowedCidrs)
      this.securityGroup.addIngressRule(Peer.ipv4(cidr), Port.tcp(port), 'operators (admin calls)');
    this.loadBalancer = new ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: props.vpc,
      internetFacing: false,
      vpcSubnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
      securityGroup: this.securityGroup,
      dropInvalidHeaderFields: true,
      desyncMitigationMode: DesyncMitigationMode.STRICTEST,
      idleTimeout: Duration.seconds(props.idleTimeoutSeconds),
      deletionProtection: props.deletionProtection,
    });
    this.loadBalancer.logAccessLogs(
      createAccessLogBucket(this, 'AccessLogs', { expirationDays: props.accessLogExpirationDays }),
      'internal-alb',
    );
    const notFound = ListenerAction.fixedResponse(404, {
      contentType: 'application/json',
      messageBody: notFoundBody,
    });
    const tls = props.internalTls;
    this.listener = tls
      ? this.loadBalancer.addListener('Https', {
          port,
          protocol: ApplicationProtocol.HTTPS,
          certificates: [tls.certificate],
          sslPolicy: SslPolicy.TLS13_12_RES_PQ,
          open: false,
          defaultAction: notFound,
        })
      : this.loadBalancer.addListener('Http', {
          port,
          protocol: ApplicationProtocol.HTTP,
          open: false,
          defaultAction: notFound,
        });
    this.url = tls
      ? `https://${internalName(this, 'Name', tls, props.hostLabel, this.loadBalancer)}`
      : `http://${this.loadBalancer.loadBalancerDnsName}`;
    this.acknowledgeFindings(props);
  }

  private acknowledgeFindings(props: InternalServiceAlbProps): void {
    acknowledge(
      this.loadBalancer,
      nistAndPci('ALBWAFEnabled'),
      'Internal load balancer in private subnets, reachable only from the listed security groups and operator ranges; the web ACL guards the public entry point.',
    );
    if (!props.deletionProtection) {
      acknowledge(
        this.loadBalancer,
        nistAndPci('ELBDeletionProtectionEnabled'),
        'Deletion protection is off only in non-production stages (the config policy refuses it in production).',
      );
    }
    if (!props.internalTls) {
      acknowledge(
        this.listener,
        [...nistAndPci('ALBHttpToHttpsRedirection'), ...nistAndPci('ELBv2ACMCertificateRequired')],
        'Plain HTTP only in a stage without internal TLS (dev), inside the VPC between the proxy and the credits service; staging and production listen with HTTPS, and production refuses to synthesize without it (lib/config/policy.ts).',
      );
    }
  }
}
