import { Stack, type Duration } from 'aws-cdk-lib';
import { SecurityGroup, SubnetType, type ISecurityGroup, type IVpc } from 'aws-cdk-lib/aws-ec2';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import {
  Architecture,
  LoggingFormat,
  Runtime,
  Tracing,
  type CfnFunction,
} from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { Construct } from 'constructs';
import { acknowledge, nistAndPci } from '../compliance';
import { repositoryPath, repositoryRoot } from '../deployed-code';
import { EncryptedLogGroup } from './encrypted-log-group';
import {
  cloudFormationReferenceBytesMax,
  environmentBytes,
  lambdaEnvironmentBytesMax,
} from './environment-size';
import { lambdaBundling } from './lambda-bundling';

export interface ServiceFunctionProps {
  /** The handler module, relative to the repository root (one of lib/deployed-code.ts `entryPaths`); it exports `handler`. */
  readonly entry: string;
  readonly description: string;
  readonly vpc: IVpc;
  readonly logsKey: IKey;
  readonly logRetentionDays: number;
  readonly logLevel: string;
  /** Non-secret settings only: secrets are read from Secrets Manager by ARN (CFG-02). */
  readonly environment?: Record<string, string>;
  /** Constants baked into the bundle (esbuild define, JavaScript expressions): settings too large for the environment. */
  readonly define?: Record<string, string>;
  readonly timeout: Duration;
  /** Default: 1024 MiB (more memory is also more CPU for TLS and JSON). */
  readonly memorySizeMiB?: number;
  /** Default: none (the account's unreserved pool); production sets it so one function cannot starve the others. */
  readonly reservedConcurrency?: number;
  /** Security groups besides the function's own (e.g. the one the ledger gateway admits). */
  readonly extraSecurityGroups?: ISecurityGroup[];
  /** For a function invoked by an event source: where its failed events go instead of a function DLQ. Default: invoked synchronously. */
  readonly asynchronousFailures?: string;
}

/**
 * The one factory for Lambda functions, so every function gets the same runtime (the latest
 * Node.js), ARM64, a minified ESM bundle (names kept, source map beside it) built by the local esbuild, JSON logs to
 * a KMS-encrypted log group with retention, X-Ray tracing, a place in the private subnets and a
 * security group of its own that opens nothing by default.
 */
export class ServiceFunction extends Construct {
  readonly function: NodejsFunction;
  readonly securityGroup: SecurityGroup;
  readonly logGroup: EncryptedLogGroup;

  constructor(scope: Construct, id: string, props: ServiceFunctionProps) {
    super(scope, id);
    this.securityGroup = new SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: `${props.description}: no inbound; outbound only as granted`,
      allowAllOutbound: false,
    });
    this.logGroup = new EncryptedLogGroup(this, 'Logs', {
      encryptionKey: props.logsKey,
      retentionDays: props.logRetentionDays,
    });
    this.function = new NodejsFunction(this, 'Function', {
      entry: repositoryPath(props.entry),
      handler: 'handler',
      description: props.description,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySizeMiB ?? 1024,
      timeout: props.timeout,
      reservedConcurrentExecutions: props.reservedConcurrency,
      tracing: Tracing.ACTIVE,
      loggingFormat: LoggingFormat.JSON,
      logGroup: this.logGroup.logGroup,
      vpc: props.vpc,
      vpcSubnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [this.securityGroup, ...(props.extraSecurityGroups ?? [])],
      environment: {
        LOG_LEVEL: props.logLevel,
        POWERTOOLS_LOG_LEVEL: props.logLevel,
        ...props.environment,
      },
      projectRoot: repositoryRoot,
      depsLockFilePath: repositoryPath('package-lock.json'),
      bundling: {
        forceDockerBundling: false,
        minify: lambdaBundling.minify,
        keepNames: lambdaBundling.keepNames,
        sourceMap: true,
        sourcesContent: false,
        format: OutputFormat.ESM,
        target: lambdaBundling.target,
        mainFields: [...lambdaBundling.mainFields],
        banner: lambdaBundling.banner,
        externalModules: [],
        // CDK passes each esbuild argument escaped for its shell, so a define value arrives as written.
        define: props.define,
      },
    });
    this.acknowledgeRoleFindings();
    this.node.addValidation({ validate: () => this.environmentProblems() });
    acknowledge(
      this.function,
      nistAndPci('LambdaDLQ'),
      props.asynchronousFailures === undefined
        ? 'Invoked synchronously (by a load balancer or by Secrets Manager rotation); a failed invocation is answered or retried by its caller, so there is no asynchronous event to dead-letter.'
        : `Invoked by an event source mapping, not asynchronously: ${props.asynchronousFailures}.`,
    );
    if (props.reservedConcurrency === undefined) {
      acknowledge(
        this.function,
        nistAndPci('LambdaConcurrency'),
        'Reserved concurrency is set per stage in the config; this stage leaves it unset so small accounts (whose unreserved pool must stay above 100) can deploy.',
      );
    }
  }

  /** The environment's size as Lambda counts it; the bytes of what synth knows so far otherwise. */
  environmentBytes(): number {
    const cfn = this.function.node.defaultChild as CfnFunction;
    const resolved = Stack.of(this).resolve(cfn.environment) as
      { variables?: Record<string, unknown> } | undefined;
    return environmentBytes(resolved?.variables ?? {});
  }

  /**
   * Refuses at synth what Lambda would refuse at deploy (more than 4 KB of environment), so the
   * first deploy of a stage cannot fail on it; checked after every addEnvironment has run.
   */
  private environmentProblems(): string[] {
    const bytes = this.environmentBytes();
    if (bytes <= lambdaEnvironmentBytesMax) return [];
    return [
      `${this.node.path}: the function's environment is ${bytes} bytes (keys and values, each CloudFormation reference counted as ${cloudFormationReferenceBytesMax}), above Lambda's limit of ${lambdaEnvironmentBytesMax} bytes (lambdaEnvironmentBytesMax): the deploy would fail; keep large settings out of the environment`,
    ];
  }

  /** The role CDK generates for a function in a VPC with tracing; each finding is what that requires. */
  private acknowledgeRoleFindings(): void {
    const role = this.function.role;
    if (!role) return;
    acknowledge(
      role,
      [
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
      ],
      "AWS's own minimal policies for a function's log delivery and its network interfaces in the VPC, which AWS keeps current with the service.",
    );
    const defaultPolicy = role.node.tryFindChild('DefaultPolicy');
    if (!defaultPolicy) return;
    acknowledge(
      defaultPolicy,
      ['AwsSolutions-IAM5[Resource::*]'],
      'X-Ray PutTraceSegments and PutTelemetryRecords (and GetRandomPassword for rotation) have no resource-level permissions; every other statement names its resources.',
    );
    acknowledge(
      defaultPolicy,
      nistAndPci('IAMNoInlinePolicy'),
      "CDK generates this policy from the function's grants; it is specific to this one role and has no other use to share.",
    );
  }
}
