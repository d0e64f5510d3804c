import * as z from 'zod';
import { bedrockModelProblem } from './bedrock';

/**
 * The typed configuration of one stage. Everything a platform team may change lives here; each
 * field documents its default (the defaults themselves are in `stages.ts`). The schema checks
 * shapes and ranges for every stage; `policy.ts` adds the security rules a production stage must
 * meet (CFG-01).
 */

export const stageNames = ['dev', 'staging', 'production'] as const;
export type StageName = (typeof stageNames)[number];

/** CloudWatch Logs accepts only these retention periods (days). */
export const logRetentionDaysAllowed = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288,
  3653,
] as const;

/** Body-inspecting rules of AWSManagedRulesCommonRuleSet that may be switched to count. */
export const commonRuleSetBodyRules = [
  'CrossSiteScripting_BODY',
  'GenericLFI_BODY',
  'GenericRFI_BODY',
  'EC2MetaDataSSRF_BODY',
] as const;

const awsAccountId = z.string().regex(/^\d{12}$/, 'an AWS account id is 12 digits');
const awsRegion = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'a region looks like eu-west-1');
const domainName = z
  .string()
  .regex(
    /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/,
    'a lower-case DNS name',
  );

const certificateSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    /** Import an existing ACM certificate (in the stage's region). */
    kind: z.literal('import'),
    arn: z
      .string()
      .regex(
        /^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[0-9a-f-]{36}$/,
        'an ACM certificate ARN',
      ),
  }),
  z.strictObject({
    /** Create a DNS-validated ACM certificate for `domainName`. */
    kind: z.literal('create'),
    /**
     * The Route 53 hosted zone that holds the domain; when given, the validation records are created
     * automatically. Without it, the deploy waits until someone adds the records shown in the console.
     */
    hostedZone: z
      .strictObject({ id: z.string().regex(/^Z[A-Z0-9]{1,32}$/), name: domainName })
      .optional(),
  }),
]);
export type CertificateConfig = z.infer<typeof certificateSchema>;

const hostedZoneSchema = z.strictObject({
  id: z.string().regex(/^Z[A-Z0-9]{1,32}$/),
  name: domainName,
});

/**
 * TLS on the internal hops that carry service keys (proxy -> credits load balancer, credits -> ledger
 * gateway load balancer), with a free public ACM certificate for `*.<domain>`: DNS-validated in the
 * public zone, while the names themselves resolve only inside the VPC, through a private hosted zone
 * of `domain` with alias records to the internal load balancers. No private CA is needed.
 */
const internalTlsSchema = z.strictObject({
  /**
   * The parent of the internal names, a sub-domain of a public domain you control, e.g.
   * internal.example.com: the services are credits.<domain> and ledger-gateway.<domain>.
   */
  domain: domainName,
  /**
   * The public Route 53 hosted zone that holds `domain` (or a parent of it), where the certificate's
   * DNS validation record is created. Without it, the deploy of the network stack waits until someone
   * adds the record shown in the ACM console.
   */
  validationHostedZone: hostedZoneSchema.optional(),
});
export type InternalTlsConfig = z.infer<typeof internalTlsSchema>;

/** A model name clients send: letters, digits and . _ : - /, as providers name them (`meta-llama/Llama-3.1-8B`). */
const modelIdSchema = z.string().regex(/^[a-zA-Z0-9._:-][a-zA-Z0-9._:/-]{0,63}$/);

/**
 * The largest model ledger code: far more numbers than a stage will ever name models, and well
 * inside TigerBeetle's u32 `user_data_32`, which the services check again at start-up.
 */
export const ledgerCodeMax = 1_000_000;

/**
 * The model's number on the ledger: every hold, settlement and release of a request for it carries
 * this in TigerBeetle's `user_data_32` (docs/credits-api.md, "Receipts"). Unique in a stage across
 * chat and embedding models, never changed and never given to another model once used: the ledger
 * keeps it for ever. Required.
 */
const ledgerCodeSchema = z.number().int().min(1).max(ledgerCodeMax);

/** The most fallback models one model may name (each is one more provider attempt within the budget). */
export const modelFallbacksMax = 3;

/** A price: micro-units of the currency per million tokens (1 USD = 1,000,000). */
const pricePerMillionTokens = z.number().int().nonnegative().max(1_000_000_000_000);

/**
 * Prices are integers: micro-units of the currency per million tokens (1 USD = 1,000,000). The
 * input and output prices are required; the cache and reasoning prices apply to the parts of the
 * input or output a provider reports as such, and default to the input or output price.
 */
