/**
 * Reading synthesized CloudFormation templates for the audit: find resources, read property values,
 * and record citations (the resource and the values an auditor checks) or problems.
 */

export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly DeletionPolicy?: string;
  readonly UpdateReplacePolicy?: string;
}

/**
 * Deletion policies that keep a resource when its stack is deleted. RetainExceptOnCreate also lets
 * a failed first create roll back cleanly (resources with fixed names use it, so a retry never
 * collides with what the failed attempt left behind).
 */
export const retainedDeletionPolicies: readonly string[] = ['Retain', 'RetainExceptOnCreate'];

export interface CfnTemplate {
  readonly Resources?: Record<string, CfnResource>;
  readonly Outputs?: Record<string, { readonly Value: unknown; readonly Description?: string }>;
}

/** The templates of one stage, by stack part (network, edge, ledger, api, ...). */
export type StageTemplates = Readonly<Record<string, CfnTemplate>>;

export interface AuditTemplates {
  readonly stage: string;
  readonly templates: StageTemplates;
  /** Other stages, synthesized without bundling, for items about the stages themselves (DR-01). */
  readonly otherStages: Readonly<Record<string, StageTemplates>>;
  /** The repository, for rules that check a file a resource names (an alarm's runbook). */
  readonly repoRoot?: string;
}

export interface FoundResource {
  readonly stack: string;
  readonly logicalId: string;
  readonly type: string;
  readonly resource: CfnResource;
}

/** One resource cited as evidence, with the property values that prove the item. */
export interface Citation {
  readonly stack: string;
  readonly logicalId: string;
  readonly type: string;
  readonly values: Readonly<Record<string, unknown>>;
}

export interface TemplateFindings {
  readonly citations: readonly Citation[];
  /** What the template gets wrong for this item; any problem fails the item. */
  readonly problems: readonly string[];
}

/** Every resource of the stage (optionally of one type), in stack and template order. */
export function findResources(templates: StageTemplates, type?: string): FoundResource[] {
  const found: FoundResource[] = [];
  for (const [stack, template] of Object.entries(templates)) {
    for (const [logicalId, resource] of Object.entries(template.Resources ?? {})) {
      if (type === undefined || resource.Type === type)
        found.push({ stack, logicalId, type: resource.Type, resource });
    }
  }
  return found;
}

/** A property by dotted path (`RotationRules.ScheduleExpression`, `Certificates.0.CertificateArn`). */
export function prop(found: FoundResource, path: string): unknown {
  let value: unknown = found.resource.Properties;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** The logical id a `Ref` or `Fn::GetAtt` points at, if the value is one. */
export function referencedId(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const record = value as Record<string, unknown>;
  if (typeof record.Ref === 'string') return record.Ref;
  const getAtt = record['Fn::GetAtt'];
  if (Array.isArray(getAtt) && typeof getAtt[0] === 'string') return getAtt[0];
  return undefined;
}

/** The export a cross-stack reference (`Fn::ImportValue`, cdk.json's strong references) reads, if the value is one. */
export function importedExportName(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const name = (value as Record<string, unknown>)['Fn::ImportValue'];
  return typeof name === 'string' ? name : undefined;
}

/** ELBv2 load balancer attributes as a plain map. */
export function loadBalancerAttributes(found: FoundResource): Record<string, unknown> {
  const attributes = (prop(found, 'LoadBalancerAttributes') ?? []) as {
    Key: string;
    Value: unknown;
  }[];
  return Object.fromEntries(attributes.map((attribute) => [attribute.Key, attribute.Value]));
}

/** A Lambda function's environment variables. */
export function environmentOf(found: FoundResource): Record<string, unknown> {
  return (prop(found, 'Environment.Variables') ?? {}) as Record<string, unknown>;
}

/** The function whose logical id starts with `prefix` (construct ids are stable; hashes are not). */
export function functionNamed(
  templates: StageTemplates,
  prefix: string,
): FoundResource | undefined {
  return findResources(templates, 'AWS::Lambda::Function').find((found) =>
    found.logicalId.startsWith(prefix),
  );
}

export interface IngressRule {
  readonly rule: FoundResource;
  readonly fromPort: unknown;
  readonly toPort: unknown;
  readonly source: unknown;
}

/** Ingress rules of a security group: inline ones and AWS::EC2::SecurityGroupIngress resources. */
export function ingressRulesOf(templates: StageTemplates, group: FoundResource): IngressRule[] {
  const inline = ((prop(group, 'SecurityGroupIngress') ?? []) as Record<string, unknown>[]).map(
    (rule) => ({
      rule: group,
      fromPort: rule.FromPort,
      toPort: rule.ToPort,
      source: rule.CidrIp ?? rule.CidrIpv6 ?? rule.SourceSecurityGroupId ?? rule.SourcePrefixListId,
    }),
  );
  const separate = findResources(templates, 'AWS::EC2::SecurityGroupIngress')
    .filter(
      (rule) =>
        rule.stack === group.stack && referencedId(prop(rule, 'GroupId')) === group.logicalId,
    )
    .map((rule) => ({
      rule,
      fromPort: prop(rule, 'FromPort'),
      toPort: prop(rule, 'ToPort'),
      source:
        prop(rule, 'CidrIp') ??
        prop(rule, 'SourceSecurityGroupId') ??
        prop(rule, 'SourcePrefixListId'),
    }));
  return [...inline, ...separate];
}

/** Collects citations and problems for one item. */
export class Findings {
  private readonly citations: Citation[] = [];
  private readonly problems: string[] = [];

  cite(found: FoundResource, values: Record<string, unknown>): this {
    this.citations.push({
      stack: found.stack,
      logicalId: found.logicalId,
      type: found.type,
      values,
    });
    return this;
  }

  /** Records `problem` unless `condition` holds; returns the condition. */
  expect(condition: boolean, problem: string): boolean {
    if (!condition) this.problems.push(problem);
    return condition;
  }

  /**
   * Records `problem` unless there is evidence to judge: a rule of the form "every X is ..." must
   * not pass on no X at all (the control removed from the templates).
   */
  expectEvidence(found: readonly unknown[], problem: string): boolean {
    return this.expect(found.length > 0, problem);
  }

  result(): TemplateFindings {
    return { citations: [...this.citations], problems: [...this.problems] };
  }
}
