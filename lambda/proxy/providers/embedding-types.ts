import type { ProviderCall } from './types';

/**
 * What an embedding provider is asked and answers. Providers fail with the chat providers'
 * ProviderError (types.ts), so the route maps their failures to the same statuses.
 */

export interface EmbeddingRequest {
  /** The provider's own model name. */
  readonly model: string;
  /** The texts, in order; one vector comes back for each. */
  readonly inputs: readonly string[];
  /** The length every vector must have: the request's `dimensions`, or the model's configured length. */
  readonly dimensions: number;
  /** Whether the client asked for `dimensions` (sent upstream only then; the route checked the model honours it). */
  readonly dimensionsRequested: boolean;
  /** The caller's end-user id, passed on where the provider takes one (abuse monitoring). */
  readonly user?: string;
}

export interface EmbeddingUsage {
  readonly inputTokens: number;
  /** `provider`: reported by the provider, billed as is; `estimate`: the provider reports none. */
  readonly source: 'provider' | 'estimate';
}

export interface EmbeddingResponse {
  /** One vector per input, in the inputs' order. */
  readonly vectors: readonly (readonly number[])[];
  readonly usage: EmbeddingUsage;
}

export interface EmbeddingProvider {
  readonly name: string;
  embed(request: EmbeddingRequest, call: ProviderCall): Promise<EmbeddingResponse>;
}
