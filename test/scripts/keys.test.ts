import { execFile } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { apiKeyPattern } from '../../runtime/api-key-format';
import {
  checkedClientKeySet,
  fileClientKeyStore,
  issueClientKey,
  localClientKeysFile,
  newClientKeyId,
  rotateClientKey,
  secretsManagerClientKeyStore,
  type ClientKeyStore,
} from '../../scripts/client-key-store';
import {
  clientKeyVerifier,
  emptyClientKeySet,
  parseClientKeySet,
  type ClientKeySet,
} from '../../lambda/shared/client-keys';
import { hashKey } from '../../runtime/keys';
import { devClientKeysFile } from '../../scripts/dev-layout';
import { runKeysCli, type StoreLocation } from '../../scripts/keys';

/**
 * The key CLI (AUTH-02, AUTH-07): in process against a temp file and a Secrets Manager secret
 * mocked at the SDK, and for real as a child process. Every issued key is checked with the
 * proxy's own verifier.
 */

const day = 24 * 60 * 60 * 1000;
const now = new Date('2030-01-01T00:00:00.000Z');
const secretArn =
  'arn:aws:secretsmanager:eu-west-1:123456789012:secret:ai-proxy-client-keys-AbCdEf';

let directory: string;
let file: string;

interface Run {
  code: number;
  out: string;
  err: string;
}

async function cli(
  args: string[],
  options: { at?: Date; openStore?: (location: StoreLocation) => ClientKeyStore } = {},
): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runKeysCli(args, {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    now: () => options.at ?? now,
    openStore: options.openStore,
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const onFile = (args: string[], at?: Date) => cli([...args, '--file', file], { at });
const storedSet = (): ClientKeySet => parseClientKeySet(readFileSync(file, 'utf8'));
const issuedKey = (run: Run): string => {
  const keys = run.out.match(/sk-[A-Za-z0-9_-]{43}/g) ?? [];
  expect(keys).toHaveLength(1);
  return keys[0] as string;
};
const issuedId = (run: Run): string => /Issued key (key_[A-Za-z0-9]+)/.exec(run.out)?.[1] as string;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'client-keys-'));
  file = join(directory, 'nested', 'client-keys.json');
});
afterEach(() => rmSync(directory, { recursive: true, force: true }));

describe('AUTH-02: issue', () => {
  test('prints a new 256-bit key once, with its id, expiry and a warning; the proxy verifier accepts it for the user', async () => {
    const run = await onFile(['issue', '--user', 'alice', '--label', 'alice laptop']);
    expect(run).toMatchObject({ code: 0, err: '' });
    const key = issuedKey(run);
    expect(key).toMatch(apiKeyPattern);
    const [entry] = storedSet().keys;
    expect(entry).toEqual({
      id: expect.stringMatching(/^key_[A-Za-z0-9]{16}$/),
      user_id: 'alice',
      sha256: hashKey(key).toString('hex'),
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + 90 * day).toISOString(),
      disabled: false,
      label: 'alice laptop',
    });
    expect(run.out).toContain(`Issued key ${entry.id} for user alice, expires ${entry.expires_at}`);
    expect(run.out.split('\n').filter((line) => /cannot be shown again/.test(line))).toHaveLength(
      1,
    );
    expect(run.out).not.toContain(entry.sha256);
    expect(clientKeyVerifier(storedSet()).verify(key, now.getTime())).toEqual({
      status: 'valid',
      keyId: entry.id,
      userId: 'alice',
    });
    expect(readFileSync(file, 'utf8')).not.toContain(key);
  });

  test('creates the file with mode 0600, writes through a temp file and leaves none behind', async () => {
    expect(existsSync(file)).toBe(false);
    await onFile(['issue', '--user', 'alice']);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    chmodSync(file, 0o644);
    await onFile(['issue', '--user', 'bob']);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(directory, 'nested'))).toEqual(['client-keys.json']);
    expect(storedSet().keys.map((entry) => entry.user_id)).toEqual(['alice', 'bob']);
  });

  test('--days sets the lifetime; the key expires then', async () => {
    const key = issuedKey(await onFile(['issue', '--user', 'alice', '--days', '30']));
    const verifier = clientKeyVerifier(storedSet());
    expect(verifier.verify(key, now.getTime() + 30 * day - 1).status).toBe('valid');
    expect(verifier.verify(key, now.getTime() + 30 * day).status).toBe('expired');
  });

  test('key ids are key_ and 16 base62 characters, and distinct', () => {
    const ids = new Set(Array.from({ length: 1000 }, newClientKeyId));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^key_[A-Za-z0-9]{16}$/);
  });
});

