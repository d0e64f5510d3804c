import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from 'aws-cdk-lib';
import { createStageApp, stackName } from '../../lib/app';
import {
  createNagPacks,
  listAcknowledgments,
  type AcknowledgmentRecord,
} from '../../lib/compliance';
import { resolveStageConfig, type StageConfig } from '../../lib/config';
import type { CfnTemplate, StageTemplates } from './templates';

export interface PackResult {
  readonly pack: string;
  /** Unacknowledged findings: synth fails on any. */
  readonly findings: number;
  /** Rule names of the findings, when there are any. */
  readonly rules: readonly string[];
  readonly success: boolean;
}

export interface ComplianceSummary {
  readonly packs: readonly PackResult[];
  readonly acknowledgments: readonly AcknowledgmentRecord[];
}

export interface SynthesizedForAudit {
  readonly config: StageConfig;
  readonly templates: StageTemplates;
  readonly compliance: ComplianceSummary;
}

/** The templates of an app's stacks, by part (ai-proxy-production-edge: edge). */
export function templatesOf(app: App, config: StageConfig): StageTemplates {
  const prefix = stackName(config, '');
  const assembly = app.synth();
  return Object.fromEntries(
    assembly.stacks.map((stack) => [
      stack.stackName.startsWith(prefix) ? stack.stackName.slice(prefix.length) : stack.stackName,
      stack.template as CfnTemplate,
    ]),
  );
}

/** What the CDK validation report (written by synth) says of its plugins, e.g. CloudFormation Validate. */
function validationReportPlugins(outdir: string): PackResult[] {
  const path = join(outdir, 'validation-report.json');
  if (!existsSync(path)) return [];
  const report = JSON.parse(readFileSync(path, 'utf8')) as {
    pluginReports?: {
      pluginName: string;
      conclusion: string;
      violations?: { ruleName: string }[];
    }[];
  };
  return (report.pluginReports ?? []).map((plugin) => ({
    pack: plugin.pluginName,
    findings: plugin.violations?.length ?? 0,
    rules: (plugin.violations ?? []).map((violation) => violation.ruleName),
    success: plugin.conclusion === 'success',
  }));
}

function byPathAndRule(a: AcknowledgmentRecord, b: AcknowledgmentRecord): number {
  return a.path.localeCompare(b.path) || a.ruleId.localeCompare(b.ruleId);
}

/**
 * Synthesizes a stage as `cdk synth` does (cdk.json's context, the cdk-nag packs as validation
 * plugins, real bundling unless turned off) into a temporary directory, then runs each pack's
 * validateScope for its count. Synth itself throws on an unacknowledged finding.
 */
export function synthesizeForAudit(
  stage: string,
  options: { overrides?: unknown; bundling?: boolean } = {},
): SynthesizedForAudit {
  const config = resolveStageConfig(stage, options.overrides);
  const outdir = mkdtempSync(join(tmpdir(), `audit-${stage}-`));
  try {
    const { app } = createStageApp(config, { outdir, bundling: options.bundling });
    const templates = templatesOf(app, config);
    const packs = createNagPacks(app).map((pack): PackResult => {
      const report = pack.validateScope(app);
      return {
        pack: pack.readPackName,
        findings: report.violations.length,
        rules: report.violations.map((violation) => violation.ruleName),
        success: report.success,
      };
    });
    return {
      config,
      templates,
      compliance: {
        packs: [...packs, ...validationReportPlugins(outdir)],
        acknowledgments: listAcknowledgments(app).sort(byPathAndRule),
      },
    };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** Another stage's templates only (no bundling, no packs), for items about the stages themselves. */
export function synthesizeTemplatesOnly(stage: string, overrides?: unknown): StageTemplates {
  const config = resolveStageConfig(stage, overrides);
  const outdir = mkdtempSync(join(tmpdir(), `audit-${stage}-`));
  try {
    const { app } = createStageApp(config, { outdir, bundling: false, complianceChecks: false });
    return templatesOf(app, config);
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
