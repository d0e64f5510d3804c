import {
  Certificate,
  CertificateValidation,
  type ICertificate,
} from 'aws-cdk-lib/aws-certificatemanager';
import type { IVpc } from 'aws-cdk-lib/aws-ec2';
import type { ILoadBalancerV2 } from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import {
  ARecord,
  HostedZone,
  PrivateHostedZone,
  RecordTarget,
  type IHostedZone,
} from 'aws-cdk-lib/aws-route53';
import { LoadBalancerTarget } from 'aws-cdk-lib/aws-route53-targets';
import { Construct } from 'constructs';
import type { InternalTlsConfig } from '../config/schema';

/**
 * What an internal load balancer needs to listen with TLS under a name of the stage's internal
 * domain: the private zone that resolves the name inside the VPC and the certificate that covers it.
 */
export interface InternalTlsEndpoint {
  readonly zone: IHostedZone;
  readonly domain: string;
  readonly certificate: ICertificate;
}

export interface InternalTlsProps extends InternalTlsConfig {
  readonly vpc: IVpc;
}

/**
 * TLS for the internal hops without a private CA (NET-07): a free public ACM certificate for
 * `*.<domain>`, DNS-validated in the public hosted zone (automatically when it is configured), and a
 * private hosted zone of `<domain>` associated with the VPC, where each internal load balancer gets
 * an alias record. The names resolve only inside the VPC; the wildcard keeps the service names out of
 * the public certificate transparency logs.
 */
export class InternalTls extends Construct implements InternalTlsEndpoint {
  readonly zone: PrivateHostedZone;
  readonly domain: string;
  readonly certificate: Certificate;

  constructor(scope: Construct, id: string, props: InternalTlsProps) {
    super(scope, id);
    this.domain = props.domain;
    this.zone = new PrivateHostedZone(this, 'Zone', {
      zoneName: props.domain,
      vpc: props.vpc,
      comment: 'Internal service names (TLS inside the VPC); resolvable only from the VPC',
    });
    const validationZone = props.validationHostedZone
      ? HostedZone.fromHostedZoneAttributes(this, 'ValidationZone', {
          hostedZoneId: props.validationHostedZone.id,
          zoneName: props.validationHostedZone.name,
        })
      : undefined;
    this.certificate = new Certificate(this, 'Certificate', {
      domainName: `*.${props.domain}`,
      validation: CertificateValidation.fromDns(validationZone),
    });
  }
}

/** An alias record `<label>.<domain>` in the private zone to an internal load balancer; returns the name. */
export function internalName(
  scope: Construct,
  id: string,
  endpoint: InternalTlsEndpoint,
  label: string,
  loadBalancer: ILoadBalancerV2,
): string {
  new ARecord(scope, id, {
    zone: endpoint.zone,
    recordName: label,
    target: RecordTarget.fromAlias(new LoadBalancerTarget(loadBalancer)),
  });
  return `${label}.${endpoint.domain}`;
}
