import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import type { StageConfig } from './config';
import { addComplianceChecks } from './compliance';
import { EdgeStack } from './stacks/edge-stack';
import { LedgerStack } from './stacks/ledger-stack';
import { NetworkStack } from './stacks/network-stack';

export interface StageStacks {
  readonly network: NetworkStack;
  readonly edge: EdgeStack;
  readonly ledger: LedgerStack;
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
  });
  return { network, edge, ledger };
}

/** The context of cdk.json (feature flags), so that tests synthesize exactly what the CLI does. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(__dirname, '..', 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
  return cdkJson.context;
}

export interface SynthesizableStage {
  readonly app: App;
  readonly stacks: StageStacks;
}

/** An app holding one stage, with cdk.json's context and the compliance checks, as `cdk synth` builds it. */
export function createStageApp(config: StageConfig, options: { outdir?: string; complianceChecks?: boolean } = {}): SynthesizableStage {
  const app = new App({ context: { ...cdkJsonContext(), stage: config.stage }, outdir: options.outdir });
  if (options.complianceChecks ?? true) addComplianceChecks(app);
  return { app, stacks: buildStage(app, config) };
}
