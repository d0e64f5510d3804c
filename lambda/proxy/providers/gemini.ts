import type { ProviderCredentials } from './credentials';
import {
  ProviderError,
  errorKindForStatus,
  providerFetch,
  readProviderJson,
  sanitizeProviderMessage,
  tokenCount,
  type ChatMessage,
  type ChatProvider,
  type FinishReason,
  type ProviderRequest,
  type ProviderResponse,
} from './types';

/**
 * Gemini's generateContent REST API. System messages become the system instruction, assistant turns
 * the `model` role; safety blocks become a clear error; usage is read from `usageMetadata` of the
 * (single, final) response, never summed, and thinking tokens are billed as output.
 */

interface GeminiContent {
  role: 'user' | 'model';
  parts: { text: string }[];
}

interface GeminiResponse {
  candidates?: { content?: { parts?: { text?: string; thought?: boolean }[] }; finishReason?: string }[];
  promptFeedback?: { blockReason?: string };
  usageMetadata?: { promptTokenCount?: number; candidatesTokenCount?: number; thoughtsTokenCount?: number };
  error?: { message?: string; status?: string };
}

const contentFilterReasons = new Set(['SAFETY', 'RECITATION', 'BLOCKLIST', 'PROHIBITED_CONTENT', 'SPII', 'IMAGE_SAFETY']);

/** Consecutive turns of one role are merged: Gemini wants the roles to alternate. */
export function toGeminiContents(messages: readonly ChatMessage[]): { contents: GeminiContent[]; systemInstruction?: { parts: { text: string }[] } } {
  const system = messages.filter((message) => message.role === 'system').map((message) => message.content);
  const contents: GeminiContent[] = [];
  for (const message of messages) {
    if (message.role === 'system') continue;
    const role = message.role === 'assistant' ? 'model' : 'user';
    const last = contents.at(-1);
    if (last && last.role === role) last.parts.push({ text: message.content });
    else contents.push({ role, parts: [{ text: message.content }] });
  }
  return { contents, systemInstruction: system.length > 0 ? { parts: [{ text: system.join('\n\n') }] } : undefined };
}

function usageOf(body: GeminiResponse): ProviderResponse['usage'] | undefined {
  const metadata = body.usageMetadata;
  if (!metadata) return undefined;
  return {
    promptTokens: tokenCount(metadata.promptTokenCount ?? 0, 'gemini', 'promptTokenCount'),
    completionTokens: tokenCount(metadata.candidatesTokenCount ?? 0, 'gemini', 'candidatesTokenCount') + tokenCount(metadata.thoughtsTokenCount ?? 0, 'gemini', 'thoughtsTokenCount'),
  };
}

function finishReasonOf(reason: string | undefined): FinishReason {
  if (reason === 'MAX_TOKENS') return 'length';
  if (reason !== undefined && contentFilterReasons.has(reason)) return 'content_filter';
  return 'stop';
}

function responseOf(body: GeminiResponse): ProviderResponse {
  const usage = usageOf(body);
  if (body.promptFeedback?.blockReason) {
    throw new ProviderError('blocked', `the prompt was blocked by the provider's safety filter (${sanitizeProviderMessage(body.promptFeedback.blockReason)})`, false, usage);
  }
  const candidate = body.candidates?.[0];
  if (!candidate) throw new ProviderError('bad_gateway', 'gemini returned no candidate', false, usage);
  const text = (candidate.content?.parts ?? []).filter((part) => !part.thought).map((part) => part.text ?? '').join('');
  const finishReason = finishReasonOf(candidate.finishReason);
  if (finishReason === 'content_filter' && text === '') {
    throw new ProviderError('blocked', `the response was blocked by the provider's safety filter (${sanitizeProviderMessage(candidate.finishReason)})`, false, usage);
  }
  if (!usage) throw new ProviderError('bad_gateway', 'gemini returned no usage metadata; the request cannot be billed', false);
  return { text, finishReason, usage };
}

export function createGeminiProvider(credentials: () => Promise<ProviderCredentials>): ChatProvider {
  return {
    name: 'gemini',
    async complete(request: ProviderRequest, signal: AbortSignal): Promise<ProviderResponse> {
      const gemini = (await credentials()).gemini;
      if (!gemini) throw new ProviderError('not_configured', 'provider not configured: gemini has no API key yet', false);
      const { contents, systemInstruction } = toGeminiContents(request.messages);
      const body = {
        contents,
        systemInstruction,
        generationConfig: {
          candidateCount: 1,
          maxOutputTokens: request.maxOutputTokens,
          temperature: request.temperature,
          topP: request.topP,
          stopSequences: request.stop && request.stop.length > 0 ? request.stop : undefined,
        },
      };
      const url = `${gemini.baseUrl}/v1beta/models/${encodeURIComponent(request.model)}:generateContent`;
      const response = await providerFetch(
        url,
        { method: 'POST', headers: { 'content-type': 'application/json', 'x-goog-api-key': gemini.apiKey }, body: JSON.stringify(body) },
        'gemini',
        signal,
      );
      const parsed = (await readProviderJson(response, 'gemini')) as GeminiResponse;
      if (!response.ok) {
        const { kind, retryable } = errorKindForStatus(response.status);
        throw new ProviderError(kind, `gemini answered ${response.status}: ${sanitizeProviderMessage(parsed.error?.message)}`, retryable);
      }
      return responseOf(parsed);
    },
  };
}
