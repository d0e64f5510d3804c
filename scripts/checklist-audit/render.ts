import type { AuditReport, ItemReport } from './report';
import { auditPassed } from './report';
import type { Citation } from './templates';

/** Rows of template evidence shown per item in Markdown; report.json holds all of them. */
export const citationsShownMax = 12;
const valueCharactersMax = 240;

export interface RenderMeta {
  /** Generation time and durations; left out of the committed example so that it is deterministic. */
  readonly generatedAt?: string;
  readonly seconds?: number;
  readonly example: boolean;
}

/** Asset hashes change with any code change and carry nothing for an auditor. */
export function normalizeHashes(text: string): string {
  return text.replace(/\b[0-9a-f]{64}\b/g, '<asset hash>');
}

/** A CloudFormation value in short form: Ref X, X.Attr, output O of stack S, or compact JSON. */
export function formatValue(value: unknown): string {
  if (value === undefined) return '(unset)';
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || value === null) return String(value);
  if (Array.isArray(value)) return value.map(formatValue).join(', ');
  const record = value as Record<string, unknown>;
  if (typeof record.Ref === 'string') return `Ref ${record.Ref}`;
  const getAtt = record['Fn::GetAtt'];
  if (Array.isArray(getAtt)) return `${String(getAtt[0])}.${String(getAtt[1])}`;
  const imported = record['Fn::ImportValue'];
  if (typeof imported === 'string') return `export ${imported}`;
  const join = record['Fn::Join'];
  if (Array.isArray(join) && Array.isArray(join[1]))
    return (join[1] as unknown[]).map(formatValue).join(String(join[0]));
  return JSON.stringify(value);
}

function cell(text: string): string {
  const flat = normalizeHashes(text).replace(/\s+/g, ' ').replace(/\|/g, '\\|');
  return flat.length > valueCharactersMax ? `${flat.slice(0, valueCharactersMax - 1)}…` : flat;
}

function citationRow(citation: Citation): string {
  const values = Object.entries(citation.values)
    .map(([key, value]) => `${key}: ${formatValue(value)}`)
    .join('; ');
  return `| ${citation.stack} | \`${citation.logicalId}\` | ${citation.type.replace(/^AWS::/, '')} | ${cell(values)} |`;
}

function templateCount(item: ItemReport): string {
  return item.template === null ? '-' : String(item.template.citations.length);
}

export function summaryRows(report: AuditReport): string[][] {
  return report.items.map((item) => [
    item.id,
    item.status,
    item.proof.join(', '),
    templateCount(item),
    String(item.tests.length),
    String(item.docs.length),
  ]);
}

const summaryHeader = ['id', 'status', 'proof', 'template', 'tests', 'docs'];

function headline(report: AuditReport): string {
  const count = (status: ItemReport['status']) =>
    report.items.filter((item) => item.status === status).length;
  const findings = report.packs.reduce((sum, pack) => sum + pack.findings, 0);
  return (
    `${report.items.length} checklist items: ${count('enforced')} enforced, ${count('documented')} documented, ${count('no proof')} without proof; ` +
    `${report.notApplicable.length} not applicable. Compliance packs: ${report.packs.length} run, ${findings} unacknowledged findings; ${report.acknowledgments.length} acknowledgments.`
  );
}

function renderItem(item: ItemReport): string[] {
  const lines = [`### ${item.id}: ${item.status}`, '', `> ${item.requirement}`, ''];
  lines.push(`- **Proof asked by the checklist:** ${item.proof.join(', ')} (seeds ${item.seeds})`);
  lines.push(`- **How it is enforced:** ${item.how}`);
  if (item.missing.length > 0) lines.push(`- **Missing proof:** ${item.missing.join('; ')}`);
  lines.push('');
  if (item.template !== null) {
    const { citations } = item.template;
    lines.push(
      `**Template evidence** (${citations.length} resource${citations.length === 1 ? '' : 's'})`,
      '',
    );
    if (citations.length > 0) {
      lines.push('| stack | logical id | type | values |', '|---|---|---|---|');
      lines.push(...citations.slice(0, citationsShownMax).map(citationRow));
      if (citations.length > citationsShownMax)
        lines.push(`| | … and ${citations.length - citationsShownMax} more (report.json) | | |`);
      lines.push('');
    }
  }
  lines.push(`**Tests** (${item.tests.length})`, '');
  lines.push(
    ...(item.tests.length > 0
      ? item.tests.map(
          (test) => `- \`${test.file}:${test.line}\` ${test.kind}: ${cell(test.title)}`,
        )
      : ['- none']),
    '',
  );
  lines.push(`**Documents** (${item.docs.length})`, '');
  lines.push(
    ...(item.docs.length > 0
      ? item.docs.map((doc) =>
          doc.mapped
            ? `- \`${doc.file}\` (covers it; mapped in scripts/checklist-audit/rules)`
            : `- \`${doc.file}:${doc.line}\` (${doc.mentions} mention${doc.mentions === 1 ? '' : 's'})`,
        )
      : ['- none']),
    '',
  );
  return lines;
}

