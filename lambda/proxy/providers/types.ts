/**
 * One interface for every model provider. The proxy speaks OpenAI's Chat Completions to clients
 * and this to providers; each provider maps it to its own API.
 */

/** A JSON Schema object as the client sent it (tool parameters, structured output). */
export type JsonSchema = { readonly [keyword: string]: unknown };

/** The image types every provider here accepts as inline data. */
export type ImageMediaType = 'image/png' | 'image/jpeg' | 'image/webp' | 'image/gif';

/**
 * One part of a user message. An image arrives either as data the client sent (a `data:` URL,
 * decoded, type-checked and size-bounded at the edge) or as an https URL that only a provider which
 * fetches URLs itself receives: the proxy never fetches a URL (no SSRF).
 */
export type ContentPart =
  | { readonly type: 'text'; readonly text: string }
  | {
      readonly type: 'image';
      readonly mediaType: ImageMediaType;
      /** Base64, without the `data:` prefix. */
      readonly data: string;
      readonly detail?: 'auto' | 'low' | 'high';
    }
  | { readonly type: 'image_url'; readonly url: string; readonly detail?: 'auto' | 'low' | 'high' };

/** A call the model asked for. The id is stable across turns: the tool's answer names it. */
export interface ToolCall {
  readonly id: string;
  readonly name: string;
  /** The arguments as JSON text, exactly as the model produced them (clients parse them). */
  readonly arguments: string;
}

export type ChatMessage =
  | { readonly role: 'system'; readonly content: string }
  | { readonly role: 'user'; readonly content: readonly ContentPart[] }
  | {
      readonly role: 'assistant';
      /** Null when the turn was only tool calls. */
      readonly content: string | null;
      readonly toolCalls?: readonly ToolCall[];
    }
  | { readonly role: 'tool'; readonly toolCallId: string; readonly content: string };

export interface ToolDefinition {
  readonly name: string;
  readonly description?: string;
  /** JSON Schema of the arguments (an object schema). */
  readonly parameters: JsonSchema;
  /** OpenAI's strict mode: the arguments must match the schema exactly. */
  readonly strict?: boolean;
}

export type ToolChoice =
  | { readonly type: 'auto' }
  | { readonly type: 'none' }
  | { readonly type: 'required' }
  | { readonly type: 'function'; readonly name: string };

export type ResponseFormat =
  | { readonly type: 'text' }
  | { readonly type: 'json_object' }
  | {
      readonly type: 'json_schema';
      readonly name: string;
      readonly description?: string;
      readonly schema: JsonSchema;
      readonly strict: boolean;
    };

/**
 * Options a provider honours or not. The proxy forwards each one to a provider that declares it in
 * its capabilities and refuses it with a 400 naming the option and the model otherwise: never a
 * silent drop.
 */
export interface GenerationOptions {
  readonly seed?: number;
  readonly presencePenalty?: number;
  readonly frequencyPenalty?: number;
  /** Token id (as a string) to bias, -100 to 100. */
  readonly logitBias?: Readonly<Record<string, number>>;
  readonly logprobs?: boolean;
  readonly topLogprobs?: number;
  readonly reasoningEffort?: 'minimal' | 'low' | 'medium' | 'high';
  /** The end user, for the provider's abuse monitoring (the proxy sends a pseudonym, never the raw value). */
  readonly user?: string;
  readonly metadata?: Readonly<Record<string, string>>;
}
export type GenerationOption = keyof GenerationOptions;

export interface ProviderRequest {
  /** The provider's own model name. */
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly maxOutputTokens: number;
  readonly temperature?: number;
  readonly topP?: number;
  readonly stop?: readonly string[];
  /** Absent: no tools offered. */
  readonly tools?: readonly ToolDefinition[];
  /** Absent: the provider's default (`auto` when tools are offered). */
  readonly toolChoice?: ToolChoice;
  /** Absent: the provider's default. */
  readonly parallelToolCalls?: boolean;
  /** Absent: plain text. */
  readonly responseFormat?: ResponseFormat;
  readonly options?: GenerationOptions;
}

export type FinishReason = 'stop' | 'length' | 'content_filter' | 'tool_calls';

/**
 * What a provider reports it used. `promptTokens` counts every input token, cached or not; the
 * cache counts are parts of it, billed at their own prices where the model has them.
 * `reasoningTokens` is the part of `completionTokens` spent thinking.
 */
