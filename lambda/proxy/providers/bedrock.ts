import { AwsV4Signer } from 'aws4fetch';
import {
  AwsCallError,
  awsServiceEndpoint,
  environmentCredentials,
  type AwsCredentials,
} from '../../../runtime/aws-json-client';
import { StreamTooLargeError } from '../sse';
import { EventStreamFrameError, readEventStream } from './aws-event-stream';
import {
  ProviderError,
  bodyReadError,
  errorKindForStatus,
  providerFetch,
  readBoundedText,
  responseTooLarge,
  sanitizeProviderMessage,
  tokenCount,
  type ChatMessage,
  type ChatProvider,
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
 * Amazon Bedrock's Converse and ConverseStream APIs, signed with the function's own IAM role (SigV4,
 * aws4fetch's signer, the execution role's credentials from the environment): no provider key.
 * Not through @aws-sdk/client-bedrock-runtime: bundled, it more than triples the proxy (165 KiB to
 * about 520 KiB) and doubles its cold import even when loaded lazily (README, benchmarks), for two
 * operations; the one thing the SDK would add, the event-stream framing, is
 * `aws-event-stream.ts`, and the tests check both against the SDK itself. In AWS the calls go to the
 * `bedrock-runtime` interface endpoint in the VPC (private DNS), never through the NAT.
 *
 * Mapped both ways: system messages to `system`, user text and images (bytes) to content blocks,
 * assistant tool calls to `toolUse`, tool answers to `toolResult` (in the user turn that follows),
 * tools to `toolSpec` with `toolChoice` auto/any/tool, max tokens, temperature, top-p and stop
 * sequences to `inferenceConfig`; back: text, `toolUse` blocks as tool calls, `stopReason` as the
 * finish reason, and `usage` (the `metadata` event in a stream). Bedrock's `inputTokens` excludes
 * the prompt-cache reads and writes, which it counts apart; the prompt is their sum.
 *
 * Not offered (the capability check refuses them with a 400): `response_format` json_object and
 * json_schema (Converse has no JSON mode; forcing a tool instead would turn the answer into tool-call
 * arguments and change the finish reason, which a client asking for JSON content does not expect),
 * image URLs (Converse reads images from bytes or S3 only, and the proxy never fetches a URL),
 * `parallel_tool_calls` (Converse has no switch for it), and the sampling options Converse lacks.
 */

const providerName = 'bedrock';
/** The IAM and SigV4 service name of the Bedrock APIs. */
const signingName = 'bedrock';

type ImageFormat = 'png' | 'jpeg' | 'gif' | 'webp';

type BedrockContentBlock =
  | { text: string }
  | { image: { format: ImageFormat; source: { bytes: string } } }
  | { toolUse: { toolUseId: string; name: string; input: unknown } }
  | { toolResult: { toolUseId: string; content: { text: string }[] } };

interface BedrockMessage {
  role: 'user' | 'assistant';
  content: BedrockContentBlock[];
}

interface BedrockUsage {
  inputTokens?: unknown;
  outputTokens?: unknown;
  cacheReadInputTokens?: unknown;
  cacheWriteInputTokens?: unknown;
}

interface ConverseResponse {
  output?: { message?: { content?: Record<string, unknown>[] } };
  stopReason?: string;
  usage?: BedrockUsage;
}

const imageFormats = {
  'image/png': 'png',
  'image/jpeg': 'jpeg',
  'image/gif': 'gif',
  'image/webp': 'webp',
} as const;

/** The blocks of one message of ours, and the Bedrock role they belong to (a tool's answer is the user's). */
function contentBlocks(message: Exclude<ChatMessage, { role: 'system' }>): BedrockMessage {
  if (message.role === 'tool')
    return {
      role: 'user',
      content: [
        { toolResult: { toolUseId: message.toolCallId, content: [{ text: message.content }] } },
      ],
    };
  if (message.role === 'assistant') {
    const content: BedrockContentBlock[] = [];
    if (message.content) content.push({ text: message.content });
    for (const call of message.toolCalls ?? [])
      content.push({
        toolUse: { toolUseId: call.id, name: call.name, input: JSON.parse(call.arguments) },
      });
    return { role: 'assistant', content };
  }
  const content: BedrockContentBlock[] = [];
  for (const part of message.content) {
    if (part.type === 'text') content.push({ text: part.text });
    else if (part.type === 'image')
      content.push({
        image: { format: imageFormats[part.mediaType], source: { bytes: part.data } },
      });
    // image_url parts never get here: the capability check refuses them before admission.
  }
  return { role: 'user', content };
}

/**
 * Our messages as Converse's `system` and `messages`. Consecutive turns of one role are merged:
 * Converse wants the roles to alternate, and the answers to several tool calls of one assistant
 * turn must come together, in the user turn that follows it.
 */
export function toBedrockMessages(messages: readonly ChatMessage[]): {
  system: { text: string }[];
  messages: BedrockMessage[];
} {
  const system: { text: string }[] = [];
  const merged: BedrockMessage[] = [];
  for (const message of messages) {
    if (message.role === 'system') {
      system.push({ text: message.content });
      continue;
    }
    const next = contentBlocks(message);
    const last = merged.at(-1);
    if (last && last.role === next.role) last.content.push(...next.content);
    else merged.push(next);
  }
  return { system, messages: merged };
}

function toolConfigOf(request: ProviderRequest) {
  if (!request.tools || request.tools.length === 0) return undefined;
  const choice = request.toolChoice ?? { type: 'auto' };
  const toolChoice =
    choice.type === 'required'
      ? { any: {} }
      : choice.type === 'function'
        ? { tool: { name: choice.name } }
        : { auto: {} };
  return {
    tools: request.tools.map((tool) => ({
      toolSpec: {
        name: tool.name,
        description: tool.description,
        inputSchema: { json: tool.parameters },
      },
    })),
    toolChoice,
  };
}

/** The Converse (and ConverseStream) request body. */
export function converseBody(request: ProviderRequest) {
  const { system, messages } = toBedrockMessages(request.messages);
  return {
    messages,
    system: system.length > 0 ? system : undefined,
    inferenceConfig: {
      maxTokens: request.maxOutputTokens,
      temperature: request.temperature,
      topP: request.topP,
      stopSequences: request.stop && request.stop.length > 0 ? request.stop : undefined,
    },
    toolConfig: toolConfigOf(request),
  };
}

function hasToolTurns(messages: readonly ChatMessage[]): boolean {
  return messages.some(
    (message) =>
      message.role === 'tool' ||
      (message.role === 'assistant' && (message.toolCalls ?? []).length > 0),
  );
}

/** What Converse cannot express although the capabilities admit it; named for the client's 400. */
export function bedrockUnsupported(request: ProviderRequest): string | undefined {
  const strict = (request.tools ?? []).findIndex((tool) => tool.strict === true);
  if (strict >= 0)
    return `tools[${strict}].function.strict: bedrock cannot enforce a tool's schema strictly`;
  const toolTurns = hasToolTurns(request.messages);
  if (request.toolChoice?.type === 'none' && (request.tools ?? []).length > 0 && toolTurns)
    return "tool_choice 'none' with tool calls in the conversation: bedrock has no 'none' choice and needs the tools defined";
  if (toolTurns && (request.tools ?? []).length === 0)
    return 'messages carry tool calls but no tools are defined: bedrock needs the tools of a conversation that used them';
  for (const [index, message] of request.messages.entries()) {
    if (message.role !== 'assistant') continue;
    for (const call of message.toolCalls ?? []) {
      if (!isJsonObject(call.arguments))
        return `messages[${index}].tool_calls: the arguments of ${call.id} are not a JSON object (bedrock takes them as one)`;
    }
  }
  return undefined;
}

function isJsonObject(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

/** `tool_choice: none` with no tool turns: offering no tools is how Converse says it. */
function withoutNoneChoice(request: ProviderRequest): ProviderRequest {
  if (request.toolChoice?.type !== 'none') return request;
  return { ...request, tools: undefined, toolChoice: undefined };
}

export function finishReasonOf(stopReason: unknown): FinishReason {
  switch (stopReason) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'guardrail_intervened':
    case 'content_filtered':
      return 'content_filter';
    default:
      // end_turn, stop_sequence
      return 'stop';
  }
}

export function usageOf(usage: BedrockUsage | undefined): TokenUsage {
  if (!usage || typeof usage !== 'object')
    throw new ProviderError(
      'bad_gateway',
      'bedrock returned no usage; the request cannot be billed',
      false,
    );
  const input = tokenCount(usage.inputTokens, providerName, 'inputTokens');
  const output = tokenCount(usage.outputTokens, providerName, 'outputTokens');
  const cacheRead =
    usage.cacheReadInputTokens === undefined
      ? undefined
      : tokenCount(usage.cacheReadInputTokens, providerName, 'cacheReadInputTokens');
  const cacheWrite =
    usage.cacheWriteInputTokens === undefined
      ? undefined
      : tokenCount(usage.cacheWriteInputTokens, providerName, 'cacheWriteInputTokens');
  return {
    promptTokens: input + (cacheRead ?? 0) + (cacheWrite ?? 0),
    completionTokens: output,
    ...(cacheRead === undefined ? {} : { cachedPromptTokens: cacheRead }),
    ...(cacheWrite === undefined ? {} : { cacheCreationTokens: cacheWrite }),
  };
}

/** Account ids and ARNs (a role's, a model's, an inference profile's) never reach a client. */
export function sanitizeBedrockMessage(message: unknown): string {
  if (typeof message !== 'string') return sanitizeProviderMessage(message);
  return sanitizeProviderMessage(
    message.replace(/arn:aws[a-z-]*:[^\s"',]+/g, '[arn]').replace(/\b\d{12}\b/g, '[account]'),
  );
}

const retryableCodes = new Set([
  'ThrottlingException',
  'ServiceUnavailableException',
  'ModelNotReadyException',
  'InternalServerException',
  'InternalFailure',
]);
/** The account, the role or the model is not set up for this call: an operator's fix, never a retry. */
const notConfiguredCodes = new Set([
  'AccessDeniedException',
  'UnrecognizedClientException',
  'ExpiredTokenException',
  'InvalidSignatureException',
  'ResourceNotFoundException',
  'CredentialsMissing',
]);

/** A Bedrock error (HTTP or stream exception) by its code, with a message safe for the client. */
export function bedrockError(
  code: string,
  status: number | undefined,
  message: unknown,
  usage?: TokenUsage,
): ProviderError {
  const detail = sanitizeBedrockMessage(message);
  if (notConfiguredCodes.has(code))
    // The raw text names the role and the model's ARN: only the code is passed on.
    return new ProviderError(
      'not_configured',
      `provider not configured: bedrock refused the call (${code}); enable access to the model in the Bedrock console and check the function's IAM policy and region`,
      false,
      usage,
    );
  if (retryableCodes.has(code))
    return new ProviderError(
      'unavailable',
      `bedrock is unavailable (${code}): ${detail}`,
      true,
      usage,
    );
  if (code === 'ModelTimeoutException')
    return new ProviderError('timeout', `bedrock's model did not answer in time`, false, usage);
  if (code === 'ServiceQuotaExceededException')
    return new ProviderError(
      'unavailable',
      `bedrock's quota is exhausted: ${detail}`,
      false,
      usage,
    );
  // What the client sent, mapped as it is, was refused (a prompt over the context window, an image
  // or a tool schema Bedrock does not take): the client's 400, with Bedrock's sanitized reason.
  if (code === 'ValidationException')
    return new ProviderError('rejected', `bedrock refused the request: ${detail}`, false, usage);
  if (code === 'ModelErrorException' || code === 'ModelStreamErrorException')
    return new ProviderError('bad_gateway', `bedrock's model failed: ${detail}`, false, usage);
  const { kind, retryable } =
    status === undefined
      ? { kind: 'bad_gateway' as const, retryable: false }
      : errorKindForStatus(status);
  return new ProviderError(kind, `bedrock answered ${code}: ${detail}`, retryable, usage);
}

/** "ValidationException:http://internal.amazon.com/..." and "com.amazon.bedrock#ValidationException" name the bare code. */
function bareCode(raw: string): string {
  return raw.split(':')[0].split('#').pop() as string;
}

async function errorFromResponse(response: Response, call: ProviderCall): Promise<ProviderError> {
  const text = await readBoundedText(response, providerName, call.responseBytesMax);
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null) body = parsed as Record<string, unknown>;
  } catch {
    // Not JSON (a proxy's page): the status says what happened.
  }
  const raw =
    response.headers.get('x-amzn-errortype') ??
    (typeof body.__type === 'string' ? body.__type : `Http${response.status}`);
  return bedrockError(bareCode(raw), response.status, body.message ?? body.Message);
}

function parseJson(bytes: Uint8Array | string, what: string): Record<string, unknown> {
  try {
    const text = typeof bytes === 'string' ? bytes : new TextDecoder().decode(bytes);
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new ProviderError('bad_gateway', `bedrock sent ${what} that is not a JSON object`, false);
}

/** A whole Converse answer. */
export function responseOf(body: ConverseResponse): ProviderResponse {
  const usage = usageOf(body.usage);
  const blocks = body.output?.message?.content;
  if (!Array.isArray(blocks))
    throw new ProviderError('bad_gateway', 'bedrock returned no message', false, usage);
  let text = '';
  const toolCalls: ToolCall[] = [];
  for (const block of blocks) {
    if (typeof block.text === 'string') text += block.text;
    const toolUse = block.toolUse as
      { toolUseId?: unknown; name?: unknown; input?: unknown } | undefined;
    if (toolUse) {
      if (typeof toolUse.toolUseId !== 'string' || typeof toolUse.name !== 'string')
        throw new ProviderError(
          'bad_gateway',
          'bedrock returned a tool use without id or name',
          false,
          usage,
        );
      toolCalls.push({
        id: toolUse.toolUseId,
        name: toolUse.name,
        arguments: JSON.stringify(toolUse.input ?? {}),
      });
    }
    // reasoningContent blocks are the model's thinking: billed (in outputTokens), never shown.
  }
  const finishReason = finishReasonOf(body.stopReason);
  if (finishReason === 'content_filter' && text === '' && toolCalls.length === 0)
    throw new ProviderError(
      'blocked',
      `the request was blocked by bedrock (${sanitizeBedrockMessage(body.stopReason)})`,
      false,
      usage,
    );
  return { text, finishReason, usage, ...(toolCalls.length > 0 ? { toolCalls } : {}) };
}

/** What one stream keeps between events: where each tool call's block is, whether it ended, its usage. */
interface StreamState {
  readonly toolIndexByBlock: Map<number, number>;
  finished: boolean;
  usage?: TokenUsage;
}

function blockIndexOf(payload: Record<string, unknown>): number {
  const index = payload.contentBlockIndex;
  if (typeof index === 'number' && Number.isSafeInteger(index) && index >= 0) return index;
  throw new ProviderError('bad_gateway', 'bedrock sent a content block without its index', false);
}

/** The deltas of one ConverseStream event. */
export function* eventDeltas(
  eventType: string | undefined,
  payload: Record<string, unknown>,
  state: StreamState,
): Generator<StreamDelta> {
  if (eventType === 'contentBlockStart') {
    const toolUse = (payload.start as { toolUse?: { toolUseId?: unknown; name?: unknown } })
      ?.toolUse;
    if (!toolUse) return;
    if (typeof toolUse.toolUseId !== 'string' || typeof toolUse.name !== 'string')
      throw new ProviderError(
        'bad_gateway',
        'bedrock started a tool use without id or name',
        false,
      );
    const index = state.toolIndexByBlock.size;
    state.toolIndexByBlock.set(blockIndexOf(payload), index);
    yield {
      kind: 'tool_call',
      index,
      id: toolUse.toolUseId,
      name: toolUse.name,
      argumentsDelta: '',
    };
  } else if (eventType === 'contentBlockDelta') {
    const delta = (payload.delta ?? {}) as { text?: unknown; toolUse?: { input?: unknown } };
    if (typeof delta.text === 'string' && delta.text !== '')
      yield { kind: 'text', text: delta.text };
    if (delta.toolUse !== undefined) {
      const index = state.toolIndexByBlock.get(blockIndexOf(payload));
      if (index === undefined || typeof delta.toolUse.input !== 'string')
        throw new ProviderError('bad_gateway', 'bedrock sent tool input outside a tool use', false);
      if (delta.toolUse.input !== '')
        yield { kind: 'tool_call', index, argumentsDelta: delta.toolUse.input };
    }
    // reasoningContent deltas are the model's thinking: billed (in outputTokens), never shown.
  } else if (eventType === 'messageStop') {
    state.finished = true;
    yield { kind: 'finish', finishReason: finishReasonOf(payload.stopReason) };
  } else if (eventType === 'metadata') {
    // The one usage report of a stream, after messageStop.
    state.usage = usageOf(payload.usage as BedrockUsage | undefined);
  }
  // messageStart and contentBlockStop carry nothing the client needs.
}

function lowerCamelToPascal(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

async function* streamCompletion(
  url: string,
  init: RequestInit,
  call: ProviderCall,
): AsyncGenerator<StreamDelta> {
  const response = await providerFetch(url, init, providerName, call.signal);
  if (!response.ok) throw await errorFromResponse(response, call);
  if (!response.body) throw new ProviderError('bad_gateway', 'bedrock sent an empty stream', false);
  const state: StreamState = { toolIndexByBlock: new Map(), finished: false };
  try {
    for await (const message of readEventStream(response.body, call.responseBytesMax)) {
      const messageType = message.headers[':message-type'];
      if (messageType === 'exception') {
        // A failure mid-stream (`throttlingException`, `modelStreamErrorException`, ...).
        const payload = parseJson(message.payload, 'an exception');
        throw bedrockError(
          lowerCamelToPascal(message.headers[':exception-type'] ?? 'UnknownException'),
          undefined,
          payload.message ?? payload.Message,
          state.usage,
        );
      }
      if (messageType === 'error')
        throw bedrockError(
          message.headers[':error-code'] ?? 'UnknownError',
          undefined,
          message.headers[':error-message'],
          state.usage,
        );
      if (messageType !== 'event') continue;
      yield* eventDeltas(
        message.headers[':event-type'],
        parseJson(message.payload, 'an event'),
        state,
      );
    }
  } catch (error) {
    if (error instanceof StreamTooLargeError) throw responseTooLarge(providerName, error.bytesMax);
    if (error instanceof EventStreamFrameError)
      throw new ProviderError('bad_gateway', `bedrock sent a ${error.message}`, false, state.usage);
    throw bodyReadError(error, providerName, call.signal);
  }
  if (!state.finished)
    throw new ProviderError('bad_gateway', 'bedrock ended the stream early', false, state.usage);
  // Without the metadata event the proxy settles an estimate of what was streamed (and logs it as one).
  if (state.usage) yield { kind: 'usage', usage: state.usage };
}

export const bedrockCapabilities: ProviderCapabilities = {
  tools: true,
  parallelToolCalls: false,
  imageData: true,
  imageUrls: false,
  responseFormats: ['text'],
  options: [],
};

export interface BedrockProviderOptions {
  /** The region of the Bedrock runtime endpoint: the function's own (inference profiles route from there). */
  readonly region: string;
  /** Default: the execution role's credentials from the environment, read at every call. */
  readonly credentials?: () => AwsCredentials;
  /** Default: the regional endpoint, or AWS_ENDPOINT_URL_BEDROCK_RUNTIME (the SDK's own override). */
  readonly endpoint?: string;
}

export function createBedrockProvider(options: BedrockProviderOptions): ChatProvider {
  const credentials = options.credentials ?? (() => environmentCredentials());
  const endpoint =
    options.endpoint ??
    awsServiceEndpoint('bedrock-runtime', 'AWS_ENDPOINT_URL_BEDROCK_RUNTIME', options.region);
  const signingKeys = new Map<string, ArrayBuffer>(); // aws4fetch caches the derived key per day

  const signed = async (
    request: ProviderRequest,
    operation: 'converse' | 'converse-stream',
  ): Promise<{ url: string; init: RequestInit }> => {
    let identity: AwsCredentials;
    try {
      identity = credentials();
    } catch (error) {
      if (error instanceof AwsCallError) throw bedrockError(error.code, undefined, undefined);
      throw error;
    }
    const url = `${endpoint.replace(/\/+$/, '')}/model/${encodeURIComponent(request.model)}/${operation}`;
    const body = JSON.stringify(converseBody(withoutNoneChoice(request)));
    const signer = new AwsV4Signer({
      url,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept:
          operation === 'converse' ? 'application/json' : 'application/vnd.amazon.eventstream',
      },
      body,
      ...identity,
      service: signingName,
      region: options.region,
      cache: signingKeys,
    });
    const signedRequest = await signer.sign();
    return {
      url: signedRequest.url.toString(),
      init: { method: 'POST', headers: signedRequest.headers, body },
    };
  };

  return {
    name: providerName,
    capabilities: bedrockCapabilities,
    unsupported: bedrockUnsupported,
    async complete(request: ProviderRequest, call: ProviderCall): Promise<ProviderResponse> {
      const { url, init } = await signed(request, 'converse');
      const response = await providerFetch(url, init, providerName, call.signal);
      if (!response.ok) throw await errorFromResponse(response, call);
      let text: string;
      try {
        text = await readBoundedText(response, providerName, call.responseBytesMax);
      } catch (error) {
        throw bodyReadError(error, providerName, call.signal);
      }
      return responseOf(parseJson(text, 'a response') as ConverseResponse);
    },
    async *stream(request: ProviderRequest, call: ProviderCall): AsyncGenerator<StreamDelta> {
      const { url, init } = await signed(request, 'converse-stream');
      yield* streamCompletion(url, init, call);
    },
  };
}
