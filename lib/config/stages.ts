import {
  commonRuleSetBodyRules,
  type EmbeddingModelConfig,
  type ModelConfig,
  type StageConfig,
  type StageName,
} from './schema';

/**
 * The shipped configuration of each stage. A platform team edits this file (or passes a JSON file of
 * overrides with `-c overrides=path.json`); `npm run synth` validates the result.
 *
 * Before the first production deploy, replace the values marked "CHANGE ME".
 */

/** Prices in micro-units per million tokens: 300_000 = 0.30 USD per million tokens. */
const models: ModelConfig[] = [
  {
    id: 'gemini-2.5-flash',
    provider: 'gemini',
    upstreamModel: 'gemini-2.5-flash',
    inputMicrosPerMillionTokens: 300_000,
    outputMicrosPerMillionTokens: 2_500_000,
    defaultMaxOutputTokens: 8192,
    outputTokensMax: 65_536,
    ledgerCode: 1,
  },
  {
    id: 'gemini-2.5-pro',
    provider: 'gemini',
    upstreamModel: 'gemini-2.5-pro',
    inputMicrosPerMillionTokens: 1_250_000,
    outputMicrosPerMillionTokens: 10_000_000,
    defaultMaxOutputTokens: 8192,
    outputTokensMax: 65_536,
    ledgerCode: 2,
  },
  // Amazon Bedrock, called with the proxy's IAM role through the VPC's bedrock-runtime endpoint;
  // each needs model access enabled in the account (README, "Bedrock"). The stages are in eu-west-1,
  // so the models go through the EU cross-region inference profiles, with the regions each routes
  // to (the role may invoke the model in each). Prices: Bedrock's on-demand list prices (us-east-1,
  // the price the EU profiles are listed at for these models); check the pricing page of your region.
  {
    id: 'nova-lite',
    provider: 'bedrock',
    upstreamModel: 'eu.amazon.nova-lite-v1:0',
    ledgerCode: 4,
    inferenceProfileRegions: ['eu-central-1', 'eu-north-1', 'eu-west-1', 'eu-west-3'],
    inputMicrosPerMillionTokens: 60_000,
    outputMicrosPerMillionTokens: 240_000,
    defaultMaxOutputTokens: 2048,
    outputTokensMax: 5000,
  },
  {
    id: 'nova-pro',
    provider: 'bedrock',
    upstreamModel: 'eu.amazon.nova-pro-v1:0',
    ledgerCode: 5,
    inferenceProfileRegions: ['eu-central-1', 'eu-north-1', 'eu-west-1', 'eu-west-3'],
    inputMicrosPerMillionTokens: 800_000,
    outputMicrosPerMillionTokens: 3_200_000,
    defaultMaxOutputTokens: 2048,
    outputTokensMax: 5000,
  },
  {
    id: 'claude-sonnet-4-bedrock',
    provider: 'bedrock',
    upstreamModel: 'eu.anthropic.claude-sonnet-4-20250514-v1:0',
    ledgerCode: 6,
    inferenceProfileRegions: [
      'eu-central-1',
      'eu-north-1',
      'eu-south-1',
      'eu-south-2',
      'eu-west-1',
      'eu-west-3',
    ],
    inputMicrosPerMillionTokens: 3_000_000,
    outputMicrosPerMillionTokens: 15_000_000,
    defaultMaxOutputTokens: 8192,
    outputTokensMax: 64_000,
  },
  {
    // OpenAI's list price (0.40 / 1.60 USD per million tokens); answers once the provider secret (or,
    // locally, OPENAI_COMPATIBLE_BASE_URL and OPENAI_COMPATIBLE_API_KEY) names OpenAI.
    id: 'gpt-4.1-mini',
    provider: 'openai-compatible',
    upstreamModel: 'gpt-4.1-mini',
    ledgerCode: 7,
    inputMicrosPerMillionTokens: 400_000,
    outputMicrosPerMillionTokens: 1_600_000,
    defaultMaxOutputTokens: 4096,
    outputTokensMax: 32_768,
  },
  {
    // Anthropic's public prices: cache reads at a tenth of the input price, 5-minute cache writes at
    // 1.25 times it. Its default 200K context window keeps every request under the flat price.
    id: 'claude-sonnet-4-5',
    provider: 'anthropic',
    upstreamModel: 'claude-sonnet-4-5',
    ledgerCode: 8,
    inputMicrosPerMillionTokens: 3_000_000,
    outputMicrosPerMillionTokens: 15_000_000,
    cachedInputMicrosPerMillionTokens: 300_000,
    cacheCreationInputMicrosPerMillionTokens: 3_750_000,
    defaultMaxOutputTokens: 8192,
    outputTokensMax: 64_000,
    // Throttled or failing before its first byte, the request goes to Gemini (cheaper, so the hold
    // stays Claude's).
    fallbacks: ['gemini-2.5-pro'],
  },
  {
    id: 'claude-haiku-4-5',
    provider: 'anthropic',
    upstreamModel: 'claude-haiku-4-5',
    ledgerCode: 9,
    inputMicrosPerMillionTokens: 1_000_000,
    outputMicrosPerMillionTokens: 5_000_000,
    cachedInputMicrosPerMillionTokens: 100_000,
    cacheCreationInputMicrosPerMillionTokens: 1_250_000,
    defaultMaxOutputTokens: 8192,
    outputTokensMax: 64_000,
    fallbacks: ['gemini-2.5-flash'],
  },
  {
    // Deterministic and offline: lets dev and tests exercise billing without a provider key.
    id: 'echo',
    provider: 'echo',
    upstreamModel: 'echo',
    inputMicrosPerMillionTokens: 1_000_000,
    outputMicrosPerMillionTokens: 1_000_000,
    defaultMaxOutputTokens: 1024,
    outputTokensMax: 4096,
    ledgerCode: 3,
  },
];