export interface TokenUsage {
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Input tokens read from the provider's prompt cache. */
  readonly cachedPromptTokens?: number;
  /** Input tokens written to the provider's prompt cache (Anthropic, Bedrock). */
  readonly cacheCreationTokens?: number;
  readonly reasoningTokens?: number;
}

export interface ProviderResponse {
  /** The answer's text; empty when the turn is only tool calls. */
  readonly text: string;
  /** Absent or empty: no tool calls. */
  readonly toolCalls?: readonly ToolCall[];
  readonly finishReason: FinishReason;
  /** What the provider reports it used; the bill is computed from this. */
  readonly usage: TokenUsage;
}

/**
 * What a streaming call yields, in order: text and tool-call deltas as the provider produces them,
 * then its finish reason, then (when the provider reports it) its usage. Usage is the provider's
 * final, cumulative count, never a sum of partial counts.
 *
 * Tool calls stream as OpenAI's do: the first delta of a call (by `index`, counted from 0 in the
 * order calls start) carries its `id` and `name`; later deltas of the same index carry fragments of
 * its arguments' JSON text, which concatenate to the whole.
 */
export type StreamDelta =
  | { readonly kind: 'text'; readonly text: string }
  | {
      readonly kind: 'tool_call';
      readonly index: number;
      readonly id?: string;
      readonly name?: string;
      readonly argumentsDelta: string;
    }
  | { readonly kind: 'finish'; readonly finishReason: FinishReason }
  | { readonly kind: 'usage'; readonly usage: TokenUsage };

/**
 * What a provider can serve. The proxy checks a request against it before admission, so a request
 * a provider cannot serve is a 400 naming the field, with the ledger unchanged.
 */
export interface ProviderCapabilities {
  readonly tools: boolean;
  /** Whether it honours `parallel_tool_calls` (`false`: at most one call per turn); else the field is a 400. */
  readonly parallelToolCalls: boolean;
  /** Images sent as data. */
  readonly imageData: boolean;
  /** Images as https URLs the provider fetches itself. */
  readonly imageUrls: boolean;
  /** The `response_format` types it honours (`text` always). */
  readonly responseFormats: readonly ResponseFormat['type'][];
  readonly options: readonly GenerationOption[];
}

/** The text of a message, image parts left out (for estimates and providers that only take text). */
export function messageText(message: ChatMessage): string {
  if (message.role === 'user') {
    return message.content.map((part) => (part.type === 'text' ? part.text : '')).join('');
  }
  return message.content ?? '';
}

/** How one provider call is bounded. */
export interface ProviderCall {
  /** Aborts the upstream request: the client left, or a deadline passed. */
  readonly signal: AbortSignal;
  /** The most bytes read from the provider's response (a runaway answer is a 502, never an out-of-memory). */
  readonly responseBytesMax: number;
}

export type ProviderErrorKind =
  /** No key configured for this provider: 503 "provider not configured". */
  | 'not_configured'
  /** The provider refused the content (safety): 400, nothing to retry. */
  | 'blocked'
  /**
   * The provider refused what the client sent and the proxy passed through unchanged (an
   * OpenAI-compatible server's 400 about a tool schema, say): 400 with its sanitized message.
   */
  | 'rejected'
  /** The provider answered an error we may retry once (429, 5xx). */
  | 'unavailable'
  /** The provider answered something we cannot use, or a 4xx that is our bug: 502. */
  | 'bad_gateway'
  /** No answer in time: 504. */
  | 'timeout'
  /** The provider's response exceeded the configured byte cap: 502, nothing billed. */
  | 'too_large';

