import { createCreditsApp, type CreditsPrincipal } from '../../lambda/credits/app';
import { creditsKeyEntries } from '../../lambda/credits/keys';
import { clientKeySetVersion, type ClientKeyEntry } from '../../lambda/shared/client-keys';
import { createKeyring, generateApiKey, hashKey } from '../../runtime/keys';
import { startServer, type RunningServer } from '../../runtime/node-server';
import { createProxyApp } from '../../lambda/proxy/app';
import { staticClientKeySource } from '../../lambda/proxy/client-key-source';
import { proxyConfigDefaults, type ProxyConfig } from '../../lambda/proxy/config';
import { createCreditsClient, type CreditsClient } from '../../lambda/proxy/credits-client';
import { createProviders } from '../../lambda/proxy/providers';
import { createEmbeddingProviders } from '../../lambda/proxy/providers/embeddings';
import type { EmbeddingModelConfig, ModelConfig } from '../../lib/config/schema';
import { ManualClock, openEmbeddedLedger, type EmbeddedLedger } from '../../tigerbeetle/engine';
import { standInCredentials } from './aws-stand-in';
import { startBedrockStandIn, type BedrockStandIn } from './bedrock-stand-in';
import {
  startFakeAnthropic,
  startFakeGemini,
  startFakeOpenAi,
  type FakeProvider,
} from './fake-providers';
import { RecordingLogger } from './recording-logger';
import { RecordingMetrics } from './recording-metrics';

/**
 * The proxy app in front of a real credits service (on loopback, over the embedded engine) and
 * real local HTTP servers playing Gemini, an OpenAI-compatible provider, Anthropic and Bedrock's
 * runtime (signed with stand-in credentials). Nothing of ours is stubbed.
 */

export const testModels: ModelConfig[] = [
  {
    id: 'gemini-2.5-flash',
    provider: 'gemini',
    upstreamModel: 'gemini-2.5-flash',
    inputMicrosPerMillionTokens: 300_000,
    outputMicrosPerMillionTokens: 2_500_000,
    defaultMaxOutputTokens: 1000,
    outputTokensMax: 8192,
    ledgerCode: 1,
  },
  {
    id: 'fake-gpt',
    provider: 'openai-compatible',
    upstreamModel: 'fake-model',
    inputMicrosPerMillionTokens: 1_000_000,
    outputMicrosPerMillionTokens: 4_000_000,
    defaultMaxOutputTokens: 500,
    outputTokensMax: 4096,
    ledgerCode: 4,
  },
  {
    id: 'fake-claude',
    provider: 'anthropic',
    upstreamModel: 'claude-fake',
    ledgerCode: 201,
    inputMicrosPerMillionTokens: 3_000_000,
    outputMicrosPerMillionTokens: 15_000_000,
    cachedInputMicrosPerMillionTokens: 300_000,
    cacheCreationInputMicrosPerMillionTokens: 3_750_000,
    defaultMaxOutputTokens: 400,
    outputTokensMax: 4096,
  },
  {
    id: 'echo',
    provider: 'echo',
    upstreamModel: 'echo',
    inputMicrosPerMillionTokens: 1_000_000,
    outputMicrosPerMillionTokens: 1_000_000,
    defaultMaxOutputTokens: 100,
    outputTokensMax: 1000,
    ledgerCode: 3,
  },
];

