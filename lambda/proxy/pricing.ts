import type { ModelConfig } from '../../lib/config/schema';
import { messageText, type ProviderRequest } from './providers/types';

/**
 * What a request may cost and what it did cost, in micros. Prices are micros per million tokens, so
 * a cost is ceil(tokens x price / 1,000,000): integers all the way, rounded in the house's favour by
 * less than one micro.
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

export function costMicros(
  model: Pick<ModelConfig, 'inputMicrosPerMillionTokens' | 'outputMicrosPerMillionTokens'>,
  promptTokens: number,
  completionTokens: number,
): bigint {
  const numerator =
    BigInt(promptTokens) * BigInt(model.inputMicrosPerMillionTokens) +
    BigInt(completionTokens) * BigInt(model.outputMicrosPerMillionTokens);
  return (numerator + tokensPerMillion - 1n) / tokensPerMillion;
}

/**
 * The hold: the prompt estimate plus every completion token the request may produce. A request
 * that ends up costing more than its hold is charged the hold, never more (the hold is what the
 * client agreed to risk).
 */
export function holdMicros(
  model: ModelConfig,
  prompt: PromptInput,
  maxOutputTokens: number,
): bigint {
  const micros = costMicros(model, estimatePromptTokens(prompt), maxOutputTokens);
  return micros > 0n ? micros : 1n; // a zero hold is refused by the ledger; free models still hold one micro
}
