/**
 * One interface for every model provider. The proxy speaks OpenAI's Chat Completions to clients
 * and this to providers; each provider maps it to its own API.
 */

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

export interface ProviderRequest {
  /** The provider's own model name. */
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly maxOutputTokens: number;
  readonly temperature?: number;
  readonly topP?: number;
  readonly stop?: readonly string[];
}

export type FinishReason = 'stop' | 'length' | 'content_filter';

export interface ProviderResponse {
  readonly text: string;
  readonly finishReason: FinishReason;
  /** What the provider reports it used; the bill is computed from this. */
  readonly usage: { readonly promptTokens: number; readonly completionTokens: number };
}

export type ProviderErrorKind =
  /** No key configured for this provider: 503 "provider not configured". */
  | 'not_configured'
  /** The provider refused the content (safety): 400, nothing to retry. */
  | 'blocked'
  /** The provider answered an error we may retry once (429, 5xx). */
  | 'unavailable'
  /** The provider answered something we cannot use, or a 4xx that is our bug: 502. */
  | 'bad_gateway'
  /** No answer in time: 504. */
  | 'timeout';

/** A provider failure with a message safe to show the client: never the provider's raw body. */
export class ProviderError extends Error {
  constructor(
    readonly kind: ProviderErrorKind,
    message: string,
    /** Whether one retry may help. */
    readonly retryable: boolean,
    /** Tokens the provider reports it used before failing, if any (billed when known). */
    readonly usage?: ProviderResponse['usage'],
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}

export interface ChatProvider {
  readonly name: string;
  complete(request: ProviderRequest, signal: AbortSignal): Promise<ProviderResponse>;
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
export function errorKindForStatus(status: number): { kind: ProviderErrorKind; retryable: boolean } {
  if (status === 429 || status >= 500) return { kind: 'unavailable', retryable: true };
  return { kind: 'bad_gateway', retryable: false };
}

/** Reads a JSON body; a body that is not JSON is a 502 from the provider, never a crash. */
export async function readProviderJson(response: Response, provider: string): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ProviderError('bad_gateway', `${provider} returned a response that is not JSON (HTTP ${response.status})`, response.status >= 500);
  }
}

/** fetch, with network failures and aborts as ProviderErrors. */
export async function providerFetch(url: string, init: RequestInit, provider: string, signal: AbortSignal): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal });
  } catch (error) {
    if (signal.aborted) throw new ProviderError('timeout', `${provider} did not answer in time`, false);
    const name = (error as { cause?: { code?: string } })?.cause?.code ?? 'network error';
    throw new ProviderError('unavailable', `${provider} could not be reached (${name})`, true);
  }
}

/** A token count a provider reported, checked: a non-negative safe integer, or a 502 (never a crash, never a wrong bill). */
export function tokenCount(value: unknown, provider: string, field: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  throw new ProviderError('bad_gateway', `${provider} reported an invalid ${field}; the request cannot be billed`, false);
}
