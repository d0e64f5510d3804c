import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import { cidrContains, ledgerSubnetCidrs } from '../../lib/constructs/tigerbeetle-addresses';
import { gatewayDockerIgnore } from '../../lib/deployed-code';
import { assertTigerBeetleVersionsAgree } from '../../lib/constructs/tigerbeetle-version';
import { stageNames, type StageName } from '../../lib/config';
import { resourcesOf, synthesizeStage, type SynthesizedStage } from '../support/synth';

type Resource = ReturnType<typeof resourcesOf>[number][1] & {
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
  DependsOn?: string[];
};
type Container = {
  Name: string;
  Image: unknown;
  User?: string;
  Privileged?: boolean;
  ReadonlyRootFilesystem?: boolean;
  DockerSecurityOptions?: string[];
  LinuxParameters?: {
    Capabilities?: { Drop?: string[]; Add?: string[] };
    InitProcessEnabled?: boolean;
  };
  Ulimits?: { Name: string; SoftLimit: number; HardLimit: number }[];
  Environment?: { Name: string; Value: unknown }[];
  MountPoints?: { ContainerPath: string; SourceVolume: string }[];
  HealthCheck?: { Command: string[] };
};

const stages = {} as Record<StageName, SynthesizedStage>;
beforeAll(() => {
  for (const stage of stageNames) stages[stage] = synthesizeStage(stage);
});

const expectedReplicas: Record<StageName, number> = { dev: 1, staging: 3, production: 6 };

function ledger(stage: StageName): {
  resources: [string, Resource][];
  json: Record<string, unknown>;
} {
  const template = stages[stage].templates.ledger;
  return {
    resources: resourcesOf(template) as [string, Resource][],
    json: template.toJSON() as Record<string, unknown>,
  };
}

function ofType(stage: StageName, type: string): [string, Resource][] {
  return ledger(stage).resources.filter(([, resource]) => resource.Type === type);
}

function containers(stage: StageName): Container[] {
  return ofType(stage, 'AWS::ECS::TaskDefinition').flatMap(
    ([, task]) => task.Properties?.ContainerDefinitions as Container[],
  );
}

function environment(container: Container): Record<string, unknown> {
  return Object.fromEntries(
    (container.Environment ?? []).map((variable) => [variable.Name, variable.Value]),
  );
}

function ledgerSubnetIds(stage: StageName): Map<string, string> {
  // Logical id of each ledger subnet in the network stack -> its AZ.
  const subnets = resourcesOf(stages[stage].templates.network).filter(
    ([id, resource]) => resource.Type === 'AWS::EC2::Subnet' && id.startsWith('Vpcledger'),
  );
  return new Map(
    subnets.map(([id, subnet]) => [id, subnet.Properties?.AvailabilityZone as string]),
  );
}

/** The AZ of a subnet referenced through the network stack's export (a strong cross-stack reference). */
function zoneOfSubnetReference(stage: StageName, reference: unknown): string {
  const output = (reference as { 'Fn::ImportValue': string })['Fn::ImportValue'];
  const subnetId = [...ledgerSubnetIds(stage).keys()].find((id) => output.includes(id));
  if (subnetId === undefined) throw new Error(`${output} is not a ledger subnet`);
  return ledgerSubnetIds(stage).get(subnetId) as string;
}

