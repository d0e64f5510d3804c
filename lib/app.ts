import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import type { StageConfig } from './config';
import { addComplianceChecks } from './compliance';
import { ApiStack } from './stacks/api-stack';
import { EdgeStack } from './stacks/edge-stack';
import { LedgerStack } from './stacks/ledger-stack';
import { NetworkStack } from './stacks/network-stack';
import { ObservabilityStack } from './stacks/observability-stack';

export interface StageStacks {
  readonly network: NetworkStack;
  readonly edge: EdgeStack;
  readonly ledger: LedgerStack;
  readonly api: ApiStack;
  readonly observability: ObservabilityStack;
}

/** The stack name of one part of a stage, e.g. ai-proxy-production-network. */
export function stackName(config: StageConfig, part: string): string {
  return `ai-proxy-${config.stage}-${part}`;
}

/** Composes the stacks of one stage and wires them together. */
export function buildStage(app: App, config: StageConfig): StageStacks {
  const network = new NetworkStack(app, stackName(config, 'network'), {
    config,
    description: `AI proxy (${config.stage}): VPC, subnets, endpoints, flow logs`,
  });
  const edge = new EdgeStack(app, stackName(config, 'edge'), {
    config,
    description: `AI proxy (${config.stage}): public ALB, TLS certificate, WAF`,
    vpc: network.vpc,
    logsKey: network.logsKey,
  });
  const ledger = new LedgerStack(app, stackName(config, 'ledger'), {
    config,
    description: `AI proxy (${config.stage}): TigerBeetle cluster, ledger gateway, backups`,
    vpc: network.vpc,
    logsKey: network.logsKey,
    internalTls: network.internalTls,
  });
  const api = new ApiStack(app, stackName(config, 'api'), {
    config,
    description: `AI proxy (${config.stage}): proxy and credits functions, secrets and their rotation`,
    vpc: network.vpc,
    logsKey: network.logsKey,
    publicListener: edge.alb.listener,
    gatewayUrl: ledger.gatewayUrl,
    gatewayTokenSecret: ledger.gatewayTokenSecret,
    gatewayClientSecurityGroup: ledger.gatewayClientSecurityGroup,
    internalTls: network.internalTls,
  });
  const observability = new ObservabilityStack(app, stackName(config, 'observability'), {
    config,
    description: `AI proxy (${config.stage}): alarms, their SNS topic and the dashboard`,
    publicLoadBalancer: edge.alb.loadBalancer,
    creditsLoadBalancer: api.creditsAlb.loadBalancer,
    creditsTargets: api.creditsTargets,
    streamingApi: api.streamingApi,
    rotationFunctions: [api.rotation.function, ledger.tokenRotation.function],
    settlement: api.settlement,
    ledgerAlarms: ledger.cluster.alarms.alarms,
  });
  return { network, edge, ledger, api, observability };
}

/** The context of cdk.json (feature flags), so that tests synthesize exactly what the CLI does. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(__dirname, '..', 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  };
  return cdkJson.context;
}

export interface SynthesizableStage {
  readonly app: App;
  readonly stacks: StageStacks;
}

/**
 * An app holding one stage, with cdk.json's context and the compliance checks, as `cdk synth` builds
 * it. `bundling: false` skips building the functions' code (tests that only read templates), as
 * `cdk synth --exclusively` does for stacks not being deployed.
 */
export function createStageApp(
  config: StageConfig,
  options: { outdir?: string; complianceChecks?: boolean; bundling?: boolean } = {},
): SynthesizableStage {
  const context: Record<string, unknown> = { ...cdkJsonContext(), stage: config.stage };
  if (options.bundling === false) context['aws:cdk:bundling-stacks'] = [];
  const app = new App({ context, outdir: options.outdir });
  if (options.complianceChecks ?? true) addComplianceChecks(app);
  return { app, stacks: buildStage(app, config) };
}
