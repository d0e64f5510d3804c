import type {
  ChatProvider,
  ProviderCall,
  ProviderRequest,
  ProviderResponse,
  StreamDelta,
} from './types';
import { ProviderError, messageText, type ProviderCapabilities } from './types';

/**
 * A deterministic provider with no network: it answers with the last user message. It lets dev and
 * tests exercise the whole billed path without a provider key. Token counts are estimated the same
 * way as the hold (about 4 characters per token), so its usage is plausible. It streams word by
 * word, waiting `chunkDelayMilliseconds` before each word after the first, so streaming can be seen.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

export interface EchoOptions {
  /** Wait before each chunk after the first. Default: 0 (no wait). */
  readonly chunkDelayMilliseconds?: number;
}

function answer(request: ProviderRequest): ProviderResponse {
  const lastUser =
    [...request.messages].reverse().find((message) => message.role === 'user') ?? undefined;
  const full = `echo: ${lastUser ? messageText(lastUser) : ''}`;
  const characterBudget = request.maxOutputTokens * 4;
  const text = full.slice(0, characterBudget);
  const promptTokens = request.messages.reduce(
    (sum, message) => sum + estimateTokens(messageText(message)) + 4,
    0,
  );
  return {
    text,
    finishReason: text.length < full.length ? 'length' : 'stop',
    usage: { promptTokens, completionTokens: estimateTokens(text) },
  };
}

/** Each word with the whitespace before it: joined, the words give back the text exactly. */
export function echoChunks(text: string): string[] {
  return text.match(/\s*\S+/g) ?? (text === '' ? [] : [text]);
}

function pause(milliseconds: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new ProviderError('timeout', 'echo was stopped', false));
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, milliseconds);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new ProviderError('timeout', 'echo was stopped', false));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Text only, for now: the echo answers with text. */
export const echoCapabilities: ProviderCapabilities = {
  tools: false,
  parallelToolCalls: false,
  imageData: false,
  imageUrls: false,
  responseFormats: ['text'],
  options: [],
};

export function createEchoProvider(options: EchoOptions = {}): ChatProvider {
  const delay = options.chunkDelayMilliseconds ?? 0;
  return {
    name: 'echo',
    capabilities: echoCapabilities,
    async complete(request: ProviderRequest): Promise<ProviderResponse> {
      return answer(request);
    },
    async *stream(request: ProviderRequest, call: ProviderCall): AsyncGenerator<StreamDelta> {
      const { text, finishReason, usage } = answer(request);
      const chunks = echoChunks(text);
      for (const [index, chunk] of chunks.entries()) {
        if (index > 0 && delay > 0) await pause(delay, call.signal);
        if (call.signal.aborted) throw new ProviderError('timeout', 'echo was stopped', false);
        yield { kind: 'text', text: chunk };
      }
      yield { kind: 'finish', finishReason };
      yield { kind: 'usage', usage };
    },
  };
}
