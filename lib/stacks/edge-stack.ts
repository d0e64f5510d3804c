import { CfnOutput } from 'aws-cdk-lib';
import {
  Certificate,
  CertificateValidation,
  type ICertificate,
} from 'aws-cdk-lib/aws-certificatemanager';
import type { IVpc } from 'aws-cdk-lib/aws-ec2';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { HostedZone } from 'aws-cdk-lib/aws-route53';
import type { Construct } from 'constructs';
import type { StageConfig } from '../config';
import { ApiWebAcl } from '../constructs/api-web-acl';
import { HardenedAlb } from '../constructs/hardened-alb';
import { StageStack, type StageStackProps } from './stage-stack';

export interface EdgeStackProps extends StageStackProps {
  readonly vpc: IVpc;
  readonly logsKey: IKey;
}

/**
 * The public edge of a stage: the TLS certificate, the hardened internet-facing ALB and the web ACL
 * in front of it. The API stack adds its routes to `alb.listener`.
 */
export class EdgeStack extends StageStack {
  readonly alb: HardenedAlb;
  readonly webAcl: ApiWebAcl;

  constructor(scope: Construct, id: string, props: EdgeStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.alb = new HardenedAlb(this, 'PublicAlb', {
      vpc: props.vpc,
      certificate: this.certificate(config),
      idleTimeoutSeconds: config.edge.idleTimeoutSeconds,
      deletionProtection: config.deletionProtection,
      accessLogExpirationDays: config.edge.accessLogExpirationDays,
    });
    this.webAcl = new ApiWebAcl(this, 'WebAcl', {
      resourceArn: this.alb.loadBalancer.loadBalancerArn,
      ...config.edge.waf,
      requestBodyBytesMax: config.requestBodyBytesMax,
      logsKey: props.logsKey,
      logRetentionDays: config.logRetentionDays,
    });
    const scheme = config.certificate ? 'https' : 'http';
    new CfnOutput(this, 'ApiEndpoint', {
      description: 'Base URL of the public API',
      value: `${scheme}://${config.domainName ?? this.alb.loadBalancer.loadBalancerDnsName}`,
    });
    new CfnOutput(this, 'LoadBalancerDnsName', {
      description: 'Point the API domain (CNAME or alias) at this name',
      value: this.alb.loadBalancer.loadBalancerDnsName,
    });
  }

  private certificate(config: StageConfig): ICertificate | undefined {
    const certificate = config.certificate;
    if (certificate === undefined) return undefined;
    if (certificate.kind === 'import')
      return Certificate.fromCertificateArn(this, 'Certificate', certificate.arn);
    // The policy guarantees a domain name for a created certificate.
    const domainName = config.domainName as string;
    const zone = certificate.hostedZone
      ? HostedZone.fromHostedZoneAttributes(this, 'Zone', {
          hostedZoneId: certificate.hostedZone.id,
          zoneName: certificate.hostedZone.name,
        })
      : undefined;
    return new Certificate(this, 'Certificate', {
      domainName,
      validation: CertificateValidation.fromDns(zone),
    });
  }
}
