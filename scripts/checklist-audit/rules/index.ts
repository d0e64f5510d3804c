import { authRules } from './auth';
import { dataRules } from './data';
import { dependencyRules } from './dependencies';
import { loggingRules } from './logging';
import { monitoringRules } from './monitoring';
import { networkRules } from './network';
import { operationsRules } from './operations';
import { rateRules } from './rate';
import type { EvidenceRules } from './rule';

export type { EvidenceRule, EvidenceRules } from './rule';

/** The evidence rules of every checklist item, by id: one table per checklist section. */
export const evidenceRules: EvidenceRules = {
  ...authRules,
  ...networkRules,
  ...rateRules,
  ...loggingRules,
  ...dependencyRules,
  ...dataRules,
  ...monitoringRules,
  ...operationsRules,
};

/**
 * Items that do not apply, with the reason when the checklist gives none; matched on the item's
 * name. The checklist's own reason wins.
 */
export const notApplicableReasons: readonly { readonly match: RegExp; readonly reason: string }[] =
  [
    {
      match: /upload/i,
      reason:
        'the API takes JSON chat requests only; no route accepts or stores files (the public routes are /v1/*, /health and /ready)',
    },
    {
      match: /zero-knowledge/i,
      reason:
        'the system has no zero-knowledge proof endpoints; it proxies chat completions and bills them',
    },
    { match: /JWT/i, reason: 'the API authenticates with API keys, not user sessions' },
    { match: /Redis|PostgreSQL/i, reason: 'neither is used; the TigerBeetle ledger replaces them' },
  ];
