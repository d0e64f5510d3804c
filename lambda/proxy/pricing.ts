import type { ModelConfig } from '../../lib/config/schema';
import { messageText, type ProviderRequest, type TokenUsage } from './providers/types';

/**
 * What a request may cost and what it did cost, in micros. Prices are micros per million tokens.
 * Each part of the usage (uncached input, cache reads, cache writes, visible output, reasoning) is
 * multiplied by its own price and the products are summed exactly (bigint); the sum is divided by
 * one million once, rounding up: integers all the way, in the house's favour by less than one micro
 * per request (never one rounding per part).
 */

const tokensPerMillion = 1_000_000n;
/** Tokens of framing per message (role, separators) and per tool call or tool offered. */
const messageOverheadTokens = 8;
/**
 * The tokens an image is held at, whatever its size (the proxy never decodes it): above what any
 * provider here bills for one image at its largest (OpenAI's high detail, about 2,600 at most for
 * its patch-based models; Gemini, 258 per 768-pixel tile of an image scaled to at most 3072 pixels,
 * 4,128; Anthropic, about 1,600, up to about 4,800 for its high-resolution models). The charge is what
 * the provider reports; the hold returns the rest.
 */
export const imagePromptTokensHeld = 8_192;

/** What a request sends the model as input: messages, and the tools and output schema it describes. */
export type PromptInput = Pick<ProviderRequest, 'messages' | 'tools' | 'responseFormat'>;

/** The input's text as the provider receives it, in UTF-8 bytes, with its counts of framed items and images. */
export function promptInputSize(prompt: PromptInput): {
  bytes: number;
  items: number;
  images: number;
} {
  let bytes = 0;
  let items = 0;
  let images = 0;
  const add = (text: string) => (bytes += Buffer.byteLength(text, 'utf8'));
  for (const message of prompt.messages) {
    items += 1;
    add(messageText(message));
    if (message.role === 'user')
      images += message.content.filter((part) => part.type !== 'text').length;
    if (message.role === 'tool') add(message.toolCallId);
    if (message.role === 'assistant')
      for (const call of message.toolCalls ?? []) {
        items += 1;
        add(call.id);
        add(call.name);
        add(call.arguments);
      }
  }
  for (const tool of prompt.tools ?? []) {
    items += 1;
    add(JSON.stringify(tool));
  }
  if (prompt.responseFormat?.type === 'json_schema') add(JSON.stringify(prompt.responseFormat));
  return { bytes, items, images };
}

/**
 * An upper bound of the prompt's tokens for the hold: one token per UTF-8 byte of its text (tool
 * definitions, tool calls and results, the output schema included), and each image at
 * `imagePromptTokensHeld`. Tokenizers never produce more tokens than bytes, so a prompt in any
 * script is held in full (English text holds about four times its real prompt cost, which returns
 * at once when the request settles).
 */
export function estimatePromptTokens(prompt: PromptInput): number {
  const { bytes, items, images } = promptInputSize(prompt);
  return bytes + items * messageOverheadTokens + images * imagePromptTokensHeld;
}

export type ModelPrices = Pick<
  ModelConfig,
  | 'inputMicrosPerMillionTokens'
  | 'outputMicrosPerMillionTokens'
  | 'cachedInputMicrosPerMillionTokens'
  | 'cacheCreationInputMicrosPerMillionTokens'
  | 'reasoningMicrosPerMillionTokens'
>;

/** The price of each kind of token, the optional ones defaulted (cache: input price; reasoning: output price). */
function pricesOf(model: ModelPrices) {
  return {
    input: BigInt(model.inputMicrosPerMillionTokens),
    cachedInput: BigInt(
      model.cachedInputMicrosPerMillionTokens ?? model.inputMicrosPerMillionTokens,
    ),
    cacheCreation: BigInt(
      model.cacheCreationInputMicrosPerMillionTokens ?? model.inputMicrosPerMillionTokens,
    ),
    output: BigInt(model.outputMicrosPerMillionTokens),
    reasoning: BigInt(model.reasoningMicrosPerMillionTokens ?? model.outputMicrosPerMillionTokens),
  };
}

/**
 * The cost of what a provider reported. The cache counts are parts of `promptTokens` and the
 * reasoning count a part of `completionTokens` (the contract in providers/types.ts); a part larger
 * than its whole is billed as the whole at the part's price, so a provider's inconsistent count
 * never bills fewer tokens than it reported.
 */
export function costMicros(model: ModelPrices, usage: TokenUsage): bigint {
  const prices = pricesOf(model);
  const cached = BigInt(Math.min(usage.cachedPromptTokens ?? 0, usage.promptTokens));
  const creation = BigInt(
    Math.min(usage.cacheCreationTokens ?? 0, usage.promptTokens - Number(cached)),
  );
  const uncached = BigInt(usage.promptTokens) - cached - creation;
  const reasoning = BigInt(Math.min(usage.reasoningTokens ?? 0, usage.completionTokens));
  const visible = BigInt(usage.completionTokens) - reasoning;
  const numerator =
    uncached * prices.input +
    cached * prices.cachedInput +
    creation * prices.cacheCreation +
    visible * prices.output +
    reasoning * prices.reasoning;
  return (numerator + tokensPerMillion - 1n) / tokensPerMillion;
}

/**
 * The most a request may cost on this model: every prompt token at the dearest input price (a cache
 * write usually costs more than a plain read) and every completion token at the dearest output
 * price, so the hold stays an upper bound whatever the provider reports.
 */
export function costMicrosMax(
  model: ModelPrices,
  promptTokens: number,
  completionTokens: number,
): bigint {
  const prices = pricesOf(model);
  const dearest = (...values: bigint[]) => values.reduce((a, b) => (a > b ? a : b));
  const numerator =
    BigInt(promptTokens) * dearest(prices.input, prices.cachedInput, prices.cacheCreation) +
    BigInt(completionTokens) * dearest(prices.output, prices.reasoning);
  return (numerator + tokensPerMillion - 1n) / tokensPerMillion;
}

/**
 * The hold: the prompt estimate plus every completion token the request may produce, at the
 * dearest prices of the dearest candidate (the model and its fallbacks: whichever answers, the hold
 * covers it). A request that ends up costing more than its hold is charged the hold, never more
 * (the hold is what the client agreed to risk).
 */
export function holdMicros(
  candidates: readonly ModelPrices[],
  prompt: PromptInput,
  maxOutputTokens: number,
): bigint {
  const promptTokens = estimatePromptTokens(prompt);
  const micros = candidates
    .map((model) => costMicrosMax(model, promptTokens, maxOutputTokens))
    .reduce((a, b) => (a > b ? a : b), 0n);
  return micros > 0n ? micros : 1n; // a zero hold is refused by the ledger; free models still hold one micro
}

/** The token counts of an audit line: the cache and reasoning parts only when the provider reported them. */
export function usageFields(usage: TokenUsage): Record<string, number | undefined> {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    cached_prompt_tokens: usage.cachedPromptTokens || undefined,
    cache_creation_tokens: usage.cacheCreationTokens || undefined,
    reasoning_tokens: usage.reasoningTokens || undefined,
  };
}
