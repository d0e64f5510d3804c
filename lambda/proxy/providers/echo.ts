import type { ChatProvider, ProviderRequest, ProviderResponse } from './types';

/**
 * A deterministic provider with no network: it answers with the last user message. It lets dev and
 * tests exercise the whole billed path without a provider key. Token counts are estimated the same
 * way as the hold (about 4 characters per token), so its usage is plausible.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

export function createEchoProvider(): ChatProvider {
  return {
    name: 'echo',
    async complete(request: ProviderRequest): Promise<ProviderResponse> {
      const lastUser = [...request.messages].reverse().find((message) => message.role === 'user')?.content ?? '';
      const full = `echo: ${lastUser}`;
      const characterBudget = request.maxOutputTokens * 4;
      const text = full.slice(0, characterBudget);
      const promptTokens = request.messages.reduce((sum, message) => sum + estimateTokens(message.content) + 4, 0);
      return {
        text,
        finishReason: text.length < full.length ? 'length' : 'stop',
        usage: { promptTokens, completionTokens: estimateTokens(text) },
      };
    },
  };
}