function table(header: string[], rows: string[][]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${row.map(cell).join(' | ')} |`),
  ];
}

export function renderMarkdown(report: AuditReport, meta: RenderMeta): string {
  const lines: string[] = [`# Security checklist audit: the ${report.stage} stage`, ''];
  lines.push(
    `Generated by \`npm run audit\`${meta.example ? ' -- --example' : ''} from the shipped ${report.stage} configuration, synthesized in-process as \`cdk synth\` does ` +
      '(cdk.json context, the cdk-nag packs, real bundling), the titles of the tests under `test/` and the documents under `docs/` and `README.md`. ' +
      `The checklist is \`${report.checklist.path}\`. How the report is made and how to read it: \`docs/audit.md\`.`,
    '',
  );
  if (meta.generatedAt)
    lines.push(
      `Generated at ${meta.generatedAt}${meta.seconds === undefined ? '' : ` in ${meta.seconds.toFixed(1)} s`}.`,
      '',
    );
  lines.push(`**Result: ${auditPassed(report) ? 'PASSED' : 'FAILED'}.** ${headline(report)}`, '');
  if (report.unproven.length > 0)
    lines.push(`**Without proof:** ${report.unproven.join(', ')}.`, '');
  if (report.failedPacks.length > 0)
    lines.push(`**Packs with findings:** ${report.failedPacks.join(', ')}.`, '');

  lines.push(
    '## Summary',
    '',
    'Counts of evidence: template resources cited (- when the item is not read from the templates), tests whose title names the id, documents that cover it.',
    '',
  );
  lines.push(...table(summaryHeader, summaryRows(report)), '');

  lines.push(
    '## Proof kinds',
    '',
    ...Object.entries(report.checklist.proofLegend).map(
      ([kind, meaning]) => `- **${kind}**: ${meaning}`,
    ),
    '',
  );
  lines.push(
    'An item is **enforced** when every proof kind it asks for is present (template: cited resources, no problem, and a test; config and app: a test;',
    'doc: a document); **documented** when it asks only for documents and has them; otherwise it has **no proof** and the audit fails.',
    '',
  );

  lines.push(
    '## Compliance packs',
    '',
    "Run by every synth as validation plugins (lib/compliance.ts); any unacknowledged finding fails synthesis. Counted again here with each pack's `validateScope`.",
    '',
  );
  lines.push(
    ...table(
      ['pack', 'unacknowledged findings', 'result'],
      report.packs.map((pack) => [
        pack.pack,
        String(pack.findings),
        pack.success && pack.findings === 0 ? 'pass' : `FAIL (${pack.rules.join(', ')})`,
      ]),
    ),
    '',
  );

  lines.push(
    `## Acknowledgments (${report.acknowledgments.length})`,
    '',
    'Every finding acknowledged with `acknowledge(...)` on the narrowest construct, with the reason an auditor reads.',
    '',
  );
  lines.push(
    '### By rule',
    '',
    ...table(
      ['rule', 'count'],
      report.acknowledgmentCounts.map((entry) => [entry.rule, String(entry.count)]),
    ),
    '',
  );
  lines.push(
    '### All',
    '',
    ...table(
      ['rule', 'construct path', 'reason'],
      report.acknowledgments.map((entry) => [entry.ruleId, entry.path, entry.reason]),
    ),
    '',
  );

  lines.push('## Evidence per item', '');
  let section = '';
  for (const item of report.items) {
    if (item.section !== section) {
      section = item.section;
      lines.push(`## ${section}`, '');
    }
    lines.push(...renderItem(item));
  }

  lines.push(
    '## Proactive controls: what stays by design',
    '',
    "AWS Control Tower's proactive controls (cfn-guard) ask that Lambda permissions name their source, that KMS key statements for AWS services say on whose behalf, and that `kms:CreateGrant` be only for AWS resources; synth enforces them (lib/constructs/proactive-controls.ts, evidence under AUTH-09). Where a resource meets a control in a weaker form on purpose:",
    '',
  );
  lines.push(
    ...table(
      ['control', 'stack', 'logical id', 'reason'],
      report.byDesign.map((entry) => [
        entry.control,
        entry.stack,
        `\`${entry.logicalId}\``,
        entry.reason,
      ]),
    ),
    '',
  );

  lines.push(
    '## Not applicable',
    '',
    'Items of the seed guides that do not apply to this system (the end of the checklist), with the reason.',
    '',
  );
  lines.push(
    ...table(
      ['item', 'seeds', 'reason', 'evidence'],
      report.notApplicable.map((entry) => [
        entry.item,
        entry.seeds,
        entry.reason,
        entry.citations
          .map(
            (citation) =>
              `${citation.stack}/${citation.logicalId}: ${Object.entries(citation.values)
                .map(([key, value]) => `${key} ${formatValue(value)}`)
                .join('; ')}`,
          )
          .join(' ') || '-',
      ]),
    ),
    '',
  );
  return `${lines
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}

export function renderJson(report: AuditReport, meta: RenderMeta): string {
  const document = {
    ...(meta.generatedAt ? { generatedAt: meta.generatedAt, seconds: meta.seconds } : {}),
    passed: auditPassed(report),
    ...report,
  };
  return `${normalizeHashes(JSON.stringify(document, null, 2))}\n`;
}

/** The plain-text summary printed when the audit finishes. */
export function renderSummary(report: AuditReport): string {
  const rows = [summaryHeader, ...summaryRows(report)];
  const widths = summaryHeader.map((_, column) =>
    Math.max(...rows.map((row) => row[column].length)),
  );
  const lines = rows.map((row) =>
    row
      .map((value, column) => value.padEnd(widths[column]))
      .join('  ')
      .trimEnd(),
  );
  lines.splice(1, 0, widths.map((width) => '-'.repeat(width)).join('  '));
  lines.push('', headline(report));
  for (const entry of report.notApplicable)
    lines.push(`not applicable: ${entry.item} (${entry.reason})`);
  return lines.join('\n');
}
