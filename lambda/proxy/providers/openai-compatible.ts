import { StreamTooLargeError, readServerSentEvents } from '../sse';
import type { ProviderCredentials } from './credentials';
import {
  ProviderError,
  bodyReadError,
  errorKindForStatus,
  providerFetch,
  readProviderJson,
  responseTooLarge,
  sanitizeProviderMessage,
  messageText,
  tokenCount,
  type ChatProvider,
  type FinishReason,
  type ProviderCall,
  type ProviderCapabilities,
  type ProviderRequest,
  type ProviderResponse,
  type StreamDelta,
  type TokenUsage,
} from './types';

/**
 * Any server that speaks OpenAI's Chat Completions (OpenAI itself, vLLM, Ollama, LiteLLM, ...).
 * Streams ask for `stream_options.include_usage`, so the final chunk (with `choices: []`) carries the
 * usage the request is billed from.
 */

const providerName = 'the OpenAI-compatible provider';

interface CompletionBody {
  choices?: { message?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string };
}

interface CompletionChunk {
  choices?: { delta?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string };
}

function finishReasonOf(reason: string | null | undefined): FinishReason {
  if (reason === 'length') return 'length';
  if (reason === 'content_filter') return 'content_filter';
  return 'stop';
}

function usageOf(usage: CompletionBody['usage']): TokenUsage | undefined {
  if (usage?.prompt_tokens === undefined || usage.completion_tokens === undefined) return undefined;
  return {
    promptTokens: tokenCount(usage.prompt_tokens, providerName, 'prompt_tokens'),
    completionTokens: tokenCount(usage.completion_tokens, providerName, 'completion_tokens'),
  };
}

async function errorFromResponse(response: Response, call: ProviderCall): Promise<ProviderError> {
  const parsed = (await readProviderJson(
    response,
    providerName,
    call.responseBytesMax,
  )) as CompletionBody;
  const { kind, retryable } = errorKindForStatus(response.status);
  return new ProviderError(
    kind,
    `${providerName} answered ${response.status}: ${sanitizeProviderMessage(parsed.error?.message)}`,
    retryable,
  );
}

function parseChunk(data: string): CompletionChunk {
  try {
    return JSON.parse(data) as CompletionChunk;
  } catch {
    throw new ProviderError(
      'bad_gateway',
      `${providerName} sent a stream event that is not JSON`,
      false,
    );
  }
}

function* chunkDeltas(chunk: CompletionChunk): Generator<StreamDelta> {
  if (chunk.error)
    throw new ProviderError(
      'unavailable',
      `${providerName} failed mid-stream: ${sanitizeProviderMessage(chunk.error.message)}`,
      false,
    );
  const choice = chunk.choices?.[0];
  const text = choice?.delta?.content;
  if (typeof text === 'string' && text !== '') yield { kind: 'text', text };
  if (choice?.finish_reason)
    yield { kind: 'finish', finishReason: finishReasonOf(choice.finish_reason) };
}

async function* streamCompletion(
  url: string,
  init: RequestInit,
  call: ProviderCall,
): AsyncGenerator<StreamDelta> {
  const response = await providerFetch(url, init, providerName, call.signal);
  if (!response.ok) throw await errorFromResponse(response, call);
  if (!response.body)
    throw new ProviderError('bad_gateway', `${providerName} sent an empty stream`, false);
  let usage: TokenUsage | undefined;
  let finished = false;
  try {
    for await (const event of readServerSentEvents(response.body, call.responseBytesMax)) {
      if (event.data === '[DONE]') break;
      const chunk = parseChunk(event.data);
      usage = usageOf(chunk.usage) ?? usage;
      for (const delta of chunkDeltas(chunk)) {
        if (delta.kind === 'finish') finished = true;
        yield delta;
      }
    }
  } catch (error) {
    if (error instanceof StreamTooLargeError) throw responseTooLarge(providerName, error.bytesMax);
    throw bodyReadError(error, providerName, call.signal);
  }
  // Without a finish reason the connection was cut: what arrived may be partial.
  if (!finished)
    throw new ProviderError('bad_gateway', `${providerName} ended the stream early`, false, usage);
  // Without usage (a server that ignores include_usage) the proxy settles an estimate and logs it as one.
  if (usage) yield { kind: 'usage', usage };
}

/** Text only, for now. */
export const openAiCompatibleCapabilities: ProviderCapabilities = {
  tools: false,
  parallelToolCalls: false,
  imageData: false,
  imageUrls: false,
  responseFormats: ['text'],
  options: [],
};

export function createOpenAiCompatibleProvider(
  credentials: () => Promise<ProviderCredentials>,
): ChatProvider {
  const connection = async (request: ProviderRequest, stream: boolean) => {
    const provider = (await credentials()).openaiCompatible;
    if (!provider)
      throw new ProviderError(
        'not_configured',
        'provider not configured: no OpenAI-compatible base URL and key yet',
        false,
      );
    const body = {
      model: request.model,
      messages: request.messages.map((message) => ({
        role: message.role,
        content: messageText(message),
      })),
      max_tokens: request.maxOutputTokens,
      temperature: request.temperature,
      top_p: request.topP,
      stop: request.stop && request.stop.length > 0 ? request.stop : undefined,
      n: 1,
      stream,
      stream_options: stream ? { include_usage: true } : undefined,
    };
    const init: RequestInit = {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${provider.apiKey}` },
      body: JSON.stringify(body),
    };
    return { url: `${provider.baseUrl}/chat/completions`, init };
  };
  return {
    name: 'openai-compatible',
    capabilities: openAiCompatibleCapabilities,
    async complete(request: ProviderRequest, call: ProviderCall): Promise<ProviderResponse> {
      const { url, init } = await connection(request, false);
      const response = await providerFetch(url, init, providerName, call.signal);
      if (!response.ok) throw await errorFromResponse(response, call);
      let parsed: CompletionBody;
      try {
        parsed = (await readProviderJson(
          response,
          providerName,
          call.responseBytesMax,
        )) as CompletionBody;
      } catch (error) {
        throw bodyReadError(error, providerName, call.signal);
      }
      const choice = parsed.choices?.[0];
      if (!choice)
        throw new ProviderError('bad_gateway', `${providerName} returned no choice`, false);
      const usage = usageOf(parsed.usage);
      if (!usage)
        throw new ProviderError(
          'bad_gateway',
          `${providerName} returned no usage; the request cannot be billed`,
          false,
        );
      return {
        text: typeof choice.message?.content === 'string' ? choice.message.content : '',
        finishReason: finishReasonOf(choice.finish_reason),
        usage,
      };
    },
    async *stream(request: ProviderRequest, call: ProviderCall): AsyncGenerator<StreamDelta> {
      const { url, init } = await connection(request, true);
      yield* streamCompletion(url, init, call);
    },
  };
}
