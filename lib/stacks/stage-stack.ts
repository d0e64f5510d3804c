import { Aspects, Stack, Tags, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { StageConfig } from '../config';
import { ProactiveControls } from '../constructs/proactive-controls';

export interface StageStackProps extends StackProps {
  readonly config: StageConfig;
}

/**
 * A stack of one stage: its environment comes from the stage config, and its availability zones are
 * the configured ones, so synthesis never looks anything up in an AWS account.
 */
export class StageStack extends Stack {
  readonly config: StageConfig;

  constructor(scope: Construct, id: string, props: StageStackProps) {
    super(scope, id, {
      ...props,
      env: { account: props.config.account, region: props.config.region },
      terminationProtection: props.terminationProtection ?? props.config.deletionProtection,
    });
    this.config = props.config;
    Tags.of(this).add('stage', props.config.stage);
    Tags.of(this).add('application', 'ai-proxy');
    // Lambda permissions and KMS key policies as Control Tower's proactive controls require them.
    Aspects.of(this).add(new ProactiveControls());
  }

  override get availabilityZones(): string[] {
    return [...this.config.availabilityZones];
  }
}