/** Priced at whole micros per token, so a test checks each charge to the micro. */
export const testEmbeddingModels: EmbeddingModelConfig[] = [
  {
    id: 'gemini-embedding-001',
    provider: 'gemini',
    upstreamModel: 'gemini-embedding-001',
    ledgerCode: 202,
    inputMicrosPerMillionTokens: 1_000_000,
    dimensions: 8,
    dimensionsConfigurable: true,
  },
  {
    id: 'text-embedding-3-small',
    provider: 'openai-compatible',
    upstreamModel: 'fake-embedding',
    ledgerCode: 203,
    inputMicrosPerMillionTokens: 2_000_000,
    dimensions: 8,
    dimensionsConfigurable: true,
  },
  {
    id: 'fixed-embedding',
    provider: 'openai-compatible',
    upstreamModel: 'fake-fixed-embedding',
    ledgerCode: 204,
    inputMicrosPerMillionTokens: 1_000_000,
    dimensions: 8,
    dimensionsConfigurable: false,
  },
  {
    id: 'echo-embedding',
    provider: 'echo',
    upstreamModel: 'echo-embedding',
    ledgerCode: 205,
    inputMicrosPerMillionTokens: 1_000_000,
    dimensions: 16,
    dimensionsConfigurable: true,
  },
];

export interface ProxyFixture {
  readonly app: ReturnType<typeof createProxyApp>;
  readonly keys: {
    readonly alice: string;
    readonly bob: string;
    readonly expired: string;
    readonly revoked: string;
  };
  readonly gemini: FakeProvider;
  readonly openAi: FakeProvider;
  /** Bedrock's runtime; models with provider `bedrock` (none in testModels: add one with `config.models`). */
  readonly bedrock: BedrockStandIn;
  readonly anthropic: FakeProvider;
  readonly credits: CreditsClient;
  readonly creditsServer: RunningServer;
  readonly clock: ManualClock;
  readonly logger: RecordingLogger;
  /** What the proxy app recorded (the credits service's own metrics are in `creditsMetrics`). */
  readonly metrics: RecordingMetrics;
  readonly creditsMetrics: RecordingMetrics;
  readonly config: ProxyConfig;
  /** The proxy role's key of the credits service. */
  readonly proxyServiceKey: string;
  /** Another proxy instance (another Lambda environment) over the same keys, credits and providers. */
  anotherInstance(configOverrides?: Partial<ProxyConfig>): ReturnType<typeof createProxyApp>;
  request(
    method: string,
    path: string,
    options?: {
      body?: unknown;
      key?: string | null;
      headers?: Record<string, string>;
      signal?: AbortSignal;
    },
  ): Promise<Response>;
  topUp(userId: string, amount: string): Promise<void>;
  availableMicros(userId: string): Promise<bigint>;
  close(): Promise<void>;
}

let keyIdCounter = 0;
function entry(
  userId: string,
  key: string,
  overrides: Partial<ClientKeyEntry> = {},
): ClientKeyEntry {
  keyIdCounter += 1;
  return {
    id: `key_test${String(keyIdCounter).padStart(8, '0')}`,
    user_id: userId,
    sha256: hashKey(key).toString('hex'),
    created_at: '2026-01-01T00:00:00Z',
    expires_at: '2099-01-01T00:00:00Z',
    disabled: false,
    ...overrides,
  };
}

