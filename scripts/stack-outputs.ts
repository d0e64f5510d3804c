import { DescribeStacksCommand, type CloudFormationClient } from '@aws-sdk/client-cloudformation';

/** A deployed stack's outputs, by key. */
export type StackOutputs = ReadonlyMap<string, string>;

/** A stack that the account does not have (CloudFormation answers a ValidationError). */
export class StackNotFoundError extends Error {
  override readonly name = 'StackNotFoundError';
}

/** The stack names of a stage, as lib/app.ts builds them (ai-proxy-<stage>-<part>). */
export function stageStackName(stage: string, part: string): string {
  return `ai-proxy-${stage}-${part}`;
}

/** DescribeStacks of one stack: its outputs, or StackNotFoundError when it does not exist. */
export async function readStackOutputs(
  client: CloudFormationClient,
  stackName: string,
): Promise<StackOutputs> {
  let answer;
  try {
    answer = await client.send(new DescribeStacksCommand({ StackName: stackName }));
  } catch (error) {
    if (
      error instanceof Error &&
      error.name === 'ValidationError' &&
      /does not exist/.test(error.message)
    ) {
      throw new StackNotFoundError(
        `stack ${stackName} does not exist in ${await client.config.region()}`,
      );
    }
    throw error;
  }
  const stack = answer.Stacks?.[0];
  if (stack === undefined)
    throw new StackNotFoundError(
      `stack ${stackName} does not exist in ${await client.config.region()}`,
    );
  const outputs = new Map<string, string>();
  for (const output of stack.Outputs ?? []) {
    if (output.OutputKey && output.OutputValue !== undefined)
      outputs.set(output.OutputKey, output.OutputValue);
  }
  return outputs;
}
