import { StreamTooLargeError, readServerSentEvents, type ServerSentEvent } from '../sse';
import { anthropicRequestBody, anthropicUnsupported, anthropicVersion } from './anthropic-messages';
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
  type ChatProvider,
  type FinishReason,
  type ProviderCall,
  type ProviderCapabilities,
  type ProviderRequest,
  type ProviderResponse,
  type StreamDelta,
  type ToolCall,
  type TokenUsage,
} from './types';

/**
 * Anthropic's Messages API over HTTPS (`x-api-key`, `anthropic-version: 2023-06-01`), whole and as
 * server-sent events. Usage: Anthropic's `input_tokens` counts only the input after the last cache
 * breakpoint; the contract's `promptTokens` counts all input, so it is `input_tokens +
 * cache_read_input_tokens + cache_creation_input_tokens`, the two cache counts kept as its parts
 * (billed at their own prices). In a stream, `message_start` carries the input counts and
 * `message_delta` the cumulative output count (and, in newer API versions, the input counts again):
 * the last value of each field is the bill, never a sum.
 */

const providerName = 'anthropic';

interface AnthropicUsage {
  input_tokens?: number;
  output_tokens?: number;
  cache_read_input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
}

interface AnthropicContentBlock {
  type?: string;
  text?: string;
  id?: string;
  name?: string;
  input?: unknown;
}

interface AnthropicMessageBody {
  type?: string;
  content?: AnthropicContentBlock[];
  stop_reason?: string | null;
  usage?: AnthropicUsage;
  error?: { type?: string; message?: string };
}

/** `refusal`: the model declined for safety; `model_context_window_exceeded`: out of room, like max_tokens. */
function finishReasonOf(reason: string | null | undefined): FinishReason {
  if (reason === 'max_tokens' || reason === 'model_context_window_exceeded') return 'length';
  if (reason === 'tool_use') return 'tool_calls';
  if (reason === 'refusal') return 'content_filter';
  return 'stop';
}

/** The counts as the contract wants them: every input token in promptTokens, the cache counts as its parts. */
export function anthropicUsage(usage: AnthropicUsage): TokenUsage {
  const input = tokenCount(usage.input_tokens ?? 0, providerName, 'input_tokens');
  const cachedPromptTokens = tokenCount(
    usage.cache_read_input_tokens ?? 0,
    providerName,
    'cache_read_input_tokens',
  );
  const cacheCreationTokens = tokenCount(
    usage.cache_creation_input_tokens ?? 0,
    providerName,
    'cache_creation_input_tokens',
  );
  return {
    promptTokens: input + cachedPromptTokens + cacheCreationTokens,
    completionTokens: tokenCount(usage.output_tokens ?? 0, providerName, 'output_tokens'),
    cachedPromptTokens,
    cacheCreationTokens,
  };
}

function refused(usage: TokenUsage): ProviderError {
  return new ProviderError(
    'blocked',
    'the request was refused by the provider (refusal)',
    false,
    usage,
  );
}

function responseOf(body: AnthropicMessageBody): ProviderResponse {
  if (
    !body.usage ||
    body.usage.input_tokens === undefined ||
    body.usage.output_tokens === undefined
  )
    throw new ProviderError(
      'bad_gateway',
      'anthropic returned no usage; the request cannot be billed',
      false,
    );
  const usage = anthropicUsage(body.usage);
  if (!Array.isArray(body.content))
    throw new ProviderError('bad_gateway', 'anthropic returned no content', false, usage);
  // Thinking blocks (when a model thinks) are billed as output and never shown.
  const text = body.content
    .filter((block) => block.type === 'text')
    .map((block) => block.text ?? '')
    .join('');
  const toolCalls: ToolCall[] = body.content
    .filter((block) => block.type === 'tool_use')
    .map((block) => {
      if (typeof block.id !== 'string' || typeof block.name !== 'string')
        throw new ProviderError(
          'bad_gateway',
          'anthropic returned a malformed tool call',
          false,
          usage,
        );
      return { id: block.id, name: block.name, arguments: JSON.stringify(block.input ?? {}) };
    });
  const finishReason = finishReasonOf(body.stop_reason);
  if (finishReason === 'content_filter' && text === '' && toolCalls.length === 0)
    throw refused(usage);
  return { text, toolCalls: toolCalls.length > 0 ? toolCalls : undefined, finishReason, usage };
}

