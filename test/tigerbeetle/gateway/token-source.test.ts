import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import {
  gatewayTokenLengthMin,
  openTokenSource,
  staticTokenSource,
  tokenFromSecretString,
  tokenRefreshOnMissIntervalMillisecondsMin,
  tokenSettingsFromEnvironment,
  type GatewayTokenSource,
} from '../../../tigerbeetle/gateway/token-source';
import { recordingLogger } from './support';

const secretArn =
  'arn:aws:secretsmanager:eu-west-1:123456789012:secret:ledger-gateway-token-AbCdEf';
const tokenA = 'token-a-5d41402abc4b2a76b9719d911017c592';
const tokenB = 'token-b-7d793037a0760186574b0282f2f435e7';
const tokenC = 'token-c-9e107d9d372bb6826bd81d3542a419d6';

const secretsManager = mockClient(SecretsManagerClient);
const notFound = () =>
  new ResourceNotFoundException({
    message: "Secrets Manager can't find the specified secret version",
    $metadata: {},
  });

/** Answers AWSCURRENT and AWSPREVIOUS as given; undefined means the stage does not exist. */
function secretHolds(current: string, previous: string | undefined): void {
  secretsManager.reset();
  secretsManager
    .on(GetSecretValueCommand, { SecretId: secretArn, VersionStage: 'AWSCURRENT' })
    .resolves({ SecretString: current });
  const previousStage = secretsManager.on(GetSecretValueCommand, {
    SecretId: secretArn,
    VersionStage: 'AWSPREVIOUS',
  });
  if (previous === undefined) previousStage.rejects(notFound());
  else previousStage.resolves({ SecretString: previous });
}

let now = 0;
let source: GatewayTokenSource | undefined;
const open = (logger = recordingLogger(), refreshIntervalMilliseconds = 60_000) =>
  openTokenSource(
    { kind: 'secrets-manager', secretArn, region: 'eu-west-1' },
    {
      logger,
      secretsManager: new SecretsManagerClient({ region: 'eu-west-1' }),
      refreshIntervalMilliseconds,
      now: () => now,
    },
  ).then((opened) => (source = opened));

beforeEach(() => {
  now = 1_000_000;
  secretsManager.reset();
});
afterEach(() => source?.close());

describe('gateway tokens from Secrets Manager (AUTH-03, AUTH-04)', () => {
  it('accepts the current and the previous version, and nothing else', async () => {
    secretHolds(tokenA, tokenB);
    const tokens = await open();
    expect(await tokens.verify(tokenA)).toBe('current');
    expect(await tokens.verify(tokenB)).toBe('previous');
    expect(await tokens.verify(tokenC)).toBeUndefined();
    expect(
      secretsManager
        .commandCalls(GetSecretValueCommand)
        .map((call) => call.args[0].input.VersionStage),
    ).toEqual(['AWSCURRENT', 'AWSPREVIOUS']);
    expect(tokens.description).toContain(secretArn);
  });

  it('works before the first rotation, when there is no previous version', async () => {
    secretHolds(tokenA, undefined);
    const tokens = await open();
    expect(await tokens.verify(tokenA)).toBe('current');
    expect(await tokens.verify(tokenB)).toBeUndefined();
  });

  it('reads a token held as JSON {"token": ...}', async () => {
    secretHolds(JSON.stringify({ token: tokenA }), undefined);
    expect(await (await open()).verify(tokenA)).toBe('current');
  });

  it('picks up a rotation on its refresh timer and audits it', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate'] });
    try {
      secretHolds(tokenA, undefined);
      const logger = recordingLogger();
      const tokens = await open(logger, 300_000);
      secretHolds(tokenB, tokenA);
      await jest.advanceTimersByTimeAsync(300_000);
      expect(await tokens.verify(tokenB)).toBe('current');
      expect(await tokens.verify(tokenA)).toBe('previous');
      expect(
        logger.records.some((record) => record.fields.audit_event === 'gateway_token_rotated'),
      ).toBe(true);
    } finally {
      jest.useRealTimers();
    }
  });

  it('keeps serving the last good tokens when a refresh fails, and logs no token', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate'] });
    try {
      secretHolds(tokenA, tokenB);
      const logger = recordingLogger();
      const tokens = await open(logger, 300_000);
      secretsManager.reset();
      secretsManager.on(GetSecretValueCommand).rejects(new Error('Rate exceeded'));
      await jest.advanceTimersByTimeAsync(300_000);
      expect(await tokens.verify(tokenA)).toBe('current');
      expect(await tokens.verify(tokenB)).toBe('previous');
      secretHolds('q7Zx-bad-token', undefined); // a bad token in the secret is refused the same way
      await jest.advanceTimersByTimeAsync(300_000);
      expect(await tokens.verify(tokenA)).toBe('current');
      const failures = logger.records.filter((record) =>
        record.message.startsWith('gateway token refresh failed'),
      );
      expect(failures.map((record) => record.fields.error_message)).toEqual([
        'Rate exceeded',
        expect.stringContaining('shorter than 32 characters'),
      ]);
      const lines = logger.lines().join('\n');
      for (const token of [tokenA, tokenB, 'q7Zx-bad-token']) expect(lines).not.toContain(token);
    } finally {
      jest.useRealTimers();
    }
  });

  it('reads the secret again at once for an unknown token, at most once per interval', async () => {
    secretHolds(tokenA, undefined);
    const tokens = await open();
    secretHolds(tokenB, tokenA); // rotated since the last read
    now += tokenRefreshOnMissIntervalMillisecondsMin;
    expect(await tokens.verify(tokenB)).toBe('current');
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(2);
    expect(await tokens.verify(tokenC)).toBeUndefined(); // too soon: no new read
    expect(await tokens.verify(tokenC)).toBeUndefined();
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('refuses to start when the secret cannot be read or holds a bad token (AUTH-08)', async () => {
    secretsManager.on(GetSecretValueCommand).rejects(new Error('AccessDeniedException'));
    await expect(open()).rejects.toThrow('AccessDeniedException');
    secretsManager.reset();
    secretsManager.on(GetSecretValueCommand).rejects(notFound());
    await expect(open()).rejects.toThrow(/no AWSCURRENT version/);
    secretHolds('too-short', undefined);
    await expect(open()).rejects.toThrow(`shorter than ${gatewayTokenLengthMin} characters`);
    secretHolds(tokenA, 'too-short');
    await expect(open()).rejects.toThrow(/AWSPREVIOUS version is shorter/);
    secretsManager.reset();
    secretsManager.on(GetSecretValueCommand).resolves({ SecretBinary: new Uint8Array([1]) });
    await expect(open()).rejects.toThrow(/holds no SecretString/);
  });
});

