import { StreamTooLargeError, readServerSentEvents } from '../sse';
import type { ProviderCredentials } from './credentials';
import {
  ProviderError,
  fetchProviderJson,
  bodyReadError,
  errorKindForStatus,
  providerFetch,
  readProviderJson,
  responseTooLarge,
  sanitizeProviderMessage,
  tokenCount,
  type ChatMessage,
  type ChatProvider,
  type ContentPart,
  type FinishReason,
  type ProviderCall,
  type ProviderCapabilities,
  type ProviderRequest,
  type ProviderResponse,
  type StreamDelta,
  type TokenUsage,
  type ToolCall,
} from './types';

/**
 * Any server that speaks OpenAI's Chat Completions (OpenAI itself, vLLM, Ollama, LiteLLM, ...).
 * Tools, tool choice, parallel calls, structured output, images (data and https URLs, which the
 * provider fetches itself) and the options it declares pass through unchanged in OpenAI's own shape;
 * answers' tool calls and their streamed deltas come back as they are. Streams ask for
 * `stream_options.include_usage`, so the final chunk (with `choices: []`) carries the usage the
 * request is billed from.
 */

const providerName = 'the OpenAI-compatible provider';

interface WireToolCall {
  index?: number;
  id?: string;
  type?: string;
  function?: { name?: string; arguments?: string };
}

interface CompletionBody {
  choices?: {
    message?: { content?: string | null; tool_calls?: WireToolCall[] | null };
    finish_reason?: string | null;
  }[];
  usage?: CompletionUsage | null;
  error?: { message?: string };
}

interface CompletionChunk {
  choices?: {
    delta?: { content?: string | null; tool_calls?: WireToolCall[] | null };
    finish_reason?: string | null;
  }[];
  usage?: CompletionUsage | null;
  error?: { message?: string };
}

function finishReasonOf(reason: string | null | undefined): FinishReason {
  if (reason === 'length') return 'length';
  if (reason === 'content_filter') return 'content_filter';
  // `function_call` is the deprecated name of the same ending.
  if (reason === 'tool_calls' || reason === 'function_call') return 'tool_calls';
  return 'stop';
}

/** An answer's tool calls, checked: a call without an id, a name or its arguments is a 502, never a half call. */
function toolCallsOf(calls: WireToolCall[] | null | undefined): ToolCall[] | undefined {
  if (!calls || calls.length === 0) return undefined;
  return calls.map((call) => {
    const name = call.function?.name;
    const args = call.function?.arguments;
    if (typeof call.id !== 'string' || typeof name !== 'string' || typeof args !== 'string')
      throw new ProviderError(
        'bad_gateway',
        `${providerName} returned a malformed tool call`,
        false,
      );
    return { id: call.id, name, arguments: args };
  });
}

function wireContent(content: readonly ContentPart[]): string | unknown[] {
  if (content.length === 1 && content[0].type === 'text') return content[0].text;
  return content.map((part) => {
    if (part.type === 'text') return { type: 'text', text: part.text };
    const url = part.type === 'image' ? `data:${part.mediaType};base64,${part.data}` : part.url;
    return { type: 'image_url', image_url: { url, detail: part.detail } };
  });
}

/** A message in OpenAI's shape: what the client sent, as the contract carries it. */
function wireMessage(message: ChatMessage) {
  switch (message.role) {
    case 'system':
      return { role: 'system', content: message.content };
    case 'user':
      return { role: 'user', content: wireContent(message.content) };
    case 'assistant':
      return {
        role: 'assistant',
        content: message.content,
        tool_calls: message.toolCalls?.map((call) => ({
          id: call.id,
          type: 'function',
          function: { name: call.name, arguments: call.arguments },
        })),
      };
    case 'tool':
      return { role: 'tool', tool_call_id: message.toolCallId, content: message.content };
  }
}