describe('AUTH-07: revoke, rotate, list', () => {
  test('a revoked key verifies as disabled; its entry is kept for audit', async () => {
    const issued = await onFile(['issue', '--user', 'alice']);
    const run = await onFile(['revoke', '--id', issuedId(issued)]);
    expect(run.code).toBe(0);
    expect(run.out).toContain(`Revoked key ${issuedId(issued)} (user alice)`);
    expect(storedSet().keys).toHaveLength(1);
    expect(clientKeyVerifier(storedSet()).verify(issuedKey(issued), now.getTime())).toEqual({
      status: 'disabled',
      keyId: issuedId(issued),
    });
    expect((await onFile(['revoke', '--id', issuedId(issued)])).out).toContain('already revoked');
  });

  test('rotate issues a new key for the same user; the old key expires at the grace time', async () => {
    const issued = await onFile(['issue', '--user', 'alice', '--label', 'ci']);
    const later = new Date(now.getTime() + 10 * day);
    const run = await onFile(['rotate', '--id', issuedId(issued), '--grace-days', '2'], later);
    expect(run.code).toBe(0);
    const oldKey = issuedKey(issued);
    const newKey = issuedKey(run);
    expect(newKey).not.toBe(oldKey);
    const graceEnd = later.getTime() + 2 * day;
    const old = storedSet().keys.find((entry) => entry.id === issuedId(issued));
    expect(old?.expires_at).toBe(new Date(graceEnd).toISOString());
    expect(run.out).toContain(`now expires at ${new Date(graceEnd).toISOString()}`);
    const verifier = clientKeyVerifier(storedSet());
    expect(verifier.verify(oldKey, graceEnd - 1).status).toBe('valid');
    expect(verifier.verify(oldKey, graceEnd)).toEqual({
      status: 'expired',
      keyId: issuedId(issued),
    });
    expect(verifier.verify(newKey, graceEnd)).toEqual({
      status: 'valid',
      keyId: issuedId(run),
      userId: 'alice',
    });
    expect(storedSet().keys.find((entry) => entry.id === issuedId(run))?.label).toBe('ci');
  });

  test('rotate defaults to 7 days of grace and never lengthens an expiry', async () => {
    const issued = await onFile(['issue', '--user', 'alice', '--days', '3']);
    await onFile(['rotate', '--id', issuedId(issued)]);
    expect(storedSet().keys[0].expires_at).toBe(new Date(now.getTime() + 3 * day).toISOString());
    const second = await onFile(['issue', '--user', 'bob']);
    await onFile(['rotate', '--id', issuedId(second)]);
    expect(storedSet().keys.find((entry) => entry.id === issuedId(second))?.expires_at).toBe(
      new Date(now.getTime() + 7 * day).toISOString(),
    );
  });

  test('a revoked key cannot be rotated', async () => {
    const issued = await onFile(['issue', '--user', 'alice']);
    await onFile(['revoke', '--id', issuedId(issued)]);
    const run = await onFile(['rotate', '--id', issuedId(issued)]);
    expect(run.code).toBe(1);
    expect(run.err).toMatch(/is revoked; issue a new key/);
  });

  test('list shows id, user, dates and status, filtered by user, and never a hash or a key', async () => {
    const active = await onFile(['issue', '--user', 'alice']);
    const expired = await onFile(['issue', '--user', 'alice', '--days', '1']);
    const disabled = await onFile(['issue', '--user', 'bob']);
    await onFile(['revoke', '--id', issuedId(disabled)]);
    const later = new Date(now.getTime() + 2 * day);
    const run = await onFile(['list'], later);
    expect(run.code).toBe(0);
    const lines = run.out.split('\n');
    expect(lines[0]).toMatch(/^ID\s+USER\s+CREATED\s+EXPIRES\s+STATUS/);
    expect(lines.find((line) => line.startsWith(issuedId(active)))).toMatch(
      /alice\s+2030-01-01T00:00:00.000Z\s+2030-04-01T00:00:00.000Z\s+active/,
    );
    expect(lines.find((line) => line.startsWith(issuedId(expired)))).toMatch(/\sexpired$/);
    expect(lines.find((line) => line.startsWith(issuedId(disabled)))).toMatch(/bob .*\sdisabled$/);
    for (const entry of storedSet().keys) expect(run.out).not.toContain(entry.sha256);
    expect(run.out).not.toMatch(/sk-/);
    const alice = await onFile(['list', '--user', 'alice'], later);
    expect(alice.out.split('\n')).toHaveLength(3);
    expect(alice.out).not.toContain(issuedId(disabled));
    expect((await cli(['list', '--file', join(directory, 'none.json')])).out).toBe('No keys.');
  });
});

