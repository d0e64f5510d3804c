import type { AcknowledgmentRecord } from '../../lib/compliance';
import type { Checklist, ChecklistItem, ProofKind } from './checklist';
import { evidenceRules as defaultRules, notApplicableReasons, type EvidenceRules } from './rules';
import { publicRoutes } from './rules/network';
import { proactiveControlsByDesign, type ByDesignEntry } from './rules/proactive-controls';
import { scanDocs, scanTestNames, type DocReference, type TestReference } from './sources';
import type { ComplianceSummary, PackResult } from './synth';
import type { AuditTemplates, Citation, TemplateFindings } from './templates';

export type ItemStatus = 'enforced' | 'documented' | 'no proof';

export interface ItemReport {
  readonly id: string;
  readonly section: string;
  readonly requirement: string;
  readonly proof: readonly ProofKind[];
  readonly seeds: string;
  readonly status: ItemStatus;
  readonly how: string;
  /** Null when the audit reads nothing in the templates for this item. */
  readonly template: TemplateFindings | null;
  readonly tests: readonly TestReference[];
  readonly docs: readonly DocReference[];
  /** What is missing for each proof kind the checklist asks for (empty when proven). */
  readonly missing: readonly string[];
}

export interface NotApplicableReport {
  readonly item: string;
  readonly seeds: string;
  readonly reason: string;
  readonly citations: readonly Citation[];
}

export interface AuditReport {
  readonly stage: string;
  readonly checklist: {
    readonly path: string;
    readonly items: number;
    readonly proofLegend: Checklist['proofLegend'];
  };
  readonly items: readonly ItemReport[];
  readonly notApplicable: readonly NotApplicableReport[];
  /** Where a Control Tower proactive control is met in a weaker form on purpose, with the reason. */
  readonly byDesign: readonly ByDesignEntry[];
  readonly packs: readonly PackResult[];
  readonly acknowledgments: readonly AcknowledgmentRecord[];
  readonly acknowledgmentCounts: readonly { readonly rule: string; readonly count: number }[];
  /** Ids without proof: the audit fails. */
  readonly unproven: readonly string[];
  /** Packs with unacknowledged findings: the audit fails. */
  readonly failedPacks: readonly string[];
  /** Evidence rules for ids the checklist no longer has (a stale rule table; reported, not fatal). */
  readonly staleRules: readonly string[];
}

export interface AuditInputs {
  readonly repoRoot: string;
  /** As shown in the report (relative to the repository root). */
  readonly checklistPath: string;
  readonly checklist: Checklist;
  readonly templates: AuditTemplates;
  readonly compliance: ComplianceSummary;
  readonly rules?: EvidenceRules;
}

function missingProof(
  kind: ProofKind,
  template: TemplateFindings | null,
  tests: readonly TestReference[],
  docs: readonly DocReference[],
): string[] {
  switch (kind) {
    case 'template': {
      const missing: string[] = [];
      if (template === null) missing.push('template: the audit has no evidence rule for it');
      else if (template.citations.length === 0)
        missing.push('template: no resource in the templates proves it');
      if (tests.length === 0) missing.push('template: no test names the id');
      return missing;
    }
    case 'config':
    case 'app':
      return tests.length === 0 ? [`${kind}: no test names the id`] : [];
    case 'doc':
      return docs.length === 0 ? ['doc: no document names the id or is mapped to it'] : [];
  }
}

function evaluateItem(
  item: ChecklistItem,
  inputs: AuditInputs,
  rules: EvidenceRules,
  tests: readonly TestReference[],
  docs: readonly DocReference[],
): ItemReport {
  const rule = rules[item.id];
  const template = rule?.template
    ? rule.template({ ...inputs.templates, repoRoot: inputs.templates.repoRoot ?? inputs.repoRoot })
    : null;
  const missing = [
    ...item.proof.flatMap((kind) => missingProof(kind, template, tests, docs)),
    ...(template?.problems ?? []).map((problem) => `template: ${problem}`),
  ];
  const documentedOnly = item.proof.every((kind) => kind === 'doc');
  return {
    id: item.id,
    section: item.section,
    requirement: item.requirement,
    proof: item.proof,
    seeds: item.seeds,
    status: missing.length > 0 ? 'no proof' : documentedOnly ? 'documented' : 'enforced',
    how: rule?.how ?? '(no evidence rule: the audit does not know how this item is enforced)',
    template,
    tests,
    docs,
    missing,
  };
}

function notApplicable(inputs: AuditInputs): NotApplicableReport[] {
  const routes = publicRoutes(inputs.templates.templates);
  return inputs.checklist.notApplicable.map((entry) => {
    const fallback = notApplicableReasons.find((candidate) =>
      candidate.match.test(entry.item),
    )?.reason;
    const citations: Citation[] =
      routes && /upload|zero-knowledge/i.test(entry.item)
        ? [
            {
              stack: routes.route.stack,
              logicalId: routes.route.logicalId,
              type: routes.route.type,
              values: { 'path-pattern': routes.paths },
            },
          ]
        : [];
    return {
      item: entry.item,
      seeds: entry.seeds,
      reason: entry.reason ?? fallback ?? '(no reason given)',
      citations,
    };
  });
}

function countByRule(
  acknowledgments: readonly AcknowledgmentRecord[],
): { rule: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const acknowledgment of acknowledgments)
    counts.set(acknowledgment.ruleId, (counts.get(acknowledgment.ruleId) ?? 0) + 1);
  return [...counts]
    .map(([rule, count]) => ({ rule, count }))
    .sort((a, b) => b.count - a.count || a.rule.localeCompare(b.rule));
}

/** The audit: every checklist item with its status and evidence, the packs and the acknowledgments. */
export function buildAuditReport(inputs: AuditInputs): AuditReport {
  const rules = inputs.rules ?? defaultRules;
  const ids = inputs.checklist.items.map((item) => item.id);
  const tests = scanTestNames(inputs.repoRoot, ids);
  const mapped = new Map(ids.map((id) => [id, rules[id]?.docs ?? []]));
  const docs = scanDocs(inputs.repoRoot, ids, mapped);
  const items = inputs.checklist.items.map((item) =>
    evaluateItem(item, inputs, rules, tests.get(item.id) ?? [], docs.get(item.id) ?? []),
  );
  const notApplicableItems = notApplicable(inputs);
  return {
    stage: inputs.templates.stage,
    checklist: {
      path: inputs.checklistPath,
      items: items.length,
      proofLegend: inputs.checklist.proofLegend,
    },
    items,
    notApplicable: notApplicableItems,
    byDesign: proactiveControlsByDesign(inputs.templates.templates),
    packs: inputs.compliance.packs,
    acknowledgments: inputs.compliance.acknowledgments,
    acknowledgmentCounts: countByRule(inputs.compliance.acknowledgments),
    unproven: [
      ...items.filter((item) => item.status === 'no proof').map((item) => item.id),
      ...notApplicableItems
        .filter((item) => item.reason === '(no reason given)')
        .map((item) => `not applicable: ${item.item}`),
    ],
    failedPacks: inputs.compliance.packs
      .filter((pack) => !pack.success || pack.findings > 0)
      .map((pack) => pack.pack),
    staleRules: Object.keys(rules).filter((id) => !ids.includes(id)),
  };
}

export function auditPassed(report: AuditReport): boolean {
  return report.unproven.length === 0 && report.failedPacks.length === 0;
}
