import {
  Findings,
  findResources,
  ingressRulesOf,
  prop,
  referencedId,
  retainedDeletionPolicies,
  type AuditTemplates,
  type FoundResource,
} from '../templates';
import type { EvidenceRules } from './rule';
import { serviceFunctions } from './shared';

/** Kept on stack deletion and replacement (RetainExceptOnCreate: except when its own first create rolls back). */
function retained(found: FoundResource): boolean {
  return (
    retainedDeletionPolicies.includes(found.resource.DeletionPolicy ?? '') &&
    found.resource.UpdateReplacePolicy === 'Retain'
  );
}

function persistentVolumes({ templates }: AuditTemplates) {
  const findings = new Findings();
  const volumes = findResources(templates, 'AWS::EC2::Volume');
  findings.expect(
    volumes.length >= 3,
    `${volumes.length} ledger volume(s); production needs at least 3 replicas`,
  );
  for (const volume of volumes) {
    findings.expect(
      prop(volume, 'Encrypted') === true &&
        prop(volume, 'KmsKeyId') !== undefined &&
        retained(volume),
      `${volume.logicalId} is not encrypted with the data key and retained`,
    );
    findings.cite(volume, {
      AvailabilityZone: prop(volume, 'AvailabilityZone'),
      VolumeType: prop(volume, 'VolumeType'),
      Encrypted: prop(volume, 'Encrypted'),
      KmsKeyId: prop(volume, 'KmsKeyId'),
      DeletionPolicy: volume.resource.DeletionPolicy,
    });
  }
  return findings.result();
}

function dailyBackups({ templates }: AuditTemplates) {
  const findings = new Findings();
  const plan = findResources(templates, 'AWS::Backup::BackupPlan')[0];
  const vault = findResources(templates, 'AWS::Backup::BackupVault')[0];
  const selection = findResources(templates, 'AWS::Backup::BackupSelection')[0];
  if (
    !findings.expect(
      plan !== undefined && vault !== undefined && selection !== undefined,
      'no backup plan, vault or selection',
    )
  )
    return findings.result();
  const rule = prop(plan!, 'BackupPlan.BackupPlanRule.0') as {
    ScheduleExpression?: string;
    Lifecycle?: { DeleteAfterDays?: number };
  };
  findings.expect(
    /^cron\(\d+ \d+ \* \* \? \*\)$/.test(rule.ScheduleExpression ?? ''),
    `the backup rule is not daily: ${rule.ScheduleExpression}`,
  );
  findings.expect(
    (rule.Lifecycle?.DeleteAfterDays ?? 0) >= 35,
    'backups are kept less than 35 days',
  );
  findings.expect(
    prop(vault!, 'EncryptionKeyArn') !== undefined && retained(vault!),
    'the vault is not KMS-encrypted and retained',
  );
  findings.cite(plan!, {
    ScheduleExpression: rule.ScheduleExpression,
    DeleteAfterDays: rule.Lifecycle?.DeleteAfterDays,
  });
  findings.cite(vault!, {
    EncryptionKeyArn: prop(vault!, 'EncryptionKeyArn'),
    DeletionPolicy: vault!.resource.DeletionPolicy,
  });
  const resources = (prop(selection!, 'BackupSelection.Resources') ?? []) as unknown[];
  const volumes = findResources(templates, 'AWS::EC2::Volume');
  findings.expect(
    volumes.every((volume) => JSON.stringify(resources).includes(volume.logicalId)),
    'the selection misses a ledger volume',
  );
  findings.cite(selection!, {
    'selected volumes': volumes.map((volume) => volume.logicalId),
    ListOfTags: prop(selection!, 'BackupSelection.ListOfTags'),
  });
  return findings.result();
}

/** Each kind of resource that holds data, and where its encryption setting lives. */
const encryptionChecks: { type: string; property: string; accept: (value: unknown) => boolean }[] =
  [
    { type: 'AWS::EC2::Volume', property: 'KmsKeyId', accept: (value) => value !== undefined },
    {
      type: 'AWS::SecretsManager::Secret',
      property: 'KmsKeyId',
      accept: (value) => value !== undefined,
    },
    { type: 'AWS::Logs::LogGroup', property: 'KmsKeyId', accept: (value) => value !== undefined },
    { type: 'AWS::SNS::Topic', property: 'KmsMasterKeyId', accept: (value) => value !== undefined },
    {
      type: 'AWS::Backup::BackupVault',
      property: 'EncryptionKeyArn',
      accept: (value) => value !== undefined,
    },
    // ALB access logs can only be delivered to SSE-S3 buckets; every other bucket would name a key.
    {
      type: 'AWS::S3::Bucket',
      property:
        'BucketEncryption.ServerSideEncryptionConfiguration.0.ServerSideEncryptionByDefault.SSEAlgorithm',
      accept: (value) => value === 'AES256' || value === 'aws:kms',
    },
  ];

