/**
 * Bedrock models in the stage config: what an `upstreamModel` may look like, how it relates to the
 * stage's region, and which IAM resources the proxy's role gets for it (exactly those, never `*`).
 *
 * A bedrock model is called either by its foundation-model id (`amazon.nova-lite-v1:0`), served in
 * the stage's own region, or through a cross-region inference profile (`eu.amazon.nova-lite-v1:0`),
 * which Bedrock routes from the stage's region to one of the profile's destination regions. The
 * role needs the profile's ARN and the foundation model's ARN in every destination region, so a
 * profile's model lists them (`inferenceProfileRegions`, from the Bedrock console's profile page or
 * `aws bedrock get-inference-profile`).
 */

/** Geography prefixes of cross-region inference profiles, and the stage regions each serves. */
export const inferenceProfileGeographies: Readonly<Record<string, (region: string) => boolean>> = {
  us: (region) => /^us-(east|west)-\d$/.test(region),
  'us-gov': (region) => region.startsWith('us-gov-'),
  eu: (region) => region.startsWith('eu-'),
  apac: (region) => region.startsWith('ap-'),
  jp: (region) => region === 'ap-northeast-1' || region === 'ap-northeast-3',
  au: (region) => region === 'ap-southeast-2' || region === 'ap-southeast-4',
  ca: (region) => region.startsWith('ca-'),
};

/** `provider.model-name-version:revision`, as Bedrock names its foundation models. */
const foundationModelIdPattern = /^[a-z0-9-]{2,32}\.[a-z0-9][a-z0-9.-]*(:\d+(:[a-z0-9]+)?)?$/;

export type BedrockModelTarget =
  | { readonly kind: 'foundation-model'; readonly modelId: string }
  | {
      readonly kind: 'inference-profile';
      readonly profileId: string;
      readonly geography: string;
      readonly modelId: string;
    };

/** What an upstreamModel names, or why it is neither form. */
export function bedrockModelTarget(upstreamModel: string): BedrockModelTarget | string {
  const [first, ...rest] = upstreamModel.split('.');
  if (first === 'global')
    return `'${upstreamModel}' is a global inference profile: it routes to every commercial region, so the role could not name them; use the geography's profile (us., eu., apac., ...) or the model id`;
  if (first in inferenceProfileGeographies) {
    const modelId = rest.join('.');
    if (!foundationModelIdPattern.test(modelId))
      return `'${upstreamModel}' is not an inference profile id such as eu.anthropic.claude-sonnet-4-20250514-v1:0`;
    return { kind: 'inference-profile', profileId: upstreamModel, geography: first, modelId };
  }
  if (!foundationModelIdPattern.test(upstreamModel))
    return `'${upstreamModel}' is neither a Bedrock model id (amazon.nova-lite-v1:0) nor a cross-region inference profile id (eu.amazon.nova-lite-v1:0)`;
  return { kind: 'foundation-model', modelId: upstreamModel };
}

/** The schema's check of one bedrock model (shape only; the region relations are `bedrockRegionProblems`). */
export function bedrockModelProblem(model: {
  readonly upstreamModel: string;
  readonly inferenceProfileRegions?: readonly string[];
}): string | undefined {
  const target = bedrockModelTarget(model.upstreamModel);
  if (typeof target === 'string') return target;
  if (target.kind === 'inference-profile' && !model.inferenceProfileRegions)
    return `'${model.upstreamModel}' is an inference profile: list the regions it routes to in inferenceProfileRegions (the proxy's role needs the model in each)`;
  if (target.kind === 'foundation-model' && model.inferenceProfileRegions)
    return `'${model.upstreamModel}' is a model id, served in the stage's region: inferenceProfileRegions is only for inference profiles`;
  return undefined;
}

/** Every stage: a profile of the stage's geography that routes to regions of that geography. */
export function bedrockRegionProblems(config: {
  readonly region: string;
  readonly models: readonly {
    readonly id: string;
    readonly provider: string;
    readonly upstreamModel: string;
    readonly inferenceProfileRegions?: readonly string[];
  }[];
}): string[] {
  const problems: string[] = [];
  for (const model of config.models) {
    if (model.provider !== 'bedrock') continue;
    const target = bedrockModelTarget(model.upstreamModel);
    if (typeof target === 'string' || target.kind !== 'inference-profile') continue;
    const servesRegion = inferenceProfileGeographies[target.geography];
    if (!servesRegion(config.region))
      problems.push(
        `models '${model.id}': the inference profile '${model.upstreamModel}' cannot be called from ${config.region}; use the profile of the stage's geography`,
      );
    const outside = (model.inferenceProfileRegions ?? []).filter((region) => !servesRegion(region));
    if (outside.length > 0)
      problems.push(
        `models '${model.id}': inferenceProfileRegions ${outside.join(', ')} lie outside the '${target.geography}' geography of '${model.upstreamModel}'`,
      );
  }
  return problems;
}

/** What the proxy's role may invoke for one bedrock model (lib/stacks/api-stack.ts writes the policy). */
export type BedrockInvokeGrant =
  /** A model id: the foundation model in the stage's region. */
  | { readonly kind: 'foundation-model'; readonly modelArn: string }
  /**
   * A profile: the profile itself (in the stage's region, in this account), and the foundation
   * model in each region it routes to, only when called through that profile.
   */
  | {
      readonly kind: 'inference-profile';
      readonly profileArn: string;
      readonly modelArns: readonly string[];
    };

/** The grant of one bedrock model; partition, region and account come from the stack. */
export function bedrockInvokeGrant(
  model: { readonly upstreamModel: string; readonly inferenceProfileRegions?: readonly string[] },
  stack: { readonly partition: string; readonly region: string; readonly account: string },
): BedrockInvokeGrant {
  const target = bedrockModelTarget(model.upstreamModel);
  if (typeof target === 'string') throw new Error(target);
  const foundationModel = (region: string) =>
    `arn:${stack.partition}:bedrock:${region}::foundation-model/${target.modelId}`;
  if (target.kind === 'foundation-model')
    return { kind: 'foundation-model', modelArn: foundationModel(stack.region) };
  return {
    kind: 'inference-profile',
    profileArn: `arn:${stack.partition}:bedrock:${stack.region}:${stack.account}:inference-profile/${target.profileId}`,
    modelArns: (model.inferenceProfileRegions ?? []).map(foundationModel),
  };
}
