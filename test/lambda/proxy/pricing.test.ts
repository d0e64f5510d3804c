import fc from 'fast-check';
import {
  costMicros,
  costMicrosMax,
  estimatePromptTokens,
  holdMicros,
  type ModelPrices,
} from '../../../lambda/proxy/pricing';
import type { ChatMessage, TokenUsage } from '../../../lambda/proxy/providers/types';

/**
 * The price table: each part of the usage at its own price, summed exactly, divided by a million
 * once and rounded up; the hold at the dearest prices of the dearest candidate.
 */

const claude: ModelPrices = {
  inputMicrosPerMillionTokens: 3_000_000,
  outputMicrosPerMillionTokens: 15_000_000,
  cachedInputMicrosPerMillionTokens: 300_000,
  cacheCreationInputMicrosPerMillionTokens: 3_750_000,
};
const thinker: ModelPrices = {
  inputMicrosPerMillionTokens: 1_250_000,
  outputMicrosPerMillionTokens: 10_000_000,
  reasoningMicrosPerMillionTokens: 12_000_000,
};
const plain: ModelPrices = {
  inputMicrosPerMillionTokens: 300_000,
  outputMicrosPerMillionTokens: 2_500_000,
};

describe('costMicros', () => {
  test('each part of the usage at its own price, to the micro', () => {
    // 40 uncached x 3 + 1000 cached x 0.3 + 200 written x 3.75 + 12 out x 15 (micros per token)
    //   = 120 + 300 + 750 + 180 = 1350 micros exactly.
    const usage: TokenUsage = {
      promptTokens: 1240,
      completionTokens: 12,
      cachedPromptTokens: 1000,
      cacheCreationTokens: 200,
    };
    expect(costMicros(claude, usage)).toBe(1350n);
  });

  test('reasoning tokens are the part of the output billed at the reasoning price', () => {
    // 100 in x 1.25 + 50 visible x 10 + 150 thinking x 12 = 125 + 500 + 1800 = 2425.
    expect(
      costMicros(thinker, { promptTokens: 100, completionTokens: 200, reasoningTokens: 150 }),
    ).toBe(2425n);
  });

  test('unset cache and reasoning prices are the input and output prices', () => {
    const usage: TokenUsage = {
      promptTokens: 1000,
      completionTokens: 100,
      cachedPromptTokens: 600,
      cacheCreationTokens: 300,
      reasoningTokens: 40,
    };
    expect(costMicros(plain, usage)).toBe(
      costMicros(plain, { promptTokens: 1000, completionTokens: 100 }),
    );
    expect(costMicros(plain, usage)).toBe(550n); // 1000 x 0.3 + 100 x 2.5
  });

  test('rounding: the exact sum of every part, rounded up once (never once per part)', () => {
    // 1 cached x 0.3 + 2 written x 3.75 = 7.8 micros: billed 8 (rounding each part would bill 1 + 8 = 9).
    expect(
      costMicros(claude, {
        promptTokens: 3,
        completionTokens: 0,
        cachedPromptTokens: 1,
        cacheCreationTokens: 2,
      }),
    ).toBe(8n);
    // Under one micro is still one micro: the house never rounds a non-zero cost to zero.
    expect(
      costMicros(claude, { promptTokens: 1, completionTokens: 0, cachedPromptTokens: 1 }),
    ).toBe(1n);
    expect(costMicros(claude, { promptTokens: 0, completionTokens: 0 })).toBe(0n);
  });

  test('a part larger than its whole bills the whole at the part price, never fewer tokens', () => {
    expect(
      costMicros(claude, { promptTokens: 10, completionTokens: 0, cacheCreationTokens: 50 }),
    ).toBe(costMicros(claude, { promptTokens: 10, completionTokens: 0, cacheCreationTokens: 10 }));
  });

  test('DATA-06: exact for any usage: the bill is the ceiling of the exact rational sum', () => {
    const count = fc.integer({ min: 0, max: 2_000_000 });
    fc.assert(
      fc.property(
        count,
        count,
        count,
        count,
        count,
        (uncached, cached, written, visible, thinking) => {
          const usage: TokenUsage = {
            promptTokens: uncached + cached + written,
            completionTokens: visible + thinking,
            cachedPromptTokens: cached,
            cacheCreationTokens: written,
            reasoningTokens: thinking,
          };
          const exact =
            BigInt(uncached) * 3_000_000n +
            BigInt(cached) * 300_000n +
            BigInt(written) * 3_750_000n +
            BigInt(visible + thinking) * 15_000_000n;
          const billed = costMicros(claude, usage);
          expect(billed * 1_000_000n >= exact).toBe(true);
          expect(billed * 1_000_000n - exact < 1_000_000n).toBe(true);
          // The upper bound the hold uses is never below the bill.
          expect(costMicrosMax(claude, usage.promptTokens, usage.completionTokens) >= billed).toBe(
            true,
          );
        },
      ),
    );
  });
});

describe('holdMicros', () => {
  const messages: ChatMessage[] = [
    { role: 'user', content: [{ type: 'text', text: 'Say hello' }] },
  ];
  const prompt = { messages };

  test('every prompt token at the dearest input price (the cache write) and every completion token at the dearest output price', () => {
    const promptTokens = BigInt(estimatePromptTokens(prompt));
    expect(holdMicros([claude], prompt, 100)).toBe(
      (promptTokens * 3_750_000n + 100n * 15_000_000n + 999_999n) / 1_000_000n,
    );
    expect(holdMicros([thinker], prompt, 100)).toBe(
      (BigInt(estimatePromptTokens(prompt)) * 1_250_000n + 100n * 12_000_000n + 999_999n) /
        1_000_000n,
    );
  });

  test('with fallbacks, the dearest candidate, in any order', () => {
    const alone = holdMicros([claude], prompt, 100);
    expect(holdMicros([plain, claude], prompt, 100)).toBe(alone);
    expect(holdMicros([claude, plain], prompt, 100)).toBe(alone);
    expect(holdMicros([plain], prompt, 100) < alone).toBe(true);
  });

  test('a free model still holds one micro (the ledger refuses a zero hold)', () => {
    expect(
      holdMicros(
        [{ inputMicrosPerMillionTokens: 0, outputMicrosPerMillionTokens: 0 }],
        prompt,
        100,
      ),
    ).toBe(1n);
  });
});
