import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, readOverridesFile } from '../lib/config';
import { readChecklist } from './checklist-audit/checklist';
import { renderJson, renderMarkdown, renderSummary } from './checklist-audit/render';
import { auditPassed, buildAuditReport, type AuditReport } from './checklist-audit/report';
import {
  synthesizeForAudit,
  synthesizeTemplatesOnly,
  type SynthesizedForAudit,
} from './checklist-audit/synth';
import type { StageTemplates } from './checklist-audit/templates';

/**
 * `npm run audit`: synthesizes the production stage, maps every item of the security checklist
 * (docs/security-checklist.md) to its evidence in the templates, the tests and the documents, and writes
 * audit/report.md and audit/report.json. Exits 1 when an item has no proof or a compliance pack has
 * findings, 2 on a usage or setup error. How to read the report: docs/audit.md.
 */

export const repoRoot = join(__dirname, '..');
/** The project's own checklist, inside the repository: a clean clone audits with nothing beside it. */
export const defaultChecklistPath = join(repoRoot, 'docs', 'security-checklist.md');
const auditedStage = 'production';

export const helpText = `Audit the production stage against the security checklist.

Usage: npm run audit [-- options]

  --checklist <path>   the checklist (default: docs/security-checklist.md)
  --example            write the committed example (docs/audit-example/) instead of audit/: no timestamps,
                       for CI's realistic configs (test/fixtures/production.json and staging.json)
  --out <dir>          write report.md and report.json there (default: audit/)
  --overrides <file>   JSON overrides merged over the shipped production config (as -c overrides=);
                       needed: the shipped config holds placeholders, which synth refuses
  --staging-overrides <file>
                       the same for the staging stage (read for the items about the stages)
  -h, --help           this text

Exit codes: 0 every item proven, 1 an item without proof or a pack with findings, 2 usage or setup error.`;

export interface StageEvidence {
  readonly synthesized: Pick<SynthesizedForAudit, 'templates' | 'compliance'>;
  readonly staging: StageTemplates;
}

export interface AuditCliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Injected in tests (templates synthesized once); by default the real synth of both stages. */
  readonly synthesize?: (overrides: StageOverrides) => StageEvidence;
}

/** The overrides of each synthesized stage (the shipped configs hold placeholders that synth refuses). */
export interface StageOverrides {
  readonly production: unknown;
  readonly staging: unknown;
}

/** What `--example` documents: the realistic configs CI synthesizes. */
export const exampleOverrideFiles = {
  production: join(repoRoot, 'test/fixtures/production.json'),
  staging: join(repoRoot, 'test/fixtures/staging.json'),
};

function synthesizeStages(overrides: StageOverrides): StageEvidence {
  return {
    synthesized: synthesizeForAudit(auditedStage, { overrides: overrides.production }),
    staging: synthesizeTemplatesOnly('staging', overrides.staging),
  };
}

function overridesOf(options: {
  example?: boolean;
  overrides?: string;
  'staging-overrides'?: string;
}): StageOverrides {
  const production = options.example ? exampleOverrideFiles.production : options.overrides;
  const staging = options.example ? exampleOverrideFiles.staging : options['staging-overrides'];
  return {
    production: production ? readOverridesFile(production) : undefined,
    staging: staging ? readOverridesFile(staging) : undefined,
  };
}

function repoRelative(path: string): string {
  return relative(repoRoot, path).split(sep).join('/');
}

export function runAuditCli(argv: readonly string[], io: AuditCliIo): number {
  let options;
  try {
    options = parseArgs({
      args: [...argv],
      options: {
        checklist: { type: 'string' },
        example: { type: 'boolean' },
        out: { type: 'string' },
        overrides: { type: 'string' },
        'staging-overrides': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (error) {
    io.err(`${(error as Error).message}\n\n${helpText}`);
    return 2;
  }
  if (options.help) {
    io.out(helpText);
    return 0;
  }
  if (options.example && (options.overrides || options['staging-overrides'])) {
    io.err("--example documents CI's configs (test/fixtures/); it takes no --overrides");
    return 2;
  }
  const started = Date.now();
  const checklistPath = resolve(options.checklist ?? defaultChecklistPath);
  let report: AuditReport;
  try {
    const checklist = readChecklist(checklistPath);
    const overrides = overridesOf(options);
    io.out(`Synthesizing the ${auditedStage} stage (with the compliance packs and bundling) ...`);
    const { synthesized, staging } = (io.synthesize ?? synthesizeStages)(overrides);
    report = buildAuditReport({
      repoRoot,
      checklistPath: repoRelative(checklistPath),
      checklist,
      templates: {
        stage: auditedStage,
        templates: synthesized.templates,
        otherStages: { staging },
        repoRoot,
      },
      compliance: synthesized.compliance,
    });
  } catch (error) {
    io.err(`audit: ${(error as Error).message}`);
    if (error instanceof ConfigError)
      io.err(
        'Pass your values with --overrides and --staging-overrides, or --example for the configs CI synthesizes.',
      );
    return 2;
  }
  const seconds = (Date.now() - started) / 1000;
  const outDir = resolve(
    options.out ?? join(repoRoot, options.example ? 'docs/audit-example' : 'audit'),
  );
  const meta = options.example
    ? { example: true }
    : { example: false, generatedAt: new Date().toISOString(), seconds };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'report.md'), renderMarkdown(report, meta));
  writeFileSync(join(outDir, 'report.json'), renderJson(report, meta));
  io.out(renderSummary(report));
  io.out(
    `\nWrote ${repoRelative(join(outDir, 'report.md'))} and report.json in ${seconds.toFixed(1)} s.`,
  );
  if (!auditPassed(report)) {
    if (report.unproven.length > 0)
      io.err(`audit FAILED: no proof for ${report.unproven.join(', ')}`);
    if (report.failedPacks.length > 0)
      io.err(`audit FAILED: unacknowledged findings in ${report.failedPacks.join(', ')}`);
    return 1;
  }
  io.out(
    'audit passed: every checklist item is enforced, documented or not applicable with a reason.',
  );
  return 0;
}

if (require.main === module) {
  process.exitCode = runAuditCli(process.argv.slice(2), {
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
  });
}
