import { Duration } from 'aws-cdk-lib';
import type { ICertificate } from 'aws-cdk-lib/aws-certificatemanager';
import { Peer, Port, SecurityGroup, SubnetType, type IVpc } from 'aws-cdk-lib/aws-ec2';
import {
  type ApplicationListener,
  ApplicationListenerRule,
  ApplicationLoadBalancer,
  ApplicationProtocol,
  DesyncMitigationMode,
  ListenerAction,
  ListenerCondition,
  SslPolicy,
} from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledge, nistAndPci } from '../compliance';
import { createAccessLogBucket } from './access-log-bucket';

/** Paths that are never served to the internet (NET-08); ALB path patterns allow five per condition. */
export const internalPathPatterns = [
  '/metrics',
  '/metrics/*',
  '/internal/*',
  '/admin/*',
  '/api/v1/*',
];

/** The JSON body of the ALB's own 404 answers, in the API's error shape. */
export const notFoundBody = JSON.stringify({
  error: { message: 'Not found', type: 'invalid_request_error', code: 'not_found' },
});

export interface HardenedAlbProps {
  readonly vpc: IVpc;
  /** Without a certificate (dev only) the ALB serves plain HTTP on port 80. */
  readonly certificate?: ICertificate;
  /** Long enough for a slow LLM completion. */
  readonly idleTimeoutSeconds: number;
  readonly deletionProtection: boolean;
  readonly accessLogExpirationDays: number;
  /** Default: TLS 1.3 with TLS 1.2 minimum, restricted ciphers and post-quantum key exchange. */
  readonly sslPolicy?: SslPolicy;
}

/**
 * An internet-facing ALB hardened for a public API: HTTPS only with a TLS 1.3 policy (NET-03), HTTP
 * redirected permanently (NET-04), invalid header fields dropped and the strictest desync mitigation
 * (NET-11), access logs to a dedicated bucket, a JSON 404 by default and for internal paths (NET-08).
 * Routes are added to `listener` by the stacks that own the targets.
 */
export class HardenedAlb extends Construct {
  readonly loadBalancer: ApplicationLoadBalancer;
  readonly securityGroup: SecurityGroup;
  readonly accessLogBucket: Bucket;
  /** The listener that carries the API routes (HTTPS; plain HTTP only in a stage without a certificate). */
  readonly listener: ApplicationListener;

  constructor(scope: Construct, id: string, props: HardenedAlbProps) {
    super(scope, id);
    this.securityGroup = new SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'Public API load balancer: HTTPS (and HTTP for the redirect) from the internet',
      allowAllOutbound: false,
    });
    this.securityGroup.addIngressRule(
      Peer.anyIpv4(),
      Port.tcp(80),
      'HTTP, answered with a redirect to HTTPS',
    );
    if (props.certificate)
      this.securityGroup.addIngressRule(Peer.anyIpv4(), Port.tcp(443), 'HTTPS API');

    this.loadBalancer = new ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: props.vpc,
      internetFacing: true,
      vpcSubnets: { subnetType: SubnetType.PUBLIC },
      securityGroup: this.securityGroup,
      dropInvalidHeaderFields: true,
      desyncMitigationMode: DesyncMitigationMode.STRICTEST,
      idleTimeout: Duration.seconds(props.idleTimeoutSeconds),
      deletionProtection: props.deletionProtection,
    });
    // The ALB appends the client's address to X-Forwarded-For; the proxy throttles by that last entry.
    this.loadBalancer.setAttribute('routing.http.xff_header_processing.mode', 'append');
    this.accessLogBucket = createAccessLogBucket(this, 'AccessLogs', {
      expirationDays: props.accessLogExpirationDays,
    });
    this.loadBalancer.logAccessLogs(this.accessLogBucket, 'alb');

    this.listener = props.certificate
      ? this.addHttpsListeners(props.certificate, props.sslPolicy)
      : this.addHttpListener();
    this.acknowledgeFindings(props);
    new ApplicationListenerRule(this, 'InternalPathsNotFound', {
      listener: this.listener,
      priority: 1,
      conditions: [ListenerCondition.pathPatterns(internalPathPatterns)],
      action: notFound(),
    });
  }

  private acknowledgeFindings(props: HardenedAlbProps): void {
    acknowledge(
      this.securityGroup,
      ['AwsSolutions-EC23'],
      'The public API load balancer must accept HTTPS (and HTTP, answered with a redirect) from any client; the web ACL filters that traffic.',
    );
    if (!props.deletionProtection) {
      acknowledge(
        this.loadBalancer,
        nistAndPci('ELBDeletionProtectionEnabled'),
        'Deletion protection is off only in non-production stages (the config policy refuses it in production).',
      );
    }
    if (!props.certificate) {
      acknowledge(
        this.listener,
        [...nistAndPci('ALBHttpToHttpsRedirection'), ...nistAndPci('ELBv2ACMCertificateRequired')],
        'This stage has no certificate configured, so it serves plain HTTP; the config policy refuses that in production.',
      );
    }
  }

  private addHttpsListeners(
    certificate: ICertificate,
    sslPolicy: SslPolicy | undefined,
  ): ApplicationListener {
    const redirect = this.loadBalancer.addListener('Http', {
      port: 80,
      protocol: ApplicationProtocol.HTTP,
      open: false,
      defaultAction: ListenerAction.redirect({ protocol: 'HTTPS', port: '443', permanent: true }),
    });
    acknowledge(
      redirect,
      nistAndPci('ELBv2ACMCertificateRequired'),
      'The port 80 listener serves nothing: its only action is a permanent redirect to the HTTPS listener, which uses the ACM certificate.',
    );
    return this.loadBalancer.addListener('Https', {
      port: 443,
      protocol: ApplicationProtocol.HTTPS,
      open: false,
      certificates: [certificate],
      sslPolicy: sslPolicy ?? SslPolicy.TLS13_12_RES_PQ,
      defaultAction: notFound(),
    });
  }

  private addHttpListener(): ApplicationListener {
    return this.loadBalancer.addListener('Http', {
      port: 80,
      protocol: ApplicationProtocol.HTTP,
      open: false,
      defaultAction: notFound(),
    });
  }
}

function notFound(): ListenerAction {
  return ListenerAction.fixedResponse(404, {
    contentType: 'application/json',
    messageBody: notFoundBody,
  });
}