const modelSchema = z
  .strictObject({
    /** The model name clients send (`model` in the OpenAI request). */
    id: modelIdSchema,
    /** `bedrock` calls Amazon Bedrock with the proxy's IAM role (no key); lib/config/bedrock.ts. */
    provider: z.enum(['gemini', 'openai-compatible', 'anthropic', 'echo', 'bedrock']),
    /**
     * The provider's own model name. For bedrock: a model id served in the stage's region
     * (`amazon.nova-lite-v1:0`) or a cross-region inference profile id of the stage's geography
     * (`eu.amazon.nova-lite-v1:0`).
     */
    upstreamModel: z.string().min(1).max(128),
    /**
     * Bedrock through an inference profile only: the regions the profile routes to (its destination
     * regions), each of which the proxy's role may invoke the model in. Default: unset.
     */
    inferenceProfileRegions: z.array(awsRegion).min(1).max(30).optional(),
    inputMicrosPerMillionTokens: pricePerMillionTokens,
    outputMicrosPerMillionTokens: pricePerMillionTokens,
    /** Input tokens read from the provider's prompt cache. Default: the input price. */
    cachedInputMicrosPerMillionTokens: pricePerMillionTokens.optional(),
    /** Input tokens written to the provider's prompt cache (Anthropic's 5-minute write). Default: the input price. */
    cacheCreationInputMicrosPerMillionTokens: pricePerMillionTokens.optional(),
    /** Output tokens the model spent thinking (part of the output count). Default: the output price. */
    reasoningMicrosPerMillionTokens: pricePerMillionTokens.optional(),
    /** Completion tokens assumed (and asked of the provider) when a request omits max_tokens; sizes the hold. */
    defaultMaxOutputTokens: z.number().int().positive().max(1_000_000),
    /** The most completion tokens a request may ask for (400 above it). */
    outputTokensMax: z.number().int().positive().max(1_000_000),
    /**
     * Other configured model ids tried in order when this one is throttled, failing or silent before
     * its first byte (429, 5xx, timeouts; never a client's 4xx). The list is flat: a fallback's own
     * fallbacks are not followed. Default: none.
     */
    fallbacks: z.array(modelIdSchema).max(modelFallbacksMax).optional(),
    ledgerCode: ledgerCodeSchema,
  })
  .superRefine((model, context) => {
    const problem =
      model.provider === 'bedrock'
        ? bedrockModelProblem(model)
        : model.inferenceProfileRegions
          ? 'inferenceProfileRegions is only for bedrock models'
          : undefined;
    if (problem) context.addIssue({ code: 'custom', path: ['upstreamModel'], message: problem });
  });
export type ModelConfig = z.infer<typeof modelSchema>;

/** An embedding model (`POST /v1/embeddings`): billed per input token, like a chat model's prompt. */
const embeddingModelSchema = z.strictObject({
  /** The model name clients send. */
  id: modelIdSchema,
  provider: z.enum(['gemini', 'openai-compatible', 'echo']),
  /** The provider's own model name. */
  upstreamModel: z.string().min(1).max(128),
  inputMicrosPerMillionTokens: pricePerMillionTokens,
  /** The length of the vectors the model returns when a request names no `dimensions`. */
  dimensions: z.number().int().positive().max(65_536),
  /** Whether the model honours a request's `dimensions` (shorter vectors); otherwise naming one is a 400. */
  dimensionsConfigurable: z.boolean(),
  ledgerCode: ledgerCodeSchema,
});
export type EmbeddingModelConfig = z.infer<typeof embeddingModelSchema>;