/** A provider failure with a message safe to show the client: never the provider's raw body. */
export class ProviderError extends Error {
  constructor(
    readonly kind: ProviderErrorKind,
    message: string,
    /** Whether one retry may help. */
    readonly retryable: boolean,
    /** Tokens the provider reports it used before failing, if any (billed when known). */
    readonly usage?: TokenUsage,
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}

export interface ChatProvider {
  readonly name: string;
  readonly capabilities: ProviderCapabilities;
  /**
   * Why this provider cannot serve a request its capabilities admit (e.g. a JSON Schema keyword it
   * cannot express), naming the field first as OpenAI names it (`tools[0].function.parameters.oneOf:
   * Gemini cannot express this keyword`: the error's `param`); undefined when it can. Called before
   * admission.
   */
  unsupported?(request: ProviderRequest): string | undefined;
  /** One whole completion. */
  complete(request: ProviderRequest, call: ProviderCall): Promise<ProviderResponse>;
  /** The completion as it is produced; failures (mid-stream too) are thrown as ProviderErrors. */
  stream(request: ProviderRequest, call: ProviderCall): AsyncIterable<StreamDelta>;
}

/** Longest provider message (already sanitized) passed on to a client. */
export const providerMessageLengthMax = 200;

/** A provider's error message, cut, with anything that looks like a key or a URL query removed. */
export function sanitizeProviderMessage(message: unknown): string {
  if (typeof message !== 'string' || message.trim() === '') return 'the provider returned an error';
  return message
    .replace(/[A-Za-z0-9_-]{32,}/g, '[redacted]')
    .replace(/https?:\/\/\S+/g, '[url]')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, providerMessageLengthMax);
}

/** Maps a provider's HTTP status to our error kind. */
export function errorKindForStatus(status: number): {
  kind: ProviderErrorKind;
  retryable: boolean;
} {
  if (status === 429 || status >= 500) return { kind: 'unavailable', retryable: true };
  return { kind: 'bad_gateway', retryable: false };
}

export function responseTooLarge(provider: string, bytesMax: number): ProviderError {
  return new ProviderError(
    'too_large',
    `${provider} sent a response over ${bytesMax} bytes; it was cut`,
    false,
  );
}

/** A body's text, reading at most `bytesMax` bytes (the transfer is cancelled beyond). */
export async function readBoundedText(
  response: Response,
  provider: string,
  bytesMax: number,
): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > bytesMax) {
    await response.body?.cancel().catch(() => undefined);
    throw responseTooLarge(provider, bytesMax);
  }
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      if (bytes > bytesMax) throw responseTooLarge(provider, bytesMax);
      chunks.push(value);
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * One whole (not streamed) provider call: sends it, turns an error status into the provider's own
 * error (`errorOf`), and reads the JSON answer within the call's byte cap. Every failure is a
 * ProviderError.
 */
export async function fetchProviderJson(
  url: string,
  init: RequestInit,
  provider: string,
  call: ProviderCall,
  errorOf: (response: Response) => Promise<ProviderError>,
): Promise<unknown> {
  const response = await providerFetch(url, init, provider, call.signal);
  if (!response.ok) throw await errorOf(response);
  try {
    return await readProviderJson(response, provider, call.responseBytesMax);
  } catch (error) {
    throw bodyReadError(error, provider, call.signal);
  }
}

/** Reads a JSON body, at most `bytesMax` bytes; a body that is not JSON is a 502 from the provider, never a crash. */
export async function readProviderJson(
  response: Response,
  provider: string,
  bytesMax: number,
): Promise<unknown> {
  const text = await readBoundedText(response, provider, bytesMax);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ProviderError(
      'bad_gateway',
      `${provider} returned a response that is not JSON (HTTP ${response.status})`,
      response.status >= 500,
    );
  }
}

/** A failure while reading a response body (after the headers came): an abort is a timeout, anything else a cut connection. */
export function bodyReadError(
  error: unknown,
  provider: string,
  signal: AbortSignal,
): ProviderError {
  if (error instanceof ProviderError) return error;
  if (signal.aborted)
    return new ProviderError('timeout', `${provider} did not finish in time`, false);
  return new ProviderError('bad_gateway', `${provider} cut the connection mid-response`, false);
}

/** fetch, with network failures and aborts as ProviderErrors. */
export async function providerFetch(
  url: string,
  init: RequestInit,
  provider: string,
  signal: AbortSignal,
): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal });
  } catch (error) {
    if (signal.aborted)
      throw new ProviderError('timeout', `${provider} did not answer in time`, false);
    const name = (error as { cause?: { code?: string } })?.cause?.code ?? 'network error';
    throw new ProviderError('unavailable', `${provider} could not be reached (${name})`, true);
  }
}

/** A token count a provider reported, checked: a non-negative safe integer, or a 502 (never a crash, never a wrong bill). */
export function tokenCount(value: unknown, provider: string, field: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  throw new ProviderError(
    'bad_gateway',
    `${provider} reported an invalid ${field}; the request cannot be billed`,
    false,
  );
}
