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
  type ChatMessage,
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
 * Gemini's generateContent REST API, and streamGenerateContent?alt=sse for streams. System messages
 * become the system instruction, assistant turns the `model` role; safety blocks become a clear
 * error (mid-stream too); usage is read from `usageMetadata`, which is cumulative in a stream: the
 * last one seen is the bill, never a sum. Thinking tokens are billed as output, never shown.
 */

const providerName = 'gemini';

interface GeminiContent {
  role: 'user' | 'model';
  parts: { text: string }[];
}

interface GeminiResponse {
  candidates?: {
    content?: { parts?: { text?: string; thought?: boolean }[] };
    finishReason?: string;
  }[];
  promptFeedback?: { blockReason?: string };
  usageMetadata?: {
    promptTokenCount?: number;
    candidatesTokenCount?: number;
    thoughtsTokenCount?: number;
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

/** Consecutive turns of one role are merged: Gemini wants the roles to alternate. */
export function toGeminiContents(messages: readonly ChatMessage[]): {
  contents: GeminiContent[];
  systemInstruction?: { parts: { text: string }[] };
} {
  const system = messages
    .filter((message) => message.role === 'system')
    .map((message) => messageText(message));
  const contents: GeminiContent[] = [];
  for (const message of messages) {
    if (message.role === 'system') continue;
    const role = message.role === 'assistant' ? 'model' : 'user';
    const last = contents.at(-1);
    const text = messageText(message);
    if (last && last.role === role) last.parts.push({ text });
    else contents.push({ role, parts: [{ text }] });
  }
  return {
    contents,
    systemInstruction: system.length > 0 ? { parts: [{ text: system.join('\n\n') }] } : undefined,
  };
}

function usageOf(body: GeminiResponse): TokenUsage | undefined {
  const metadata = body.usageMetadata;
  if (!metadata) return undefined;
  return {
    promptTokens: tokenCount(metadata.promptTokenCount ?? 0, 'gemini', 'promptTokenCount'),
    completionTokens:
      tokenCount(metadata.candidatesTokenCount ?? 0, 'gemini', 'candidatesTokenCount') +
      tokenCount(metadata.thoughtsTokenCount ?? 0, 'gemini', 'thoughtsTokenCount'),
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
  const text = (candidate.content?.parts ?? [])
    .filter((part) => !part.thought)
    .map((part) => part.text ?? '')
    .join('');
  const finishReason = finishReasonOf(candidate.finishReason);
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
  return { text, finishReason, usage };
}

function requestBody(request: ProviderRequest) {
  const { contents, systemInstruction } = toGeminiContents(request.messages);
  return {
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
  const text = (candidate.content?.parts ?? [])
    .filter((part) => !part.thought)
    .map((part) => part.text ?? '')
    .join('');
  if (text !== '') yield { kind: 'text', text };
  if (candidate.finishReason === undefined) return;
  const finishReason = finishReasonOf(candidate.finishReason);
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
  try {
    for await (const event of readServerSentEvents(response.body, call.responseBytesMax)) {
      const chunk = parseChunk(event.data);
      // Cumulative: each usageMetadata replaces the one before.
      usage = usageOf(chunk) ?? usage;
      for (const delta of chunkDeltas(chunk, usage)) {
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

/** Text only, for now. */
export const geminiCapabilities: ProviderCapabilities = {
  tools: false,
  parallelToolCalls: false,
  imageData: false,
  imageUrls: false,
  responseFormats: ['text'],
  options: [],
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
      body: JSON.stringify(requestBody(request)),
    };
    return { url, init };
  };
  return {
    name: providerName,
    capabilities: geminiCapabilities,
    async complete(request: ProviderRequest, call: ProviderCall): Promise<ProviderResponse> {
      const { url, init } = await connection(request, 'generateContent');
      const response = await providerFetch(url, init, providerName, call.signal);
      if (!response.ok) throw await errorFromResponse(response, call);
      let parsed: GeminiResponse;
      try {
        parsed = (await readProviderJson(
          response,
          providerName,
          call.responseBytesMax,
        )) as GeminiResponse;
      } catch (error) {
        throw bodyReadError(error, providerName, call.signal);
      }
      return responseOf(parsed);
    },
    async *stream(request: ProviderRequest, call: ProviderCall): AsyncGenerator<StreamDelta> {
      const { url, init } = await connection(request, 'streamGenerateContent?alt=sse');
      yield* streamCompletion(url, init, call);
    },
  };
}
