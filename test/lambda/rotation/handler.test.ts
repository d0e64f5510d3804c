import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { serviceKeyFromSecretString } from '../../../lambda/shared/service-secret';
import {
  createRotationHandler,
  handler,
  rotationSteps,
  type RotationEvent,
} from '../../../lambda/rotation/handler';
import { apiKeyPattern } from '../../../runtime/api-key-format';
import { generateApiKey } from '../../../runtime/keys';
import { sdkSecretReader } from '../../../runtime/sdk-secret-reader';
import { openRotatingKeyring } from '../../../runtime/secret-keyring';
import { tokenFromSecretString } from '../../../tigerbeetle/gateway/token-source';
import { RecordingLogger } from '../../support/recording-logger';
import { FakeSecret } from './fake-secret';

/**
 * The service-key rotation function against a Secrets Manager secret mocked at the SDK
 * (aws-sdk-client-mock): every step, every retried step, every refusal, and the verifiers' view of
 * the result (AUTH-04).
 */

const arn = (name: string) => `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${name}-AbCdEf`;
const secretArn = arn('credits-proxy-key');
const token = '5b1f7c0e-3d2a-4c1b-9e8f-0a1b2c3d4e5f';

let secret: FakeSecret;
let logger: RecordingLogger;
let regions: string[];
let issuedKeys: string[];

function rotation() {
  const client = new SecretsManagerClient({ region: 'eu-west-1' });
  return createRotationHandler({
    secretsManager: (region) => {
      regions.push(region);
      return client;
    },
    logger,
    generateKey: () => {
      const key = generateApiKey();
      issuedKeys.push(key);
      return key;
    },
  });
}

const event = (Step: string, ClientRequestToken = token, SecretId = secretArn): RotationEvent => ({
  SecretId,
  ClientRequestToken,
  Step,
});

async function rotateFully(run = rotation()): Promise<void> {
  for (const step of rotationSteps) await run(event(step));
}

function open(value: string): FakeSecret {
  secret = new FakeSecret(secretArn, value);
  secret.startRotation(token);
  return secret;
}

beforeEach(() => {
  logger = new RecordingLogger();
  regions = [];
  issuedKeys = [];
});

afterEach(() => secret?.restore());

describe('AUTH-04: the four rotation steps', () => {
  test('createSecret puts a new 256-bit key in AWSPENDING under the request token', async () => {
    const oldKey = generateApiKey();
    open(oldKey);
    await rotation()(event('createSecret'));
    const puts = secret.mock.commandCalls(PutSecretValueCommand);
    expect(puts).toHaveLength(1);
    expect(puts[0].args[0].input).toMatchObject({
      SecretId: secretArn,
      ClientRequestToken: token,
      VersionStages: ['AWSPENDING'],
    });
    const pending = secret.valueOf('AWSPENDING') as string;
    expect(pending).toMatch(apiKeyPattern);
    expect(pending).not.toBe(oldKey);
    expect(secret.valueOf('AWSCURRENT')).toBe(oldKey);
    expect(regions).toEqual(['eu-west-1']);
  });

  test('a retried createSecret (pending already exists) puts nothing and keeps the pending key', async () => {
    open(generateApiKey());
    const run = rotation();
    await run(event('createSecret'));
    const pending = secret.valueOf('AWSPENDING');
    await run(event('createSecret'));
    expect(secret.mock.commandCalls(PutSecretValueCommand)).toHaveLength(1);
    expect(secret.valueOf('AWSPENDING')).toBe(pending);
    expect(
      logger.records
        .filter((record) => record.message === 'rotation step')
        .map((record) => record.fields.outcome),
    ).toEqual(['created', 'already_pending']);
  });

  test('setSecret changes nothing anywhere (verifiers read the secret itself)', async () => {
    open(generateApiKey());
    await rotation()(event('createSecret'));
    const before = JSON.stringify([...secret.versions]);
    await rotation()(event('setSecret'));
    expect(JSON.stringify([...secret.versions])).toBe(before);
    expect(secret.mock.commandCalls(PutSecretValueCommand)).toHaveLength(1);
    expect(secret.mock.commandCalls(UpdateSecretVersionStageCommand)).toHaveLength(0);
  });

  test('testSecret accepts the pending key', async () => {
    open(generateApiKey());
    await rotation()(event('createSecret'));
    await expect(rotation()(event('testSecret'))).resolves.toBeUndefined();
  });

  test('finishSecret moves AWSCURRENT to the new version; the old one becomes AWSPREVIOUS; an audit record is written', async () => {
    const oldKey = generateApiKey();
    open(oldKey);
    await rotateFully();
    const updates = secret.mock.commandCalls(UpdateSecretVersionStageCommand);
    expect(updates).toHaveLength(1);
    expect(updates[0].args[0].input).toEqual({
      SecretId: secretArn,
      VersionStage: 'AWSCURRENT',
      MoveToVersionId: token,
      RemoveFromVersionId: 'version-1',
    });
    expect(secret.versionOf('AWSCURRENT')).toBe(token);
    expect(secret.valueOf('AWSCURRENT')).toBe(issuedKeys[0]);
    expect(secret.valueOf('AWSPREVIOUS')).toBe(oldKey);
    expect(logger.auditEvents('key_rotation')).toEqual([
      {
        audit_event: 'key_rotation',
        secret_arn: secretArn,
        version_id: token,
        previous_version_id: 'version-1',
      },
    ]);
  });

  test('a retried finishSecret (already AWSCURRENT) changes nothing and audits nothing again', async () => {
    open(generateApiKey());
    const run = rotation();
    await rotateFully(run);
    await run(event('finishSecret'));
    expect(secret.mock.commandCalls(UpdateSecretVersionStageCommand)).toHaveLength(1);
    expect(logger.auditEvents('key_rotation')).toHaveLength(1);
    expect(logger.records.at(-1)?.fields).toMatchObject({
      step: 'finishSecret',
      outcome: 'already_current',
    });
  });

  test('after a rotation the verifiers accept the new key and still the old one (no request breaks)', async () => {
    const oldKey = generateApiKey();
    open(oldKey);
    await rotateFully();
    const keyring = await openRotatingKeyring({
      secrets: sdkSecretReader(new SecretsManagerClient({ region: 'eu-west-1' })),
      secretArn,
      logger: new RecordingLogger(),
      name: 'credits proxy key',
      principal: (version) => version,
      keyFromSecretString: serviceKeyFromSecretString,
      rotationEvent: 'key_rotation',
    });
    try {
      expect(await keyring.verify(issuedKeys[0])).toBe('current');
      expect(await keyring.verify(oldKey)).toBe('previous');
    } finally {
      keyring.close();
    }
  });

  test('each step logs one line with the secret ARN and the step', async () => {
    open(generateApiKey());
    await rotateFully();
    const steps = logger.records.filter((record) => record.message === 'rotation step');
    expect(steps.map((record) => record.fields.step)).toEqual([...rotationSteps]);
    for (const record of steps)
      expect(record.fields).toMatchObject({ secret_arn: secretArn, version_id: token });
  });
});

