import type { RequestIdVariables } from '../../runtime/http';
import type { AppLogger } from '../../runtime/logger';
import type { AppMetrics } from '../shared/metrics';
import type { ClientKeySource } from './client-key-source';
import type { ProxyConfig } from './config';
import type { CreditsClient } from './credits-client';
import type { EmbeddingProvider } from './providers/embedding-types';
import type { ChatProvider } from './providers/types';
import type { SettlementQueue } from './settlement-queue';

/** What the proxy app and its route handlers (chat.ts, chat-stream.ts, billing.ts) share: the caller and the dependencies. */

export interface ProxyPrincipal {
  readonly keyId: string;
  readonly userId: string;
}

export type ProxyEnv = { Variables: RequestIdVariables & { principal: ProxyPrincipal } };

export interface ProxyAppDependencies {
  readonly keys: ClientKeySource;
  readonly credits: CreditsClient;
  /** By provider name: gemini, openai-compatible, anthropic, bedrock, echo. */
  readonly providers: ReadonlyMap<string, ChatProvider>;
  /** Embedding providers by the same names; without them no embedding model answers (503). */
  readonly embeddingProviders?: ReadonlyMap<string, EmbeddingProvider>;
  readonly config: ProxyConfig;
  readonly logger: AppLogger;
  readonly metrics: AppMetrics;
  readonly clock?: () => number;
  /** Where settlements go that failed inline (SQS in AWS, a file locally); without one they are only counted. */
  readonly settlementQueue?: SettlementQueue;
  /** Waits between inline settlement attempts; tests pass one that does not wait. */
  readonly sleep?: (milliseconds: number) => Promise<void>;
}

/**
 * A chat completion's id is its request id behind OpenAI's prefix, so its receipt
 * (`GET /v1/usage/{id}`) is found by either: the x-request-id header or the completion's `id`.
 */
export const completionIdPrefix = 'chatcmpl-';