/** Embedding models, priced per input token (micro-units per million). */
const embeddingModels: EmbeddingModelConfig[] = [
  {
    // OpenAI's list price: 0.02 USD per million tokens; shorter vectors on request.
    id: 'text-embedding-3-small',
    provider: 'openai-compatible',
    upstreamModel: 'text-embedding-3-small',
    ledgerCode: 10,
    inputMicrosPerMillionTokens: 20_000,
    dimensions: 1536,
    dimensionsConfigurable: true,
  },
  {
    // Google's list price: 0.15 USD per million tokens; `outputDimensionality` on request.
    id: 'gemini-embedding-001',
    provider: 'gemini',
    upstreamModel: 'gemini-embedding-001',
    ledgerCode: 11,
    inputMicrosPerMillionTokens: 150_000,
    dimensions: 3072,
    dimensionsConfigurable: true,
  },
  {
    // Deterministic and offline (the same input, the same unit vector): dev and tests need no key.
    id: 'echo-embedding',
    provider: 'echo',
    upstreamModel: 'echo-embedding',
    ledgerCode: 12,
    inputMicrosPerMillionTokens: 100_000,
    dimensions: 256,
    dimensionsConfigurable: true,
  },
];

const waf = {
  ipRequestsPerMinute: 600,
  keyRequestsPerMinute: 120,
  anonymousRequestsPerMinute: 30,
  countOnlyCommonRules: [...commonRuleSetBodyRules],
};

/**
 * Staging and production ledger hosts: r7g.large, 2 vCPU and 16 GiB. TigerBeetle uses one core
 * (plus one for the OS, here shared with the gateway and the ECS agent) and as much memory as it is
 * given for its grid cache; m7g.xlarge has the same 16 GiB with two cores TigerBeetle cannot use,
 * for about half as much again per hour. The replica gets 12 GiB: an 8 GiB grid cache plus
 * TigerBeetle's 3 GiB besides it, with 1 GiB to spare (synth checks the sums, ledger-hosts.ts).
 */
const ledgerHostInstanceType = 'r7g.large';
const ledgerHostMemory = { cacheGridMiB: 8192, replicaMemoryMiB: 12_288 } satisfies Partial<
  StageConfig['ledger']
>;

/** Ledger settings shared by every stage. */
const ledgerCommon = {
  // Pinned: a new AMI is a deliberate change here, rolled out by docs/runbooks/ledger-upgrade.md
  // ("Host (AMI) updates"); before a first deploy, set the current release.
  hostImage: { kind: 'release', name: 'al2023-ami-ecs-hvm-2023.0.20251108-kernel-6.1-arm64' },
  // The same version as tigerbeetle-node in package.json; synth checks that they agree.
  tigerbeetleVersion: '0.17.9',
  fixedAddressOffset: 10,
  gatewayMemoryMiB: 512,
  backup: { retentionDays: 35 },
} satisfies Partial<StageConfig['ledger']>;

/** Alarm thresholds shared by every stage (documented in schema.ts). */
const alarms = {
  serverErrorRatePercentMax: 5,
  serverErrorRateRequestsMin: 20,
  latencyP99MillisecondsMax: 30_000,
  billingFailuresPerFiveMinutesMax: 0,
  creditsUnavailablePerMinuteMax: 0,
  rateLimitRefusalsPerFiveMinutesMax: 300,
  wafBlockedRequestsPerFiveMinutesMax: 1000,
  rotationErrorsPerFiveMinutesMax: 0,
} satisfies StageConfig['alarms'];

