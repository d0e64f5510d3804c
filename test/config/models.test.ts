import { ConfigError, resolveStageConfig } from '../../lib/config';
import { modelFallbacksMax, type ModelConfig } from '../../lib/config/schema';
import { shippedStages } from '../../lib/config/stages';

/**
 * The models of a stage: prices (cache and reasoning included) and fallback lists, refused at synth
 * when they cannot be served as written.
 */

function problemsWith(models: unknown): string[] {
  try {
    resolveStageConfig('dev', { models });
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

let lastLedgerCode = 100;
const model = (id: string, fallbacks?: string[]): ModelConfig => ({
  id,
  ledgerCode: (lastLedgerCode += 1),
  provider: 'echo',
  upstreamModel: 'echo',
  inputMicrosPerMillionTokens: 1,
  outputMicrosPerMillionTokens: 1,
  defaultMaxOutputTokens: 10,
  outputTokensMax: 10,
  ...(fallbacks ? { fallbacks } : {}),
});

describe('shipped models', () => {
  test('an anthropic model ships with its public prices, cache reads and writes included', () => {
    const sonnet = shippedStages.production.models.find((each) => each.id === 'claude-sonnet-4-5');
    expect(sonnet).toMatchObject({
      provider: 'anthropic',
      inputMicrosPerMillionTokens: 3_000_000,
      outputMicrosPerMillionTokens: 15_000_000,
      cachedInputMicrosPerMillionTokens: 300_000,
      cacheCreationInputMicrosPerMillionTokens: 3_750_000,
      fallbacks: ['gemini-2.5-pro'],
    });
    expect(problemsWith(shippedStages.production.models)).toEqual([]);
  });
});

describe('fallbacks are checked at synth', () => {
  test('a list of other known models is accepted', () => {
    expect(problemsWith([model('a', ['b', 'c']), model('b', ['c']), model('c')])).toEqual([]);
  });

  test('an unknown id is refused, naming it', () => {
    expect(problemsWith([model('a', ['nope'])])).toEqual([
      "models 'a': fallback 'nope' is not a configured model id",
    ]);
  });

  test('the model itself is refused', () => {
    expect(problemsWith([model('a', ['a'])])).toEqual([
      "models 'a': fallbacks names the model itself",
    ]);
  });

  test('a model named twice is refused', () => {
    expect(problemsWith([model('a', ['b', 'b']), model('b')])).toEqual([
      "models 'a': fallbacks names a model twice",
    ]);
  });

  test('a cycle is refused, showing it', () => {
    expect(problemsWith([model('a', ['b']), model('b', ['c']), model('c', ['a'])])).toEqual([
      'models: the fallbacks form a cycle (a -> b -> c -> a)',
    ]);
  });

  test(`at most ${modelFallbacksMax} fallbacks`, () => {
    const ids = ['b', 'c', 'd', 'e'];
    const problems = problemsWith([model('a', ids), ...ids.map((id) => model(id))]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^models\.0\.fallbacks/);
    expect(
      problemsWith([model('a', ids.slice(0, modelFallbacksMax)), ...ids.map((id) => model(id))]),
    ).toEqual([]);
  });

  test('prices are integers of micros: a fractional cache price is refused', () => {
    const problems = problemsWith([{ ...model('a'), cachedInputMicrosPerMillionTokens: 0.5 }]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/cachedInputMicrosPerMillionTokens/);
  });
});
