import { randomBytes } from 'node:crypto';
import { StreamTooLargeError, readServerSentEvents } from '../sse';
import { geminiRequestBody, geminiUnsupported } from './gemini-request';
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
  type TokenUsage,
  type ToolCall,
} from './types';

/**
 * Gemini's generateContent REST API, and streamGenerateContent?alt=sse for streams. System messages
 * become the system instruction, assistant turns the `model` role; safety blocks become a clear
 * error (mid-stream too); usage is read from `usageMetadata`, which is cumulative in a stream: the
 * last one seen is the bill, never a sum. Thinking tokens are billed as output, never shown.
 */

const providerName = 'gemini';

interface GeminiPart {
  text?: string;
  thought?: boolean;
  functionCall?: { name?: unknown; args?: unknown };
}

interface GeminiResponse {
  candidates?: {
    content?: { parts?: GeminiPart[] };
    finishReason?: string;
  }[];
  promptFeedback?: { blockReason?: string };
  usageMetadata?: {
    promptTokenCount?: number;
    candidatesTokenCount?: number;
    thoughtsTokenCount?: number;
    cachedContentTokenCount?: number;
  };
  error?: { message?: string; status?: string };
}

const contentFilterReasons = new Set([
  'SAFETY',
  'RECITATION',
  'BLOCKLIST',
  'PROHIBITED_CONTENT',
  'SPII',
  'IMAGE_SAFETY',
]);

function usageOf(body: GeminiResponse): TokenUsage | undefined {
  const metadata = body.usageMetadata;
  if (!metadata) return undefined;
  // The prompt count includes the cached part; thinking is billed as output, at the reasoning price.
  const reasoningTokens = tokenCount(
    metadata.thoughtsTokenCount ?? 0,
    'gemini',
    'thoughtsTokenCount',
  );
  return {
    promptTokens: tokenCount(metadata.promptTokenCount ?? 0, 'gemini', 'promptTokenCount'),
    completionTokens:
      tokenCount(metadata.candidatesTokenCount ?? 0, 'gemini', 'candidatesTokenCount') +
      reasoningTokens,
    cachedPromptTokens: tokenCount(
      metadata.cachedContentTokenCount ?? 0,
      'gemini',
      'cachedContentTokenCount',
    ),
    reasoningTokens,
  };
}

/** Gemini's call as the contract's, with an id of our own (Gemini names calls by function, not by id). */
function toolCallOf(call: NonNullable<GeminiPart['functionCall']>): ToolCall {
  const args = call.args ?? {};
  if (
    typeof call.name !== 'string' ||
    typeof args !== 'object' ||
    args === null ||
    Array.isArray(args)
  )
    throw new ProviderError('bad_gateway', 'gemini returned a malformed function call', false);
  return {
    id: `call_${randomBytes(12).toString('hex')}`,
    name: call.name,
    arguments: JSON.stringify(args),
  };
}

/** The visible text and the function calls of a candidate's parts (thoughts are never shown). */
function partsContent(parts: readonly GeminiPart[]): { text: string; toolCalls: ToolCall[] } {
  const visible = parts.filter((part) => !part.thought);
  return {
    text: visible.map((part) => part.text ?? '').join(''),
    toolCalls: visible.flatMap((part) =>
      part.functionCall ? [toolCallOf(part.functionCall)] : [],
    ),
  };
}

/** Gemini's endings that mean its own function call went wrong: nothing the client can use. */
const malformedCallReasons = new Set(['MALFORMED_FUNCTION_CALL', 'UNEXPECTED_TOOL_CALL']);

/** The contract's finish reason; a malformed call is a 502, billed what Gemini reports it used. */
function finishReasonOf(
  reason: string | undefined,
  calledTools = false,
  usage?: TokenUsage,
): FinishReason {
  if (reason !== undefined && malformedCallReasons.has(reason))
    throw new ProviderError(
      'bad_gateway',
      `gemini could not complete a function call (${reason})`,
      false,
      usage,
    );
  if (reason === 'MAX_TOKENS') return 'length';
  if (reason !== undefined && contentFilterReasons.has(reason)) return 'content_filter';
  return calledTools ? 'tool_calls' : 'stop';
}

function responseOf(body: GeminiResponse): ProviderResponse {
  const usage = usageOf(body);
  if (body.promptFeedback?.blockReason) {
    throw new ProviderError(
      'blocked',
      `the prompt was blocked by the provider's safety filter (${sanitizeProviderMessage(body.promptFeedback.blockReason)})`,
      false,
      usage,
    );
  }
  const candidate = body.candidates?.[0];
  if (!candidate)
    throw new ProviderError('bad_gateway', 'gemini returned no candidate', false, usage);
  const { text, toolCalls } = partsContent(candidate.content?.parts ?? []);
  const finishReason = finishReasonOf(candidate.finishReason, toolCalls.length > 0, usage);
  if (finishReason === 'content_filter' && text === '') {
    throw new ProviderError(
      'blocked',
      `the response was blocked by the provider's safety filter (${sanitizeProviderMessage(candidate.finishReason)})`,
      false,
      usage,
    );
  }
  if (!usage)
    throw new ProviderError(
      'bad_gateway',
      'gemini returned no usage metadata; the request cannot be billed',
      false,
    );
  return toolCalls.length > 0
    ? { text, toolCalls, finishReason, usage }
    : { text, finishReason, usage };
}

