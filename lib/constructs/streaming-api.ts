import { Aws, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import {
  AccessLogFormat,
  EndpointType,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  ResponseTransferMode,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import {
  CfnSecurityGroupEgress,
  InterfaceVpcEndpoint,
  InterfaceVpcEndpointAwsService,
  Port,
  SecurityGroup,
  type ISubnet,
  type IVpc,
} from 'aws-cdk-lib/aws-ec2';
import {
  ApplicationListenerRule,
  ApplicationProtocol,
  ApplicationTargetGroup,
  type CfnListenerRule,
  ListenerAction,
  ListenerCondition,
  Protocol,
  TargetType,
  type ApplicationListener,
} from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { IpTarget } from 'aws-cdk-lib/aws-elasticloadbalancingv2-targets';
import { AnyPrincipal, Effect, PolicyDocument, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import {
  AwsCustomResource,
  AwsCustomResourcePolicy,
  PhysicalResourceId,
  type AwsSdkCall,
} from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { acknowledge, nistAndPci } from '../compliance';
import { EncryptedLogGroup } from './encrypted-log-group';

/** The one stage of the private API; the ALB puts it in front of every path it forwards. */
export const streamingApiStageName = 'api';
/** The endpoint's ENIs answer HTTPS here. */
const endpointPort = 443;
/**
 * What the endpoint answers a health check: ALB health checks cannot set a Host header, so they
 * reach no API and the endpoint answers 403. A 403 proves what the check can prove: the ENI is up,
 * speaks TLS and HTTP. The proxy's own /health and /ready are answered through the listener rule.
 */
export const endpointHealthyHttpCodes = '200,403';

export interface StreamingApiProps {
  readonly vpc: IVpc;
  /** One subnet per availability zone that carries an ENI of the endpoint, in the configured zone order. */
  readonly endpointSubnets: readonly ISubnet[];
  /** The public ALB's listener; its load balancer is the only client the endpoint admits. */
  readonly listener: ApplicationListener;
  /** Priority of the rule on the listener. */
  readonly priority: number;
  /** The paths forwarded (at most five, an ALB condition's limit); the API serves exactly these. */
  readonly pathPatterns: readonly string[];
  /** The function behind the API; it answers in Lambda's response-streaming format. */
  readonly handler: IFunction;
  readonly integrationTimeout: Duration;
  readonly throttlingRateRequestsPerSecond: number;
  readonly throttlingBurstRequests: number;
  readonly logsKey: IKey;
  readonly logRetentionDays: number;
}

/**
 * The streaming path from the public ALB to a Lambda function (an ALB cannot stream a Lambda
 * response; API Gateway can). A listener rule forwards the API paths, with the Host header rewritten
 * to the private REST API's execute-api name and the stage put in front of the path, to an IP target
 * group on the ENIs of an `execute-api` interface endpoint (HTTPS). Their addresses are assigned at
 * deploy, so custom resources read them, one per subnet in zone order. The private API admits only
 * that endpoint, and the endpoint admits only the ALB (NET-06). The integration streams
 * (`ResponseTransferMode.STREAM`); the stage has access and execution logs in KMS-encrypted log
 * groups (LOG-03), X-Ray tracing and throttling.
 */
export class StreamingApi extends Construct {
  readonly endpointSecurityGroup: SecurityGroup;
  readonly endpoint: InterfaceVpcEndpoint;
  readonly api: RestApi;
  readonly accessLogs: EncryptedLogGroup;
  /** The endpoint's ENI addresses (deploy-time values), in zone order. */
  readonly endpointAddresses: string[];
  readonly targetGroup: ApplicationTargetGroup;
  readonly rule: ApplicationListenerRule;

  constructor(scope: Construct, id: string, props: StreamingApiProps) {
    super(scope, id);
    this.endpointSecurityGroup = new SecurityGroup(this, 'EndpointSecurityGroup', {
      vpc: props.vpc,
      description: 'execute-api endpoint of the streaming API: HTTPS from the public ALB only',
      allowAllOutbound: false,
    });
    this.admitLoadBalancer(props.listener);
    this.endpoint = new InterfaceVpcEndpoint(this, 'Endpoint', {
      vpc: props.vpc,
      service: InterfaceVpcEndpointAwsService.APIGATEWAY,
      // Private DNS would send every execute-api name in the VPC to this endpoint (public APIs
      // included); the ALB addresses the ENIs directly and names the API in the Host header.
      privateDnsEnabled: false,
      open: false,
      securityGroups: [this.endpointSecurityGroup],
      subnets: { subnets: [...props.endpointSubnets] },
    });
    // The endpoint carries only invocations of this account's APIs (the API's own policy names the endpoint).
    this.endpoint.addToPolicy(
      new PolicyStatement({
        principals: [new AnyPrincipal()],
        actions: ['execute-api:Invoke'],
        resources: [`arn:${Aws.PARTITION}:execute-api:${Aws.REGION}:${Aws.ACCOUNT_ID}:*`],
      }),
    );

    this.accessLogs = new EncryptedLogGroup(this, 'AccessLogs', {
      encryptionKey: props.logsKey,
      retentionDays: props.logRetentionDays,
    });
    this.api = this.createApi(props);
    this.endpointAddresses = this.lookUpEndpointAddresses(props);
    this.targetGroup = new ApplicationTargetGroup(this, 'Targets', {
      vpc: props.vpc,
      targetType: TargetType.IP,
      protocol: ApplicationProtocol.HTTPS,
      port: endpointPort,
      targets: this.endpointAddresses.map((address) => new IpTarget(address, endpointPort)),
      // An ENI leaving the group lets its streams finish first.
      deregistrationDelay: props.integrationTimeout,
      healthCheck: {
        enabled: true,
        protocol: Protocol.HTTPS,
        path: '/',
        healthyHttpCodes: endpointHealthyHttpCodes,
        interval: Duration.seconds(30),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
      },
    });
    this.rule = this.routeThroughEndpoint(props);
  }

  /**
   * HTTPS from the ALB's security groups to the endpoint, both rules written here: an egress rule
   * left to the ALB's (edge) stack would make it depend on this one, and this one depends on it.
   */
  private admitLoadBalancer(listener: ApplicationListener): void {
    listener.connections.securityGroups.forEach((group, index) => {
      this.endpointSecurityGroup.addIngressRule(
        group,
        Port.tcp(endpointPort),
        'HTTPS from the public ALB',
      );
      new CfnSecurityGroupEgress(this, `LoadBalancerEgress${index}`, {
        groupId: group.securityGroupId,
        ipProtocol: 'tcp',
        fromPort: endpointPort,
        toPort: endpointPort,
        destinationSecurityGroupId: this.endpointSecurityGroup.securityGroupId,
        description: 'The streaming API through its execute-api endpoint',
      });
    });
  }

  /** The execute-api name the endpoint routes on (the Host header of every forwarded request). */
  get apiHostName(): string {
    return `${this.api.restApiId}.execute-api.${Stack.of(this).region}.${Stack.of(this).urlSuffix}`;
  }

  private createApi(props: StreamingApiProps): RestApi {
    const api = new RestApi(this, 'Api', {
      restApiName: `${Stack.of(this).stackName}-streaming`,
      description: 'Private API that streams the proxy function’s responses to the public ALB',
      endpointConfiguration: { types: [EndpointType.PRIVATE] },
      policy: onlyThroughEndpoint(this.endpoint.vpcEndpointId),
      // API Gateway writes logs with the account's CloudWatch role (one per account and region); kept
      // on deletion, since other APIs of the account may log through it.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName: streamingApiStageName,
        tracingEnabled: true,
        accessLogDestination: new LogGroupLogDestination(this.accessLogs.logGroup),
        accessLogFormat: accessLogFormat(),
        methodOptions: {
          '/*/*': {
            throttlingRateLimit: props.throttlingRateRequestsPerSecond,
            throttlingBurstLimit: props.throttlingBurstRequests,
            // Errors only, never request or response bodies (prompts and completions are the clients' data).
            loggingLevel: MethodLoggingLevel.ERROR,
            dataTraceEnabled: false,
            metricsEnabled: true,
          },
        },
      },
    });
    const executionLogs = new EncryptedLogGroup(this, 'ExecutionLogs', {
      encryptionKey: props.logsKey,
      retentionDays: props.logRetentionDays,
      // The name API Gateway writes the stage's execution logs to: created first, so it is encrypted and expires.
      logGroupName: `API-Gateway-Execution-Logs_${api.restApiId}/${streamingApiStageName}`,
    });
    api.deploymentStage.node.addDependency(executionLogs);
    const integration = new LambdaIntegration(props.handler, {
      proxy: true,
      responseTransferMode: ResponseTransferMode.STREAM,
      timeout: props.integrationTimeout,
      allowTestInvoke: false,
    });
    for (const pattern of props.pathPatterns) {
      const resource = pattern.endsWith('/*')
        ? api.root.resourceForPath(pattern.slice(0, -2)).addResource('{proxy+}')
        : api.root.resourceForPath(pattern);
      resource.addMethod('ANY', integration);
    }
    this.acknowledgeApiFindings(api);
    return api;
  }

  /** One lookup per subnet, so each address keeps its zone's place whatever order EC2 lists ENIs in. */
  private lookUpEndpointAddresses(props: StreamingApiProps): string[] {
    const lookupLogs = new EncryptedLogGroup(this, 'AddressLookupLogs', {
      encryptionKey: props.logsKey,
      retentionDays: props.logRetentionDays,
    });
    const policy = AwsCustomResourcePolicy.fromStatements([
      // DescribeNetworkInterfaces has no resource-level permissions; it is read-only.
      new PolicyStatement({ actions: ['ec2:DescribeNetworkInterfaces'], resources: ['*'] }),
    ]);
    const addresses = props.endpointSubnets.map((subnet, index) => {
      const call: AwsSdkCall = {
        service: 'EC2',
        action: 'DescribeNetworkInterfaces',
        parameters: {
          Filters: [
            { Name: 'vpc-id', Values: [props.vpc.vpcId] },
            { Name: 'subnet-id', Values: [subnet.subnetId] },
            // EC2 describes each ENI of an interface endpoint with the endpoint's id.
            {
              Name: 'description',
              Values: [`VPC Endpoint Interface ${this.endpoint.vpcEndpointId}`],
            },
          ],
        },
        physicalResourceId: PhysicalResourceId.of(
          `${this.endpoint.vpcEndpointId}-${subnet.subnetId}`,
        ),
        outputPaths: ['NetworkInterfaces.0.PrivateIpAddress'],
      };
      const lookup = new AwsCustomResource(this, `EndpointAddress${index}`, {
        onCreate: call,
        onUpdate: call,
        policy,
        logGroup: lookupLogs.logGroup,
        installLatestAwsSdk: false,
      });
      lookup.node.addDependency(this.endpoint);
      acknowledge(
        lookup.node.findChild('CustomResourcePolicy'),
        ['AwsSolutions-IAM5[Resource::*]', ...nistAndPci('IAMNoInlinePolicy')],
        "The address lookup's one permission, ec2:DescribeNetworkInterfaces, is read-only and has no resource-level form; CDK writes it as an inline policy of the lookup's provider role.",
      );
      return lookup.getResponseField('NetworkInterfaces.0.PrivateIpAddress');
    });
    this.acknowledgeLookupFindings();
    return addresses;
  }

  private routeThroughEndpoint(props: StreamingApiProps): ApplicationListenerRule {
    const rule = new ApplicationListenerRule(this, 'Route', {
      listener: props.listener,
      priority: props.priority,
      conditions: [ListenerCondition.pathPatterns([...props.pathPatterns])],
      action: ListenerAction.forward([this.targetGroup]),
    });
    const transforms: CfnListenerRule.TransformProperty[] = [
      // The endpoint routes on the Host header: it must name the private API.
      {
        type: 'host-header-rewrite',
        hostHeaderRewriteConfig: { rewrites: [{ regex: '^.*$', replace: this.apiHostName }] },
      },
      // REST API paths start with the stage: /v1/models becomes /api/v1/models (the function still sees /v1/models).
      {
        type: 'url-rewrite',
        urlRewriteConfig: {
          rewrites: [{ regex: '^/(.*)$', replace: `/${streamingApiStageName}/$1` }],
        },
      },
    ];
    (rule.node.defaultChild as CfnListenerRule).transforms = transforms;
    return rule;
  }

  private acknowledgeApiFindings(api: RestApi): void {
    acknowledge(
      api,
      ['AwsSolutions-APIG2'],
      'The proxy function validates every request body against its schema (zod) and answers 400 in the API error shape; API Gateway request models would duplicate that contract.',
    );
    acknowledge(
      api,
      ['AwsSolutions-APIG4', 'AwsSolutions-COG4'],
      'Clients authenticate with API keys that the proxy function verifies (hashed, with expiry and revocation, AUTH-01); the API is private and reachable only through an endpoint that admits only the public ALB.',
    );
    acknowledge(
      api.deploymentStage,
      ['AwsSolutions-APIG3', ...nistAndPci('APIGWAssociatedWithWAF')],
      "A private API is reachable only through its execute-api endpoint, which admits only the public ALB's security group; the web ACL on that ALB inspects every request before it gets here.",
    );
    acknowledge(
      api.deploymentStage,
      nistAndPci('APIGWCacheEnabledAndEncrypted'),
      'Streamed responses cannot be cached (API Gateway disables caching in STREAM mode), and completions are per request: no cache cluster exists to encrypt.',
    );
    acknowledge(
      api.deploymentStage,
      nistAndPci('APIGWSSLEnabled'),
      'The only integration is a Lambda function, invoked through the Lambda API with SigV4; there is no HTTP backend to present a client certificate to.',
    );
    const cloudWatchRole = api.node.tryFindChild('CloudWatchRole');
    if (cloudWatchRole) {
      acknowledge(
        cloudWatchRole,
        [
          'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        ],
        "AWS's own policy for API Gateway's account-wide log delivery role, which AWS keeps current with the service; it is assumable only by API Gateway.",
      );
    }
  }

  private acknowledgeLookupFindings(): void {
    const provider = Stack.of(this).node.tryFindChild(
      `AWS${AwsCustomResource.PROVIDER_FUNCTION_UUID.replace(/-/g, '')}`,
    );
    if (!provider) return;
    acknowledge(
      provider,
      [
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      ],
      "CDK's provider of the endpoint address lookups: AWS's own minimal policy for a function's log delivery.",
    );
    acknowledge(
      provider,
      [
        ...nistAndPci('LambdaInsideVPC'),
        ...nistAndPci('LambdaDLQ'),
        ...nistAndPci('LambdaConcurrency'),
      ],
      "CDK's provider of the endpoint address lookups runs only while CloudFormation deploys this stack, invoked synchronously by it, and calls only the read-only EC2 DescribeNetworkInterfaces API; it handles no client traffic or data.",
    );
  }
}

/** Deny every invocation that does not come through the endpoint; allow the ones that do. */
function onlyThroughEndpoint(endpointId: string): PolicyDocument {
  const invoke = {
    principals: [new AnyPrincipal()],
    actions: ['execute-api:Invoke'],
    resources: ['execute-api:/*'],
  };
  return new PolicyDocument({
    statements: [
      new PolicyStatement({
        ...invoke,
        effect: Effect.DENY,
        conditions: { StringNotEquals: { 'aws:SourceVpce': endpointId } },
      }),
      new PolicyStatement({
        ...invoke,
        effect: Effect.ALLOW,
        conditions: { StringEquals: { 'aws:SourceVpce': endpointId } },
      }),
    ],
  });
}

/** One JSON line per request: what answered, how fast, and the caller chain; never headers or bodies. */
function accessLogFormat(): AccessLogFormat {
  return AccessLogFormat.custom(
    JSON.stringify({
      requestId: '$context.requestId',
      extendedRequestId: '$context.extendedRequestId',
      time: '$context.requestTimeEpoch',
      method: '$context.httpMethod',
      path: '$context.path',
      status: '$context.status',
      responseLength: '$context.responseLength',
      responseLatencyMs: '$context.responseLatency',
      integrationLatencyMs: '$context.integration.latency',
      integrationStatus: '$context.integration.status',
      integrationError: '$context.integrationErrorMessage',
      sourceIp: '$context.identity.sourceIp',
      vpceId: '$context.identity.vpceId',
      xrayTraceId: '$context.xrayTraceId',
    }),
  );
}
