import type { ModelConfig } from '../../../lib/config/schema';
import { geminiAnswer, openAiAnswer } from '../../support/fake-providers';
import { startProxyFixture, testModels, type ProxyFixture } from '../../support/proxy';

/**
 * The price table over HTTP for the providers that report parts of their usage: OpenAI's cached
 * prompt tokens and reasoning tokens, Gemini's cached content and thoughts. Each part is billed at
 * the model's own price for it, to the micro, on the real ledger.
 */

const priced = (id: string, prices: Partial<ModelConfig>): ModelConfig => ({
  ...testModels.find((model) => model.id === id)!,
  ...prices,
});

let fixture: ProxyFixture;
let lastUsage: Record<string, unknown> = {};
beforeEach(async () => {
  fixture = await startProxyFixture({
    models: [
      // 1 / 4 micros per token in and out; cached input 0.5, reasoning 8.
      priced('fake-gpt', {
        cachedInputMicrosPerMillionTokens: 500_000,
        reasoningMicrosPerMillionTokens: 8_000_000,
      }),
      // 0.3 / 2.5; cached input 0.075, thinking 3.5.
      priced('gemini-2.5-flash', {
        cachedInputMicrosPerMillionTokens: 75_000,
        reasoningMicrosPerMillionTokens: 3_500_000,
      }),
    ],
  });
  await fixture.topUp('alice', '1.00');
});
afterEach(() => fixture.close());

async function charged(model: string): Promise<{ micros: bigint; audit: Record<string, unknown> }> {
  const before = await fixture.availableMicros('alice');
  const response = await fixture.request('POST', '/v1/chat/completions', {
    body: { model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 500 },
  });
  expect(response.status).toBe(200);
  lastUsage = ((await response.json()) as { usage: Record<string, unknown> }).usage;
  const micros = before - (await fixture.availableMicros('alice'));
  expect(response.headers.get('x-credits-charged-micros')).toBe(micros.toString());
  return { micros, audit: await fixture.logger.nextAudit('chat_completion') };
}

test("OpenAI's cached prompt tokens and reasoning tokens at their own prices", async () => {
  const answer = openAiAnswer('ok', { prompt_tokens: 1000, completion_tokens: 300 });
  const body = answer as { body: { usage: Record<string, unknown> } };
  body.body.usage.prompt_tokens_details = { cached_tokens: 800 };
  body.body.usage.completion_tokens_details = { reasoning_tokens: 200 };
  fixture.openAi.script(answer);
  const { micros, audit } = await charged('fake-gpt');
  // 200 x 1 + 800 x 0.5 + 100 x 4 + 200 x 8 = 200 + 400 + 400 + 1600.
  expect(micros).toBe(2600n);
  // The client sees the parts as OpenAI reports them.
  expect(lastUsage).toEqual({
    prompt_tokens: 1000,
    completion_tokens: 300,
    total_tokens: 1300,
    prompt_tokens_details: { cached_tokens: 800 },
    completion_tokens_details: { reasoning_tokens: 200 },
  });
  expect(audit).toMatchObject({
    prompt_tokens: 1000,
    completion_tokens: 300,
    cached_prompt_tokens: 800,
    reasoning_tokens: 200,
  });
});

test("Gemini's cached content and thoughts at their own prices (thoughts are output the client never sees)", async () => {
  const answer = geminiAnswer('ok', { promptTokenCount: 2000, candidatesTokenCount: 40 });
  const body = answer as { body: { usageMetadata: Record<string, unknown> } };
  body.body.usageMetadata.cachedContentTokenCount = 1500;
  body.body.usageMetadata.thoughtsTokenCount = 100;
  fixture.gemini.script(answer);
  const { micros, audit } = await charged('gemini-2.5-flash');
  // 500 x 0.3 + 1500 x 0.075 + 40 x 2.5 + 100 x 3.5 = 150 + 112.5 + 100 + 350 = 712.5 -> 713.
  expect(micros).toBe(713n);
  expect(audit).toMatchObject({
    prompt_tokens: 2000,
    completion_tokens: 140,
    cached_prompt_tokens: 1500,
    reasoning_tokens: 100,
  });
});

test('without those parts reported, the plain prices apply and the audit line has no part counts', async () => {
  fixture.openAi.script(openAiAnswer('ok', { prompt_tokens: 1000, completion_tokens: 300 }));
  const { micros, audit } = await charged('fake-gpt');
  expect(micros).toBe(1000n + 1200n);
  expect(lastUsage).toEqual({ prompt_tokens: 1000, completion_tokens: 300, total_tokens: 1300 });
  expect(audit.cached_prompt_tokens).toBeUndefined();
  expect(audit.reasoning_tokens).toBeUndefined();
});