async function errorFromResponse(response: Response, call: ProviderCall): Promise<ProviderError> {
  const parsed = (await readProviderJson(
    response,
    providerName,
    call.responseBytesMax,
  )) as GeminiResponse;
  const { kind, retryable } = errorKindForStatus(response.status);
  return new ProviderError(
    kind,
    `gemini answered ${response.status}: ${sanitizeProviderMessage(parsed.error?.message)}`,
    retryable,
  );
}

function parseChunk(data: string): GeminiResponse {
  try {
    return JSON.parse(data) as GeminiResponse;
  } catch {
    throw new ProviderError('bad_gateway', 'gemini sent a stream event that is not JSON', false);
  }
}

/** The deltas of one stream chunk; a block (of the prompt, or of the answer mid-stream) ends the stream with an error. */
function* chunkDeltas(
  chunk: GeminiResponse,
  usage: TokenUsage | undefined,
  calls: { count: number },
): Generator<StreamDelta> {
  if (chunk.error)
    throw new ProviderError(
      'unavailable',
      `gemini failed mid-stream: ${sanitizeProviderMessage(chunk.error.message)}`,
      false,
      usage,
    );
  if (chunk.promptFeedback?.blockReason) {
    throw new ProviderError(
      'blocked',
      `the prompt was blocked by the provider's safety filter (${sanitizeProviderMessage(chunk.promptFeedback.blockReason)})`,
      false,
      usage,
    );
  }
  const candidate = chunk.candidates?.[0];
  if (!candidate) return;
  const { text, toolCalls } = partsContent(candidate.content?.parts ?? []);
  if (text !== '') yield { kind: 'text', text };
  // Gemini sends each call whole: one delta per call, its id and name with all its arguments.
  for (const call of toolCalls) {
    yield {
      kind: 'tool_call',
      index: calls.count,
      id: call.id,
      name: call.name,
      argumentsDelta: call.arguments,
    };
    calls.count += 1;
  }
  if (candidate.finishReason === undefined) return;
  const finishReason = finishReasonOf(candidate.finishReason, calls.count > 0, usage);
  if (finishReason === 'content_filter') {
    throw new ProviderError(
      'blocked',
      `the response was blocked by the provider's safety filter (${sanitizeProviderMessage(candidate.finishReason)})`,
      false,
      usage,
    );
  }
  yield { kind: 'finish', finishReason };
}

async function* streamCompletion(
  url: string,
  init: RequestInit,
  call: ProviderCall,
): AsyncGenerator<StreamDelta> {
  const response = await providerFetch(url, init, providerName, call.signal);
  if (!response.ok) throw await errorFromResponse(response, call);
  if (!response.body) throw new ProviderError('bad_gateway', 'gemini sent an empty stream', false);
  let usage: TokenUsage | undefined;
  let finished = false;
  const calls = { count: 0 };
  try {
    for await (const event of readServerSentEvents(response.body, call.responseBytesMax)) {
      const chunk = parseChunk(event.data);
      // Cumulative: each usageMetadata replaces the one before.
      usage = usageOf(chunk) ?? usage;
      for (const delta of chunkDeltas(chunk, usage, calls)) {
        if (delta.kind === 'finish') finished = true;
        yield delta;
      }
    }
  } catch (error) {
    if (error instanceof StreamTooLargeError) throw responseTooLarge(providerName, error.bytesMax);
    throw bodyReadError(error, providerName, call.signal);
  }
  if (!finished)
    throw new ProviderError(
      'bad_gateway',
      'gemini ended the stream without a finish reason',
      false,
      usage,
    );
  // Without usage the proxy settles an estimate of what was streamed (and logs it as one).
  if (usage) yield { kind: 'usage', usage };
}

/**
 * Tools, structured output, images as data, and the options generationConfig has. Not: image URLs
 * (Gemini would need the proxy to fetch them: it never does), `parallel_tool_calls` (Gemini has no
 * such switch), `logit_bias`, `logprobs` (the contract carries none back), `user` and `metadata`.
 */
export const geminiCapabilities: ProviderCapabilities = {
  tools: true,
  parallelToolCalls: false,
  imageData: true,
  imageUrls: false,
  responseFormats: ['text', 'json_object', 'json_schema'],
  options: ['seed', 'presencePenalty', 'frequencyPenalty', 'reasoningEffort'],
};

export function createGeminiProvider(
  credentials: () => Promise<ProviderCredentials>,
): ChatProvider {
  const connection = async (
    request: ProviderRequest,
    method: 'generateContent' | 'streamGenerateContent?alt=sse',
  ) => {
    const gemini = (await credentials()).gemini;
    if (!gemini)
      throw new ProviderError(
        'not_configured',
        'provider not configured: gemini has no API key yet',
        false,
      );
    const url = `${gemini.baseUrl}/v1beta/models/${encodeURIComponent(request.model)}:${method}`;
    const init: RequestInit = {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-goog-api-key': gemini.apiKey },
      body: JSON.stringify(geminiRequestBody(request)),
    };
    return { url, init };
  };
  return {
    name: providerName,
    capabilities: geminiCapabilities,
    unsupported: geminiUnsupported,
    async complete(request: ProviderRequest, call: ProviderCall): Promise<ProviderResponse> {
      const { url, init } = await connection(request, 'generateContent');
      const parsed = (await fetchProviderJson(url, init, providerName, call, (response) =>
        errorFromResponse(response, call),
      )) as GeminiResponse;
      return responseOf(parsed);
    },
    async *stream(request: ProviderRequest, call: ProviderCall): AsyncGenerator<StreamDelta> {
      const { url, init } = await connection(request, 'streamGenerateContent?alt=sse');
      yield* streamCompletion(url, init, call);
    },
  };
}