describe.each(stageNames)('LedgerStack (%s)', (stage) => {
  const replicaCount = expectedReplicas[stage];

  test(`DATA-01: ${replicaCount} replica(s), each with one ENI and one volume in the same AZ`, () => {
    expect(stages[stage].config.ledger.replicaCount).toBe(replicaCount);
    expect(ofType(stage, 'AWS::EC2::NetworkInterface')).toHaveLength(replicaCount);
    expect(ofType(stage, 'AWS::EC2::Volume')).toHaveLength(replicaCount);
    expect(ofType(stage, 'AWS::AutoScaling::AutoScalingGroup')).toHaveLength(replicaCount);
    expect(ofType(stage, 'AWS::ECS::Service')).toHaveLength(replicaCount + 1); // + the gateway daemon
    const zones = stages[stage].config.availabilityZones;
    for (let replica = 0; replica < replicaCount; replica += 1) {
      const [, eni] =
        ofType(stage, 'AWS::EC2::NetworkInterface').find(([id]) =>
          id.startsWith(`TigerBeetleReplica${replica}Address`),
        ) ?? [];
      const [, volume] =
        ofType(stage, 'AWS::EC2::Volume').find(([id]) =>
          id.startsWith(`TigerBeetleReplica${replica}Data`),
        ) ?? [];
      const zone = zones[replica % zones.length];
      expect(zoneOfSubnetReference(stage, eni?.Properties?.SubnetId)).toBe(zone);
      expect(volume?.Properties?.AvailabilityZone).toBe(zone);
    }
  });

  test('DATA-01: fixed addresses are unique, inside their AZ subnets, and the same ordered list is in every replica and the gateway', () => {
    const config = stages[stage].config;
    const cidrs = ledgerSubnetCidrs(config.network.vpcCidr, config.availabilityZones.length);
    const addresses = ofType(stage, 'AWS::EC2::NetworkInterface')
      .map(
        ([id, eni]) =>
          [
            Number(/Replica(\d)/.exec(id)?.[1]),
            eni.Properties?.PrivateIpAddress as string,
          ] as const,
      )
      .sort(([a], [b]) => a - b);
    expect(new Set(addresses.map(([, address]) => address)).size).toBe(replicaCount);
    // The network stack's subnets really have the CIDR blocks the addresses were computed from.
    const networkCidrs = resourcesOf(stages[stage].templates.network)
      .filter(
        ([id, resource]) => resource.Type === 'AWS::EC2::Subnet' && id.startsWith('Vpcledger'),
      )
      .map(([, subnet]) => subnet.Properties?.CidrBlock);
    expect(networkCidrs).toEqual(cidrs);
    for (const [replica, address] of addresses)
      expect(cidrContains(cidrs[replica % cidrs.length], address)).toBe(true);
    const addressList = addresses.map(([, address]) => `${address}:3000`).join(',');
    const all = containers(stage);
    expect(all).toHaveLength(replicaCount + 1);
    for (const container of all) expect(environment(container).TB_ADDRESSES).toBe(addressList);
    const replicas = all
      .filter((container) => container.Name === 'replica')
      .map((container) => environment(container).TB_REPLICA);
    expect(replicas.sort()).toEqual(
      Array.from({ length: replicaCount }, (_, index) => String(index)),
    );
  });

  test('DATA-01, DR-04: volumes are gp3 from the config, KMS-encrypted, retained, and tagged for backup', () => {
    const { ledger: settings } = stages[stage].config;
    for (const [, volume] of ofType(stage, 'AWS::EC2::Volume')) {
      expect(volume).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
      expect(volume.Properties).toMatchObject({
        VolumeType: 'gp3',
        Size: settings.volumeSizeGiB,
        Iops: settings.volumeIops,
        Throughput: settings.volumeThroughputMiBps,
        Encrypted: true,
        KmsKeyId: { 'Fn::GetAtt': [expect.stringMatching(/^TigerBeetleDataKey/), 'Arn'] },
      });
      expect(volume.Properties?.Tags).toContainEqual({
        Key: 'ai-proxy:backup',
        Value: `ai-proxy-${stage}-ledger`,
      });
    }
    for (const [, key] of ofType(stage, 'AWS::KMS::Key'))
      expect(key).toMatchObject({
        DeletionPolicy: 'Retain',
        Properties: { EnableKeyRotation: true },
      });
  });

  test('DATA-02: a daily backup plan keeps 35 days in a KMS-encrypted, retained vault and selects every volume', () => {
    stages[stage].templates.ledger.hasResource('AWS::Backup::BackupVault', {
      Properties: {
        EncryptionKeyArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^TigerBeetleDataKey'), 'Arn'] },
        // Nobody deletes a recovery point by hand; they expire with the plan.
        AccessPolicy: {
          Statement: [
            Match.objectLike({
              Effect: 'Deny',
              Action: Match.arrayWith(['backup:DeleteRecoveryPoint']),
            }),
          ],
        },
      },
      DeletionPolicy: 'RetainExceptOnCreate',
    });
    stages[stage].templates.ledger.hasResourceProperties('AWS::Backup::BackupPlan', {
      BackupPlan: {
        BackupPlanRule: [
          Match.objectLike({
            ScheduleExpression: 'cron(0 3 * * ? *)',
            Lifecycle: { DeleteAfterDays: 35 },
          }),
        ],
      },
    });
    const [[, selection]] = ofType(stage, 'AWS::Backup::BackupSelection');
    const selected = JSON.stringify(selection.Properties?.BackupSelection);
    for (const [volumeId] of ofType(stage, 'AWS::EC2::Volume'))
      expect(selected).toContain(`"Ref":"${volumeId}"`);
    expect(selection.Properties?.BackupSelection).toMatchObject({
      ListOfTags: [
        {
          ConditionType: 'STRINGEQUALS',
          ConditionKey: 'ai-proxy:backup',
          ConditionValue: `ai-proxy-${stage}-ledger`,
        },
      ],
    });
  });

  test('DATA-04: the gateway token, the logs and the alarm topic are KMS-encrypted with customer keys', () => {
    stages[stage].templates.ledger.hasResource('AWS::SecretsManager::Secret', {
      Properties: {
        KmsKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^TigerBeetleGatewayTokenKey'), 'Arn'] },
        GenerateSecretString: Match.objectLike({ GenerateStringKey: 'token', PasswordLength: 64 }),
      },
      DeletionPolicy: 'Retain',
    });
    for (const [, group] of ofType(stage, 'AWS::Logs::LogGroup'))
      expect(group.Properties?.KmsKeyId).toBeDefined();
    for (const [, topic] of ofType(stage, 'AWS::SNS::Topic'))
      expect(topic.Properties?.KmsMasterKeyId).toBeDefined();
    for (const [, template] of ofType(stage, 'AWS::EC2::LaunchTemplate')) {
      const devices = (
        template.Properties?.LaunchTemplateData as {
          BlockDeviceMappings: { Ebs: { Encrypted: boolean } }[];
        }
      ).BlockDeviceMappings;
      for (const device of devices) expect(device.Ebs.Encrypted).toBe(true);
    }
  });
});

