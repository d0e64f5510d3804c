import {
  Findings,
  findResources,
  prop,
  type AuditTemplates,
  type FoundResource,
  type StageTemplates,
  type TemplateFindings,
} from '../templates';

/**
 * What AWS Control Tower's proactive controls (cfn-guard) check on resources an AWS service uses on
 * our behalf (lib/constructs/proactive-controls.ts enforces them at synth): Lambda permissions name
 * their source, KMS key statements for a service principal say on whose behalf, `kms:CreateGrant`
 * only for AWS resources. The audit cites each resource and lists what stays by design, with why.
 */

interface KeyStatement {
  readonly Sid?: string;
  readonly Effect?: string;
  readonly Principal?: { readonly Service?: unknown; readonly AWS?: unknown } | string;
  readonly Action?: string | readonly string[];
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

const sourceKeys = ['aws:SourceAccount', 'aws:SourceArn'];
const logsContextKey = 'kms:EncryptionContext:aws:logs:arn';

function conditionEntries(statement: KeyStatement): [string, unknown][] {
  return Object.values(statement.Condition ?? {}).flatMap((entries) => Object.entries(entries));
}

function actionsOf(statement: { readonly Action?: unknown }): string[] {
  return [statement.Action ?? []].flat().map(String);
}

function keyStatements(key: FoundResource): KeyStatement[] {
  return (prop(key, 'KeyPolicy.Statement') ?? []) as KeyStatement[];
}

function servicesOf(statement: KeyStatement): unknown[] {
  if (typeof statement.Principal !== 'object' || statement.Principal.Service === undefined)
    return [];
  return [statement.Principal.Service].flat();
}

function isAccountRootAdministration(statement: KeyStatement): boolean {
  return (
    actionsOf(statement).includes('kms:*') &&
    typeof statement.Principal === 'object' &&
    JSON.stringify(statement.Principal.AWS ?? '').includes(':root')
  );
}

/** AUTH-09 (least privilege): every service invocation and key use is scoped to its source. */
export function serviceAccessScoped({ templates }: AuditTemplates): TemplateFindings {
  const findings = new Findings();
  const permissions = findResources(templates, 'AWS::Lambda::Permission');
  for (const permission of permissions) {
    const source = {
      SourceArn: prop(permission, 'SourceArn'),
      SourceAccount: prop(permission, 'SourceAccount'),
    };
    findings.expect(
      source.SourceArn !== undefined || source.SourceAccount !== undefined,
      `${permission.logicalId} lets ${String(prop(permission, 'Principal'))} invoke a function from any source (no SourceArn or SourceAccount)`,
    );
    findings.cite(permission, { Principal: prop(permission, 'Principal'), ...source });
  }
  for (const key of findResources(templates, 'AWS::KMS::Key')) {
    for (const statement of keyStatements(key).filter((entry) => entry.Effect === 'Allow')) {
      const services = servicesOf(statement);
      const keys = conditionEntries(statement).map(([name]) => name);
      if (services.length > 0) {
        const scoped =
          keys.some((name) => sourceKeys.includes(name)) || keys.includes(logsContextKey);
        findings.expect(
          scoped,
          `${key.logicalId}: ${statement.Sid ?? 'a statement'} lets ${JSON.stringify(services)} use the key without aws:SourceAccount or aws:SourceArn`,
        );
        findings.cite(key, {
          Sid: statement.Sid,
          Service: services,
          Condition: statement.Condition,
        });
      }
      if (actionsOf(statement).includes('kms:CreateGrant')) {
        findings.expect(
          keys.includes('kms:GrantIsForAWSResource'),
          `${key.logicalId}: ${statement.Sid ?? 'a statement'} allows kms:CreateGrant without kms:GrantIsForAWSResource`,
        );
        findings.cite(key, {
          Sid: statement.Sid,
          Action: 'kms:CreateGrant',
          Condition: statement.Condition,
        });
      }
    }
  }
  for (const policy of findResources(templates, 'AWS::IAM::Policy')) {
    for (const statement of (prop(policy, 'PolicyDocument.Statement') ?? []) as KeyStatement[]) {
      if (statement.Effect !== 'Allow' || !actionsOf(statement).includes('kms:CreateGrant'))
        continue;
      findings.expect(
        conditionEntries(statement).some(([name]) => name === 'kms:GrantIsForAWSResource'),
        `${policy.logicalId} allows kms:CreateGrant without kms:GrantIsForAWSResource`,
      );
      findings.cite(policy, { Action: 'kms:CreateGrant', Condition: statement.Condition });
    }
  }
  findings.expect(
    permissions.length > 0,
    'no Lambda permission in the templates (the audit reads none)',
  );
  return findings.result();
}

/** A deliberate departure from the strictest form of a proactive control, with its reason. */
export interface ByDesignEntry {
  readonly control: string;
  readonly stack: string;
  readonly logicalId: string;
  readonly type: string;
  readonly reason: string;
}

function entry(found: FoundResource, control: string, reason: string): ByDesignEntry {
  return { control, stack: found.stack, logicalId: found.logicalId, type: found.type, reason };
}

/** What stays by design, read from the templates (every entry names the resource it is about). */
export function proactiveControlsByDesign(templates: StageTemplates): ByDesignEntry[] {
  const entries: ByDesignEntry[] = [];
  for (const key of findResources(templates, 'AWS::KMS::Key')) {
    const statements = keyStatements(key);
    if (statements.some(isAccountRootAdministration)) {
      entries.push(
        entry(
          key,
          'KMS key policy: kms:* to the account root',
          "The default key policy statement: it hands the key to the account's IAM policies (every grant to a role is an IAM statement scoped to that key, most with kms:ViaService); without it the key could become unmanageable.",
        ),
      );
    }
    if (
      statements.some(
        (statement) =>
          conditionEntries(statement).some(([name]) => name === logsContextKey) &&
          !conditionEntries(statement).some(([name]) => sourceKeys.includes(name)),
      )
    ) {
      entries.push(
        entry(
          key,
          'KMS key policy: CloudWatch Logs without aws:SourceAccount',
          "CloudWatch Logs is scoped by the condition its documentation gives for key policies, kms:EncryptionContext:aws:logs:arn on this account's and region's log groups, which names the account: no other account's log group can use the key.",
        ),
      );
    }
  }
  for (const permission of findResources(templates, 'AWS::Lambda::Permission')) {
    const principal = prop(permission, 'Principal');
    if (principal === 'elasticloadbalancing.amazonaws.com') {
      entries.push(
        entry(
          permission,
          'Lambda permission: SourceArn is a pattern',
          'Scoped to target groups of this account and region (ArnLike targetgroup/*): the target group registers the function, so it is created after the permission, which cannot name its exact ARN without a dependency cycle.',
        ),
      );
    }
    if (
      principal === 'secretsmanager.amazonaws.com' &&
      prop(permission, 'SourceArn') === undefined
    ) {
      entries.push(
        entry(
          permission,
          'Lambda permission: SourceAccount, not SourceArn',
          'One rotation function serves several secrets of the stage; the permission admits Secrets Manager acting for this account only.',
        ),
      );
    }
  }
  return entries;
}
