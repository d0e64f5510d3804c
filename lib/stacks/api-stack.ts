import { CfnOutput, Duration, RemovalPolicy, SecretValue, Stack } from 'aws-cdk-lib';
import { Certificate } from 'aws-cdk-lib/aws-certificatemanager';
import { Peer, Port, type ISecurityGroup, type IVpc } from 'aws-cdk-lib/aws-ec2';
import { ApplicationListenerRule, ApplicationTargetGroup, ListenerAction, ListenerCondition, type ApplicationListener } from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { LambdaTarget } from 'aws-cdk-lib/aws-elasticloadbalancingv2-targets';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Key, type IKey } from 'aws-cdk-lib/aws-kms';
import { RotationSchedule, Secret, type ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { acknowledge, nistAndPci } from '../compliance';
import { proxyConfigFromStage } from '../../lambda/proxy/config';
import { clientKeySetVersion } from '../../lambda/shared/client-keys';
import { InternalServiceAlb } from '../constructs/internal-service-alb';
import { ServiceFunction } from '../constructs/service-function';
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
}

/**
 * Read access to a secret of the ledger stack, written into this stack's role only. `grantRead`
 * would also add this role to the ledger key's policy, and the two stacks would depend on each other.
 */
function grantReadFromAnotherStack(secret: ISecret, service: ServiceFunction): void {
  service.function.addToRolePolicy(new PolicyStatement({ actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], resources: [secret.secretArn] }));
  if (secret.encryptionKey) {
    service.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['kms:Decrypt'],
        resources: [secret.encryptionKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(service).region}.amazonaws.com` } },
      }),
    );
  }
}

/** Paths of the public API the proxy serves; everything else keeps the ALB's JSON 404. */
export const proxyPathPatterns = ['/v1/*', '/health', '/ready'];
/** The proxy's function timeout: above its provider budget (110 s), below the ALB idle timeout (180 s). */
const proxyTimeout = Duration.seconds(130);
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
    const common = { vpc: props.vpc, logsKey: props.logsKey, logRetentionDays: config.logRetentionDays, logLevel: config.logLevel };

    this.credits = new ServiceFunction(this, 'Credits', {
      ...common,
      entry: 'lambda/credits/handler.ts',
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
      },
    });
    for (const secret of [secrets.creditsAdminKey, secrets.proxyCreditsKey]) secret.grantRead(this.credits.function);
    grantReadFromAnotherStack(props.gatewayTokenSecret, this.credits);
    this.allowHttpsToAwsApis(this.credits);

    this.proxy = new ServiceFunction(this, 'Proxy', {
      ...common,
      entry: 'lambda/proxy/handler.ts',
      description: 'AI proxy: OpenAI-compatible chat completions billed in credits',
      timeout: proxyTimeout,
      reservedConcurrency: config.api.proxyReservedConcurrency,
      environment: {
        PROXY_CONFIG: JSON.stringify(proxyConfigFromStage(config)),
        CLIENT_KEYS_SECRET_ARN: secrets.clientKeys.secretArn,
        CREDITS_KEY_SECRET_ARN: secrets.proxyCreditsKey.secretArn,
        PROVIDER_SECRET_ARN: secrets.provider.secretArn,
        STAGE: config.stage,
      },
    });
    for (const secret of [secrets.clientKeys, secrets.proxyCreditsKey, secrets.provider]) secret.grantRead(this.proxy.function);
    // Providers are on the internet (HTTPS through the NAT gateways); AWS APIs through the VPC endpoints.
    this.proxy.securityGroup.addEgressRule(Peer.anyIpv4(), Port.tcp(443), 'LLM providers and AWS APIs over HTTPS');
    const proxyConfig = proxyConfigFromStage(config);
    this.settlement = new SettlementRetry(this, 'Settlement', { ...common, stage: config.stage, creditsKeySecret: secrets.proxyCreditsKey, holdTimeoutSeconds: proxyConfig.holdTimeoutSeconds });
    this.settlement.allowSend(this.proxy.function);
    this.proxy.function.addEnvironment('SETTLEMENT_QUEUE_URL', this.settlement.queue.queueUrl);

    this.creditsAlb = new InternalServiceAlb(this, 'CreditsAlb', {
      vpc: props.vpc,
      description: 'Credits service (internal)',
      allowedSecurityGroups: [this.proxy.securityGroup, this.settlement.settle.securityGroup],
      allowedCidrs: config.api.creditsAdminCidrs,
      certificate: config.api.creditsCertificateArn ? Certificate.fromCertificateArn(this, 'CreditsCertificate', config.api.creditsCertificateArn) : undefined,
      accessLogExpirationDays: config.edge.accessLogExpirationDays,
      deletionProtection: config.deletionProtection,
      idleTimeoutSeconds: 60,
    });
    this.creditsTargets = new ApplicationTargetGroup(this, 'CreditsTargets', {
      targets: [new LambdaTarget(this.credits.function)],
      healthCheck: { enabled: true, path: '/api/v1/health', interval: Duration.seconds(60), timeout: Duration.seconds(10) },
    });
    this.creditsAlb.listener.addAction('Credits', { priority: 10, conditions: [ListenerCondition.pathPatterns(['/api/v1/*'])], action: ListenerAction.forward([this.creditsTargets]) });
    this.proxy.function.addEnvironment('CREDITS_URL', this.creditsAlb.url);
    this.settlement.connectCredits(this.creditsAlb.url);
    this.settlement.settle.securityGroup.connections.allowTo(this.creditsAlb.securityGroup, Port.tcp(config.api.creditsCertificateArn ? 443 : 80), 'credits service');
    this.proxy.securityGroup.connections.allowTo(this.creditsAlb.securityGroup, Port.tcp(config.api.creditsCertificateArn ? 443 : 80), 'credits service');

    this.routePublicApi(props.publicListener);
    this.rotation = this.rotateServiceKeys([secrets.proxyCreditsKey, secrets.creditsAdminKey], common);
    this.outputs(secrets);
  }

  private createSecrets() {
    const encryptionKey = this.secretsKey;
    const generatedKey = { passwordLength: 64, excludePunctuation: true, includeSpace: false };
    const secret = (id: string, description: string, value: Partial<ConstructorParameters<typeof Secret>[2]>) =>
      new Secret(this, id, { description, encryptionKey, removalPolicy: RemovalPolicy.RETAIN, ...value });
    const set = {
      // Starts as an empty key set (no key, hence no secret value); `npm run keys` edits it.
      clientKeys: secret('ClientKeys', 'Client API keys (hashes only) of the proxy; edit with npm run keys', {
        secretStringValue: SecretValue.unsafePlainText(JSON.stringify({ version: clientKeySetVersion, keys: [] })),
      }),
      proxyCreditsKey: secret('ProxyCreditsKey', 'The proxy role key of the credits service (rotated)', { generateSecretString: generatedKey }),
      creditsAdminKey: secret('CreditsAdminKey', 'The admin role key of the credits service, for operators (rotated)', { generateSecretString: generatedKey }),
      // Starts empty: the operator fills it (see the README); until then the providers answer 503.
      provider: secret('ProviderCredentials', 'Provider credentials (gemini_api_key, openai_compatible_base_url, openai_compatible_api_key); filled by the operator', {
        secretStringValue: SecretValue.unsafePlainText('{}'),
      }),
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

  /** The proxy serves /v1/*, /health and /ready on the public listener; the ALB itself keeps 404 for the rest. */
  private routePublicApi(listener: ApplicationListener): void {
    // The target group lives here, with the function: in the edge stack it would make the stacks cyclic.
    const targetGroup = new ApplicationTargetGroup(this, 'ProxyTargets', {
      targets: [new LambdaTarget(this.proxy.function)],
      healthCheck: { enabled: true, path: '/health', interval: Duration.seconds(60), timeout: Duration.seconds(10) },
    });
    targetGroup.setAttribute('lambda.multi_value_headers.enabled', 'true');
    new ApplicationListenerRule(this, 'ProxyRoute', {
      listener,
      priority: 10,
      conditions: [ListenerCondition.pathPatterns(proxyPathPatterns)],
      action: ListenerAction.forward([targetGroup]),
    });
  }

  private rotateServiceKeys(secrets: ISecret[], common: { vpc: IVpc; logsKey: IKey; logRetentionDays: number; logLevel: string }): ServiceFunction {
    const rotation = new ServiceFunction(this, 'Rotation', {
      ...common,
      entry: 'lambda/rotation/handler.ts',
      description: 'Rotates the service keys (Secrets Manager rotation steps)',
      timeout: Duration.seconds(60),
      reservedConcurrency: undefined,
    });
    this.allowHttpsToAwsApis(rotation);
    secrets.forEach((secret, index) => {
      new RotationSchedule(this, `Rotation${index}`, { secret, rotationLambda: rotation.function, automaticallyAfter: Duration.days(this.config.api.serviceKeyRotationDays) });
    });
    return rotation;
  }

  /** Secrets Manager and KMS through the VPC's interface endpoints (HTTPS inside the VPC). */
  private allowHttpsToAwsApis(service: ServiceFunction): void {
    service.securityGroup.addEgressRule(Peer.ipv4(this.config.network.vpcCidr), Port.tcp(443), 'AWS APIs through the VPC endpoints');
  }

  private outputs(secrets: ReturnType<ApiStack['createSecrets']>): void {
    new CfnOutput(this, 'ClientKeysSecretArn', { description: 'The client key set: npm run keys -- ... --secret-id <this>', value: secrets.clientKeys.secretArn });
    new CfnOutput(this, 'ProviderSecretArn', { description: 'Fill with the provider credentials (JSON)', value: secrets.provider.secretArn });
    new CfnOutput(this, 'CreditsAdminKeySecretArn', { description: 'The credits admin key (operators read it to top up)', value: secrets.creditsAdminKey.secretArn });
    new CfnOutput(this, 'CreditsInternalUrl', { description: 'The credits service, inside the VPC', value: this.creditsAlb.url });
  }
}

