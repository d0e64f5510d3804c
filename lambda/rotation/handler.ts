import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { generateApiKey } from '../../runtime/keys';
import { environmentOrRefuse, logLevelVariable, variable } from '../../runtime/environment';
import { audit, createLogger, type AppLogger } from '../../runtime/logger';
import { sdkSecretReader } from '../../runtime/sdk-secret-reader';
import { readSecretVersion } from '../../runtime/secret-keyring';
import {
  formatServiceSecret,
  parseServiceSecret,
  serviceKeyProblem,
  type ServiceSecretShape,
} from '../shared/service-secret';

/**
 * The rotation function of the service keys (proxy -> credits key, credits admin key,
 * credits -> gateway token): Secrets Manager's four steps, each safe to retry (AUTH-04).
 * Verifiers accept the AWSCURRENT and AWSPREVIOUS versions (runtime/secret-keyring.ts), so
 * the key that was current keeps working until the next rotation and no request in flight breaks.
 * Logs name the secret, the step and the version id; never a key (LOG-04).
 */

export interface RotationEvent {
  readonly SecretId: string;
  readonly ClientRequestToken: string;
  readonly Step: string;
}

export const rotationSteps = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;
export type RotationStep = (typeof rotationSteps)[number];

/** Deadline of one Secrets Manager call; the function's own timeout is longer. */
export const secretsManagerCallTimeoutMilliseconds = 5_000;

export interface RotationDependencies {
  /** The client for a region; built once per region and reused. */
  readonly secretsManager: (region: string) => SecretsManagerClient;
  readonly logger: AppLogger;
  /** Region of a secret named without an ARN: the function's own. */
  readonly defaultRegion?: string;
  /** A new key (AUTH-02); injected in tests only. */
  readonly generateKey?: () => string;
}

/** What a step did, for its log line. */
type StepOutcome =
  'created' | 'already_pending' | 'nothing_to_set' | 'tested' | 'finished' | 'already_current';

interface StepContext {
  readonly client: SecretsManagerClient;
  readonly secretArn: string;
  readonly token: string;
  readonly versions: Readonly<Record<string, readonly string[]>>;
  readonly generateKey: () => string;
  readonly logger: AppLogger;
}

const secretArnPattern = /^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):\d{12}:secret:/;

export function createRotationHandler(
  dependencies: RotationDependencies,
): (event: RotationEvent) => Promise<void> {
  const { logger } = dependencies;
  return async (event) => {
    const base = {
      secret_arn: String(event?.SecretId),
      step: String(event?.Step),
      version_id: String(event?.ClientRequestToken),
    };
    try {
      const step = checkEvent(event);
      const region = secretRegion(event.SecretId, dependencies.defaultRegion);
      const client = dependencies.secretsManager(region);
      const outcome = await runStep(step, event, client, dependencies);
      logger.info('rotation step', {
        ...base,
        secret_arn: outcome.secretArn,
        outcome: outcome.outcome,
      });
    } catch (error) {
      logger.error('rotation step failed', {
        ...base,
        error_name: error instanceof Error ? error.name : typeof error,
        error_message: error instanceof Error ? error.message : String(error),
      });
      throw error;
    }
  };
}

/** The checks of AWS's reference rotation functions, then the step itself. */
async function runStep(
  step: RotationStep,
  event: RotationEvent,
  client: SecretsManagerClient,
  dependencies: RotationDependencies,
): Promise<{ secretArn: string; outcome: StepOutcome }> {
  const description = await client.send(
    new DescribeSecretCommand({ SecretId: event.SecretId }),
    callOptions(),
  );
  const secretArn = description.ARN ?? event.SecretId;
  const token = event.ClientRequestToken;
  if (description.RotationEnabled !== true)
    throw new Error(`rotation is not enabled on the secret ${secretArn}`);
  const versions = description.VersionIdsToStages ?? {};
  const stages = versions[token];
  if (stages === undefined)
    throw new Error(`the request token ${token} is not a version of the secret ${secretArn}`);
  // A retried step after finishSecret succeeded: nothing left to do.
  if (stages.includes('AWSCURRENT')) return { secretArn, outcome: 'already_current' };
  if (!stages.includes('AWSPENDING'))
    throw new Error(`version ${token} of the secret ${secretArn} is not staged AWSPENDING`);
  const context: StepContext = {
    client,
    secretArn,
    token,
    versions,
    generateKey: dependencies.generateKey ?? generateApiKey,
    logger: dependencies.logger,
  };
  const steps: Record<RotationStep, (context: StepContext) => Promise<StepOutcome>> = {
    createSecret,
    setSecret,
    testSecret,
    finishSecret,
  };
  return { secretArn, outcome: await steps[step](context) };
}

/** A new key in AWSPENDING, in the format of AWSCURRENT; nothing if this request token already has one. */
async function createSecret(context: StepContext): Promise<StepOutcome> {
  if ((await readPendingVersion(context)) !== undefined) return 'already_pending';
  const shape = await currentShape(context);
  await context.client.send(
    new PutSecretValueCommand({
      SecretId: context.secretArn,
      ClientRequestToken: context.token,
      SecretString: formatServiceSecret(shape, context.generateKey()),
      VersionStages: ['AWSPENDING'],
    }),
    callOptions(),
  );
  return 'created';
}

