import {
  CfnOutput,
  type CfnResource,
  Duration,
  RemovalPolicy,
  SecretValue,
  Stack,
} from 'aws-cdk-lib';
import { Peer, Port, type ISecurityGroup, type IVpc } from 'aws-cdk-lib/aws-ec2';
import {
  ApplicationTargetGroup,
  ListenerAction,
  ListenerCondition,
  type ApplicationListener,
} from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { ManagedPolicy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Key, type IKey } from 'aws-cdk-lib/aws-kms';
import { RotationSchedule, Secret, type ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { bedrockInvokeGrant } from '../config/bedrock';
import { acknowledge, nistAndPci } from '../compliance';
import {
  clientKeySetVersion,
  entryPaths,
  proxyConfigFromStage,
  splitProxyConfig,
} from '../deployed-code';
import { InternalServiceAlb } from '../constructs/internal-service-alb';
import type { InternalTlsEndpoint } from '../constructs/internal-tls';
import { modelCatalogueDefine } from '../constructs/lambda-bundling';
import { SourceScopedLambdaTarget } from '../constructs/lambda-target';
import { scopeServicePermissionsToAccount } from '../constructs/proactive-controls';
import { ServiceFunction } from '../constructs/service-function';
import { StreamingApi } from '../constructs/streaming-api';
import { subnetGroups } from './network-stack';
import { SettlementRetry } from '../constructs/settlement-retry';
import { StageStack, type StageStackProps } from './stage-stack';

export interface ApiStackProps extends StageStackProps {
  readonly vpc: IVpc;
  readonly logsKey: IKey;
  /** The public ALB's listener that carries the API routes (edge stack). */
  readonly publicListener: ApplicationListener;
  /** From the ledger stack: the gateway's address, its token secret and the group it admits. */
  readonly gatewayUrl: string;
  readonly gatewayTokenSecret: ISecret;
  readonly gatewayClientSecurityGroup: ISecurityGroup;
  /** TLS for the credits load balancer under the internal domain (unset in dev: plain HTTP). */
  readonly internalTls?: InternalTlsEndpoint;
}

/**
 * Read access to a secret of the ledger stack, written into this stack's role only. `grantRead`
 * would also add this role to the ledger key's policy, and the two stacks would depend on each other.
 */
function grantReadFromAnotherStack(secret: ISecret, service: ServiceFunction): void {
  service.function.addToRolePolicy(
    new PolicyStatement({
      actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
      resources: [secret.secretArn],
    }),
  );
  if (secret.encryptionKey) {
    service.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['kms:Decrypt'],
        resources: [secret.encryptionKey.keyArn],
        conditions: {
          StringEquals: {
            'kms:ViaService': `secretsmanager.${Stack.of(service).region}.amazonaws.com`,
          },
        },
      }),
    );
  }
}

/** Paths of the public API the proxy serves; everything else keeps the ALB's JSON 404. */
export const proxyPathPatterns = ['/v1/*', '/health', '/ready'];
/** Where the proxy function's template resource shows the model catalogue baked into its code. */
export const proxyModelCatalogueMetadataKey = 'ModelCatalogue';
const creditsTimeout = Duration.seconds(15);

/**
 * The services of a stage: the secrets (client keys, service keys with automatic rotation, provider
 * credentials) under a customer-managed key; the proxy function behind the public ALB; the credits
 * function behind an internal ALB that only the proxy and operators' networks reach.
 */
export class ApiStack extends StageStack {
  readonly secretsKey: Key;
  readonly proxy: ServiceFunction;
  readonly credits: ServiceFunction;
  readonly creditsAlb: InternalServiceAlb;
  /** The credits function behind the internal ALB (its health and 5xx feed the credits alarm). */
  readonly creditsTargets: ApplicationTargetGroup;
  /** Rotates the service keys; its errors feed the rotation alarm. */
  readonly rotation: ServiceFunction;
  /** The path that streams the proxy's responses to the public ALB; its metrics feed the proxy alarms. */
  readonly streamingApi: StreamingApi;
  /** The durable retry path of settlement (queue and settle function). */
  readonly settlement: SettlementRetry;

