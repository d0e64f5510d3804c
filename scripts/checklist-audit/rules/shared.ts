import { AwsCustomResource } from 'aws-cdk-lib/custom-resources';
import {
  environmentOf,
  findResources,
  functionNamed,
  type FoundResource,
  type StageTemplates,
} from '../templates';

/** The proxy function and the settings the CDK app passed it (PROXY_CONFIG, no secrets). */
export function proxySettings(
  templates: StageTemplates,
): { proxy: FoundResource; config: Record<string, unknown> } | undefined {
  const proxy = functionNamed(templates, 'ProxyFunction');
  if (!proxy) return undefined;
  const raw = environmentOf(proxy).PROXY_CONFIG;
  if (typeof raw !== 'string') return undefined;
  return { proxy, config: JSON.parse(raw) as Record<string, unknown> };
}

/** Logical id prefix of the one provider function CDK creates per stack for AwsCustomResource lookups. */
const awsCustomResourceProviderPrefix = `AWS${AwsCustomResource.PROVIDER_FUNCTION_UUID.replace(/-/g, '')}`;

/**
 * The stage's own functions (the one factory), without CDK's deploy-time custom resource providers
 * (Custom*, and AwsCustomResource's provider): those run only while CloudFormation deploys, handle no
 * client traffic or data, and carry their own nag acknowledgments with reasons.
 */
export function serviceFunctions(templates: StageTemplates): FoundResource[] {
  return findResources(templates, 'AWS::Lambda::Function').filter(
    (found) =>
      !found.logicalId.startsWith('Custom') &&
      !found.logicalId.startsWith(awsCustomResourceProviderPrefix),
  );
}

/** Container definitions of every ECS task definition, with their task definition. */
export function containers(
  templates: StageTemplates,
): { task: FoundResource; container: Record<string, unknown> }[] {
  return findResources(templates, 'AWS::ECS::TaskDefinition').flatMap((task) =>
    ((task.resource.Properties?.ContainerDefinitions ?? []) as Record<string, unknown>[]).map(
      (container) => ({ task, container }),
    ),
  );
}

export function isInternetFacing(loadBalancer: FoundResource): boolean {
  return loadBalancer.resource.Properties?.Scheme === 'internet-facing';
}

/** Environment variable names that would carry a secret if they held a value instead of an ARN. */
export const secretLikeName = /(KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL)/i;