/** Tools, tool choice, output format and options in OpenAI's shape (undefined fields are left out of the JSON). */
function wireFeatures(request: ProviderRequest) {
  const choice = request.toolChoice;
  const format = request.responseFormat;
  const options = request.options ?? {};
  return {
    tools: request.tools?.map((tool) => ({
      type: 'function',
      function: {
        name: tool.name,
        description: tool.description,
        parameters: tool.parameters,
        strict: tool.strict,
      },
    })),
    tool_choice:
      choice === undefined
        ? undefined
        : choice.type === 'function'
          ? { type: 'function', function: { name: choice.name } }
          : choice.type,
    parallel_tool_calls: request.parallelToolCalls,
    response_format:
      format === undefined || format.type !== 'json_schema'
        ? format
        : {
            type: 'json_schema',
            json_schema: {
              name: format.name,
              description: format.description,
              schema: format.schema,
              strict: format.strict,
            },
          },
    seed: options.seed,
    presence_penalty: options.presencePenalty,
    frequency_penalty: options.frequencyPenalty,
    logit_bias: options.logitBias,
    reasoning_effort: options.reasoningEffort,
    user: options.user,
  };
}

/** OpenAI's usage: the cached and reasoning counts are parts of the prompt and completion counts. */
interface CompletionUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number | null } | null;
  completion_tokens_details?: { reasoning_tokens?: number | null } | null;
}

function usageOf(usage: CompletionBody['usage']): TokenUsage | undefined {
  if (usage?.prompt_tokens === undefined || usage.completion_tokens === undefined) return undefined;
  return {
    promptTokens: tokenCount(usage.prompt_tokens, providerName, 'prompt_tokens'),
    completionTokens: tokenCount(usage.completion_tokens, providerName, 'completion_tokens'),
    cachedPromptTokens: tokenCount(
      usage.prompt_tokens_details?.cached_tokens ?? 0,
      providerName,
      'cached_tokens',
    ),
    reasoningTokens: tokenCount(
      usage.completion_tokens_details?.reasoning_tokens ?? 0,
      providerName,
      'reasoning_tokens',
    ),
  };
}

async function errorFromResponse(response: Response, call: ProviderCall): Promise<ProviderError> {
  const parsed = (await readProviderJson(
    response,
    providerName,
    call.responseBytesMax,
  )) as CompletionBody;
  const message = `${providerName} answered ${response.status}: ${sanitizeProviderMessage(parsed.error?.message)}`;
  // What passes through is the client's own (a tool schema its strict mode refuses, say): its 400 is the client's.
  if (response.status === 400 || response.status === 422)
    return new ProviderError('rejected', message, false);
  const { kind, retryable } = errorKindForStatus(response.status);
  return new ProviderError(kind, message, retryable);
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
  for (const [position, call] of (choice?.delta?.tool_calls ?? []).entries())
    yield {
      kind: 'tool_call',
      // Servers that stream each call whole in one chunk may leave the index out.
      index: typeof call.index === 'number' ? call.index : position,
      id: typeof call.id === 'string' ? call.id : undefined,
      name: typeof call.function?.name === 'string' ? call.function.name : undefined,
      argumentsDelta: typeof call.function?.arguments === 'string' ? call.function.arguments : '',
    };
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

/**
 * Everything passes through, except `logprobs` (the contract carries no log probabilities back) and
 * `metadata` (OpenAI takes it only with `store`, which this proxy never sets: completions are not
 * kept at the provider).
 */
export const openAiCompatibleCapabilities: ProviderCapabilities = {
  tools: true,
  parallelToolCalls: true,
  imageData: true,
  imageUrls: true,
  responseFormats: ['text', 'json_object', 'json_schema'],
  options: ['seed', 'presencePenalty', 'frequencyPenalty', 'logitBias', 'reasoningEffort', 'user'],
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
      messages: request.messages.map(wireMessage),
      max_tokens: request.maxOutputTokens,
      temperature: request.temperature,
      top_p: request.topP,
      stop: request.stop && request.stop.length > 0 ? request.stop : undefined,
      n: 1,
      stream,
      stream_options: stream ? { include_usage: true } : undefined,
      ...wireFeatures(request),
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
      const parsed = (await fetchProviderJson(url, init, providerName, call, (response) =>
        errorFromResponse(response, call),
      )) as CompletionBody;
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
        toolCalls: toolCallsOf(choice.message?.tool_calls),
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
