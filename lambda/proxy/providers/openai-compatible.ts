import type { ProviderCredentials } from './credentials';
import {
  ProviderError,
  errorKindForStatus,
  providerFetch,
  readProviderJson,
  sanitizeProviderMessage,
  tokenCount,
  type ChatProvider,
  type FinishReason,
  type ProviderRequest,
  type ProviderResponse,
} from './types';

/** Any server that speaks OpenAI's Chat Completions (OpenAI itself, vLLM, Ollama, LiteLLM, ...). */

interface CompletionBody {
  choices?: { message?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
  error?: { message?: string };
}

function finishReasonOf(reason: string | null | undefined): FinishReason {
  if (reason === 'length') return 'length';
  if (reason === 'content_filter') return 'content_filter';
  return 'stop';
}

export function createOpenAiCompatibleProvider(credentials: () => Promise<ProviderCredentials>): ChatProvider {
  return {
    name: 'openai-compatible',
    async complete(request: ProviderRequest, signal: AbortSignal): Promise<ProviderResponse> {
      const provider = (await credentials()).openaiCompatible;
      if (!provider) throw new ProviderError('not_configured', 'provider not configured: no OpenAI-compatible base URL and key yet', false);
      const body = {
        model: request.model,
        messages: request.messages,
        max_tokens: request.maxOutputTokens,
        temperature: request.temperature,
        top_p: request.topP,
        stop: request.stop && request.stop.length > 0 ? request.stop : undefined,
        n: 1,
        stream: false,
      };
      const response = await providerFetch(
        `${provider.baseUrl}/chat/completions`,
        { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${provider.apiKey}` }, body: JSON.stringify(body) },
        'the OpenAI-compatible provider',
        signal,
      );
      const parsed = (await readProviderJson(response, 'the OpenAI-compatible provider')) as CompletionBody;
      if (!response.ok) {
        const { kind, retryable } = errorKindForStatus(response.status);
        throw new ProviderError(kind, `the OpenAI-compatible provider answered ${response.status}: ${sanitizeProviderMessage(parsed.error?.message)}`, retryable);
      }
      const choice = parsed.choices?.[0];
      if (!choice) throw new ProviderError('bad_gateway', 'the OpenAI-compatible provider returned no choice', false);
      const usage = parsed.usage;
      if (usage?.prompt_tokens === undefined || usage.completion_tokens === undefined) {
        throw new ProviderError('bad_gateway', 'the OpenAI-compatible provider returned no usage; the request cannot be billed', false);
      }
      const providerName = 'the OpenAI-compatible provider';
      return {
        text: typeof choice.message?.content === 'string' ? choice.message.content : '',
        finishReason: finishReasonOf(choice.finish_reason),
        usage: { promptTokens: tokenCount(usage.prompt_tokens, providerName, 'prompt_tokens'), completionTokens: tokenCount(usage.completion_tokens, providerName, 'completion_tokens') },
      };
    },
  };
}