describe('gateway token settings from the environment (AUTH-08)', () => {
  it('takes GATEWAY_TOKEN locally and a secret ARN in AWS', () => {
    expect(tokenSettingsFromEnvironment({ GATEWAY_TOKEN: tokenA })).toEqual({
      settings: { kind: 'environment', token: tokenA },
      problems: [],
    });
    expect(tokenSettingsFromEnvironment({ GATEWAY_TOKEN_SECRET_ARN: secretArn })).toEqual({
      settings: { kind: 'secrets-manager', secretArn, region: 'eu-west-1' },
      problems: [],
    });
  });

  it.each<[Record<string, string>, RegExp]>([
    [{}, /no gateway token: set GATEWAY_TOKEN_SECRET_ARN .* or GATEWAY_TOKEN/],
    [{ GATEWAY_TOKEN: '' }, /no gateway token/],
    [
      { GATEWAY_TOKEN: 'x'.repeat(gatewayTokenLengthMin - 1) },
      /GATEWAY_TOKEN is shorter than 32 characters/,
    ],
    [{ GATEWAY_TOKEN: `${'x'.repeat(20)} ${'y'.repeat(20)}` }, /whitespace/],
    [{ GATEWAY_TOKEN: 'x'.repeat(257) }, /longer than 256/],
    [{ GATEWAY_TOKEN_SECRET_ARN: 'ledger-gateway-token' }, /not a Secrets Manager secret ARN/],
    [{ GATEWAY_TOKEN_SECRET_ARN: secretArn, GATEWAY_TOKEN: tokenA }, /not both/],
  ])('refuses %j', (environment, message) => {
    const { settings, problems } = tokenSettingsFromEnvironment(environment);
    expect(settings).toBeUndefined();
    expect(problems).toEqual([expect.stringMatching(message)]);
    for (const problem of problems)
      if (environment.GATEWAY_TOKEN) expect(problem).not.toContain(environment.GATEWAY_TOKEN);
  });

  it('serves a static token by its hash, and refuses a short one', async () => {
    const tokens = staticTokenSource(tokenA);
    expect(await tokens.verify(tokenA)).toBe('current');
    expect(await tokens.verify(tokenB)).toBeUndefined();
    expect(tokens.description).not.toContain(tokenA);
    expect(() => staticTokenSource('short')).toThrow(/shorter than 32/);
  });

  it('reads a plain or JSON secret string, and refuses JSON without a token', () => {
    expect(tokenFromSecretString(`  ${tokenA}\n`)).toBe(tokenA);
    expect(tokenFromSecretString(JSON.stringify({ token: tokenA }))).toBe(tokenA);
    expect(() => tokenFromSecretString('{"password": "x"}')).toThrow(
      /without a string "token" field/,
    );
    expect(() => tokenFromSecretString('{oops')).toThrow(/does not parse/);
  });
});
