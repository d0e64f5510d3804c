import {
  environmentOf,
  Findings,
  findResources,
  functionNamed,
  prop,
  referencedId,
  type AuditTemplates,
} from '../templates';
import { serviceAccessScoped } from './proactive-controls';
import type { EvidenceRules } from './rule';
import { containers, secretLikeName, serviceFunctions } from './shared';

function secretsUnderCustomerKeys({ templates }: AuditTemplates) {
  const findings = new Findings();
  const customerKeys = new Set(
    findResources(templates, 'AWS::KMS::Key').map((key) => key.logicalId),
  );
  const secrets = findResources(templates, 'AWS::SecretsManager::Secret');
  findings.expect(secrets.length > 0, 'no Secrets Manager secret in the templates');
  for (const secret of secrets) {
    const keyId = referencedId(prop(secret, 'KmsKeyId'));
    findings.expect(
      keyId !== undefined && customerKeys.has(keyId),
      `${secret.logicalId} is not encrypted with a customer-managed key of the stage`,
    );
    findings.cite(secret, {
      KmsKeyId: prop(secret, 'KmsKeyId'),
      Description: prop(secret, 'Description'),
    });
  }
  for (const fn of serviceFunctions(templates)) {
    const names = Object.keys(environmentOf(fn)).filter((name) => secretLikeName.test(name));
    const values = names.filter((name) => !name.endsWith('_ARN'));
    findings.expect(
      values.length === 0,
      `${fn.logicalId} has secret-like environment variables that are not ARNs: ${values.join(', ')}`,
    );
    if (names.length > 0)
      findings.cite(fn, { 'secret-like environment variables (ARNs only)': names });
  }
  for (const { task, container } of containers(templates)) {
    const names = ((container.Environment ?? []) as { Name: string }[])
      .map((entry) => entry.Name)
      .filter((name) => secretLikeName.test(name) && !name.endsWith('_ARN'));
    findings.expect(
      names.length === 0,
      `${task.logicalId}/${String(container.Name)} has secret-like environment variables: ${names.join(', ')}`,
    );
  }
  return findings.result();
}

function rotationSchedules({ templates }: AuditTemplates) {
  const findings = new Findings();
  const schedules = findResources(templates, 'AWS::SecretsManager::RotationSchedule');
  findings.expect(schedules.length > 0, 'no rotation schedule in the templates');
  for (const schedule of schedules) {
    const expression =
      prop(schedule, 'RotationRules.ScheduleExpression') ??
      prop(schedule, 'RotationRules.AutomaticallyAfterDays');
    const days =
      typeof expression === 'number'
        ? expression
        : Number(/rate\((\d+) days?\)/.exec(String(expression))?.[1]);
    findings.expect(
      days > 0 && days <= 90,
      `${schedule.logicalId} rotates every ${String(expression)}, not within 90 days`,
    );
    findings.cite(schedule, {
      SecretId: prop(schedule, 'SecretId'),
      ScheduleExpression: expression,
      RotationLambdaARN: prop(schedule, 'RotationLambdaARN'),
    });
  }
  return findings.result();
}

function separateKeySets({ templates }: AuditTemplates) {
  const findings = new Findings();
  const proxy = functionNamed(templates, 'ProxyFunction');
  const credits = functionNamed(templates, 'CreditsFunction');
  if (
    !findings.expect(
      proxy !== undefined && credits !== undefined,
      'the proxy or the credits function is missing',
    )
  )
    return findings.result();
  const proxyEnvironment = environmentOf(proxy!);
  const creditsEnvironment = environmentOf(credits!);
  const clientKeys = referencedId(proxyEnvironment.CLIENT_KEYS_SECRET_ARN);
  const creditsKeys = [
    creditsEnvironment.CREDITS_ADMIN_KEY_SECRET_ARN,
    creditsEnvironment.CREDITS_PROXY_KEY_SECRET_ARN,
  ].map(referencedId);
  findings.expect(clientKeys !== undefined, 'the proxy reads no client key set');
  findings.expect(
    creditsKeys.every((id) => id !== undefined),
    'the credits service does not read its own key secrets',
  );
  findings.expect(
    !creditsKeys.includes(clientKeys),
    'the credits service accepts the client key set',
  );
  findings.cite(proxy!, {
    CLIENT_KEYS_SECRET_ARN: proxyEnvironment.CLIENT_KEYS_SECRET_ARN,
    CREDITS_KEY_SECRET_ARN: proxyEnvironment.CREDITS_KEY_SECRET_ARN,
  });
  findings.cite(credits!, {
    CREDITS_ADMIN_KEY_SECRET_ARN: creditsEnvironment.CREDITS_ADMIN_KEY_SECRET_ARN,
    CREDITS_PROXY_KEY_SECRET_ARN: creditsEnvironment.CREDITS_PROXY_KEY_SECRET_ARN,
  });
  return findings.result();
}

