import {
  commonRuleSetBodyRules,
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