  constructor(scope: Construct, id: string, props: ApiStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.secretsKey = new Key(this, 'SecretsKey', {
      description: 'Encrypts the API keys, service keys and provider credentials of this stage',
      enableKeyRotation: true,
      pendingWindow: Duration.days(30),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const secrets = this.createSecrets();
    const common = {
      vpc: props.vpc,
      logsKey: props.logsKey,
      logRetentionDays: config.logRetentionDays,
      logLevel: config.logLevel,
    };

    this.credits = new ServiceFunction(this, 'Credits', {
      ...common,
      entry: entryPaths.credits,
      description: 'Credits service: prepaid balances on the TigerBeetle ledger (internal)',
      timeout: creditsTimeout,
      reservedConcurrency: config.api.creditsReservedConcurrency,
      extraSecurityGroups: [props.gatewayClientSecurityGroup],
      environment: {
        CREDITS_ADMIN_KEY_SECRET_ARN: secrets.creditsAdminKey.secretArn,
        CREDITS_PROXY_KEY_SECRET_ARN: secrets.proxyCreditsKey.secretArn,
        GATEWAY_URL: props.gatewayUrl,
        GATEWAY_TOKEN_SECRET_ARN: props.gatewayTokenSecret.secretArn,
        STAGE: config.stage,
        // The same currency the proxy prices in (PROXY_CONFIG): one value, from the stage config.
        CREDITS_CURRENCY: config.currency,
      },
    });
    for (const secret of [secrets.creditsAdminKey, secrets.proxyCreditsKey])
      secret.grantRead(this.credits.function);
    grantReadFromAnotherStack(props.gatewayTokenSecret, this.credits);
    this.allowHttpsToAwsApis(this.credits);

    // The model catalogue grows with every model a stage offers: it is baked into the code, never the
    // environment (Lambda's 4 KB limit, checked at synth by ServiceFunction); the small settings the
    // audit reads (origins, rate limits, body cap) stay in PROXY_CONFIG.
    const { catalogue, settings: proxySettings } = splitProxyConfig(proxyConfigFromStage(config));
    this.proxy = new ServiceFunction(this, 'Proxy', {
      ...common,
      entry: entryPaths.proxy,
      description: 'AI proxy: OpenAI-compatible chat completions billed in credits',
      timeout: Duration.seconds(config.api.proxyTimeoutSeconds),
      reservedConcurrency: config.api.proxyReservedConcurrency,
      environment: {
        PROXY_CONFIG: JSON.stringify(proxySettings),
        CLIENT_KEYS_SECRET_ARN: secrets.clientKeys.secretArn,
        CREDITS_KEY_SECRET_ARN: secrets.proxyCreditsKey.secretArn,
        PROVIDER_SECRET_ARN: secrets.provider.secretArn,
        STAGE: config.stage,
      },
      define: modelCatalogueDefine(catalogue),
    });
    // The catalogue as the bundle holds it, in the template for review and audit (metadata counts
    // toward no Lambda limit, and a change to it shows in the template's diff).
    (this.proxy.function.node.defaultChild as CfnResource).addMetadata(
      proxyModelCatalogueMetadataKey,
      catalogue,
    );
    for (const secret of [secrets.clientKeys, secrets.proxyCreditsKey, secrets.provider])
      secret.grantRead(this.proxy.function);
    this.allowBedrockModels();
    // Providers are on the internet (HTTPS through the NAT gateways); AWS APIs (Bedrock too) through the VPC endpoints.
    this.proxy.securityGroup.addEgressRule(
      Peer.anyIpv4(),
      Port.tcp(443),
      'LLM providers and AWS APIs over HTTPS',
    );
    const proxyConfig = proxyConfigFromStage(config);
    this.settlement = new SettlementRetry(this, 'Settlement', {
      ...common,
      stage: config.stage,
      creditsKeySecret: secrets.proxyCreditsKey,
      holdTimeoutSeconds: proxyConfig.holdTimeoutSeconds,
      queuedWithinSeconds: config.api.proxyTimeoutSeconds,
    });
    this.settlement.allowSend(this.proxy.function);
    this.proxy.function.addEnvironment('SETTLEMENT_QUEUE_URL', this.settlement.queue.queueUrl);

    this.creditsAlb = new InternalServiceAlb(this, 'CreditsAlb', {
      vpc: props.vpc,
      description: 'Credits service (internal)',
      allowedSecurityGroups: [this.proxy.securityGroup, this.settlement.settle.securityGroup],
      allowedCidrs: config.api.creditsAdminCidrs,
      internalTls: props.internalTls,
      hostLabel: 'credits',
      accessLogExpirationDays: config.edge.accessLogExpirationDays,
      deletionProtection: config.deletionProtection,
      idleTimeoutSeconds: 60,
    });
    this.creditsTargets = new ApplicationTargetGroup(this, 'CreditsTargets', {
      targets: [new SourceScopedLambdaTarget(this.credits.function)],
      healthCheck: {
        enabled: true,
        path: '/api/v1/health',
        interval: Duration.seconds(60),
        timeout: Duration.seconds(10),
      },
    });
    this.creditsAlb.listener.addAction('Credits', {
      priority: 10,
      conditions: [ListenerCondition.pathPatterns(['/api/v1/*'])],
      action: ListenerAction.forward([this.creditsTargets]),
    });
    this.proxy.function.addEnvironment('CREDITS_URL', this.creditsAlb.url);
    this.settlement.connectCredits(this.creditsAlb.url);
    this.settlement.settle.securityGroup.connections.allowTo(
      this.creditsAlb.securityGroup,
      Port.tcp(this.creditsAlb.port),
      'credits service',
    );
    this.proxy.securityGroup.connections.allowTo(
      this.creditsAlb.securityGroup,
      Port.tcp(this.creditsAlb.port),
      'credits service',
    );

    this.streamingApi = this.routePublicApi(props);
    this.rotation = this.rotateServiceKeys(
      [secrets.proxyCreditsKey, secrets.creditsAdminKey],
      common,
    );
    this.outputs(secrets);
  }

  /**
   * Converse (bedrock:InvokeModel) and ConverseStream (bedrock:InvokeModelWithResponseStream) on
   * exactly the configured bedrock models (AUTH-09): a model id's foundation model in this region;
   * an inference profile, and its foundation model in each region the profile routes to, only when
   * called through that profile (`bedrock:InferenceProfileArn`). No statement without bedrock models.
   */
  private allowBedrockModels(): void {
    const actions = ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'];
    const grants = this.config.models
      .filter((model) => model.provider === 'bedrock')
      .map((model) => bedrockInvokeGrant(model, this));
    const direct = new Set<string>();
    const profiles = new Map<string, Set<string>>();
    for (const grant of grants) {
      if (grant.kind === 'foundation-model') direct.add(grant.modelArn);
      else profiles.set(grant.profileArn, new Set(grant.modelArns));
    }
    const resources = [...direct, ...profiles.keys()];
    if (resources.length === 0) return;
    this.proxy.function.addToRolePolicy(
      new PolicyStatement({ sid: 'InvokeBedrockModels', actions, resources }),
    );
    [...profiles].forEach(([profileArn, modelArns], index) => {
      this.proxy.function.addToRolePolicy(
        new PolicyStatement({
          sid: `InvokeBedrockProfileModels${index}`,
          actions,
          resources: [...modelArns],
          conditions: { StringEquals: { 'bedrock:InferenceProfileArn': profileArn } },
        }),
      );
    });
  }

  private createSecrets() {
    const encryptionKey = this.secretsKey;
    const generatedKey = { passwordLength: 64, excludePunctuation: true, includeSpace: false };
    const secret = (
      id: string,
      description: string,
      value: Partial<ConstructorParameters<typeof Secret>[2]>,
    ) =>
      new Secret(this, id, {
        description,
        encryptionKey,
        removalPolicy: RemovalPolicy.RETAIN,
        ...value,
      });
    const set = {
      // Starts as an empty key set (no key, hence no secret value); `npm run keys` edits it.
      clientKeys: secret(
        'ClientKeys',
        'Client API keys (hashes only) of the proxy; edit with npm run keys',
        {
          secretStringValue: SecretValue.unsafePlainText(
            JSON.stringify({ version: clientKeySetVersion, keys: [] }),
          ),
        },
      ),
      proxyCreditsKey: secret(
        'ProxyCreditsKey',
        'The proxy role key of the credits service (rotated)',
        { generateSecretString: generatedKey },
      ),
      creditsAdminKey: secret(
        'CreditsAdminKey',
        'The admin role key of the credits service, for operators (rotated)',
        { generateSecretString: generatedKey },
      ),
      // Starts empty: the operator fills it (see the README); until then the providers answer 503.
      provider: secret(
        'ProviderCredentials',
        'Provider credentials (gemini_api_key, openai_compatible_base_url, openai_compatible_api_key, anthropic_api_key); filled by the operator',
        {
          secretStringValue: SecretValue.unsafePlainText('{}'),
        },
      ),
    };
    acknowledge(
      set.clientKeys,
      ['AwsSolutions-SMG4', ...nistAndPci('SecretsManagerRotationEnabled')],
      'Holds only hashes of client keys; each client key expires after 90 days and is rotated per key with npm run keys (docs/runbooks/keys.md), not by replacing the set.',
    );
    acknowledge(
      set.provider,
      ['AwsSolutions-SMG4', ...nistAndPci('SecretsManagerRotationEnabled')],
      "Holds the providers' own API keys, which only the provider can issue; the operator rotates them there and updates this secret (docs/runbooks/keys.md).",
    );
    return set;
  }

  /** The proxy serves /v1/*, /health and /ready on the public listener, streamed; the ALB itself keeps 404 for the rest. */
  private routePublicApi(props: ApiStackProps): StreamingApi {
    const { config } = this;
    const endpointZones = config.availabilityZones.slice(
      0,
      config.network.interfaceEndpointAzCount,
    );
    // The route lives here, with the function: in the edge stack it would make the stacks cyclic.
    return new StreamingApi(this, 'StreamingApi', {
      vpc: props.vpc,
      endpointSubnets: props.vpc.selectSubnets({
        subnetGroupName: subnetGroups.private,
        availabilityZones: endpointZones,
      }).subnets,
      listener: props.publicListener,
      // Not 10, the former Lambda route's: CloudFormation creates this rule before it removes that one.
      priority: 20,
      pathPatterns: proxyPathPatterns,
      handler: this.proxy.function,
      integrationTimeout: Duration.seconds(config.api.gateway.integrationTimeoutSeconds),
      throttlingRateRequestsPerSecond: config.api.gateway.throttlingRateRequestsPerSecond,
      throttlingBurstRequests: config.api.gateway.throttlingBurstRequests,
      logsKey: props.logsKey,
      logRetentionDays: config.logRetentionDays,
    });
  }

  private rotateServiceKeys(
    secrets: ISecret[],
    common: { vpc: IVpc; logsKey: IKey; logRetentionDays: number; logLevel: string },
  ): ServiceFunction {
    const rotation = new ServiceFunction(this, 'Rotation', {
      ...common,
      entry: entryPaths.rotation,
      description: 'Rotates the service keys (Secrets Manager rotation steps)',
      timeout: Duration.seconds(60),
      reservedConcurrency: undefined,
    });
    this.allowHttpsToAwsApis(rotation);
    secrets.forEach((secret, index) => {
      new RotationSchedule(this, `Rotation${index}`, {
        secret,
        rotationLambda: rotation.function,
        automaticallyAfter: Duration.days(this.config.api.serviceKeyRotationDays),
      });
    });
    scopeServicePermissionsToAccount(rotation.function);
    return rotation;
  }

  /** Secrets Manager and KMS through the VPC's interface endpoints (HTTPS inside the VPC). */
  private allowHttpsToAwsApis(service: ServiceFunction): void {
    service.securityGroup.addEgressRule(
      Peer.ipv4(this.config.network.vpcCidr),
      Port.tcp(443),
      'AWS APIs through the VPC endpoints',
    );
  }

  private outputs(secrets: ReturnType<ApiStack['createSecrets']>): void {
    new CfnOutput(this, 'ClientKeysSecretArn', {
      description: 'The client key set: npm run keys -- ... --secret-id <this>',
      value: secrets.clientKeys.secretArn,
    });
    new CfnOutput(this, 'ProviderSecretArn', {
      description: 'Fill with the provider credentials (JSON)',
      value: secrets.provider.secretArn,
    });
    new CfnOutput(this, 'CreditsAdminKeySecretArn', {
      description: 'The credits admin key (operators read it to top up)',
      value: secrets.creditsAdminKey.secretArn,
    });
    new CfnOutput(this, 'CreditsInternalUrl', {
      description: 'The credits service, inside the VPC',
      value: this.creditsAlb.url,
    });
    new CfnOutput(this, 'CreditsFunctionArn', {
      description:
        "The credits function: npm run credits invokes it with the operator's IAM identity",
      value: this.credits.function.functionArn,
    });
    new CfnOutput(this, 'CreditsOperatorPolicyArn', {
      description: "Attach to the operators' role to run npm run credits",
      value: this.creditsOperatorPolicy(secrets.creditsAdminKey).managedPolicyArn,
    });
  }

  /**
   * What an operator needs for `npm run credits` (NET-09, AUTH-09): invoke the credits function
   * through the Lambda API (no network route), read the admin key, decrypt it only through Secrets
   * Manager, and find both in this stack's outputs. Attached to no one here: the platform team
   * attaches it to its operators' role, so CloudTrail records each operator's own identity.
   */
  private creditsOperatorPolicy(adminKey: ISecret): ManagedPolicy {
    return new ManagedPolicy(this, 'CreditsOperatorPolicy', {
      description: `Operators of ${this.stackName}: top-ups, adjustments, balances and history with npm run credits`,
      statements: [
        new PolicyStatement({
          sid: 'InvokeCredits',
          actions: ['lambda:InvokeFunction'],
          resources: [this.credits.function.functionArn],
        }),
        new PolicyStatement({
          sid: 'ReadAdminKey',
          actions: ['secretsmanager:GetSecretValue'],
          resources: [adminKey.secretArn],
        }),
        new PolicyStatement({
          sid: 'DecryptAdminKey',
          actions: ['kms:Decrypt'],
          resources: [this.secretsKey.keyArn],
          conditions: {
            StringEquals: { 'kms:ViaService': `secretsmanager.${this.region}.amazonaws.com` },
          },
        }),
        new PolicyStatement({
          sid: 'ReadStackOutputs',
          actions: ['cloudformation:DescribeStacks'],
          resources: [this.stackId],
        }),
      ],
    });
  }
}
