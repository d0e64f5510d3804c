import { Validations, type App } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { AwsSolutionsChecks, NIST80053R5Checks, PCIDSS321Checks, type NagPack } from 'cdk-nag';

/** The cdk-nag packs every synth runs; any unacknowledged finding fails synthesis. */
export function createNagPacks(app: App): NagPack[] {
  return [new AwsSolutionsChecks(app), new NIST80053R5Checks(app), new PCIDSS321Checks(app)];
}

/** Registers the packs as validation plugins of the app (cdk-nag 3.x). */
export function addComplianceChecks(app: App): void {
  Validations.of(app).addPlugins(...createNagPacks(app));
}

/** The same rule in the NIST 800-53 rev 5 and PCI DSS 3.2.1 packs (they share rule names). */
export function nistAndPci(...rules: string[]): string[] {
  return rules.flatMap((rule) => [`NIST.800.53.R5-${rule}`, `PCI.DSS.321-${rule}`]);
}

/**
 * Acknowledges nag findings on one construct (and its children) with the reason an auditor reads.
 * Keep the scope as narrow as the finding: the resource itself, not its stack.
 */
export function acknowledge(scope: IConstruct, ruleIds: readonly string[], reason: string): void {
  Validations.of(scope).acknowledge(...ruleIds.map((id) => ({ id, reason })));
}

export interface AcknowledgmentRecord {
  /** Construct path the acknowledgment is attached to (it covers that construct's children). */
  readonly path: string;
  readonly ruleId: string;
  readonly reason: string;
}

/** Every acknowledgment under `scope`, for the audit report and the tests. */
export function listAcknowledgments(scope: IConstruct): AcknowledgmentRecord[] {
  const records: AcknowledgmentRecord[] = [];
  for (const construct of scope.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [ruleId, reason] of Object.entries(entry.data as Record<string, string>)) {
        records.push({
          path: construct.node.path,
          ruleId: ruleId.replace(/^annotation::/i, ''),
          reason,
        });
      }
    }
  }
  return records;
}