/**
 * Nothing to set: no other system holds a copy of the key. The services that present a service
 * key read AWSCURRENT from the secret, and the services that verify one accept AWSCURRENT and
 * AWSPREVIOUS, so after finishSecret both the new and the previous key are accepted until the next
 * rotation, and every caller picks the new key up on its next read of the secret.
 */
async function setSecret(): Promise<StepOutcome> {
  return 'nothing_to_set';
}

/** The pending version parses, holds a key its verifiers accept, and keeps the current format. */
async function testSecret(context: StepContext): Promise<StepOutcome> {
  const pending = await readPendingVersion(context);
  if (pending === undefined)
    throw new Error(
      `version ${context.token} of the secret ${context.secretArn} has no value; createSecret has not run`,
    );
  const what = `the AWSPENDING version of ${context.secretArn}`;
  const parsed = parseServiceSecret(pending, what);
  const problem = serviceKeyProblem(parsed.key, what);
  if (problem !== undefined) throw new Error(problem);
  if (shapeName(parsed.shape) !== shapeName(await currentShape(context)))
    throw new Error(`${what} does not have the format of the AWSCURRENT version`);
  return 'tested';
}

/** AWSCURRENT moves to the new version; Secrets Manager stages AWSPREVIOUS on the old one, which verifiers still accept. */
async function finishSecret(context: StepContext): Promise<StepOutcome> {
  const currentVersion = Object.entries(context.versions).find(([, stages]) =>
    stages.includes('AWSCURRENT'),
  )?.[0];
  await context.client.send(
    new UpdateSecretVersionStageCommand({
      SecretId: context.secretArn,
      VersionStage: 'AWSCURRENT',
      MoveToVersionId: context.token,
      RemoveFromVersionId: currentVersion,
    }),
    callOptions(),
  );
  audit(context.logger, 'key_rotation', {
    secret_arn: context.secretArn,
    version_id: context.token,
    previous_version_id: currentVersion ?? null,
  });
  return 'finished';
}

function checkEvent(event: RotationEvent): RotationStep {
  if (typeof event !== 'object' || event === null)
    throw new Error('a rotation event must be an object');
  for (const field of ['SecretId', 'ClientRequestToken'] as const) {
    if (typeof event[field] !== 'string' || event[field] === '')
      throw new Error(`a rotation event needs a ${field}`);
  }
  if (!(rotationSteps as readonly string[]).includes(event.Step))
    throw new Error(
      `unknown rotation step '${String(event.Step)}'; expected one of ${rotationSteps.join(', ')}`,
    );
  return event.Step as RotationStep;
}

function secretRegion(secretId: string, defaultRegion: string | undefined): string {
  const match = secretArnPattern.exec(secretId);
  if (match) return match[1];
  if (defaultRegion === undefined || defaultRegion === '')
    throw new Error('the secret is named without an ARN and no default region is known');
  return defaultRegion;
}

async function currentShape(context: StepContext): Promise<ServiceSecretShape> {
  const current = await readSecretVersion(
    sdkSecretReader(context.client),
    context.secretArn,
    'AWSCURRENT',
  );
  if (current === undefined)
    throw new Error(`the secret ${context.secretArn} has no AWSCURRENT version`);
  return parseServiceSecret(current, `the AWSCURRENT version of ${context.secretArn}`).shape;
}

/** The value of the request token's AWSPENDING version; undefined until createSecret has put one. */
async function readPendingVersion(context: StepContext): Promise<string | undefined> {
  try {
    const answer = await context.client.send(
      new GetSecretValueCommand({
        SecretId: context.secretArn,
        VersionId: context.token,
        VersionStage: 'AWSPENDING',
      }),
      callOptions(),
    );
    if (answer.SecretString === undefined)
      throw new Error(
        `version ${context.token} of the secret ${context.secretArn} holds no SecretString`,
      );
    return answer.SecretString;
  } catch (error) {
    if (error instanceof Error && error.name === 'ResourceNotFoundException') return undefined;
    throw error;
  }
}

function shapeName(shape: ServiceSecretShape): string {
  return shape.kind === 'plain' ? 'plain' : `json:${shape.fields.join(',')}`;
}

function callOptions(): { abortSignal: AbortSignal } {
  return { abortSignal: AbortSignal.timeout(secretsManagerCallTimeoutMilliseconds) };
}

/** The function's environment: Lambda's own region (a secret's ARN names its own) and the log level. */
const rotationEnvironment = { AWS_REGION: variable.optional(), LOG_LEVEL: logLevelVariable() };

let coldStartHandler: ((event: RotationEvent) => Promise<void>) | undefined;

/** Built once per execution environment: one logger, one client per region. */
function coldStart(): (event: RotationEvent) => Promise<void> {
  if (coldStartHandler) return coldStartHandler;
  const clients = new Map<string, SecretsManagerClient>();
  const secretsManager = (region: string): SecretsManagerClient => {
    let client = clients.get(region);
    if (client === undefined) {
      client = new SecretsManagerClient({ region });
      clients.set(region, client);
    }
    return client;
  };
  const environment = environmentOrRefuse('rotation', rotationEnvironment, process.env);
  coldStartHandler = createRotationHandler({
    secretsManager,
    logger: createLogger('rotation', environment.LOG_LEVEL),
    defaultRegion: environment.AWS_REGION,
  });
  return coldStartHandler;
}

export async function handler(event: RotationEvent): Promise<void> {
  await coldStart()(event);
}
