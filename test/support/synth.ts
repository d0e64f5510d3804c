import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { createStageApp, type StageStacks } from '../../lib/app';
import { ConfigError, resolveStageConfig, type StageConfig, type StageName } from '../../lib/config';

export interface SynthesizedStage {
  readonly config: StageConfig;
  readonly stacks: StageStacks;
  readonly templates: { readonly network: Template; readonly edge: Template; readonly ledger: Template; readonly api: Template; readonly observability: Template };
}

/**
 * The realistic values CI deploys a stage with (test/fixtures/<stage>.json): staging and production
 * refuse their shipped placeholders (example.com), dev has none.
 */
export function deployableOverrides(stage: StageName): unknown {
  if (stage === 'dev') return {};
  return JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', `${stage}.json`), 'utf8')) as unknown;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One overrides document that applies `first`, then `second` (a `null` in `second` still removes the key). */
export function layerOverrides(first: unknown, second: unknown): unknown {
  if (!isObject(first) || !isObject(second)) return second;
  const layered: Record<string, unknown> = { ...first };
  for (const [key, value] of Object.entries(second)) layered[key] = value === null ? null : layerOverrides(first[key], value);
  return layered;
}

/**
 * The configuration problems of a deployable stage (the fixtures' real names) with `overrides` on
 * top: what synth would refuse, every problem at once; empty when it is accepted.
 */
export function deployableProblems(stage: StageName, overrides: unknown): string[] {
  try {
    resolveStageConfig(stage, layerOverrides(deployableOverrides(stage), overrides));
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

/** A stage's config as CI synthesizes it: the fixture's values, then the test's own overrides. */
export function deployableConfig(stage: StageName, overrides?: unknown): StageConfig {
  return resolveStageConfig(stage, layerOverrides(deployableOverrides(stage), overrides ?? {}));
}

/**
 * Synthesizes one stage (with its deployable overrides) as `cdk synth` does (cdk.json's feature flags). The compliance packs have a
 * test of their own, and CI's `npm run synth` bundles the functions for real, so other tests leave
 * both out to stay fast.
 */
export function synthesizeStage(stage: StageName, options: { overrides?: unknown; complianceChecks?: boolean } = {}): SynthesizedStage {
  const config = deployableConfig(stage, options.overrides);
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
