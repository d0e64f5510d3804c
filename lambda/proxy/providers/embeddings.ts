import { createHash } from 'node:crypto';
import type { ProviderCredentials } from './credentials';
import type {
  EmbeddingProvider,
  EmbeddingRequest,
  EmbeddingResponse,
  EmbeddingUsage,
} from './embedding-types';
import {
  ProviderError,
  errorKindForStatus,
  fetchProviderJson,
  readProviderJson,
  sanitizeProviderMessage,
  tokenCount,
  type ProviderCall,
} from './types';

/**
 * Embedding providers: Gemini's batchEmbedContents (one call for every input), any server that
 * speaks OpenAI's `/embeddings`, and a deterministic echo embedding (no network: the same input
 * always gives the same unit vector). Each answer is checked (one finite vector per input, of one
 * length) before anything is billed.
 */

/** UTF-8 bytes per token in the estimate of a provider that reports no usage (Gemini's batch). */
const estimateBytesPerToken = 4;

/** An estimate of input tokens, one per four UTF-8 bytes (at least one per input): never above the hold (one per byte). */
export function estimateEmbeddingTokens(inputs: readonly string[]): number {
  return inputs.reduce(
    (sum, input) =>
      sum + Math.max(1, Math.ceil(Buffer.byteLength(input, 'utf8') / estimateBytesPerToken)),
    0,
  );
}

/** The provider's vectors, checked: one per input, every one of the same length of finite numbers. */
function checkedVectors(
  vectors: unknown[],
  request: EmbeddingRequest,
  provider: string,
): number[][] {
  if (vectors.length !== request.inputs.length)
    throw new ProviderError(
      'bad_gateway',
      `${provider} returned ${vectors.length} embeddings for ${request.inputs.length} inputs`,
      false,
    );
  const length = Array.isArray(vectors[0]) ? vectors[0].length : 0;
  for (const vector of vectors) {
    const valid =
      Array.isArray(vector) &&
      vector.length === length &&
      length === request.dimensions &&
      vector.every((value) => typeof value === 'number' && Number.isFinite(value));
    if (!valid)
      throw new ProviderError('bad_gateway', `${provider} returned a malformed embedding`, false);
  }
  return vectors as number[][];
}

/** One embeddings call: its JSON answer as an object, or a ProviderError. */
async function readJson(url: string, init: RequestInit, provider: string, call: ProviderCall) {
  return (await fetchProviderJson(url, init, provider, call, (response) =>
    errorFromResponse(response, provider, call),
  )) as Record<string, unknown>;
}

async function errorFromResponse(
  response: Response,
  provider: string,
  call: ProviderCall,
): Promise<ProviderError> {
  const parsed = (await readProviderJson(response, provider, call.responseBytesMax).catch(
    () => ({}),
  )) as { error?: { message?: unknown } };
  const { kind, retryable } = errorKindForStatus(response.status);
  return new ProviderError(
    kind,
    `${provider} answered ${response.status}: ${sanitizeProviderMessage(parsed.error?.message)}`,
    retryable,
  );
}

const geminiName = 'gemini';

/**
 * POST /v1beta/models/{model}:batchEmbedContents with x-goog-api-key. Gemini's answer carries no
 * token count, so its usage is an estimate (logged as one); `dimensions` is `outputDimensionality`.
 */
export function createGeminiEmbeddingProvider(
  credentials: () => Promise<ProviderCredentials>,
): EmbeddingProvider {
  return {
    name: geminiName,
    async embed(request, call) {
      const gemini = (await credentials()).gemini;
      if (!gemini)
        throw new ProviderError(
          'not_configured',
          'provider not configured: gemini has no API key yet',
          false,
        );
      const model = `models/${request.model}`;
      const body = {
        requests: request.inputs.map((text) => ({
          model,
          content: { parts: [{ text }] },
          ...(request.dimensionsRequested ? { outputDimensionality: request.dimensions } : {}),
        })),
      };
      const url = `${gemini.baseUrl}/v1beta/models/${encodeURIComponent(request.model)}:batchEmbedContents`;
      const init: RequestInit = {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-goog-api-key': gemini.apiKey },
        body: JSON.stringify(body),
      };
      const parsed = await readJson(url, init, geminiName, call);
      const embeddings = Array.isArray(parsed.embeddings) ? (parsed.embeddings as unknown[]) : [];
      const vectors = embeddings.map((embedding) => (embedding as { values?: unknown })?.values);
      return {
        vectors: checkedVectors(vectors, request, geminiName),
        usage: { inputTokens: estimateEmbeddingTokens(request.inputs), source: 'estimate' },
      };
    },
  };
}