export async function startProxyFixture(
  configOverrides: Partial<ProxyConfig> = {},
): Promise<ProxyFixture> {
  const clock = new ManualClock(BigInt(Date.now()) * 1_000_000n);
  const embedded: EmbeddedLedger = openEmbeddedLedger({ clock });
  const adminKey = generateApiKey();
  const proxyServiceKey = generateApiKey();
  const creditsMetrics = new RecordingMetrics();
  const creditsServer = await startServer({
    fetch: createCreditsApp({
      ledger: embedded.createClient(),
      clock,
      keys: createKeyring<CreditsPrincipal>(
        creditsKeyEntries({ admin: [adminKey], proxy: [proxyServiceKey] }),
      ),
      logger: new RecordingLogger(),
      metrics: creditsMetrics,
    }).fetch,
    hostname: '127.0.0.1',
    port: 0,
  });
  const [gemini, openAi, anthropic, bedrock] = await Promise.all([
    startFakeGemini(),
    startFakeOpenAi(),
    startFakeAnthropic(),
    startBedrockStandIn(),
  ]);
  const keys = {
    alice: generateApiKey(),
    bob: generateApiKey(),
    expired: generateApiKey(),
    revoked: generateApiKey(),
  };
  const keySource = staticClientKeySource({
    version: clientKeySetVersion,
    keys: [
      entry('alice', keys.alice),
      entry('bob', keys.bob),
      entry('alice', keys.expired, { expires_at: '2020-01-01T00:00:00Z' }),
      entry('alice', keys.revoked, { disabled: true }),
    ],
  });
  const credits = createCreditsClient({
    baseUrl: creditsServer.url,
    key: () => proxyServiceKey,
    requestTimeoutMilliseconds: 5_000,
  });
  const config: ProxyConfig = {
    ...proxyConfigDefaults,
    models: testModels,
    embeddingModels: testEmbeddingModels,
    currency: 'USD',
    allowedOrigins: ['https://app.example.com'],
    rateLimit: { enabled: true, requestsPerMinute: 60 },
    requestBodyBytesMax: 64 * 1024,
    httpsOnly: true,
    providerAttemptTimeoutMilliseconds: 2_000,
    providerBudgetMilliseconds: 4_000,
    ...configOverrides,
  };
  const providerCredentials = async () => ({
    gemini: { apiKey: 'fake-gemini-key-0123456789', baseUrl: gemini.baseUrl },
    openaiCompatible: { apiKey: 'fake-openai-key-0123456789', baseUrl: openAi.baseUrl },
    anthropic: { apiKey: 'fake-anthropic-key-0123456789', baseUrl: anthropic.baseUrl },
  });
  const embeddingProviders = createEmbeddingProviders(providerCredentials);
  const providers = createProviders(providerCredentials, {
    echo: { chunkDelayMilliseconds: config.echoChunkDelayMilliseconds },
    bedrock: {
      region: 'eu-west-1',
      endpoint: bedrock.url,
      credentials: () => standInCredentials,
    },
  });
  const logger = new RecordingLogger();
  const metrics = new RecordingMetrics();
  const app = createProxyApp({
    keys: keySource,
    credits,
    providers,
    embeddingProviders,
    config,
    logger,
    metrics,
  });
  return {
    app,
    keys,
    gemini,
    openAi,
    bedrock,
    anthropic,
    credits,
    creditsServer,
    clock,
    logger,
    metrics,
    creditsMetrics,
    config,
    proxyServiceKey,
    anotherInstance: (configOverrides = {}) =>
      createProxyApp({
        keys: keySource,
        credits,
        providers,
        embeddingProviders,
        config: { ...config, ...configOverrides },
        logger,
        metrics,
      }),
    request(method, path, { body, key, headers, signal } = {}) {
      const requestHeaders: Record<string, string> = { ...headers };
      const usedKey = key === undefined ? keys.alice : key;
      if (usedKey !== null) requestHeaders.authorization ??= `Bearer ${usedKey}`;
      if (body !== undefined) requestHeaders['content-type'] ??= 'application/json';
      return Promise.resolve(
        app.request(path, {
          method,
          headers: requestHeaders,
          body:
            body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
          signal,
        }),
      );
    },
    async topUp(userId, amount) {
      const response = await fetch(`${creditsServer.url}/api/v1/topup`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${adminKey}`,
          'content-type': 'application/json',
          'idempotency-key': `topup-${userId}-${Date.now()}-${Math.random()}`,
        },
        body: JSON.stringify({ user_id: userId, amount }),
      });
      if (response.status !== 201) throw new Error(`top-up failed: ${response.status}`);
    },
    async availableMicros(userId) {
      return (await credits.balance(userId))?.availableMicros ?? 0n;
    },
    async close() {
      await Promise.all([
        gemini.close(),
        openAi.close(),
        anthropic.close(),
        bedrock.close(),
        creditsServer.close(),
      ]);
      embedded.close();
    },
  };
}