describe('errors: clear messages, exit 2 for usage and 1 for failures', () => {
  test.each([
    [[], /no command; expected one of issue, list, revoke, rotate/],
    [['delete'], /unknown command 'delete'/],
    [['issue'], /missing --user <user_id>/],
    [['issue', '--user', 'alice bob'], /--user must be/],
    [['issue', '--user', 'alice', '--days', '0'], /--days must be a whole number from 1 to 365/],
    [['issue', '--user', 'alice', '--days', '9e9'], /--days must be a whole number/],
    [
      ['issue', '--user', 'alice', '--label', 'a\nb'],
      /--label must be at most 200 printable characters/,
    ],
    [['revoke'], /missing --id <key_id>/],
    [['revoke', '--id', 'alice'], /is not a key id/],
    [
      ['rotate', '--id', 'key_AAAAAAAAAAAAAAAA', '--grace-days', '31'],
      /--grace-days must be a whole number from 0 to 30/,
    ],
    [['list', '--id', 'key_AAAAAAAAAAAAAAAA'], /--id does not apply to list/],
    [['list', '--colour'], /Unknown option '--colour'/],
    [['list', '--secret-id', secretArn, '--file', 'x.json'], /either --file or --secret-id/],
    [['list', '--region', 'eu-west-1'], /--region needs --secret-id/],
    [['list', 'extra'], /unexpected argument 'extra'/],
  ])('%j is a usage error', async (args, message) => {
    const run = await cli(args, { openStore: () => fileClientKeyStore(file) });
    expect(run.code).toBe(2);
    expect(run.err).toMatch(message);
    expect(run.err).toContain('--help');
    expect(existsSync(file)).toBe(false);
  });

  test('--help prints the usage and exits 0', async () => {
    const run = await cli(['--help']);
    expect(run.code).toBe(0);
    for (const command of [
      'issue',
      'list',
      'revoke',
      'rotate',
      '--secret-id',
      '--file',
      '--grace-days',
    ])
      expect(run.out).toContain(command);
  });

  test('an unknown key id fails with exit 1 and changes nothing', async () => {
    await onFile(['issue', '--user', 'alice']);
    const before = readFileSync(file, 'utf8');
    const run = await onFile(['revoke', '--id', 'key_AAAAAAAAAAAAAAAA']);
    expect(run).toMatchObject({
      code: 1,
      err: 'keys: failed: no key with id key_AAAAAAAAAAAAAAAA in the key set',
    });
    expect(readFileSync(file, 'utf8')).toBe(before);
  });

  test('a file that does not parse fails with exit 1 and is left alone', async () => {
    writeFileSync(join(directory, 'broken.json'), '{"version":1,"keys":[{"id":"key_x"}]}');
    const run = await cli(['issue', '--user', 'alice', '--file', join(directory, 'broken.json')]);
    expect(run.code).toBe(1);
    expect(run.err).toMatch(/broken\.json: the client key set is invalid: keys\.0\./);
    expect(run.out).toBe('');
    expect(readFileSync(join(directory, 'broken.json'), 'utf8')).toBe(
      '{"version":1,"keys":[{"id":"key_x"}]}',
    );
  });

  test('a set that fails the schema is never written', async () => {
    const { set } = issueClientKey(emptyClientKeySet(), { userId: 'alice', now });
    const duplicated = { ...set, keys: [...set.keys, { ...set.keys[0] }] };
    await expect(fileClientKeyStore(file).write(duplicated)).rejects.toThrow(
      /refusing to write: the client key set is invalid: .*appears twice/,
    );
    expect(() => checkedClientKeySet({ ...set, keys: [{ ...set.keys[0], user_id: '' }] })).toThrow(
      /refusing to write/,
    );
    expect(existsSync(file)).toBe(false);
  });

  test('rotating never lengthens: the logic keeps the earlier of the two expiries', () => {
    const { set, issued } = issueClientKey(emptyClientKeySet(), {
      userId: 'alice',
      lifetimeDays: 1,
      now,
    });
    const rotated = rotateClientKey(set, issued.entry.id, { graceDays: 30, now });
    expect(rotated.old.expires_at).toBe(issued.entry.expires_at);
  });
});

