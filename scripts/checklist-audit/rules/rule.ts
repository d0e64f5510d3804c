import type { AuditTemplates, TemplateFindings } from '../templates';

/**
 * What the audit knows about one checklist item beyond the checklist itself: how the system
 * enforces it, the template evidence to read, and documents that cover it without naming the id.
 */
export interface EvidenceRule {
  /** How the item is enforced, in one or two sentences, naming the code that does it. */
  readonly how: string;
  /** Reads the synthesized templates: the resources and values that prove the item, or problems. */
  readonly template?: (audit: AuditTemplates) => TemplateFindings;
  /** Documents (repository paths) that cover the item, besides those that name its id. */
  readonly docs?: readonly string[];
}

export type EvidenceRules = Readonly<Record<string, EvidenceRule>>;