export const configSchema = z.strictObject({
  stage: z.enum(stageNames),
  /** The AWS account to deploy to. Default: unset (the account of the deploying credentials). */
  account: awsAccountId.optional(),
  /** The region. Explicit: synthesis does no lookups. */
  region: awsRegion,
  /** Availability zones, explicit and in order (replica placement follows this order). */
  availabilityZones: z
    .array(z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d[a-z]$/))
    .min(2)
    .max(6),
  /** The public name of the API (for example api.example.com). Default: unset, the ALB's DNS name (staging set, production set). */
  domainName: domainName.optional(),
  /** TLS certificate for the public listener; without one the ALB serves HTTP only. Default: set (dev unset). */
  certificate: certificateSchema.optional(),
  /**
   * TLS on the internal hops (see internalTlsSchema): unset in dev means plain HTTP inside the VPC,
   * no domain needed; production refuses to synthesize without it (NET-07). Default: set (dev unset).
   */
  internalTls: internalTlsSchema.optional(),
  /** Refuse deletion of the load balancer and stateful stacks. Default: false (production true). */
  deletionProtection: z.boolean(),
  network: z.strictObject({
    /** The VPC's address range; stages differ, so they can be peered. Default: 10.40.0.0/16 (staging 10.41.0.0/16, production 10.42.0.0/16). */
    vpcCidr: z
      .string()
      .regex(/^\d{1,3}(\.\d{1,3}){3}\/(1[6-9]|2[0-4])$/, 'an IPv4 CIDR between /16 and /24'),
    /** NAT gateways: one per AZ (no single point of failure), one in dev (cost). Default: 3 (dev 1). */
    natGateways: z.number().int().min(1).max(6),
    /** How many AZs carry the interface endpoints' ENIs: every AZ, but one in dev (cost). Default: 3 (dev 1). */
    interfaceEndpointAzCount: z.number().int().min(1).max(6),
  }),
  cors: z.strictObject({
    /** Origins allowed to call the API from a browser; every stage names its own. Never `*`; HTTPS in production. */
    allowedOrigins: z.array(z.string().min(1)).max(50),
  }),
  rateLimit: z.strictObject({
    /** Per-key limit in the proxy. Production refuses off. Default: true. */
    enabled: z.boolean(),
    /** Requests per minute per API key. Default: 60. */
    requestsPerMinute: z.number().int().positive().max(100_000),
  }),
  /** The largest request body accepted (413 above it) at the WAF and in the app. Default: 1048576 (1 MiB). */
  requestBodyBytesMax: z
    .number()
    .int()
    .min(1024)
    .max(6 * 1024 * 1024),
  /** Log level of the services. Production refuses DEBUG. Default: INFO (dev DEBUG). */
  logLevel: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']),
  /** Retention of every CloudWatch log group, days. Default: 90 (dev 30, production 365). */
  logRetentionDays: z
    .number()
    .int()
    .refine((days) => (logRetentionDaysAllowed as readonly number[]).includes(days), {
      message: `a CloudWatch retention period: ${logRetentionDaysAllowed.join(', ')}`,
    }),
  /** Alarm notifications go to this address. Default: set (dev unset). */
  alarmEmail: z.email().optional(),
  /** Thresholds of the stage's alarms (MON-03); each alarm fires when its value is above the maximum. */
  alarms: z.strictObject({
    /** 5xx answers of the public ALB (targets and the ALB itself) over its requests, per 5 minutes, percent. Default: 5. */
    serverErrorRatePercentMax: z.number().min(0.1).max(100),
    /** Fewer requests than this in 5 minutes are not judged by their 5xx rate (one failure is not an outage). Default: 20. */
    serverErrorRateRequestsMin: z.number().int().min(1).max(1_000_000),
    /** p99 of the public ALB's target response time over 5 minutes, ms; completions are slow. Default: 30000. */
    latencyP99MillisecondsMax: z.number().int().min(100).max(180_000),
    /** Billing failures (a settle or release not applied) per 5 minutes. Default: 0, any failure alarms. */
    billingFailuresPerFiveMinutesMax: z.number().int().min(0).max(10_000),
    /** Credits-unavailable signals per minute (proxy 503s, internal ALB 5xx, unhealthy targets), two minutes running. Default: 0. */
    creditsUnavailablePerMinuteMax: z.number().int().min(0).max(10_000),
    /** Rate-limit refusals of the proxy (per key and for repeated auth failures) per 5 minutes. Default: 300. */
    rateLimitRefusalsPerFiveMinutesMax: z.number().int().min(1).max(10_000_000),
    /** Requests blocked by the web ACL per 5 minutes. Default: 1000. */
    wafBlockedRequestsPerFiveMinutesMax: z.number().int().min(1).max(100_000_000),
    /** Errors of the secret rotation functions per 5 minutes. Default: 0, any failed rotation step alarms. */
    rotationErrorsPerFiveMinutesMax: z.number().int().min(0).max(1000),
  }),
  edge: z.strictObject({
    /** ALB idle timeout, seconds: long enough for a slow LLM completion. Default: 180. */
    idleTimeoutSeconds: z.number().int().min(30).max(4000),
    /** Days to keep ALB access logs. Default: 90 (dev 14, production 365). */
    accessLogExpirationDays: z.number().int().min(1).max(3650),
    /** WAF rate-based rules, requests per 60-second window. */
    waf: z.strictObject({
      /** Per client IP, any request. Default: 600. */
      ipRequestsPerMinute: z.number().int().min(10).max(2_000_000_000),
      /** Per API key (Authorization and X-API-Key headers separately). Default: 120 (above the app's exact limit). */
      keyRequestsPerMinute: z.number().int().min(10).max(2_000_000_000),
      /** Per client IP, requests that carry no well-formed API key. Default: 30. */
      anonymousRequestsPerMinute: z.number().int().min(10).max(2_000_000_000),
      /**
       * Rules of AWS's common rule set switched from block to count. SizeRestrictions_BODY is always
       * counted (prompts exceed 8 KB; our own size rule replaces it). The body-inspecting signature
       * rules are counted too, because prompts legitimately quote HTML, file paths and URLs and the
       * proxy forwards them as data, never interpreting them. Default: every (all of them).
       */
      countOnlyCommonRules: z
        .array(z.enum(commonRuleSetBodyRules))
        .max(commonRuleSetBodyRules.length),
    }),
  }),
  ledger: z.strictObject({
    /** TigerBeetle cluster id (u128, decimal string). */
    clusterId: z.string().regex(/^\d{1,39}$/),
    /** Replicas: 2 per AZ in production, 3 in staging, 1 in dev. TigerBeetle allows 1 to 6. Default: 3 (dev 1, production 6). */
    replicaCount: z.number().int().min(1).max(6),
    /**
     * The ledger hosts' AMI (ECS-optimized Amazon Linux 2023, arm64). A new AMI replaces every
     * host, one replica at a time (docs/runbooks/ledger-upgrade.md, "Host (AMI) updates"), so it
     * changes only when this setting does:
     * - `release`: one named release, resolved through its own versioned public SSM parameter
     *   (`/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/<name>/image_id`, whose value never
     *   changes), in whatever region the stage is;
     * - `id`: a literal AMI id of the stage's region (for example your own hardened image);
     * - `recommended`: the current recommended AMI, resolved again at every deploy, so a deploy
     *   after an AMI release rolls every host; dev only.
     * Shipped: `release` (the name below).
     */
    hostImage: z.discriminatedUnion('kind', [
      z.strictObject({
        kind: z.literal('release'),
        /** Default: al2023-ami-ecs-hvm-2023.0.20251108-kernel-6.1-arm64 */
        name: z
          .string()
          .regex(
            /^al2023-ami-ecs-hvm-2023\.\d+\.\d{8}-kernel-\d+\.\d+-arm64$/,
            'an ECS-optimized AL2023 arm64 release such as al2023-ami-ecs-hvm-2023.0.20251108-kernel-6.1-arm64',
          ),
      }),
      z.strictObject({
        kind: z.literal('id'),
        imageId: z.string().regex(/^ami-[0-9a-f]{17}$/, 'an AMI id such as ami-0123456789abcdef0'),
        /** The region the AMI id belongs to (AMI ids are regional); must be the stage's region. */
        region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/),
      }),
      z.strictObject({ kind: z.literal('recommended') }),
    ]),
    /** EC2 instance type of a replica host (Graviton, with a known memory size: lib/config/ledger-hosts.ts). Default: r7g.large (dev t4g.large). */
    instanceType: z
      .string()
      .regex(/^[a-z0-9]+g[a-z]*\.[a-z0-9]+$/, 'a Graviton (arm64) instance type such as m7g.large'),
    /** Size of each replica's gp3 data volume, GiB. Default: 100 (dev 20, staging 50). */
    volumeSizeGiB: z.number().int().min(8).max(16_384),
    /** gp3 provisioned IOPS. Default: 3000 (the gp3 baseline). */
    volumeIops: z.number().int().min(3000).max(80_000),
    /** gp3 throughput, MiB/s. Default: 125 (the gp3 baseline). */
    volumeThroughputMiBps: z.number().int().min(125).max(2000),
    /**
     * Version of the official TigerBeetle image (ghcr.io/tigerbeetle/tigerbeetle) the replicas run.
     * Must equal the tigerbeetle-node version in package.json (the client must never be newer than
     * the cluster); synth fails otherwise. Default: 0.17.9.
     */
    tigerbeetleVersion: z.string().regex(/^\d+\.\d+\.\d+$/, 'an exact version such as 0.17.9'),
    /**
     * Host offset of the first fixed replica address in each ledger subnet: replica i gets
     * `<subnet of AZ i mod azCount> + offset + floor(i / azCount)`. AWS reserves the first four
     * addresses of a subnet. Default: 10.
     */
    fixedAddressOffset: z.number().int().min(4).max(250),
    /** TigerBeetle's grid cache (`start --cache-grid`), MiB. Default: 8192 (dev 512). */
    cacheGridMiB: z.number().int().min(64).max(262_144),
    /**
     * Hard memory limit of the replica container, MiB: at least TigerBeetle's 6 GiB and the grid cache
     * plus 3 GiB, and within the instance type's memory less the OS's and the gateway's (synth checks). Default: 12288 (dev 6144).
     */
    replicaMemoryMiB: z.number().int().min(512).max(1_048_576),
    /** Hard memory limit of the gateway container, MiB. Default: 512. */
    gatewayMemoryMiB: z.number().int().min(256).max(16_384),
    backup: z.strictObject({
      /** Days a daily snapshot of each replica volume is kept. Default: 35. */
      retentionDays: z.number().int().min(1).max(36_500),
      /**
       * Optional copy of every recovery point to a vault in another region (its ARN). Default: unset.
       * The destination vault must exist and allow this account to copy into it.
       */
      copyToVaultArn: z
        .string()
        .regex(
          /^arn:aws[a-z-]*:backup:[a-z0-9-]+:\d{12}:backup-vault:[A-Za-z0-9_.-]{2,50}$/,
          'an AWS Backup vault ARN',
        )
        .optional(),
    }),
  }),
  api: z.strictObject({
    /**
     * Address ranges allowed to call the credits service's internal load balancer directly (operators'
     * networks, for top-ups; NET-09). The proxy is always allowed. Default: none.
     */
    creditsAdminCidrs: z
      .array(z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'an IPv4 CIDR'))
      .max(20),
    /** Reserved concurrency of the proxy function. Default: unset (production 200). */
    proxyReservedConcurrency: z.number().int().min(1).max(10_000).optional(),
    /** Reserved concurrency of the credits function. Default: unset (production 100). */
    creditsReservedConcurrency: z.number().int().min(1).max(10_000).optional(),
    /**
     * The Lambda concurrent-executions quota of the target account and region (Service Quotas
     * L-B99A9384). Synth asserts that the reserved concurrency above plus the 100 executions Lambda
     * keeps unreserved fit in it (production: 200 + 100 + 100 = 400); `npm run preflight` checks the
     * live account. Default: 1000, the usual quota (new accounts may start lower: request an increase).
     */
    accountConcurrentExecutionsQuota: z.number().int().min(10).max(1_000_000),
    /** Service keys (proxy -> credits, credits admin, credits -> gateway) rotate after this many days. Default: 90. */
    serviceKeyRotationDays: z.number().int().min(1).max(365),
    /**
     * The proxy function's timeout, seconds: above the longest request (admission, provider budget,
     * inline settlement, queue hand-off: 135.25 s), at most the API Gateway
     * integration timeout (the chain is asserted at synth, lib/config/timeouts.ts). Default: 140.
     */
    proxyTimeoutSeconds: z.number().int().min(1).max(900),
    /** The private REST API that streams the proxy's responses (lib/constructs/streaming-api.ts). */
    gateway: z.strictObject({
      /** Integration timeout of the streaming Lambda integration, seconds; API Gateway allows up to 900 when streaming. Default: 150. */
      integrationTimeoutSeconds: z.number().int().min(1).max(900),
      /** Stage throttling: steady requests per second across all clients. Default: 100 (dev 20). */
      throttlingRateRequestsPerSecond: z.number().int().min(1).max(10_000),
      /** Stage throttling: burst bucket size, requests. Default: 200 (dev 40). */
      throttlingBurstRequests: z.number().int().min(1).max(5000),
    }),
  }),
  /** Limits of the proxy's provider calls and streams; every field optional (the defaults in lambda/proxy/config.ts). */
  proxy: z
    .strictObject({
      /** The most bytes read from one provider response, streamed or not; above it the answer is a 502 and the hold is released. Default: 33554432 (32 MiB). */
      providerResponseBytesMax: z
        .number()
        .int()
        .min(64 * 1024)
        .max(1024 * 1024 * 1024)
        .optional(),
      /** A stream silent this long gets an SSE comment, so idle timeouts on the path do not cut slow models. Default: 15000. */
      streamKeepAliveIntervalMilliseconds: z.number().int().min(1000).max(60_000).optional(),
      /** The built-in echo model's wait between streamed words. Default: 20. */
      echoChunkDelayMilliseconds: z.number().int().min(0).max(1000).optional(),
    })
    .optional(),
  /** Currency of the credits (micro-units on the ledger). Default: USD. */
  currency: z.string().regex(/^[A-Z]{3}$/),
  /** The models clients may call, with their prices. */
  models: z.array(modelSchema).min(1).max(100),
  /** The embedding models clients may call, with their prices (unset in an override file: none). */
  embeddingModels: z.array(embeddingModelSchema).max(100).default([]),
});

export type StageConfig = z.infer<typeof configSchema>;