function encryptedAtRest({ templates }: AuditTemplates) {
  const findings = new Findings();
  for (const check of encryptionChecks) {
    for (const found of findResources(templates, check.type)) {
      const value = prop(found, check.property);
      findings.expect(check.accept(value), `${found.logicalId} (${check.type}) is not encrypted`);
      findings.cite(found, { [check.property.split('.').pop() as string]: value });
    }
  }
  for (const template of findResources(templates, 'AWS::EC2::LaunchTemplate')) {
    const devices = (prop(template, 'LaunchTemplateData.BlockDeviceMappings') ?? []) as {
      Ebs?: { Encrypted?: boolean };
    }[];
    findings.expect(
      devices.every((device) => device.Ebs?.Encrypted === true),
      `${template.logicalId} has an unencrypted root volume`,
    );
  }
  findings.expectEvidence(findResources(templates, 'AWS::KMS::Key'), 'no customer-managed KMS key');
  for (const key of findResources(templates, 'AWS::KMS::Key')) {
    findings.expect(prop(key, 'EnableKeyRotation') === true, `${key.logicalId} does not rotate`);
    findings.cite(key, {
      EnableKeyRotation: prop(key, 'EnableKeyRotation'),
      Description: prop(key, 'Description'),
    });
  }
  return findings.result();
}

function ledgerReachability({ templates }: AuditTemplates) {
  const findings = new Findings();
  const groups = findResources(templates, 'AWS::EC2::SecurityGroup');
  const named = (prefix: string) => groups.find((group) => group.logicalId.startsWith(prefix));
  const loadBalancerGroup = named('TigerBeetleGatewayLoadBalancerSecurityGroup');
  const clientGroup = named('TigerBeetleGatewayClientSecurityGroup');
  const replicaGroup = named('TigerBeetleReplicaSecurityGroup');
  const hostGroup = named('TigerBeetleHostSecurityGroup');
  if (
    !findings.expect(
      loadBalancerGroup !== undefined &&
        clientGroup !== undefined &&
        replicaGroup !== undefined &&
        hostGroup !== undefined,
      'the ledger security groups are missing',
    )
  ) {
    return findings.result();
  }
  const expectOnlyFrom = (group: FoundResource, allowed: FoundResource[]) => {
    for (const rule of ingressRulesOf(templates, group)) {
      const source = referencedId(rule.source);
      findings.expect(
        source !== undefined && allowed.some((candidate) => candidate.logicalId === source),
        `${group.logicalId} admits ${JSON.stringify(rule.source)}`,
      );
      findings.cite(rule.rule, {
        group: group.logicalId,
        source: rule.source,
        FromPort: rule.fromPort,
        ToPort: rule.toPort,
      });
    }
  };
  expectOnlyFrom(loadBalancerGroup!, [clientGroup!]);
  expectOnlyFrom(replicaGroup!, [hostGroup!]);
  expectOnlyFrom(hostGroup!, [loadBalancerGroup!]);
  // The client group belongs to the ledger stack; the api stack reads it through a stack output.
  const members = serviceFunctions(templates).filter((fn) =>
    JSON.stringify(prop(fn, 'VpcConfig.SecurityGroupIds') ?? []).includes(
      'TigerBeetleGatewayClientSecurityGroup',
    ),
  );
  findings.expect(
    members.length === 1 && members[0].logicalId.startsWith('CreditsFunction'),
    `the gateway client group holds ${members.map((fn) => fn.logicalId).join(', ') || 'no function'}, not only the credits function`,
  );
  for (const fn of members)
    findings.cite(fn, { 'VpcConfig.SecurityGroupIds': prop(fn, 'VpcConfig.SecurityGroupIds') });
  return findings.result();
}

export const dataRules: EvidenceRules = {
  'DATA-01': {
    how: 'Each replica has its own gp3 volume, encrypted with the ledger data key, retained on stack deletion, in its fixed subnet AZ; a replaced host re-attaches it (tigerbeetle/host/setup.sh).',
    template: persistentVolumes,
  },
  'DATA-02': {
    how: 'lib/constructs/tigerbeetle-backup.ts: AWS Backup daily at 03:00 UTC, 35 days, in a vault encrypted with the data key and retained; the selection names every volume and the backup tag.',
    template: dailyBackups,
  },
  'DATA-03': {
    how: 'docs/runbooks/ledger-restore.md (single replica and whole-cluster restore, verification with scripts/verify-ledger.ts, quarterly drill).',
    docs: ['docs/runbooks/ledger-restore.md'],
  },
  'DATA-04': {
    how: 'Customer-managed KMS keys with rotation for the volumes (and vault), secrets, logs and the alarm topic; root volumes encrypted; ALB access log buckets use SSE-S3, the only encryption ALB log delivery supports.',
    template: encryptedAtRest,
  },
  'DATA-05': {
    how: 'The replicas admit the replica port only from the ledger hosts; the hosts admit the gateway port only from the gateway NLB, which admits only the gateway client security group, which only the credits function holds; the gateway also requires its bearer token.',
    template: ledgerReachability,
  },
  'DATA-06': {
    how: 'Credits are bigint micro-units; every billable request is a pending transfer posted or voided, with ids derived from idempotency keys, on accounts flagged debits_must_not_exceed_credits (lambda/credits/domain).',
  },
  'DATA-07': {
    how: 'The proxy stores nothing but ledger transfers; its logs hold ids, sizes, token usage and cost, never prompts or completions.',
  },
};