const openAiName = 'the OpenAI-compatible provider';

/** POST {base}/embeddings, asking for floats (the proxy encodes base64 itself); usage as reported. */
export function createOpenAiCompatibleEmbeddingProvider(
  credentials: () => Promise<ProviderCredentials>,
): EmbeddingProvider {
  return {
    name: 'openai-compatible',
    async embed(request, call) {
      const provider = (await credentials()).openaiCompatible;
      if (!provider)
        throw new ProviderError(
          'not_configured',
          'provider not configured: no OpenAI-compatible base URL and key yet',
          false,
        );
      const body = {
        model: request.model,
        input: request.inputs,
        encoding_format: 'float',
        dimensions: request.dimensionsRequested ? request.dimensions : undefined,
        user: request.user,
      };
      const init: RequestInit = {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${provider.apiKey}` },
        body: JSON.stringify(body),
      };
      const parsed = await readJson(`${provider.baseUrl}/embeddings`, init, openAiName, call);
      const data = (Array.isArray(parsed.data) ? parsed.data : []) as {
        index?: unknown;
        embedding?: unknown;
      }[];
      // The answer's order is by `index`, which a server may not keep in the array's order.
      const ordered = [...data].sort((left, right) => Number(left.index) - Number(right.index));
      const usage = parsed.usage as { prompt_tokens?: unknown } | undefined;
      if (usage?.prompt_tokens === undefined)
        throw new ProviderError(
          'bad_gateway',
          `${openAiName} returned no usage; the request cannot be billed`,
          false,
        );
      return {
        vectors: checkedVectors(
          ordered.map((entry) => entry.embedding),
          request,
          openAiName,
        ),
        usage: {
          inputTokens: tokenCount(usage.prompt_tokens, openAiName, 'prompt_tokens'),
          source: 'provider',
        },
      };
    },
  };
}

/** A unit vector of `dimensions` numbers from SHA-256 of the text (counter mode): deterministic, no network. */
function echoVector(text: string, dimensions: number): number[] {
  const values: number[] = [];
  for (let block = 0; values.length < dimensions; block += 1) {
    const digest = createHash('sha256').update(`${block}:${text}`, 'utf8').digest();
    for (let offset = 0; offset + 2 <= digest.length && values.length < dimensions; offset += 2)
      values.push(digest.readUInt16BE(offset) / 32_767.5 - 1);
  }
  const norm = Math.sqrt(values.reduce((sum, value) => sum + value * value, 0)) || 1;
  return values.map((value) => value / norm);
}

/** The echo embedding: tokens estimated as for Gemini, reported as the echo model's own count. */
export function createEchoEmbeddingProvider(): EmbeddingProvider {
  return {
    name: 'echo',
    embed(request: EmbeddingRequest): Promise<EmbeddingResponse> {
      const usage: EmbeddingUsage = {
        inputTokens: estimateEmbeddingTokens(request.inputs),
        source: 'provider',
      };
      return Promise.resolve({
        vectors: request.inputs.map((input) => echoVector(input, request.dimensions)),
        usage,
      });
    },
  };
}

/** Every embedding provider by the name the model config uses. */
export function createEmbeddingProviders(
  credentials: () => Promise<ProviderCredentials>,
): Map<string, EmbeddingProvider> {
  return new Map<string, EmbeddingProvider>([
    ['gemini', createGeminiEmbeddingProvider(credentials)],
    ['openai-compatible', createOpenAiCompatibleEmbeddingProvider(credentials)],
    ['echo', createEchoEmbeddingProvider()],
  ]);
}
