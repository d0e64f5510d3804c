import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Vpc } from 'aws-cdk-lib/aws-ec2';
import { Key } from 'aws-cdk-lib/aws-kms';
import {
  environmentBytes,
  lambdaEnvironmentBytesMax,
  lambdaEnvironmentHeadroomBytes,
} from '../../lib/constructs/environment-size';
import { modelCatalogueDefine } from '../../lib/constructs/lambda-bundling';
import { ServiceFunction } from '../../lib/constructs/service-function';
import type { StageName } from '../../lib/config';
import { proxyModelCatalogueMetadataKey } from '../../lib/stacks/api-stack';
import { proxyConfigFromStage, splitProxyConfig } from '../../lambda/proxy/config';
import {
  resourcesOf,
  synthesizeStage,
  withCloudFormationValidation,
  type SynthesizedStage,
} from '../support/synth';

/**
 * Lambda refuses a function whose environment (keys and values, UTF-8 bytes) exceeds 4 KB, at
 * deploy time. Every function of every stage stays a headroom below it, synth refuses one above it
 * naming the function, and the model catalogue (which grows with every model a team adds) does not
 * live in the environment at all.
 */

const stageNames: StageName[] = ['dev', 'staging', 'production'];
const stages = new Map<StageName, SynthesizedStage>();
let manyModels: SynthesizedStage;
/** Models a platform team might configure: more than every shipped stage's catalogue together. */
const manyModelsCount = 60;

function catalogueOf(count: number) {
  return Array.from({ length: count }, (_, index) => ({
    id: `team-model-with-a-long-descriptive-name-${index}`,
    provider: 'openai-compatible',
    upstreamModel: `provider-family/upstream-model-name-2026-11-01-${index}`,
    ledgerCode: 1000 + index,
    inputMicrosPerMillionTokens: 1_250_000,
    outputMicrosPerMillionTokens: 10_000_000,
    defaultMaxOutputTokens: 4096,
    outputTokensMax: 65_536,
  }));
}

beforeAll(() => {
  for (const stage of stageNames) stages.set(stage, synthesizeStage(stage));
  manyModels = synthesizeStage('dev', { overrides: { models: catalogueOf(manyModelsCount) } });
});

/** Every Lambda function of a stage with the environment size Lambda counts. */
function functionEnvironmentBytes(synthesized: SynthesizedStage): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const template of Object.values(synthesized.templates)) {
    for (const [logicalId, resource] of resourcesOf(template)) {
      if (resource.Type !== 'AWS::Lambda::Function') continue;
      const environment = resource.Properties?.Environment as
        { Variables?: Record<string, unknown> } | undefined;
      sizes.set(logicalId, environmentBytes(environment?.Variables ?? {}));
    }
  }
  return sizes;
}

test.each(stageNames)(
  "every function's environment in %s stays a headroom below Lambda's 4 KB limit",
  (stage) => {
    const sizes = functionEnvironmentBytes(stages.get(stage)!);
    expect([...sizes.keys()].some((id) => id.startsWith('ProxyFunction'))).toBe(true);
    // The functions above the budget, by name and size: none.
    const budgetBytes = lambdaEnvironmentBytesMax - lambdaEnvironmentHeadroomBytes;
    expect([...sizes].filter(([, bytes]) => bytes > budgetBytes)).toEqual([]);
  },
);

function proxyEnvironmentBytes(synthesized: SynthesizedStage): number {
  const [, bytes] = [...functionEnvironmentBytes(synthesized)].find(([id]) =>
    id.startsWith('ProxyFunction'),
  )!;
  return bytes;
}

test(`a stage with ${manyModelsCount} models synthesizes: the catalogue does not grow the proxy's environment`, () => {
  expect(manyModels.config.models).toHaveLength(manyModelsCount);
  // In the environment, this catalogue alone would be over the limit (synth would refuse it).
  expect(Buffer.byteLength(JSON.stringify(manyModels.config.models))).toBeGreaterThan(
    lambdaEnvironmentBytesMax,
  );
  expect(proxyEnvironmentBytes(manyModels)).toBe(proxyEnvironmentBytes(stages.get('dev')!));
});