describe('security groups, hosts and containers (production)', () => {
  const stage: StageName = 'production';

  function groupId(prefix: string): string {
    const found = ofType(stage, 'AWS::EC2::SecurityGroup').find(([id]) => id.startsWith(prefix));
    if (!found) throw new Error(`no security group ${prefix}`);
    return found[0];
  }

  function rules(
    type: 'AWS::EC2::SecurityGroupIngress' | 'AWS::EC2::SecurityGroupEgress',
  ): { group: string; peer: string; port: number }[] {
    const ownKey = type === 'AWS::EC2::SecurityGroupIngress' ? 'GroupId' : 'GroupId';
    const peerKey =
      type === 'AWS::EC2::SecurityGroupIngress'
        ? 'SourceSecurityGroupId'
        : 'DestinationSecurityGroupId';
    return ofType(stage, type).map(([, rule]) => ({
      group: ((rule.Properties?.[ownKey] as { 'Fn::GetAtt': string[] })['Fn::GetAtt'] ?? [])[0],
      peer: ((rule.Properties?.[peerKey] as { 'Fn::GetAtt': string[] } | undefined)?.[
        'Fn::GetAtt'
      ] ?? [String(rule.Properties?.CidrIp)])[0],
      port: rule.Properties?.FromPort as number,
    }));
  }

  test('DATA-05, NET-06: replicas admit 3000 only from the ledger hosts; the gateway port only from the NLB, which admits only the client group', () => {
    const host = groupId('TigerBeetleHostSecurityGroup');
    const replica = groupId('TigerBeetleReplicaSecurityGroup');
    const loadBalancer = groupId('TigerBeetleGatewayLoadBalancerSecurityGroup');
    const client = groupId('TigerBeetleGatewayClientSecurityGroup');
    const endpoints = groupId('TigerBeetleEndpointSecurityGroup');
    expect(
      rules('AWS::EC2::SecurityGroupIngress').sort((a, b) => a.group.localeCompare(b.group)),
    ).toEqual(
      [
        { group: replica, peer: host, port: 3000 },
        { group: loadBalancer, peer: client, port: 7300 },
        { group: host, peer: loadBalancer, port: 7300 },
        { group: endpoints, peer: host, port: 443 },
      ].sort((a, b) => a.group.localeCompare(b.group)),
    );
    // No group has inline ingress (no rule from the internet or any CIDR).
    for (const [, group] of ofType(stage, 'AWS::EC2::SecurityGroup'))
      expect(group.Properties?.SecurityGroupIngress).toBeUndefined();
    expect(rules('AWS::EC2::SecurityGroupEgress')).toEqual(
      expect.arrayContaining([
        { group: host, peer: replica, port: 3000 },
        { group: loadBalancer, peer: host, port: 7300 },
        { group: client, peer: loadBalancer, port: 7300 },
      ]),
    );
    stages[stage].templates.ledger.hasResourceProperties(
      'AWS::ElasticLoadBalancingV2::LoadBalancer',
      {
        Type: 'network',
        Scheme: 'internal',
        SecurityGroups: [{ 'Fn::GetAtt': [loadBalancer, 'GroupId'] }],
      },
    );
    stages[stage].templates.ledger.hasResourceProperties(
      'AWS::ElasticLoadBalancingV2::TargetGroup',
      {
        Port: 7300,
        Protocol: 'TCP',
        HealthCheckPath: '/ready',
        HealthCheckProtocol: 'HTTP',
        TargetGroupAttributes: Match.arrayWith([
          { Key: 'preserve_client_ip.enabled', Value: 'false' },
        ]),
      },
    );
    // NET-07: TLS under the internal name where the stage has internal TLS (staging, production); dev plain TCP.
    expect(stages[stage].stacks.ledger.gatewayUrl).toMatch(
      stages[stage].config.internalTls
        ? /^https:\/\/ledger-gateway\.internal\..+:7300$/
        : /^http:\/\/.+:7300$/,
    );
  });

  test('NET-06, NET-13: hosts have no public address, no key pair, IMDSv2 only, and Session Manager access', () => {
    for (const [, template] of ofType(stage, 'AWS::EC2::LaunchTemplate')) {
      const data = template.Properties?.LaunchTemplateData as Record<string, unknown>;
      expect(data.KeyName).toBeUndefined();
      expect(data.MetadataOptions).toMatchObject({
        HttpTokens: 'required',
        HttpPutResponseHopLimit: 1,
      });
      expect(data.NetworkInterfaces ?? []).not.toContainEqual(
        expect.objectContaining({ AssociatePublicIpAddress: true }),
      );
      expect(JSON.stringify(data.ImageId)).toContain(
        'SsmParameterValueawsserviceecsoptimizedamiamazonlinux2023arm64',
      );
    }
    const hostRole = ofType(stage, 'AWS::IAM::Role').find(([id]) =>
      id.startsWith('TigerBeetleHostRole'),
    )?.[1];
    expect(JSON.stringify(hostRole?.Properties?.ManagedPolicyArns)).toContain(
      'AmazonSSMManagedInstanceCore',
    );
    // Hosts sit in the isolated ledger subnets (no route to the internet).
    for (const [, group] of ofType(stage, 'AWS::AutoScaling::AutoScalingGroup')) {
      const zones = (group.Properties?.VPCZoneIdentifier as unknown[]).map((reference) =>
        zoneOfSubnetReference(stage, reference),
      );
      expect(zones).toHaveLength(1);
    }
  });

  test('DEP-03: the replica image is the official TigerBeetle image pinned to the tigerbeetle-node version; the gateway is built from its Dockerfile', () => {
    const assets = stages[stage].stacks.ledger.node.findAll().flatMap((construct) =>
      'imageUri' in construct && 'assetHash' in construct
        ? [
            construct as unknown as {
              node: { path: string };
              dockerBuildArgs?: Record<string, string>;
              dockerfilePath?: string;
            },
          ]
        : [],
    );
    const replicaImage = assets.find(
      (asset) => asset.dockerBuildArgs?.TIGERBEETLE_VERSION !== undefined,
    );
    expect(replicaImage?.dockerBuildArgs).toEqual({ TIGERBEETLE_VERSION: '0.17.9' });
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    expect(require('../../package.json').dependencies['tigerbeetle-node']).toBe('0.17.9');
    expect(assets.some((asset) => asset.dockerfilePath === 'tigerbeetle/gateway/Dockerfile')).toBe(
      true,
    );
    expect(gatewayDockerIgnore()).toEqual(expect.arrayContaining(['*', '**/node_modules']));
  });

  test('DEP-03: synth refuses an image version that disagrees with the client', () => {
    const root = mkdtempSync(join(tmpdir(), 'tigerbeetle-version-'));
    try {
      writeFileSync(
        join(root, 'package.json'),
        JSON.stringify({ dependencies: { 'tigerbeetle-node': '0.17.9' } }),
      );
      mkdirSync(join(root, 'node_modules', 'tigerbeetle-node'), { recursive: true });
      writeFileSync(
        join(root, 'node_modules', 'tigerbeetle-node', 'package.json'),
        JSON.stringify({ version: '0.17.9' }),
      );
      expect(() => assertTigerBeetleVersionsAgree('0.17.9', root)).not.toThrow();
      expect(() => assertTigerBeetleVersionsAgree('0.16.0', root)).toThrow(
        'ledger.tigerbeetleVersion 0.16.0 disagrees with the client: package.json pins tigerbeetle-node 0.17.9; node_modules holds tigerbeetle-node 0.17.9',
      );
      expect(() =>
        synthesizeStage('dev', { overrides: { ledger: { tigerbeetleVersion: '0.18.0' } } }),
      ).toThrow(/client must never be newer than the cluster/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('DEP-04: every ledger container is non-root, read-only, capability-free, no-new-privileges; the replica gets unlimited memlock', () => {
    for (const container of containers(stage)) {
      expect(container.User).toMatch(/^[1-9]\d*:[1-9]\d*$/);
      expect(container.Privileged).toBe(false);
      expect(container.ReadonlyRootFilesystem).toBe(true);
      expect(container.DockerSecurityOptions).toEqual(['no-new-privileges']);
      expect(container.LinuxParameters?.Capabilities).toEqual({ Drop: ['ALL'] });
      expect(container.LinuxParameters?.InitProcessEnabled).toBe(true);
      expect(container.HealthCheck?.Command.length).toBeGreaterThan(1);
    }
    const replicas = containers(stage).filter((container) => container.Name === 'replica');
    for (const replica of replicas) {
      expect(replica.Ulimits).toEqual([{ Name: 'memlock', SoftLimit: -1, HardLimit: -1 }]);
      expect(replica.MountPoints).toEqual([
        expect.objectContaining({ ContainerPath: '/var/lib/tigerbeetle', SourceVolume: 'data' }),
      ]);
      expect(environment(replica)).toMatchObject({
        TB_CLUSTER_ID: '2',
        TB_REPLICA_COUNT: '6',
        TB_CACHE_GRID: '8192MiB',
      });
      expect(environment(replica)).not.toHaveProperty('TB_FORMAT_MISSING');
    }
    const gateway = containers(stage).find((container) => container.Name === 'gateway');
    expect(environment(gateway as Container)).toMatchObject({
      LEDGER_MODE: 'cluster',
      TB_CLUSTER_ID: '2',
      GATEWAY_PORT: '7300',
    });
    expect(JSON.stringify(environment(gateway as Container).GATEWAY_TOKEN_SECRET_ARN)).toContain(
      'TigerBeetleGatewayTokenSecret',
    );
  });

  test('DATA-01: the first deploy needs no override: a cluster marker (SSM, created `forming`) that only the last replica host sets to `formed`', () => {
    const parameters = ofType(stage, 'AWS::SSM::Parameter');
    expect(parameters).toHaveLength(1);
    const [[markerId, marker]] = parameters;
    expect(marker.Properties).toMatchObject({
      Name: '/ai-proxy-production-ledger/tigerbeetle-2/formation',
      Type: 'String',
      Value: 'forming',
    });
    // Its lifetime is the stack's (a new stack is a new cluster); a replacement fails on the fixed name.
    expect(marker.DeletionPolicy ?? 'Delete').toBe('Delete');
    // Every host role reads the marker; only the last replica's may write it, and only it.
    const markerStatements = ofType(stage, 'AWS::IAM::Policy')
      .flatMap(
        ([, policy]) =>
          (
            policy.Properties?.PolicyDocument as {
              Statement: { Sid?: string; Action: unknown; Resource: unknown }[];
            }
          ).Statement,
      )
      .filter((statement) => JSON.stringify(statement.Action).includes('ssm:'));
    expect(markerStatements.map((statement) => statement.Action)).toEqual([
      ...Array(5).fill('ssm:GetParameter'),
      ['ssm:GetParameter', 'ssm:PutParameter'],
    ]);
    for (const statement of markerStatements)
      expect(JSON.stringify(statement.Resource)).toBe(
        JSON.stringify({
          'Fn::Join': [
            '',
            ['arn:aws:ssm:eu-west-1:', { Ref: 'AWS::AccountId' }, ':parameter', { Ref: markerId }],
          ],
        }),
      );
    const userData = ofType(stage, 'AWS::EC2::LaunchTemplate').map(
      ([id, template]) =>
        [
          id,
          JSON.stringify(
            (template.Properties?.LaunchTemplateData as { UserData: unknown }).UserData,
          ),
        ] as const,
    );
    const marking = userData.filter(([, text]) => text.includes('--value formed'));
    expect(marking.map(([id]) => /Replica(\d)/.exec(id)?.[1])).toEqual(['5']);
    for (const [, text] of userData)
      expect(text).toContain('/ai-proxy-production-ledger/tigerbeetle-2/formation');
    expect(markerId).toMatch(/^TigerBeetleFormationMarker/);
    expect(existsSync(join(__dirname, '..', '..', 'docs', 'ledger-bootstrap.json'))).toBe(false);
  });

  test.each(['staging', 'production'] as const)(
    'DATA-01: %s pins the hosts\' AMI: no "recommended" lookup, one named release for every host',
    (pinned) => {
      const { json } = ledger(pinned);
      const parameters = Object.values(
        (json.Parameters ?? {}) as Record<string, { Type: string; Default?: string }>,
      );
      const imageParameters = parameters.filter((parameter) =>
        parameter.Type.includes('AWS::EC2::Image::Id'),
      );
      expect(imageParameters).toEqual([
        {
          Type: 'AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>',
          Default:
            '/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/al2023-ami-ecs-hvm-2023.0.20251108-kernel-6.1-arm64/image_id',
        },
      ]);
      expect(JSON.stringify(json)).not.toContain('/recommended');
      const imageIds = new Set(
        ofType(pinned, 'AWS::EC2::LaunchTemplate').map(([, template]) =>
          JSON.stringify((template.Properties?.LaunchTemplateData as { ImageId: unknown }).ImageId),
        ),
      );
      expect(imageIds.size).toBe(1);
    },
  );

  test('DATA-01: a literal AMI id is written into the launch templates as is (no SSM parameter at all)', () => {
    const literal = synthesizeStage('staging', {
      overrides: {
        ledger: {
          hostImage: {
            kind: 'id',
            imageId: 'ami-0a1b2c3d4e5f60718',
            region: 'eu-west-1',
            name: null,
          },
        },
      },
    });
    const templates = resourcesOf(literal.templates.ledger).filter(
      ([, resource]) => resource.Type === 'AWS::EC2::LaunchTemplate',
    );
    expect(
      templates.map(
        ([, template]) => (template.Properties?.LaunchTemplateData as { ImageId: unknown }).ImageId,
      ),
    ).toEqual(['ami-0a1b2c3d4e5f60718', 'ami-0a1b2c3d4e5f60718', 'ami-0a1b2c3d4e5f60718']);
    expect(JSON.stringify(literal.templates.ledger.toJSON())).not.toContain('AWS::EC2::Image::Id');
  });

  test("DATA-01: each replica's hosts have their own role, which attaches only that replica's volume and address", () => {
    const roles = ofType(stage, 'AWS::IAM::Role').filter(([id]) =>
      /^TigerBeetleHostRole\d/.test(id),
    );
    expect(roles).toHaveLength(6);
    const policies = ofType(stage, 'AWS::IAM::Policy').filter(([id]) =>
      /^TigerBeetleHostRole\dDefaultPolicy/.test(id),
    );
    expect(policies).toHaveLength(6);
    for (const [id, policy] of policies) {
      const replica = /HostRole(\d)/.exec(id)?.[1];
      const attach = (
        policy.Properties?.PolicyDocument as { Statement: { Sid?: string; Resource: unknown }[] }
      ).Statement.find((statement) => statement.Sid === 'AttachTheReplicaVolumeAndAddress');
      const refs = JSON.stringify(attach?.Resource).match(/TigerBeetleReplica\d(Data|Address)/g);
      expect(refs?.sort()).toEqual([
        `TigerBeetleReplica${replica}Address`,
        `TigerBeetleReplica${replica}Data`,
      ]);
    }
  });

  test('DATA-01: a ledger.bootstrap override is refused (the marker replaces it)', () => {
    expect(() =>
      synthesizeStage('production', { overrides: { ledger: { bootstrap: true } } }),
    ).toThrow(/bootstrap/);
  });

  test('DATA-01: a host replacement is health-gated: CloudFormation waits for the replica to be healthy before the next', () => {
    const groups = ofType(stage, 'AWS::AutoScaling::AutoScalingGroup');
    expect(groups).toHaveLength(6);
    const json = ledger(stage).json as {
      Resources: Record<string, { CreationPolicy?: unknown; UpdatePolicy?: unknown }>;
    };
    for (const [id] of groups) {
      expect(json.Resources[id].CreationPolicy).toEqual({
        ResourceSignal: { Count: 1, Timeout: 'PT40M' },
      });
      expect(json.Resources[id].UpdatePolicy).toMatchObject({
        AutoScalingRollingUpdate: {
          MaxBatchSize: 1,
          MinInstancesInService: 0,
          WaitOnResourceSignals: true,
        },
      });
    }
    for (const [, template] of ofType(stage, 'AWS::EC2::LaunchTemplate')) {
      const userData = JSON.stringify(
        (template.Properties?.LaunchTemplateData as { UserData: unknown }).UserData,
      );
      expect(userData).toContain('--filter health=healthy');
      expect(userData).toMatch(
        /cfn-signal -e 0 --stack ai-proxy-production-ledger --resource TigerBeetleReplica\d+HostASG/,
      );
    }
    const policies = JSON.stringify(
      ofType(stage, 'AWS::IAM::Policy').map(([, policy]) => policy.Properties?.PolicyDocument),
    );
    expect(policies).toContain('cloudformation:SignalResource');
    expect(
      JSON.stringify(
        ofType(stage, 'AWS::EC2::VPCEndpoint').map(
          ([, endpoint]) => endpoint.Properties?.ServiceName,
        ),
      ),
    ).toContain('cloudformation');
  });

  test('replica services: desired 1, minimum healthy 0, maximum 100, host networking, placed by the replica attribute', () => {
    const services = ofType(stage, 'AWS::ECS::Service').filter(
      ([, service]) => service.Properties?.SchedulingStrategy !== 'DAEMON',
    );
    expect(services).toHaveLength(6);
    const constraints = services.map(([, service]) => {
      expect(service.Properties?.DesiredCount).toBe(1);
      expect(
        (service.Properties?.DeploymentConfiguration as Record<string, number>)
          .MinimumHealthyPercent,
      ).toBe(0);
      expect(
        (service.Properties?.DeploymentConfiguration as Record<string, number>).MaximumPercent,
      ).toBe(100);
      return (service.Properties?.PlacementConstraints as { Expression: string }[])[0].Expression;
    });
    expect(constraints.sort()).toEqual(
      [0, 1, 2, 3, 4, 5].map((replica) => `attribute:replica == ${replica}`),
    );
    for (const [, task] of ofType(stage, 'AWS::ECS::TaskDefinition'))
      expect(task.Properties?.NetworkMode).toBe('host');
    stages[stage].templates.ledger.hasResourceProperties('AWS::ECS::Service', {
      SchedulingStrategy: 'DAEMON',
    });
  });

  test('host replacement is serialized: each replica group depends on the previous one', () => {
    const groups = ofType(stage, 'AWS::AutoScaling::AutoScalingGroup');
    for (const [id, group] of groups) {
      const replica = Number(/Replica(\d)/.exec(id)?.[1]);
      if (replica === 0) continue;
      expect(
        group.DependsOn?.some((dependency) =>
          dependency.startsWith(`TigerBeetleReplica${replica - 1}Host`),
        ),
      ).toBe(true);
    }
  });

  test('upgrades are ordered: replica services one after another, the gateway (the client) after every replica', () => {
    const services = ofType(stage, 'AWS::ECS::Service');
    const gateway = services.find(
      ([, service]) => service.Properties?.SchedulingStrategy === 'DAEMON',
    )?.[1];
    for (let replica = 0; replica < 6; replica += 1) {
      expect(
        gateway?.DependsOn?.some((dependency) =>
          dependency.startsWith(`TigerBeetleReplica${replica}Service`),
        ),
      ).toBe(true);
    }
    const [, replica5] = services.find(([id]) => id.startsWith('TigerBeetleReplica5Service')) ?? [];
    expect(
      replica5?.DependsOn?.some((dependency) =>
        dependency.startsWith('TigerBeetleReplica4Service'),
      ),
    ).toBe(true);
  });

  test('MON-03: alarms for replica tasks, host status checks, volume saturation, gateway health, 5xx and latency', () => {
    const names = ofType(stage, 'AWS::CloudWatch::Alarm').map(
      ([, alarm]) => alarm.Properties?.MetricName as string,
    );
    const count = (metric: string) => names.filter((name) => name === metric).length;
    expect(count('RunningTaskCount')).toBe(6);
    expect(count('StatusCheckFailed')).toBe(6);
    expect(count('VolumeIOPSExceededCheck')).toBe(6);
    expect(count('VolumeThroughputExceededCheck')).toBe(6);
    expect(count('UnHealthyHostCount')).toBe(1);
    expect(count('ServerErrors')).toBe(1);
    expect(count('RequestMilliseconds')).toBe(1);
    for (const [, alarm] of ofType(stage, 'AWS::CloudWatch::Alarm'))
      expect(alarm.Properties?.AlarmActions).toHaveLength(1);
  });

  test('the ledger stack depends only on the network stack', () => {
    expect(stages[stage].stacks.ledger.dependencies.map((stack) => stack.stackName)).toEqual([
      'ai-proxy-production-network',
    ]);
    expect(stages[stage].stacks.ledger.terminationProtection).toBe(true);
  });
});