async function errorFromResponse(response: Response, call: ProviderCall): Promise<ProviderError> {
  const parsed = (await readProviderJson(
    response,
    providerName,
    call.responseBytesMax,
  )) as AnthropicMessageBody;
  const message = `anthropic answered ${response.status}: ${sanitizeProviderMessage(parsed.error?.message)}`;
  // What passes through is the client's own (its tool schemas, the image URLs Anthropic fetches, the
  // conversation's turns): Anthropic refusing it, or its size, is the client's 400.
  if (response.status === 400 || response.status === 413)
    return new ProviderError('rejected', message, false);
  // 429 (rate limited), 529 (overloaded) and other 5xx may answer differently later (or elsewhere).
  const { kind, retryable } = errorKindForStatus(response.status);
  return new ProviderError(kind, message, retryable);
}

/** An `error` event: overloaded or an API error may go better on a retry, before anything was sent. */
const retryableStreamErrors = new Set(['overloaded_error', 'api_error', 'rate_limit_error']);

interface StreamState {
  /** Anthropic's content-block index to the tool call's index among calls (from 0). */
  readonly toolCalls: Map<number, { index: number; arguments: string }>;
  usage: AnthropicUsage;
  finished: boolean;
  stopped: boolean;
  /** Whether any delta went out (a failure after that carries the usage so far). */
  yielded: boolean;
}

function parseEvent(event: ServerSentEvent): Record<string, unknown> & { type?: string } {
  try {
    const value: unknown = JSON.parse(event.data);
    if (typeof value === 'object' && value !== null) return value as { type?: string };
  } catch {
    // below
  }
  throw new ProviderError('bad_gateway', 'anthropic sent a stream event that is not JSON', false);
}

function mergeUsage(state: StreamState, usage: unknown): void {
  if (typeof usage !== 'object' || usage === null) return;
  // Cumulative: each field's latest value replaces the one before; absent or null fields stay.
  for (const [field, value] of Object.entries(usage as Record<string, unknown>))
    if (value !== null && value !== undefined)
      (state.usage as Record<string, unknown>)[field] = value;
}

function blockStartDeltas(state: StreamState, event: Record<string, unknown>): StreamDelta[] {
  const block = event.content_block as AnthropicContentBlock | undefined;
  const blockIndex = event.index;
  if (block?.type === 'text' && block.text) return [{ kind: 'text', text: block.text }];
  if (block?.type !== 'tool_use') return [];
  if (
    typeof blockIndex !== 'number' ||
    typeof block.id !== 'string' ||
    typeof block.name !== 'string'
  )
    throw new ProviderError('bad_gateway', 'anthropic streamed a malformed tool call', false);
  const index = state.toolCalls.size;
  state.toolCalls.set(blockIndex, { index, arguments: '' });
  return [{ kind: 'tool_call', index, id: block.id, name: block.name, argumentsDelta: '' }];
}

function blockDeltaDeltas(state: StreamState, event: Record<string, unknown>): StreamDelta[] {
  const delta = event.delta as { type?: string; text?: string; partial_json?: string } | undefined;
  if (delta?.type === 'text_delta' && delta.text) return [{ kind: 'text', text: delta.text }];
  if (delta?.type !== 'input_json_delta' || !delta.partial_json) return [];
  const call = state.toolCalls.get(event.index as number);
  if (!call)
    throw new ProviderError('bad_gateway', 'anthropic streamed arguments of no tool call', false);
  call.arguments += delta.partial_json;
  return [{ kind: 'tool_call', index: call.index, argumentsDelta: delta.partial_json }];
}

/** A tool call without arguments streams none; clients parse the arguments, so they get `{}`. */
function blockStopDeltas(state: StreamState, event: Record<string, unknown>): StreamDelta[] {
  const call = state.toolCalls.get(event.index as number);
  if (!call || call.arguments !== '') return [];
  call.arguments = '{}';
  return [{ kind: 'tool_call', index: call.index, argumentsDelta: '{}' }];
}

function streamError(state: StreamState, event: Record<string, unknown>): ProviderError {
  const error = event.error as { type?: string; message?: string } | undefined;
  const retryable = !state.yielded && retryableStreamErrors.has(error?.type ?? '');
  return new ProviderError(
    retryable ? 'unavailable' : 'bad_gateway',
    `anthropic failed mid-stream: ${sanitizeProviderMessage(error?.message)}`,
    retryable,
    state.yielded ? anthropicUsage(state.usage) : undefined,
  );
}