function generatedKeys({ templates }: AuditTemplates) {
  const findings = new Findings();
  for (const secret of findResources(templates, 'AWS::SecretsManager::Secret')) {
    const generated = prop(secret, 'GenerateSecretString') as
      { PasswordLength?: number } | undefined;
    if (!generated) continue;
    // 62 symbols per character (letters and digits): 43 characters already carry 256 bits.
    findings.expect(
      (generated.PasswordLength ?? 0) >= 43,
      `${secret.logicalId} generates fewer than 256 bits`,
    );
    findings.cite(secret, { 'GenerateSecretString.PasswordLength': generated.PasswordLength });
  }
  return findings.result();
}

function rolesNotUsers({ templates }: AuditTemplates) {
  const findings = new Findings();
  for (const type of ['AWS::IAM::User', 'AWS::IAM::AccessKey', 'AWS::IAM::Group']) {
    findings.expect(findResources(templates, type).length === 0, `the templates create ${type}`);
  }
  for (const role of findResources(templates, 'AWS::IAM::Role')) {
    const statements = (prop(role, 'AssumeRolePolicyDocument.Statement') ?? []) as {
      Principal?: { Service?: unknown; AWS?: unknown };
    }[];
    const services = statements.map((statement) => statement.Principal?.Service);
    findings.expect(
      statements.every((statement) => statement.Principal?.AWS === undefined),
      `${role.logicalId} can be assumed by an AWS principal, not only a service`,
    );
    findings.cite(role, { 'assumed by': services.flat() });
  }
  for (const policy of findResources(templates, 'AWS::IAM::Policy')) {
    const statements = (prop(policy, 'PolicyDocument.Statement') ?? []) as {
      Action: unknown;
      Resource: unknown;
    }[];
    for (const statement of statements) {
      const actions = [statement.Action].flat().map(String);
      if (!actions.some((action) => action.startsWith('secretsmanager:GetSecretValue'))) continue;
      findings.expect(
        statement.Resource !== '*',
        `${policy.logicalId} reads every secret (Resource *)`,
      );
      findings.cite(policy, { Action: statement.Action, Resource: statement.Resource });
    }
  }
  return findings.result();
}

export const authRules: EvidenceRules = {
  'AUTH-01': {
    how: 'The auth middleware of the proxy (lambda/proxy/app.ts) and of the credits service (lambda/credits/app.ts) runs before every route except health and readiness; a missing or wrong key is a 401 JSON error and nothing else runs.',
  },
  'AUTH-02': {
    how: 'Client keys are generated by `npm run keys` (scripts/keys.ts: 256 random bits, `sk-` + 43 base64url characters, shown once); service keys and the gateway token are generated by Secrets Manager (64 letters and digits) and by the rotation function. No key is ever configured by hand.',
    template: generatedKeys,
    docs: ['docs/runbooks/keys.md'],
  },
  'AUTH-03': {
    how: 'Every secret is a Secrets Manager secret under a customer-managed KMS key (lib/stacks/api-stack.ts, lib/constructs/tigerbeetle-gateway.ts); functions and containers receive only secret ARNs and read the values at start.',
    template: secretsUnderCustomerKeys,
  },
  'AUTH-04': {
    how: 'Rotation schedules (serviceKeyRotationDays, 90) on the service keys and the gateway token, run by the rotation Lambda (lambda/rotation); verifiers accept AWSCURRENT and AWSPREVIOUS, so the previous key works until the next rotation. Client keys expire per key and rotate with a grace period (npm run keys -- rotate).',
    template: rotationSchedules,
  },
  'AUTH-05': {
    how: 'The proxy verifies client keys from the ClientKeys secret; the credits service verifies its own admin and proxy-role keys from two other secrets; the gateway its own token.',
    template: separateKeySets,
  },
  'AUTH-06': {
    how: 'lambda/shared/keys.ts: keys are read from `Authorization: Bearer` or `X-API-Key`, hashed (SHA-256) and compared with timingSafeEqual against held hashes only.',
  },
  'AUTH-07': {
    how: 'docs/runbooks/keys.md: issue, distribute, list, rotate, revoke client keys with `npm run keys`, emergency rotation after a leak, manual rotation of service keys.',
    docs: ['docs/runbooks/keys.md'],
  },
  'AUTH-08': {
    how: 'The handlers (lambda/proxy/handler.ts, lambda/credits/handler.ts) and the gateway refuse to start without their key secrets, with a message naming what is missing.',
  },
  'AUTH-09': {
    how:
      'Every workload runs under a role assumed by its AWS service (Lambda, ECS tasks, EC2 hosts), with grants scoped to its own secrets, keys and log groups; the templates create no IAM users or access keys; operators use SSO. ' +
      'What AWS services may do on our behalf is scoped to its source (Control Tower proactive controls, lib/constructs/proactive-controls.ts): every Lambda permission names a SourceArn or SourceAccount, every KMS key statement for a service principal an aws:SourceAccount/aws:SourceArn condition, every kms:CreateGrant kms:GrantIsForAWSResource.',
    template: (audit) => {
      const roles = rolesNotUsers(audit);
      const scoped = serviceAccessScoped(audit);
      return {
        citations: [...roles.citations, ...scoped.citations],
        problems: [...roles.problems, ...scoped.problems],
      };
    },
  },
};
