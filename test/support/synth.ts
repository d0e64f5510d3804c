import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { createStageApp, type StageStacks } from '../../lib/app';
import {
  ConfigError,
  resolveStageConfig,
  type StageConfig,
  type StageName,
} from '../../lib/config';

export interface SynthesizedStage {
  readonly config: StageConfig;
  readonly stacks: StageStacks;
  readonly templates: {
    readonly network: Template;
    readonly edge: Template;
    readonly ledger: Template;
    readonly api: Template;
    readonly observability: Template;
  };
}

/**
 * The realistic values CI deploys a stage with (test/fixtures/<stage>.json): staging and production
 * refuse their shipped placeholders (example.com), dev has none.
 */
export function deployableOverrides(stage: StageName): unknown {
  if (stage === 'dev') return {};
  return JSON.parse(
    readFileSync(join(__dirname, '..', 'fixtures', `${stage}.json`), 'utf8'),
  ) as unknown;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One overrides document that applies `first`, then `second` (a `null` in `second` still removes the key). */
export function layerOverrides(first: unknown, second: unknown): unknown {
  if (!isObject(first) || !isObject(second)) return second;
  const layered: Record<string, unknown> = { ...first };
  for (const [key, value] of Object.entries(second))
    layered[key] = value === null ? null : layerOverrides(first[key], value);
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
 * Synthesizes one stage (with its deployable overrides) as `cdk synth` does (cdk.json's feature
 * flags). Three parts of a real synth have tests of their own and run in CI's synth of every stage,
 * so the other tests, which read templates, leave them out to stay fast: the cdk-nag packs, bundling
 * the functions, and CDK's built-in CloudFormation schema validation (test/compliance.test.ts
 * synthesizes every stage with it; it compiles a 9 MB WebAssembly engine in every test file's module
 * registry, 4 to 12 s of CPU, more than the rest of the synth).
 */
export function synthesizeStage(
  stage: StageName,
  options: {
    overrides?: unknown;
    complianceChecks?: boolean;
    cloudFormationValidation?: boolean;
  } = {},
): SynthesizedStage {
  const config = deployableConfig(stage, options.overrides);
  const { stacks } = createStageApp(config, {
    complianceChecks: options.complianceChecks ?? false,
    bundling: false,
  });
  // The first Template.fromStack synthesizes the whole app; the others read the same assembly.
  const templates = withCloudFormationValidation(options.cloudFormationValidation ?? false, () => ({
    network: Template.fromStack(stacks.network),
    edge: Template.fromStack(stacks.edge),
    ledger: Template.fromStack(stacks.ledger),
    api: Template.fromStack(stacks.api),
    observability: Template.fromStack(stacks.observability),
  }));
  return { config, stacks, templates };
}

/**
 * Runs a synth with CDK's built-in CloudFormation validation on or off, through the switch CDK reads
 * at synth time (CDK_VALIDATION=false, as `cdk synth --no-validation` sets it), restored afterwards.
 */
export function withCloudFormationValidation<T>(enabled: boolean, synth: () => T): T {
  const previous = process.env.CDK_VALIDATION;
  if (enabled) delete process.env.CDK_VALIDATION;
  else process.env.CDK_VALIDATION = 'false';
  try {
    return synth();
  } finally {
    if (previous === undefined) delete process.env.CDK_VALIDATION;
    else process.env.CDK_VALIDATION = previous;
  }
}

/** Every resource of a template, as [logicalId, resource] pairs. */
export function resourcesOf(
  template: Template,
): [string, { Type: string; Properties?: Record<string, unknown> }][] {
  return Object.entries(
    template.toJSON().Resources as Record<
      string,
      { Type: string; Properties?: Record<string, unknown> }
    >,
  );
}
