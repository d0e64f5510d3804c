import type { ModelConfig } from '../../lib/config/schema';
import type { ChatMessage } from './providers/types';

/**
 * What a request may cost and what it did cost, in micros. Prices are micros per million tokens, so
 * a cost is ceil(tokens x price / 1,000,000): integers all the way, rounded in the house's favour by
 * less than one micro.
 */

const tokensPerMillion = 1_000_000n;
/** Tokens of framing per message (role, separators). */
const messageOverheadTokens = 8;

/**
 * An upper bound of the prompt's tokens for the hold: one token per UTF-8 byte. Tokenizers never
 * produce more tokens than bytes, so a prompt in any script is held in full (English text holds
 * about four times its real prompt cost, which returns at once when the request settles).
 */
export function estimatePromptTokens(messages: readonly ChatMessage[]): number {
  return messages.reduce(
    (sum, message) => sum + Buffer.byteLength(message.content, 'utf8') + messageOverheadTokens,
    0,
  );
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
  messages: readonly ChatMessage[],
  maxOutputTokens: number,
): bigint {
  const micros = costMicros(model, estimatePromptTokens(messages), maxOutputTokens);
  return micros > 0n ? micros : 1n; // a zero hold is refused by the ledger; free models still hold one micro
}