const region = 'eu-west-1';
const availabilityZones = ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'];

const common = {
  region,
  api: {
    creditsAdminCidrs: [],
    serviceKeyRotationDays: 90,
    accountConcurrentExecutionsQuota: 1000,
    proxyTimeoutSeconds: 140,
    gateway: {
      integrationTimeoutSeconds: 150,
      throttlingRateRequestsPerSecond: 100,
      throttlingBurstRequests: 200,
    },
  },
  availabilityZones,
  rateLimit: { enabled: true, requestsPerMinute: 60 },
  requestBodyBytesMax: 1024 * 1024,
  alarms,
  currency: 'USD',
  models,
  embeddingModels,
} satisfies Partial<StageConfig>;

const dev: StageConfig = {
  ...common,
  stage: 'dev',
  api: {
    ...common.api,
    gateway: {
      ...common.api.gateway,
      throttlingRateRequestsPerSecond: 20,
      throttlingBurstRequests: 40,
    },
  },
  // No certificate: the dev ALB serves plain HTTP so that a newcomer can deploy without a domain.
  deletionProtection: false,
  network: { vpcCidr: '10.40.0.0/16', natGateways: 1, interfaceEndpointAzCount: 1 },
  cors: { allowedOrigins: ['http://localhost:5173'] },
  logLevel: 'DEBUG',
  logRetentionDays: 30,
  edge: {
    idleTimeoutSeconds: 180,
    accessLogExpirationDays: 14,
    waf,
  },
  ledger: {
    clusterId: '0',
    // One replica: no fault tolerance, acceptable only for a development stage.
    replicaCount: 1,
    // 8 GiB: TigerBeetle's 6 GiB floor for the replica, the gateway, the OS (lib/config/ledger-hosts.ts).
    instanceType: 't4g.large',
    volumeSizeGiB: 20,
    volumeIops: 3000,
    volumeThroughputMiBps: 125,
    ...ledgerCommon,
    cacheGridMiB: 512,
    replicaMemoryMiB: 6144,
  },
};

const staging: StageConfig = {
  ...common,
  stage: 'staging',
  domainName: 'api.staging.example.com', // CHANGE ME
  certificate: { kind: 'create' },
  internalTls: { domain: 'internal.staging.example.com' }, // CHANGE ME
  deletionProtection: false,
  network: { vpcCidr: '10.41.0.0/16', natGateways: 3, interfaceEndpointAzCount: 3 },
  cors: { allowedOrigins: ['https://app.staging.example.com'] }, // CHANGE ME
  logLevel: 'INFO',
  logRetentionDays: 90,
  alarmEmail: 'oncall@example.com', // CHANGE ME
  edge: {
    idleTimeoutSeconds: 180,
    accessLogExpirationDays: 90,
    waf,
  },
  ledger: {
    clusterId: '1',
    replicaCount: 3,
    instanceType: ledgerHostInstanceType,
    volumeSizeGiB: 50,
    volumeIops: 3000,
    volumeThroughputMiBps: 125,
    ...ledgerCommon,
    ...ledgerHostMemory,
  },
};

const production: StageConfig = {
  ...common,
  stage: 'production',
  // One function cannot starve the others of the account's concurrency. With the 100 that Lambda
  // keeps unreserved, the account needs a quota of at least 400 (asserted at synth, checked live by
  // npm run preflight).
  api: { ...common.api, proxyReservedConcurrency: 200, creditsReservedConcurrency: 100 },
  domainName: 'api.example.com', // CHANGE ME
  certificate: { kind: 'create' },
  internalTls: { domain: 'internal.example.com' }, // CHANGE ME
  deletionProtection: true,
  network: { vpcCidr: '10.42.0.0/16', natGateways: 3, interfaceEndpointAzCount: 3 },
  cors: { allowedOrigins: ['https://app.example.com'] }, // CHANGE ME
  logLevel: 'INFO',
  logRetentionDays: 365,
  alarmEmail: 'oncall@example.com', // CHANGE ME
  edge: {
    idleTimeoutSeconds: 180,
    accessLogExpirationDays: 365,
    waf,
  },
  ledger: {
    clusterId: '2',
    // Six replicas, two per AZ: TigerBeetle's recommended production cluster.
    replicaCount: 6,
    instanceType: ledgerHostInstanceType,
    volumeSizeGiB: 100,
    volumeIops: 3000,
    volumeThroughputMiBps: 125,
    ...ledgerCommon,
    ...ledgerHostMemory,
  },
};

export const shippedStages: Record<StageName, StageConfig> = { dev, staging, production };
