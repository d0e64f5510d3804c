import { Match } from 'aws-cdk-lib/assertions';
import { resourcesOf, synthesizeStage, type SynthesizedStage } from '../support/synth';

let production: SynthesizedStage;
let dev: SynthesizedStage;

beforeAll(() => {
  production = synthesizeStage('production');
  dev = synthesizeStage('dev');
});

describe('NetworkStack', () => {
  test('a VPC over the three configured AZs with public, private-with-egress and isolated subnets', () => {
    const network = production.templates.network;
    network.hasResourceProperties('AWS::EC2::VPC', { CidrBlock: '10.42.0.0/16' });
    const subnets = resourcesOf(network).filter(
      ([, resource]) => resource.Type === 'AWS::EC2::Subnet',
    );
    const zones = new Set(subnets.map(([, subnet]) => subnet.Properties?.AvailabilityZone));
    expect([...zones].sort()).toEqual(['eu-west-1a', 'eu-west-1b', 'eu-west-1c']);
    const kinds = subnets.map(
      ([, subnet]) =>
        (subnet.Properties?.Tags as { Key: string; Value: string }[]).find(
          (tag) => tag.Key === 'aws-cdk:subnet-type',
        )?.Value,
    );
    expect(kinds.filter((kind) => kind === 'Public')).toHaveLength(3);
    expect(kinds.filter((kind) => kind === 'Private')).toHaveLength(3);
    expect(kinds.filter((kind) => kind === 'Isolated')).toHaveLength(3);
  });

  test('NET-06: no subnet gives instances public addresses; only public subnets route to the internet gateway', () => {
    const network = production.templates.network;
    for (const [, subnet] of resourcesOf(network).filter(
      ([, resource]) => resource.Type === 'AWS::EC2::Subnet',
    )) {
      expect(subnet.Properties?.MapPublicIpOnLaunch).toBe(false);
    }
    const gatewayRoutes = resourcesOf(network).filter(
      ([, resource]) => resource.Type === 'AWS::EC2::Route' && resource.Properties?.GatewayId,
    );
    expect(gatewayRoutes.map(([id]) => id).every((id) => id.startsWith('Vpcpublic'))).toBe(true);
    expect(gatewayRoutes).toHaveLength(3);
  });

  test('one NAT gateway per AZ in production, one in dev', () => {
    production.templates.network.resourceCountIs('AWS::EC2::NatGateway', 3);
    dev.templates.network.resourceCountIs('AWS::EC2::NatGateway', 1);
  });

  test('LOG-03: VPC flow logs of all traffic go to a KMS-encrypted log group with retention', () => {
    const network = production.templates.network;
    network.hasResourceProperties('AWS::EC2::FlowLog', {
      TrafficType: 'ALL',
      LogDestinationType: 'cloud-watch-logs',
    });
    network.hasResource('AWS::Logs::LogGroup', {
      Properties: {
        RetentionInDays: 365,
        KmsKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^LogsKey'), 'Arn'] },
      },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  test('DATA-04: the logs key rotates, is retained, and lets CloudWatch Logs use it only for this account', () => {
    const network = production.templates.network;
    network.hasResource('AWS::KMS::Key', {
      Properties: { EnableKeyRotation: true },
      DeletionPolicy: 'Retain',
    });
    network.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Sid: 'AllowCloudWatchLogsOfThisAccount',
            Condition: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': Match.anyValue() } },
          }),
        ]),
      },
    });
  });

  test('NET-07: AWS API traffic stays in the VPC through endpoints reachable only from the VPC', () => {
    const network = production.templates.network;
    const endpoints = resourcesOf(network).filter(
      ([, resource]) => resource.Type === 'AWS::EC2::VPCEndpoint',
    );
    const services = endpoints.map(([, endpoint]) =>
      JSON.stringify(endpoint.Properties?.ServiceName),
    );
    for (const service of [
      'secretsmanager',
      'logs',
      'kms',
      'ecr.api',
      'ecr.dkr',
      '.ssm',
      'ssmmessages',
      'ec2messages',
      's3',
    ]) {
      expect(services.some((name) => name.includes(service))).toBe(true);
    }
    network.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: 'VPC interface endpoints: HTTPS from inside the VPC',
      SecurityGroupIngress: [
        {
          CidrIp: '10.42.0.0/16',
          FromPort: 443,
          ToPort: 443,
          IpProtocol: 'tcp',
          Description: Match.anyValue(),
        },
      ],
    });
  });

  test('interface endpoints span every AZ in production and one AZ in dev (cost)', () => {
    const subnetCount = (stage: SynthesizedStage) =>
      resourcesOf(stage.templates.network)
        .filter(
          ([, resource]) =>
            resource.Type === 'AWS::EC2::VPCEndpoint' &&
            resource.Properties?.VpcEndpointType === 'Interface',
        )
        .map(([, endpoint]) => (endpoint.Properties?.SubnetIds as unknown[]).length);
    expect(new Set(subnetCount(production))).toEqual(new Set([3]));
    expect(new Set(subnetCount(dev))).toEqual(new Set([1]));
  });

  test('NET-06: the default security group is stripped of all rules', () => {
    production.templates.network.resourceCountIs('Custom::VpcRestrictDefaultSG', 1);
  });
});
