import { Template } from 'aws-cdk-lib/assertions';
import { createStageApp, type StageStacks } from '../../lib/app';
import { resolveStageConfig, type StageConfig, type StageName } from '../../lib/config';

export interface SynthesizedStage {
  readonly config: StageConfig;
  readonly stacks: StageStacks;
  readonly templates: { readonly network: Template; readonly edge: Template; readonly ledger: Template; readonly api: Template; readonly observability: Template };
}

/**
 * Synthesizes one stage as `cdk synth` does (cdk.json's feature flags). The compliance packs have a
 * test of their own, and CI's `npm run synth` bundles the functions for real, so other tests leave
 * both out to stay fast.
 */
export function synthesizeStage(stage: StageName, options: { overrides?: unknown; complianceChecks?: boolean } = {}): SynthesizedStage {
  const config = resolveStageConfig(stage, options.overrides);
  const { stacks } = createStageApp(config, { complianceChecks: options.complianceChecks ?? false, bundling: false });
  return {
    config,
    stacks,
    templates: {
      network: Template.fromStack(stacks.network),
      edge: Template.fromStack(stacks.edge),
      ledger: Template.fromStack(stacks.ledger),
      api: Template.fromStack(stacks.api),
      observability: Template.fromStack(stacks.observability),
    },
  };
}

/** Every resource of a template, as [logicalId, resource] pairs. */
export function resourcesOf(template: Template): [string, { Type: string; Properties?: Record<string, unknown> }][] {
  return Object.entries(template.toJSON().Resources as Record<string, { Type: string; Properties?: Record<string, unknown> }>);
}