/** The deltas of one event, in order; `ping` and thinking deltas yield nothing. */
function eventDeltas(
  state: StreamState,
  event: Record<string, unknown> & { type?: string },
): StreamDelta[] {
  switch (event.type) {
    case 'message_start':
      mergeUsage(state, (event.message as { usage?: unknown } | undefined)?.usage);
      return [];
    case 'content_block_start':
      return blockStartDeltas(state, event);
    case 'content_block_delta':
      return blockDeltaDeltas(state, event);
    case 'content_block_stop':
      return blockStopDeltas(state, event);
    case 'message_delta': {
      mergeUsage(state, event.usage);
      const reason = (event.delta as { stop_reason?: string | null } | undefined)?.stop_reason;
      if (!reason) return [];
      state.finished = true;
      return [{ kind: 'finish', finishReason: finishReasonOf(reason) }];
    }
    case 'message_stop':
      state.stopped = true;
      return [];
    case 'error':
      throw streamError(state, event);
    default:
      return [];
  }
}

async function* streamCompletion(
  url: string,
  init: RequestInit,
  call: ProviderCall,
): AsyncGenerator<StreamDelta> {
  const response = await providerFetch(url, init, providerName, call.signal);
  if (!response.ok) throw await errorFromResponse(response, call);
  if (!response.body)
    throw new ProviderError('bad_gateway', 'anthropic sent an empty stream', false);
  const state: StreamState = {
    toolCalls: new Map(),
    usage: {},
    finished: false,
    stopped: false,
    yielded: false,
  };
  try {
    for await (const event of readServerSentEvents(response.body, call.responseBytesMax)) {
      for (const delta of eventDeltas(state, parseEvent(event))) {
        state.yielded = true;
        yield delta;
      }
      if (state.stopped) break;
    }
  } catch (error) {
    if (error instanceof StreamTooLargeError) throw responseTooLarge(providerName, error.bytesMax);
    const failure = bodyReadError(error, providerName, call.signal);
    // A cut after deltas went out keeps the counts message_start reported (the input was read).
    if (!state.yielded || failure.usage) throw failure;
    throw new ProviderError(
      failure.kind,
      failure.message,
      failure.retryable,
      anthropicUsage(state.usage),
    );
  }
  // Without message_stop the connection was cut: what arrived may be partial.
  if (!state.finished || !state.stopped)
    throw new ProviderError(
      'bad_gateway',
      'anthropic ended the stream early',
      false,
      state.yielded ? anthropicUsage(state.usage) : undefined,
    );
  yield { kind: 'usage', usage: anthropicUsage(state.usage) };
}

/**
 * Tools (parallel or not), images as data and as https URLs Anthropic fetches itself, and the end
 * user's pseudonym (`metadata.user_id`). No structured output: the Messages API has no JSON mode,
 * and a prompt asking for JSON is not a guarantee. No seed, penalties, logit bias or log
 * probabilities: the Messages API has none of them.
 */
export const anthropicCapabilities: ProviderCapabilities = {
  tools: true,
  parallelToolCalls: true,
  imageData: true,
  imageUrls: true,
  responseFormats: ['text'],
  options: ['user'],
};

export function createAnthropicProvider(
  credentials: () => Promise<ProviderCredentials>,
): ChatProvider {
  const connection = async (request: ProviderRequest, stream: boolean) => {
    const anthropic = (await credentials()).anthropic;
    if (!anthropic)
      throw new ProviderError(
        'not_configured',
        'provider not configured: anthropic has no API key yet',
        false,
      );
    const init: RequestInit = {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-api-key': anthropic.apiKey,
        'anthropic-version': anthropicVersion,
      },
      body: JSON.stringify(anthropicRequestBody(request, stream)),
    };
    return { url: `${anthropic.baseUrl}/v1/messages`, init };
  };
  return {
    name: providerName,
    capabilities: anthropicCapabilities,
    unsupported: anthropicUnsupported,
    async complete(request: ProviderRequest, call: ProviderCall): Promise<ProviderResponse> {
      const { url, init } = await connection(request, false);
      const parsed = (await fetchProviderJson(url, init, providerName, call, (response) =>
        errorFromResponse(response, call),
      )) as AnthropicMessageBody;
      return responseOf(parsed);
    },
    async *stream(request: ProviderRequest, call: ProviderCall): AsyncGenerator<StreamDelta> {
      const { url, init } = await connection(request, true);
      yield* streamCompletion(url, init, call);
    },
  };
}