describe('AUTH-04: the secret keeps its format', () => {
  test.each([
    [
      'JSON with a key field (credits keys)',
      (key: string) => JSON.stringify({ key }),
      serviceKeyFromSecretString,
    ],
    [
      'JSON with a token field (gateway token)',
      (key: string) => JSON.stringify({ token: key }),
      tokenFromSecretString,
    ],
    ['the key itself', (key: string) => key, serviceKeyFromSecretString],
  ])('%s', async (_name, shape, read) => {
    open(shape(generateApiKey()));
    await rotateFully();
    const current = secret.valueOf('AWSCURRENT') as string;
    expect(current).toBe(shape(issuedKeys[0]));
    expect(read(current, 'current')).toBe(issuedKeys[0]);
  });

  test('other JSON fields are kept', async () => {
    open(JSON.stringify({ key: generateApiKey(), purpose: 'proxy to credits' }));
    await rotateFully();
    expect(JSON.parse(secret.valueOf('AWSCURRENT') as string)).toEqual({
      key: issuedKeys[0],
      purpose: 'proxy to credits',
    });
  });

  test('a current version that cannot be read as a key refuses to rotate, without quoting it', async () => {
    const broken = '{"key": "sk-not-closed';
    open(broken);
    await expect(rotation()(event('createSecret'))).rejects.toThrow(
      /AWSCURRENT version .* looks like JSON but does not parse/,
    );
    expect(secret.mock.commandCalls(PutSecretValueCommand)).toHaveLength(0);
    expect(logger.text()).not.toContain('sk-not-closed');
  });
});

