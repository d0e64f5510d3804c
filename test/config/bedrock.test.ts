import { ConfigError, resolveStageConfig } from '../../lib/config';
import { bedrockInvokeGrant, bedrockModelTarget } from '../../lib/config/bedrock';
import { shippedStages } from '../../lib/config/stages';

/**
 * Bedrock models in the stage config (CFG-01): an upstreamModel is a model id or a cross-region
 * inference profile id of the stage's geography, a profile lists the regions it routes to, and synth
 * refuses anything else with a message that says which form was expected.
 */

const echo = shippedStages.dev.models.find((model) => model.provider === 'echo');
const bedrockModel = (overrides: Record<string, unknown>) => ({
  id: 'b',
  provider: 'bedrock',
  ledgerCode: 301,
  inputMicrosPerMillionTokens: 60_000,
  outputMicrosPerMillionTokens: 240_000,
  defaultMaxOutputTokens: 1000,
  outputTokensMax: 5000,
  ...overrides,
});

function problemsWith(models: unknown[], region?: string): string[] {
  try {
    resolveStageConfig('dev', {
      models: [echo, ...models],
      ...(region ? { region, availabilityZones: [`${region}a`, `${region}b`, `${region}c`] } : {}),
    });
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

test('the shipped stages carry Nova Lite, Nova Pro and a Claude model through the EU inference profiles of their region', () => {
  for (const stage of ['dev', 'staging', 'production'] as const) {
    const bedrock = shippedStages[stage].models.filter((model) => model.provider === 'bedrock');
    expect(bedrock.map((model) => model.upstreamModel)).toEqual([
      'eu.amazon.nova-lite-v1:0',
      'eu.amazon.nova-pro-v1:0',
      'eu.anthropic.claude-sonnet-4-20250514-v1:0',
    ]);
    for (const model of bedrock) expect(model.inferenceProfileRegions).toContain('eu-west-1');
  }
  expect(resolveStageConfig('dev').models.some((model) => model.provider === 'bedrock')).toBe(true);
});

test('CFG-01: a model id (served in the region) and a profile of the stage geography with its regions are accepted', () => {
  expect(
    problemsWith([
      bedrockModel({ id: 'lite', upstreamModel: 'amazon.nova-lite-v1:0' }),
      bedrockModel({
        id: 'sonnet',
        ledgerCode: 302,
        upstreamModel: 'eu.anthropic.claude-sonnet-4-20250514-v1:0',
        inferenceProfileRegions: ['eu-west-1', 'eu-central-1'],
      }),
    ]),
  ).toEqual([]);
  expect(
    problemsWith(
      [
        bedrockModel({
          upstreamModel: 'us.amazon.nova-pro-v1:0',
          inferenceProfileRegions: ['us-east-1', 'us-east-2', 'us-west-2'],
        }),
      ],
      'us-east-1',
    ),
  ).toEqual([]);
});

test.each([
  [
    { upstreamModel: 'nova-lite' },
    "models.1.upstreamModel: 'nova-lite' is neither a Bedrock model id (amazon.nova-lite-v1:0) nor a cross-region inference profile id (eu.amazon.nova-lite-v1:0)",
  ],
  [
    { upstreamModel: 'eu.amazon.nova-lite-v1:0' },
    "models.1.upstreamModel: 'eu.amazon.nova-lite-v1:0' is an inference profile: list the regions it routes to in inferenceProfileRegions (the proxy's role needs the model in each)",
  ],
  [
    { upstreamModel: 'amazon.nova-lite-v1:0', inferenceProfileRegions: ['eu-west-1'] },
    "models.1.upstreamModel: 'amazon.nova-lite-v1:0' is a model id, served in the stage's region: inferenceProfileRegions is only for inference profiles",
  ],
  [
    { upstreamModel: 'eu.Anthropic Claude', inferenceProfileRegions: ['eu-west-1'] },
    "models.1.upstreamModel: 'eu.Anthropic Claude' is not an inference profile id such as eu.anthropic.claude-sonnet-4-20250514-v1:0",
  ],
  [
    {
      upstreamModel: 'global.anthropic.claude-sonnet-4-20250514-v1:0',
      inferenceProfileRegions: ['eu-west-1'],
    },
    "models.1.upstreamModel: 'global.anthropic.claude-sonnet-4-20250514-v1:0' is a global inference profile: it routes to every commercial region, so the role could not name them; use the geography's profile (us., eu., apac., ...) or the model id",
  ],
  [
    { upstreamModel: 'us.amazon.nova-lite-v1:0', inferenceProfileRegions: ['us-east-1'] },
    "models 'b': the inference profile 'us.amazon.nova-lite-v1:0' cannot be called from eu-west-1; use the profile of the stage's geography",
  ],
  [
    {
      upstreamModel: 'eu.amazon.nova-lite-v1:0',
      inferenceProfileRegions: ['eu-west-1', 'us-east-1'],
    },
    "models 'b': inferenceProfileRegions us-east-1 lie outside the 'eu' geography of 'eu.amazon.nova-lite-v1:0'",
  ],
])('CFG-01: synth refuses the bedrock model %j', (overrides, problem) => {
  expect(problemsWith([bedrockModel(overrides)])).toEqual([problem]);
});

test('CFG-01: inferenceProfileRegions belongs to bedrock models only', () => {
  expect(problemsWith([{ ...echo, id: 'echo2', inferenceProfileRegions: ['eu-west-1'] }])).toEqual([
    'models.1.upstreamModel: inferenceProfileRegions is only for bedrock models',
  ]);
});

test('AUTH-09: the grant of a model id is its foundation model in the region; of a profile, the profile and the model in each region it routes to', () => {
  const stack = { partition: 'aws', region: 'eu-west-1', account: '123456789012' };
  expect(bedrockInvokeGrant({ upstreamModel: 'amazon.nova-lite-v1:0' }, stack)).toEqual({
    kind: 'foundation-model',
    modelArn: 'arn:aws:bedrock:eu-west-1::foundation-model/amazon.nova-lite-v1:0',
  });
  expect(
    bedrockInvokeGrant(
      {
        upstreamModel: 'eu.anthropic.claude-sonnet-4-20250514-v1:0',
        inferenceProfileRegions: ['eu-west-1', 'eu-central-1'],
      },
      stack,
    ),
  ).toEqual({
    kind: 'inference-profile',
    profileArn:
      'arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-sonnet-4-20250514-v1:0',
    modelArns: [
      'arn:aws:bedrock:eu-west-1::foundation-model/anthropic.claude-sonnet-4-20250514-v1:0',
      'arn:aws:bedrock:eu-central-1::foundation-model/anthropic.claude-sonnet-4-20250514-v1:0',
    ],
  });
  expect(bedrockModelTarget('meta.llama3-70b-instruct-v1:0')).toEqual({
    kind: 'foundation-model',
    modelId: 'meta.llama3-70b-instruct-v1:0',
  });
});
