import { environmentOf, Findings, findResources, prop, type AuditTemplates } from '../templates';
import type { EvidenceRules } from './rule';
import { containers, serviceFunctions } from './shared';

function productionLogLevel({ templates }: AuditTemplates) {
  const findings = new Findings();
  findings.expectEvidence(serviceFunctions(templates), 'no service function to read');
  findings.expectEvidence(containers(templates), 'no ledger container to read');
  for (const fn of serviceFunctions(templates)) {
    const level = environmentOf(fn).LOG_LEVEL;
    findings.expect(
      level === 'INFO' || level === 'WARN',
      `${fn.logicalId} logs at ${String(level)}`,
    );
    findings.cite(fn, {
      LOG_LEVEL: level,
      POWERTOOLS_LOG_LEVEL: environmentOf(fn).POWERTOOLS_LOG_LEVEL,
    });
  }
  for (const { task, container } of containers(templates)) {
    const level = ((container.Environment ?? []) as { Name: string; Value: unknown }[]).find(
      (entry) => entry.Name === 'LOG_LEVEL',
    )?.Value;
    if (level === undefined) continue;
    findings.expect(
      level === 'INFO' || level === 'WARN',
      `${task.logicalId} logs at ${String(level)}`,
    );
    findings.cite(task, { container: container.Name, LOG_LEVEL: level });
  }
  return findings.result();
}

function encryptedLogs({ templates }: AuditTemplates) {
  const findings = new Findings();
  const groups = findResources(templates, 'AWS::Logs::LogGroup');
  findings.expect(groups.length > 0, 'no log group');
  for (const group of groups) {
    const keyId = prop(group, 'KmsKeyId');
    const retention = prop(group, 'RetentionInDays');
    findings.expect(
      keyId !== undefined && typeof retention === 'number',
      `${group.logicalId} lacks KMS encryption or retention`,
    );
    findings.cite(group, { KmsKeyId: keyId, RetentionInDays: retention });
  }
  for (const fn of serviceFunctions(templates)) {
    const format = prop(fn, 'LoggingConfig.LogFormat');
    findings.expect(
      format === 'JSON' && prop(fn, 'LoggingConfig.LogGroup') !== undefined,
      `${fn.logicalId} does not log JSON to its own log group`,
    );
    findings.cite(fn, {
      'LoggingConfig.LogFormat': format,
      'LoggingConfig.LogGroup': prop(fn, 'LoggingConfig.LogGroup'),
    });
  }
  return findings.result();
}

export const loggingRules: EvidenceRules = {
  'LOG-01': {
    how: 'logLevel in the stage config; the policy refuses DEBUG in production; every function and the gateway get it as LOG_LEVEL.',
    template: productionLogLevel,
  },
  'LOG-02': {
    how: 'One error handler per service (runtime/http.ts): JSON errors with the request id; unexpected errors become a generic 500; provider bodies and stack traces are never returned.',
  },
  'LOG-03': {
    how: 'Powertools JSON logs; every function logs in JSON to its own log group (lib/constructs/service-function.ts); every log group (functions, ledger, WAF, flow logs) is KMS-encrypted with the stage logs key and has a retention.',
    template: encryptedLogs,
  },
  'LOG-04': {
    how: 'Nothing a client writes is logged as free text: user ids appear only as a pseudonym (`user`, 16 hex digits of SHA-256), keys and tokens are never passed to a logger (only key ids), prompts and completions are never logged; the WAF logs redact the key headers.',
  },
  'LOG-05': {
    how: 'audit() in runtime/logger.ts: one JSON line `message: "audit"` with `audit_event` (auth_failure, rate_limited, insufficient_balance, billing_failure, key_rotation, top_up, hold, settle, ...).',
    docs: ['docs/runbooks/incident-response.md'],
  },
  'LOG-06': {
    how: 'The proxy logs a `slow request` warning above slowRequestMilliseconds (10 s by default).',
  },
};
