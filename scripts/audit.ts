import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { readOverridesFile } from '../lib/config';
import { readChecklist } from './checklist-audit/checklist';
import { renderJson, renderMarkdown, renderSummary } from './checklist-audit/render';
import { auditPassed, buildAuditReport, type AuditReport } from './checklist-audit/report';
import { synthesizeForAudit, synthesizeTemplatesOnly, type SynthesizedForAudit } from './checklist-audit/synth';
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
  --example            write the committed example (docs/audit-example/) instead of audit/: no timestamps
  --out <dir>          write report.md and report.json there (default: audit/)
  --overrides <file>   JSON overrides merged over the shipped production config (as -c overrides=)
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
  readonly synthesize?: (overrides: unknown) => StageEvidence;
}

function synthesizeStages(overrides: unknown): StageEvidence {
  return { synthesized: synthesizeForAudit(auditedStage, { overrides }), staging: synthesizeTemplatesOnly('staging') };
}

function repoRelative(path: string): string {
  return relative(repoRoot, path).split(sep).join('/');
}

export function runAuditCli(argv: readonly string[], io: AuditCliIo): number {
  let options;
  try {
    options = parseArgs({
      args: [...argv],
      options: { checklist: { type: 'string' }, example: { type: 'boolean' }, out: { type: 'string' }, overrides: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
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
  if (options.example && options.overrides) {
    io.err('--example documents the shipped configuration; it takes no --overrides');
    return 2;
  }
  const started = Date.now();
  const checklistPath = resolve(options.checklist ?? defaultChecklistPath);
  let report: AuditReport;
  try {
    const checklist = readChecklist(checklistPath);
    const overrides = options.overrides ? readOverridesFile(options.overrides) : undefined;
    io.out(`Synthesizing the ${auditedStage} stage (with the compliance packs and bundling) ...`);
    const { synthesized, staging } = (io.synthesize ?? synthesizeStages)(overrides);
    report = buildAuditReport({
      repoRoot,
      checklistPath: repoRelative(checklistPath),
      checklist,
      templates: { stage: auditedStage, templates: synthesized.templates, otherStages: { staging }, repoRoot },
      compliance: synthesized.compliance,
    });
  } catch (error) {
    io.err(`audit: ${(error as Error).message}`);
    return 2;
  }
  const seconds = (Date.now() - started) / 1000;
  const outDir = resolve(options.out ?? join(repoRoot, options.example ? 'docs/audit-example' : 'audit'));
  const meta = options.example ? { example: true } : { example: false, generatedAt: new Date().toISOString(), seconds };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'report.md'), renderMarkdown(report, meta));
  writeFileSync(join(outDir, 'report.json'), renderJson(report, meta));
  io.out(renderSummary(report));
  io.out(`\nWrote ${repoRelative(join(outDir, 'report.md'))} and report.json in ${seconds.toFixed(1)} s.`);
  if (!auditPassed(report)) {
    if (report.unproven.length > 0) io.err(`audit FAILED: no proof for ${report.unproven.join(', ')}`);
    if (report.failedPacks.length > 0) io.err(`audit FAILED: unacknowledged findings in ${report.failedPacks.join(', ')}`);
    return 1;
  }
  io.out('audit passed: every checklist item is enforced, documented or not applicable with a reason.');
  return 0;
}

if (require.main === module) {
  process.exitCode = runAuditCli(process.argv.slice(2), {
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
  });
}
