import { startServer, type RunningServer } from '../../runtime/node-server';
import { generateApiKey } from '../../runtime/keys';
import { openEmbeddedLedger, type EmbeddedLedger } from '../../tigerbeetle/engine';
import { createGatewayApp } from '../../tigerbeetle/gateway/app';
import { staticTokenSource } from '../../tigerbeetle/gateway/token-source';
import { startAwsStandIn, type AwsStandIn } from './aws-stand-in';
import { RecordingLogger } from './recording-logger';

/**
 * What the real credits Lambda handler needs around it in a test: Secrets Manager (a local stand-in
 * speaking its JSON protocol and checking every signature), a real local ledger gateway over the
 * embedded ledger, and the function's environment (secret ARNs, the gateway's URL). The tests set
 * the admin and proxy keys they need with `aws.secret(...)`; the gateway token is set here.
 */
export interface CreditsFunctionWorld {
  readonly aws: AwsStandIn;
  readonly secrets: { readonly admin: string; readonly proxy: string; readonly gateway: string };
  readonly gatewayToken: string;
  readonly gateway: RunningServer;
  /** Stops everything and gives back the environment as it was before. */
  close(): Promise<void>;
}

const secretArn = (region: string, name: string) =>
  `arn:aws:secretsmanager:${region}:123456789012:secret:${name}-AbCdEf`;

/** The ARNs of the function's three secrets (known before the world starts, e.g. for stack outputs). */
export function creditsFunctionSecretArns(region: string): CreditsFunctionWorld['secrets'] {
  return {
    admin: secretArn(region, 'credits-admin-key'),
    proxy: secretArn(region, 'credits-proxy-key'),
    gateway: secretArn(region, 'gateway-token'),
  };
}

export async function startCreditsFunctionWorld(
  options: { region?: string; stage?: string; environment?: Record<string, string> } = {},
): Promise<CreditsFunctionWorld> {
  const region = options.region ?? 'eu-west-1';
  const secrets = creditsFunctionSecretArns(region);
  const gatewayToken = generateApiKey();
  const savedEnvironment = { ...process.env };
  const aws = await startAwsStandIn(region);
  const embedded: EmbeddedLedger = openEmbeddedLedger();
  const gateway = await startServer({
    fetch: createGatewayApp({
      ledger: embedded.createClient(),
      tokens: staticTokenSource(gatewayToken),
      logger: new RecordingLogger(),
    }).fetch,
    hostname: '127.0.0.1',
    port: 0,
  });
  aws.secret(secrets.gateway, { current: JSON.stringify({ token: gatewayToken }) });
  Object.assign(process.env, {
    ...aws.environment,
    AWS_REGION: region,
    CREDITS_ADMIN_KEY_SECRET_ARN: secrets.admin,
    CREDITS_PROXY_KEY_SECRET_ARN: secrets.proxy,
    GATEWAY_URL: gateway.url,
    GATEWAY_TOKEN_SECRET_ARN: secrets.gateway,
    STAGE: options.stage ?? 'test',
    LOG_LEVEL: 'ERROR',
    ...options.environment,
  });
  return {
    aws,
    secrets,
    gatewayToken,
    gateway,
    close: async () => {
      process.env = savedEnvironment;
      await gateway.close();
      await aws.close();
      embedded.close();
    },
  };
}