describe('AUTH-04: the checks before every step', () => {
  test('rotation disabled on the secret: refused, nothing written', async () => {
    open(generateApiKey()).rotationEnabled = false;
    await expect(rotation()(event('createSecret'))).rejects.toThrow(
      `rotation is not enabled on the secret ${secretArn}`,
    );
    expect(secret.mock.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });

  test('a request token that is not a version of the secret: refused', async () => {
    open(generateApiKey());
    for (const step of rotationSteps) {
      await expect(rotation()(event(step, 'not-a-version'))).rejects.toThrow(
        /request token not-a-version is not a version of the secret/,
      );
    }
    expect(secret.mock.commandCalls(PutSecretValueCommand)).toHaveLength(0);
    expect(secret.mock.commandCalls(UpdateSecretVersionStageCommand)).toHaveLength(0);
  });

  test('a version not staged AWSPENDING: refused', async () => {
    open(generateApiKey());
    await rotateFully();
    // The version that was current before is now AWSPREVIOUS only.
    for (const step of rotationSteps) {
      await expect(rotation()(event(step, 'version-1'))).rejects.toThrow(
        /version version-1 of the secret .* is not staged AWSPENDING/,
      );
    }
    expect(secret.mock.commandCalls(UpdateSecretVersionStageCommand)).toHaveLength(1);
  });

  test('an unknown step: refused before any call to Secrets Manager', async () => {
    open(generateApiKey());
    await expect(rotation()(event('deleteSecret'))).rejects.toThrow(
      /unknown rotation step 'deleteSecret'/,
    );
    expect(secret.mock.calls()).toHaveLength(0);
  });

  test('an event without a secret id: refused', async () => {
    open(generateApiKey());
    await expect(
      rotation()({ Step: 'createSecret', ClientRequestToken: token } as unknown as RotationEvent),
    ).rejects.toThrow(/needs a SecretId/);
  });

  test('a secret named without an ARN uses the default region', async () => {
    open(generateApiKey());
    const client = new SecretsManagerClient({ region: 'eu-central-1' });
    const run = createRotationHandler({
      secretsManager: (region) => (regions.push(region), client),
      logger,
      defaultRegion: 'eu-central-1',
    });
    // The fake answers only to the ARN: the name is passed through and refused as not found.
    await expect(run(event('createSecret', token, 'credits-proxy-key'))).rejects.toThrow(
      /can't find the specified secret/,
    );
    expect(regions).toEqual(['eu-central-1']);
    expect(secret.mock.commandCalls(DescribeSecretCommand)[0].args[0].input).toEqual({
      SecretId: 'credits-proxy-key',
    });
  });
});

describe('AUTH-04: testSecret refuses a pending version its verifiers would not accept', () => {
  function pendingHolds(value: string | undefined, current = generateApiKey()): Promise<void> {
    open(current);
    if (value !== undefined) (secret.versions.get(token) as { value?: string }).value = value;
    return rotation()(event('testSecret'));
  }

  test.each([
    ['too short', 'sk-short', /shorter than 32 characters/],
    ['too long', `sk-${'a'.repeat(300)}`, /longer than 256 characters/],
    ['with whitespace', `sk-${'a'.repeat(20)} ${'b'.repeat(20)}`, /with whitespace/],
    ['JSON that does not parse', '{"key":', /looks like JSON but does not parse/],
    ['JSON without a key field', '{"secret":"x"}', /without a string "key" or "token" field/],
  ])('%s', async (_name, value, message) => {
    await expect(pendingHolds(value)).rejects.toThrow(message);
  });

  test('a different format from AWSCURRENT', async () => {
    await expect(
      pendingHolds(generateApiKey(), JSON.stringify({ token: generateApiKey() })),
    ).rejects.toThrow(/does not have the format of the AWSCURRENT version/);
  });

  test('no value yet (createSecret has not run)', async () => {
    await expect(pendingHolds(undefined)).rejects.toThrow(/has no value; createSecret has not run/);
  });
});

describe('LOG-04: no key value in any log line', () => {
  test('a full rotation, retries and failures log ARNs, steps and version ids only', async () => {
    const oldKey = generateApiKey();
    open(JSON.stringify({ key: oldKey }));
    const run = rotation();
    await run(event('createSecret'));
    await run(event('createSecret'));
    await run(event('setSecret'));
    await run(event('testSecret'));
    await run(event('finishSecret'));
    await run(event('finishSecret'));
    await expect(run(event('testSecret', 'version-1'))).rejects.toThrow();
    const text = logger.text();
    expect(issuedKeys).toHaveLength(1);
    for (const key of [oldKey, ...issuedKeys]) {
      expect(text).not.toContain(key);
      expect(text).not.toContain(key.slice(3, 20));
    }
    expect(logger.records.length).toBeGreaterThanOrEqual(7);
  });

  test('a refused pending key is not quoted in the error or the log', async () => {
    const badKey = `sk-${'q'.repeat(20)} ${'z'.repeat(20)}`;
    open(generateApiKey());
    (secret.versions.get(token) as { value?: string }).value = badKey;
    const failure = await rotation()(event('testSecret')).catch((error: unknown) => error as Error);
    expect(String(failure)).not.toContain('qqqq');
    expect(logger.text()).not.toContain('qqqq');
    expect(logger.records.at(-1)).toMatchObject({
      level: 'ERROR',
      message: 'rotation step failed',
      fields: { step: 'testSecret', secret_arn: secretArn },
    });
  });
});

describe('the Lambda entry point', () => {
  const savedEnvironment = { ...process.env };
  afterEach(() => {
    process.env = { ...savedEnvironment };
  });

  test('rotates a secret end to end with the clients it builds itself', async () => {
    Object.assign(process.env, { AWS_REGION: 'eu-west-1', LOG_LEVEL: 'ERROR' });
    const oldKey = generateApiKey();
    open(oldKey);
    for (const step of rotationSteps) await handler(event(step));
    expect(secret.valueOf('AWSPREVIOUS')).toBe(oldKey);
    expect(secret.valueOf('AWSCURRENT')).toMatch(apiKeyPattern);
    expect(secret.mock.commandCalls(GetSecretValueCommand).length).toBeGreaterThan(0);
  });

  test('refuses an unknown step', async () => {
    Object.assign(process.env, { AWS_REGION: 'eu-west-1', LOG_LEVEL: 'ERROR' });
    open(generateApiKey());
    await expect(handler(event('rotateEverything'))).rejects.toThrow(/unknown rotation step/);
  });
});
