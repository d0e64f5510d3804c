import { Lazy, Stack, type IAspect, type IPostProcessor, type IResolveContext } from 'aws-cdk-lib';
import { CfnKey } from 'aws-cdk-lib/aws-kms';
import { CfnPermission, type IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IConstruct } from 'constructs';

/**
 * What AWS Control Tower's proactive controls (cfn-guard hooks on CloudFormation) check on the
 * resources a service may use on our behalf, enforced at synth on every stack of a stage:
 *
 * - A Lambda permission for an AWS service names the source it admits (`SourceArn` or
 *   `SourceAccount`), so no other account's resource can make the service invoke our function
 *   (the confused-deputy problem).
 * - A KMS key policy statement that lets an AWS service use the key says on whose behalf
 *   (`aws:SourceAccount` / `aws:SourceArn`, or for CloudWatch Logs the log-group encryption
 *   context of this account, the condition CloudWatch Logs documents for its key policies).
 * - `kms:CreateGrant` is allowed only for grants an AWS service creates for one of our resources
 *   (`kms:GrantIsForAWSResource`): the statements CDK writes for Secrets Manager get the condition.
 *
 * A statement or permission that breaks the first two fails synth with its construct path; the
 * third is added where missing. The account's own administrative statement (`kms:*` to the account
 * root, which hands the key to IAM policies) is left as it is, by design.
 */
export class ProactiveControls implements IAspect {
  visit(node: IConstruct): void {
    if (node instanceof CfnPermission) requirePermissionSource(node);
    if (node instanceof CfnKey) guardKeyPolicy(node);
  }
}

/** Condition keys that name the resource or account a service acts for. */
export const sourceConditionKeys = ['aws:SourceAccount', 'aws:SourceArn'];
/** CloudWatch Logs' own scoping of a key to this account's log groups (its documented key policy). */
export const logsEncryptionContextKey = 'kms:EncryptionContext:aws:logs:arn';

function requirePermissionSource(permission: CfnPermission): void {
  const principal = permission.principal;
  const isService = typeof principal === 'string' && principal.endsWith('.amazonaws.com');
  if (!isService || permission.sourceArn !== undefined || permission.sourceAccount !== undefined)
    return;
  throw new Error(
    `${permission.node.path}: the Lambda permission for ${principal} names no SourceArn or SourceAccount; ` +
      'scope it to the resource or the account that may invoke the function (Control Tower proactive controls)',
  );
}

/**
 * Lambda permissions that an AWS service construct created without a source (a RotationSchedule's
 * grant to Secrets Manager): scoped to this stack's account. Secrets Manager passes the account of
 * the secret it rotates; one rotation function serves several secrets, so an ARN would not do.
 */
export function scopeServicePermissionsToAccount(fn: IFunction): void {
  for (const child of fn.node.children) {
    if (!(child instanceof CfnPermission)) continue;
    if (typeof child.principal !== 'string' || !child.principal.endsWith('.amazonaws.com'))
      continue;
    if (child.sourceArn === undefined && child.sourceAccount === undefined)
      child.sourceAccount = Stack.of(fn).account;
  }
}

interface PolicyStatementJson {
  Sid?: string;
  Effect?: string;
  Principal?: { Service?: unknown; AWS?: unknown } | string;
  Action?: string | string[];
  Condition?: Record<string, Record<string, unknown>>;
  [key: string]: unknown;
}

function guardKeyPolicy(key: CfnKey): void {
  const original: unknown = key.keyPolicy;
  const path = key.node.path;
  const guard: IPostProcessor = {
    postProcess: (document: unknown) => guardedPolicyDocument(document, path),
  };
  key.keyPolicy = Lazy.uncachedAny({
    produce: (context: IResolveContext) => {
      // While CDK prepares (collecting references) the document is only partly resolved: check the final one.
      if (!context.preparing) context.registerPostProcessor(guard);
      return original;
    },
  });
}

/** The resolved key policy with CreateGrant guarded; throws on a service statement without a source. */
export function guardedPolicyDocument(document: unknown, path: string): unknown {
  const policy = document as { Statement?: PolicyStatementJson[] } | undefined;
  if (!policy || !Array.isArray(policy.Statement)) return document;
  return {
    ...policy,
    Statement: policy.Statement.map((statement) => guardedStatement(statement, path)),
  };
}

function guardedStatement(statement: PolicyStatementJson, path: string): PolicyStatementJson {
  if (statement.Effect !== 'Allow') return statement;
  const services = servicePrincipals(statement);
  if (services.length > 0 && !hasSourceCondition(statement)) {
    throw new Error(
      `${path}: the key policy statement ${statement.Sid ?? '(no Sid)'} lets ${services.join(', ')} use the key without ` +
        `${sourceConditionKeys.join(' or ')}; say on whose behalf the service may use it (Control Tower proactive controls)`,
    );
  }
  const actions =
    typeof statement.Action === 'string' ? [statement.Action] : (statement.Action ?? []);
  if (
    !actions.includes('kms:CreateGrant') ||
    conditionKeys(statement).includes('kms:GrantIsForAWSResource')
  )
    return statement;
  const condition = statement.Condition ?? {};
  return {
    ...statement,
    Condition: { ...condition, Bool: { ...condition.Bool, 'kms:GrantIsForAWSResource': 'true' } },
  };
}

export function servicePrincipals(statement: PolicyStatementJson): string[] {
  const principal = statement.Principal;
  if (principal === undefined || typeof principal === 'string') return [];
  const service = principal.Service;
  if (service === undefined) return [];
  return (Array.isArray(service) ? service : [service]).map((entry) =>
    typeof entry === 'string' ? entry : JSON.stringify(entry),
  );
}

function conditionKeys(statement: PolicyStatementJson): string[] {
  return Object.values(statement.Condition ?? {}).flatMap((entries) => Object.keys(entries));
}

/** aws:SourceAccount / aws:SourceArn, or (for CloudWatch Logs) its encryption context scoped to this account. */
export function hasSourceCondition(statement: PolicyStatementJson): boolean {
  if (conditionKeys(statement).some((key) => sourceConditionKeys.includes(key))) return true;
  const onlyLogs = servicePrincipals(statement).every(
    (service) => /^logs\./.test(service) || service.includes('"logs."'),
  );
  const logsContext = Object.values(statement.Condition ?? {}).find(
    (entries) => entries[logsEncryptionContextKey] !== undefined,
  )?.[logsEncryptionContextKey];
  return (
    onlyLogs && logsContext !== undefined && JSON.stringify(logsContext).includes('AWS::AccountId')
  );
}
