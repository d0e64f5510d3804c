import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveStageConfig, stageNames, type StageName } from '../lib/config';
import { createStageApp } from '../lib/app';
import {
  findResources,
  prop,
  type CfnTemplate,
  type StageTemplates,
} from './checklist-audit/templates';

/**
 * `npx tsx scripts/cost-inventory.ts`: what a stage pays for before traffic, counted from its
 * synthesized templates (the README's cost table is this inventory times the unit prices it names;
 * test/scripts/cost-inventory.test.ts keeps the two in step).
 */

export interface CostInventory {
  readonly applicationLoadBalancers: number;
  readonly networkLoadBalancers: number;
  readonly natGateways: number;
  /** Interface endpoints other than execute-api: services, and ENIs (one per service per AZ). */
  readonly interfaceEndpointServices: number;
  readonly interfaceEndpointEnis: number;
  /** The execute-api endpoint of the streaming path, ENIs (one per AZ); 0 until it exists. */
  readonly executeApiEndpointEnis: number;
  /** Ledger hosts by instance type (one Auto Scaling group of one per replica). */
  readonly instances: Readonly<Record<string, number>>;
  /** gp3 data volumes and the hosts' root volumes, GiB in total. */
  readonly dataVolumeGiB: number;
  readonly rootVolumeGiB: number;
  readonly wafRules: number;
  readonly kmsKeys: number;
  readonly secrets: number;
  readonly alarms: number;
  readonly dashboards: number;
  readonly hostedZones: number;
}

function subnetCount(endpoint: ReturnType<typeof findResources>[number]): number {
  return ((prop(endpoint, 'SubnetIds') ?? []) as unknown[]).length;
}

function instancesByType(templates: StageTemplates): Record<string, number> {
  const groups = findResources(templates, 'AWS::AutoScaling::AutoScalingGroup');
  const launchTemplates = new Map(
    findResources(templates, 'AWS::EC2::LaunchTemplate').map((found) => [found.logicalId, found]),
  );
  const counts: Record<string, number> = {};
  for (const group of groups) {
    const reference = JSON.stringify(
      prop(group, 'LaunchTemplate') ?? prop(group, 'MixedInstancesPolicy') ?? '',
    );
    const launchTemplate = [...launchTemplates.values()].find((found) =>
      reference.includes(`"${found.logicalId}"`),
    );
    const type = String(
      launchTemplate ? prop(launchTemplate, 'LaunchTemplateData.InstanceType') : 'unknown',
    );
    counts[type] =
      (counts[type] ?? 0) + Number(prop(group, 'DesiredCapacity') ?? prop(group, 'MinSize') ?? 1);
  }
  return counts;
}

function rootVolumeGiB(templates: StageTemplates, instances: Record<string, number>): number {
  const perHost = findResources(templates, 'AWS::EC2::LaunchTemplate').map((found) =>
    (
      (prop(found, 'LaunchTemplateData.BlockDeviceMappings') ?? []) as {
        Ebs?: { VolumeSize?: number };
      }[]
    ).reduce((sum, mapping) => sum + (mapping.Ebs?.VolumeSize ?? 0), 0),
  );
  const hosts = Object.values(instances).reduce((sum, count) => sum + count, 0);
  return perHost.length === 0 ? 0 : Math.max(...perHost) * hosts;
}

export function costInventory(templates: StageTemplates): CostInventory {
  const loadBalancers = findResources(templates, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
  const interfaceEndpoints = findResources(templates, 'AWS::EC2::VPCEndpoint').filter(
    (found) => prop(found, 'VpcEndpointType') === 'Interface',
  );
  const isExecuteApi = (found: (typeof interfaceEndpoints)[number]) =>
    JSON.stringify(prop(found, 'ServiceName')).includes('execute-api');
  const instances = instancesByType(templates);
  const webAcls = findResources(templates, 'AWS::WAFv2::WebACL');
  return {
    applicationLoadBalancers: loadBalancers.filter(
      (found) => (prop(found, 'Type') ?? 'application') === 'application',
    ).length,
    networkLoadBalancers: loadBalancers.filter((found) => prop(found, 'Type') === 'network').length,
    natGateways: findResources(templates, 'AWS::EC2::NatGateway').length,
    interfaceEndpointServices: interfaceEndpoints.filter((found) => !isExecuteApi(found)).length,
    interfaceEndpointEnis: interfaceEndpoints
      .filter((found) => !isExecuteApi(found))
      .reduce((sum, found) => sum + subnetCount(found), 0),
    executeApiEndpointEnis: interfaceEndpoints
      .filter(isExecuteApi)
      .reduce((sum, found) => sum + subnetCount(found), 0),
    instances,
    dataVolumeGiB: findResources(templates, 'AWS::EC2::Volume').reduce(
      (sum, found) => sum + Number(prop(found, 'Size') ?? 0),
      0,
    ),
    rootVolumeGiB: rootVolumeGiB(templates, instances),
    wafRules: webAcls.reduce(
      (sum, found) => sum + ((prop(found, 'Rules') ?? []) as unknown[]).length,
      0,
    ),
    kmsKeys: findResources(templates, 'AWS::KMS::Key').length,
    secrets: findResources(templates, 'AWS::SecretsManager::Secret').length,
    alarms: findResources(templates, 'AWS::CloudWatch::Alarm').length,
    dashboards: findResources(templates, 'AWS::CloudWatch::Dashboard').length,
    hostedZones: findResources(templates, 'AWS::Route53::HostedZone').length,
  };
}

/**
 * The templates of a stage, synthesized without bundling (offline, a few seconds). Staging and
 * production refuse their shipped placeholders, so they take overrides: by default CI's realistic
 * fixtures (test/fixtures/<stage>.json), which the README's cost table is counted from.
 */
export function stageTemplates(
  stage: StageName,
  overrides: unknown = fixtureOverrides(stage),
): StageTemplates {
  const { app, stacks } = createStageApp(resolveStageConfig(stage, overrides), {
    complianceChecks: false,
    bundling: false,
  });
  const assembly = app.synth();
  return Object.fromEntries(
    Object.entries(stacks).map(([part, stack]) => [
      part,
      assembly.getStackByName(stack.stackName).template as CfnTemplate,
    ]),
  );
}

function fixtureOverrides(stage: StageName): unknown {
  const fixture = join(__dirname, '..', 'test', 'fixtures', `${stage}.json`);
  return existsSync(fixture) ? (JSON.parse(readFileSync(fixture, 'utf8')) as unknown) : {};
}

if (require.main === module) {
  const rows = stageNames.map((stage) => [stage, costInventory(stageTemplates(stage))] as const);
  for (const [stage, inventory] of rows)
    process.stdout.write(`${stage}: ${JSON.stringify(inventory)}\n`);
}
