import { Aws } from 'aws-cdk-lib';
import {
  TargetType,
  type IApplicationLoadBalancerTarget,
  type IApplicationTargetGroup,
  type LoadBalancerTargetProps,
} from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';

/**
 * A Lambda function as the target of an application load balancer, like CDK's `LambdaTarget`, but
 * its invoke permission names the source (Control Tower proactive controls): only target groups of
 * this account and region may invoke it. The exact target group ARN cannot be used: the target
 * group registers the function, so it must be created after the permission, which cannot then
 * refer to it (a dependency cycle).
 */
const loadBalancerPermissionId = 'InvokeByLoadBalancer';

export class SourceScopedLambdaTarget implements IApplicationLoadBalancerTarget {
  constructor(private readonly fn: IFunction) {}

  attachToApplicationTargetGroup(targetGroup: IApplicationTargetGroup): LoadBalancerTargetProps {
    // A fixed id: a grant's id would hash the condition's tokens, which are numbered per process.
    if (this.fn.permissionsNode.tryFindChild(loadBalancerPermissionId) === undefined) {
      this.fn.addPermission(loadBalancerPermissionId, {
        principal: new ServicePrincipal('elasticloadbalancing.amazonaws.com'),
        sourceArn: targetGroupArnPattern(),
      });
    }
    // Registering the function needs the permission first.
    targetGroup.node.addDependency(this.fn.permissionsNode.findChild(loadBalancerPermissionId));
    return { targetType: TargetType.LAMBDA, targetJson: { id: this.fn.functionArn } };
  }
}

/** The ARN pattern of this account's target groups in this region (what a load balancer invokes as). */
export function targetGroupArnPattern(): string {
  return `arn:${Aws.PARTITION}:elasticloadbalancing:${Aws.REGION}:${Aws.ACCOUNT_ID}:targetgroup/*`;
}