describe('AUTH-03: the key set in Secrets Manager', () => {
  const secretsManager = mockClient(SecretsManagerClient);
  let secretValue: string;
  let versionId: string;
  let locations: StoreLocation[];

  const client = new SecretsManagerClient({ region: 'eu-west-1' });
  const onSecret = (args: string[], at?: Date) =>
    cli([...args, '--secret-id', secretArn], {
      at,
      openStore: (location) => {
        locations.push(location);
        return secretStore(location);
      },
    });
  const secretStore = (location: StoreLocation) => {
    if (location.kind !== 'secret') throw new Error('expected a secret location');
    // The real store over the mocked SDK client.
    return secretsManagerClientKeyStore({ client, secretId: location.secretId });
  };

  beforeEach(() => {
    secretsManager.reset();
    locations = [];
    secretValue = JSON.stringify(emptyClientKeySet());
    versionId = 'version-1';
    secretsManager
      .on(GetSecretValueCommand, { SecretId: secretArn, VersionStage: 'AWSCURRENT' })
      .callsFake(() => ({ SecretString: secretValue, VersionId: versionId }));
    secretsManager
      .on(PutSecretValueCommand)
      .callsFake((input: { SecretString: string; ClientRequestToken: string }) => {
        secretValue = input.SecretString;
        versionId = input.ClientRequestToken;
        return { VersionId: versionId };
      });
  });
  afterAll(() => secretsManager.restore());

  test('issue reads AWSCURRENT and puts a new version; the key verifies; the region comes from the ARN', async () => {
    const run = await onSecret(['issue', '--user', 'alice']);
    expect(run.code).toBe(0);
    expect(locations).toEqual([{ kind: 'secret', secretId: secretArn, region: 'eu-west-1' }]);
    const puts = secretsManager.commandCalls(PutSecretValueCommand);
    expect(puts).toHaveLength(1);
    expect(puts[0].args[0].input).toMatchObject({
      SecretId: secretArn,
      ClientRequestToken: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    const set = parseClientKeySet(secretValue);
    expect(clientKeyVerifier(set).verify(issuedKey(run), now.getTime())).toMatchObject({
      status: 'valid',
      userId: 'alice',
    });
    expect(run.out).toContain(`stored in secret ${secretArn}`);
  });

  test('revoke and rotate put new versions that the verifier reads as disabled and expiring', async () => {
    const first = await onSecret(['issue', '--user', 'alice']);
    const second = await onSecret(['issue', '--user', 'bob']);
    await onSecret(['revoke', '--id', issuedId(first)]);
    const rotated = await onSecret(['rotate', '--id', issuedId(second), '--grace-days', '0']);
    expect(secretsManager.commandCalls(PutSecretValueCommand)).toHaveLength(4);
    const verifier = clientKeyVerifier(parseClientKeySet(secretValue));
    expect(verifier.verify(issuedKey(first), now.getTime()).status).toBe('disabled');
    expect(verifier.verify(issuedKey(second), now.getTime()).status).toBe('expired');
    expect(verifier.verify(issuedKey(rotated), now.getTime())).toMatchObject({
      status: 'valid',
      userId: 'bob',
    });
  });

  test('--region overrides the ARN region', async () => {
    await onSecret(['list', '--region', 'eu-central-1']);
    expect(locations).toEqual([{ kind: 'secret', secretId: secretArn, region: 'eu-central-1' }]);
  });

  test('a secret that does not parse fails with exit 1 and no write', async () => {
    secretValue = 'not json at all';
    const run = await onSecret(['issue', '--user', 'alice']);
    expect(run).toMatchObject({ code: 1, out: '' });
    expect(run.err).toBe(`keys: failed: secret ${secretArn}: the client key set is not valid JSON`);
    expect(secretsManager.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });

  test('a missing secret fails with exit 1 and a clear message', async () => {
    secretsManager
      .on(GetSecretValueCommand, { SecretId: secretArn, VersionStage: 'AWSCURRENT' })
      .rejects(new ResourceNotFoundException({ message: 'no such secret', $metadata: {} }));
    const run = await onSecret(['list']);
    expect(run).toMatchObject({
      code: 1,
      err: `keys: failed: secret ${secretArn} does not exist or has no AWSCURRENT version`,
    });
  });

  test('a secret changed by someone else since the read is not overwritten', async () => {
    let reads = 0;
    secretsManager
      .on(GetSecretValueCommand, { SecretId: secretArn, VersionStage: 'AWSCURRENT' })
      .callsFake(() => {
        reads += 1;
        return { SecretString: secretValue, VersionId: reads === 1 ? 'version-1' : 'version-2' };
      });
    const run = await onSecret(['issue', '--user', 'alice']);
    expect(run.code).toBe(1);
    expect(run.err).toMatch(/changed while this command ran; nothing written/);
    expect(run.out).not.toMatch(/sk-/);
    expect(secretsManager.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });
});

describe('AUTH-07: the CLI as a child process', () => {
  const execute = promisify(execFile);
  const repoRoot = join(__dirname, '..', '..');
  const run = (args: string[]) =>
    execute(
      process.execPath,
      [
        join(repoRoot, 'node_modules', 'tsx', 'dist', 'cli.mjs'),
        join(repoRoot, 'scripts', 'keys.ts'),
        ...args,
      ],
      { cwd: repoRoot },
    ).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({
        code: error.code,
        stdout: error.stdout,
        stderr: error.stderr,
      }),
    );

  test('issue then revoke against a temp file; a usage error exits 2', async () => {
    const issued = await run(['issue', '--user', 'carol', '--file', file]);
    expect(issued.code).toBe(0);
    const key = issuedKey({ code: 0, out: issued.stdout, err: '' });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const id = issuedId({ code: 0, out: issued.stdout, err: '' });
    expect(clientKeyVerifier(storedSet()).verify(key, Date.now())).toEqual({
      status: 'valid',
      keyId: id,
      userId: 'carol',
    });

    const revoked = await run(['revoke', '--id', id, '--file', file]);
    expect(revoked.code).toBe(0);
    expect(clientKeyVerifier(storedSet()).verify(key, Date.now())).toEqual({
      status: 'disabled',
      keyId: id,
    });

    const usage = await run(['issue', '--file', file]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('missing --user <user_id>');
  }, 30_000);

  test("without --file, the key set is npm run dev's: DEV_DATA_DIR's client-keys.json, as dev reads it", async () => {
    const saved = process.env.DEV_DATA_DIR;
    process.env.DEV_DATA_DIR = directory;
    try {
      const run = await cli(['issue', '--user', 'dev-user']);
      expect(run.code).toBe(0);
      const written = parseClientKeySet(readFileSync(join(directory, 'client-keys.json'), 'utf8'));
      expect(written.keys.map((entry) => entry.user_id)).toEqual(['dev-user']);
      expect(devClientKeysFile()).toBe(join(directory, 'client-keys.json'));
    } finally {
      if (saved === undefined) delete process.env.DEV_DATA_DIR;
      else process.env.DEV_DATA_DIR = saved;
    }
  });

  test('the default file is the git-ignored .data/client-keys.json', () => {
    expect(localClientKeysFile).toBe('.data/client-keys.json');
    expect(readFileSync(join(repoRoot, '.gitignore'), 'utf8')).toMatch(/^\.data\/$/m);
  });
});

describe('AUTH-07: the runbook (docs/runbooks/keys.md) matches the CLI', () => {
  const runbook = readFileSync(join(__dirname, '..', '..', 'docs', 'runbooks', 'keys.md'), 'utf8');
  const commands = [...runbook.matchAll(/npm run keys -- ([^\n`]+)/g)].map((match) =>
    match[1].trim(),
  );

  test('documents issue, list, revoke, rotate, an emergency service-key rotation and the revocation delay', () => {
    for (const command of ['issue', 'list', 'revoke', 'rotate'])
      expect(commands.some((line) => line.startsWith(command))).toBe(true);
    expect(runbook).toContain('aws secretsmanager rotate-secret --secret-id');
    expect(runbook).toMatch(/every 60 s/);
    expect(runbook).toMatch(/secure channel/);
  });

  test.each(commands.filter((line) => line !== '--help'))(
    '`npm run keys -- %s` is valid usage',
    async (line) => {
      let stored = emptyClientKeySet();
      const memory: ClientKeyStore = {
        description: 'memory',
        read: async () => stored,
        write: async (set) => void (stored = set),
      };
      const args = line
        .split(/\s+(?=(?:[^"]*"[^"]*")*[^"]*$)/)
        .map((word) => word.replace(/^"(.*)"$/, '$1').replace('$CLIENT_KEYS', secretArn));
      const run = await cli(args, { openStore: () => memory });
      // The runbook's key ids do not exist in an empty set: a failure (1) is expected for them, never a usage error (2).
      expect(run.code).not.toBe(2);
      expect(run.err).not.toMatch(/Unknown option|unknown command|missing --/);
    },
  );
});
