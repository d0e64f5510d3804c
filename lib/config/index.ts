import { readFileSync } from 'node:fs';
import { findPolicyProblems } from './policy';
import { configSchema, stageNames, type StageConfig, type StageName } from './schema';
import { shippedStages } from './stages';

export type {
  CertificateConfig,
  EmbeddingModelConfig,
  ModelConfig,
  StageConfig,
  StageName,
} from './schema';
export { stageNames } from './schema';

/** A configuration that must not be synthesized; the message lists every problem. */
export class ConfigError extends Error {
  constructor(
    readonly stage: string,
    readonly problems: readonly string[],
    /** What refuses the configuration: a synth unless said otherwise (a local start). */
    refusal = `Refusing to synthesize stage '${stage}'`,
  ) {
    super(
      `${refusal}: ${problems.length} configuration problem${problems.length === 1 ? '' : 's'}:\n` +
        problems.map((problem) => `  - ${problem}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
}

export function isStageName(value: unknown): value is StageName {
  return typeof value === 'string' && (stageNames as readonly string[]).includes(value);
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isPlainObject(value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Objects merge key by key; arrays and scalars replace; `null` removes a key (JSON has no undefined). */
export function mergeOverrides(base: unknown, overrides: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(overrides)) return overrides;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === null) delete merged[key];
    else merged[key] = mergeOverrides(base[key], value);
  }
  return merged;
}

/**
 * The validated configuration of a stage: the shipped values, with optional overrides merged in,
 * checked against the schema and then the security policy. Throws ConfigError with every problem.
 */
export function resolveStageConfig(stage: string, overrides?: unknown): StageConfig {
  if (!isStageName(stage)) {
    throw new ConfigError(stage, [
      `unknown stage; choose one of ${stageNames.join(', ')} with -c stage=NAME`,
    ]);
  }
  const candidate = mergeOverrides(shippedStages[stage], overrides ?? {});
  const parsed = configSchema.safeParse(candidate);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`,
    );
    throw new ConfigError(stage, problems);
  }
  if (parsed.data.stage !== stage) {
    throw new ConfigError(stage, [
      `overrides may not change the stage (got '${parsed.data.stage}')`,
    ]);
  }
  const problems = findPolicyProblems(parsed.data);
  if (problems.length > 0) throw new ConfigError(stage, problems);
  return parsed.data;
}

/** Reads a JSON overrides file (the `-c overrides=path.json` context value). */
export function readOverridesFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError('(overrides)', [
      `cannot read overrides file '${path}': ${(error as Error).message}`,
    ]);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ConfigError('(overrides)', [
      `overrides file '${path}' is not valid JSON: ${(error as Error).message}`,
    ]);
  }
}

/**
 * The stage config of a local Node server (`npm run dev`): STAGE (default dev), with the JSON file
 * named by DEV_OVERRIDES merged in, in the format of `-c overrides=` (models, prices, limits), so a
 * local model is configured without editing TypeScript.
 */
export function stageConfigFromEnvironment(environment: NodeJS.ProcessEnv): StageConfig {
  const overridesFile = environment.DEV_OVERRIDES || undefined;
  const stage = environment.STAGE ?? 'dev';
  try {
    return resolveStageConfig(
      stage,
      overridesFile === undefined ? undefined : readOverridesFile(overridesFile),
    );
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // Nothing is synthesized here: say who refuses, and which file to fix.
    const source = overridesFile === undefined ? '' : ` with DEV_OVERRIDES=${overridesFile}`;
    throw new ConfigError(
      stage,
      error.problems,
      `the local service refuses to start with this configuration (stage '${stage}'${source})`,
    );
  }
}