test.each(stageNames)(
  '%s: PROXY_CONFIG carries the small settings, the template shows the catalogue baked into the code',
  (stage) => {
    const synthesized = stages.get(stage)!;
    const [, proxy] = resourcesOf(synthesized.templates.api).find(
      ([id, resource]) =>
        id.startsWith('ProxyFunction') && resource.Type === 'AWS::Lambda::Function',
    )!;
    const { catalogue, settings } = splitProxyConfig(proxyConfigFromStage(synthesized.config));
    const variables = (proxy.Properties?.Environment as { Variables: Record<string, unknown> })
      .Variables;
    expect(JSON.parse(String(variables.PROXY_CONFIG))).toEqual(settings);
    expect(Object.keys(variables)).not.toContain('PROXY_MODEL_CATALOGUE');
    expect(
      (proxy as { Metadata?: Record<string, unknown> }).Metadata?.[proxyModelCatalogueMetadataKey],
    ).toEqual(catalogue);
  },
);

describe('synth refuses an environment Lambda would refuse', () => {
  function synthWithEnvironment(valueBytes: number): () => void {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Sized', {
      env: { account: '123456789012', region: 'eu-west-1' },
    });
    new ServiceFunction(stack, 'Sized', {
      entry: 'lambda/proxy/handler.ts',
      description: 'A function with a large environment',
      vpc: new Vpc(stack, 'Vpc'),
      logsKey: new Key(stack, 'Key'),
      logRetentionDays: 7,
      logLevel: 'INFO',
      timeout: Duration.seconds(10),
      environment: { LARGE: 'x'.repeat(valueBytes) },
    });
    return () => withCloudFormationValidation(false, () => app.synth());
  }
  // LOG_LEVEL=INFO, POWERTOOLS_LOG_LEVEL=INFO and the key LARGE: 38 bytes besides the value.
  const otherBytes = 'LOG_LEVELINFOPOWERTOOLS_LOG_LEVELINFOLARGE'.length;

  test('one byte above the limit is refused, naming the function, its size and the limit', () => {
    expect(synthWithEnvironment(lambdaEnvironmentBytesMax - otherBytes + 1)).toThrow(
      `Sized/Sized: the function's environment is ${lambdaEnvironmentBytesMax + 1} bytes`,
    );
    expect(synthWithEnvironment(lambdaEnvironmentBytesMax - otherBytes + 1)).toThrow(
      `above Lambda's limit of ${lambdaEnvironmentBytesMax} bytes (lambdaEnvironmentBytesMax)`,
    );
  });

  test('exactly the limit is accepted', () => {
    expect(synthWithEnvironment(lambdaEnvironmentBytesMax - otherBytes)).not.toThrow();
  });
});

test("CDK's bundling bakes the catalogue into the code byte for byte (quotes, $ and spaces survive its shell)", () => {
  const outdir = mkdtempSync(join(tmpdir(), 'baked-catalogue-'));
  try {
    const catalogue = {
      models: [{ id: `it's "quoted" $HOME \`ls\` \\n ünïcode`, provider: 'echo' }],
      embeddingModels: [],
    };
    const app = new App({ outdir });
    const stack = new Stack(app, 'Baked', {
      env: { account: '123456789012', region: 'eu-west-1' },
    });
    new ServiceFunction(stack, 'Baked', {
      // The module that reads the baked expression, alone: importing it has no side effects.
      entry: 'lambda/proxy/baked-catalogue.ts',
      description: 'The baked catalogue alone',
      vpc: new Vpc(stack, 'Vpc'),
      logsKey: new Key(stack, 'Key'),
      logRetentionDays: 7,
      logLevel: 'INFO',
      timeout: Duration.seconds(10),
      define: modelCatalogueDefine(catalogue),
    });
    withCloudFormationValidation(false, () => app.synth());
    const [bundle] = readdirSync(outdir)
      .filter((name) => name.startsWith('asset.'))
      .map((name) => join(outdir, name, 'index.mjs'))
      .filter((file) => existsSync(file));
    // A fresh process without the variable: what it prints can only come from the bundle itself.
    const environment = { ...process.env };
    delete environment.PROXY_MODEL_CATALOGUE;
    const printed = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        'const { bakedModelCatalogue } = await import(process.argv[1]); process.stdout.write(bakedModelCatalogue());',
        bundle,
      ],
      { encoding: 'utf8', env: environment },
    );
    expect(JSON.parse(printed)).toEqual(catalogue);
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
});
