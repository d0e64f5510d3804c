import { parseArgs } from 'node:util';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { clientKeyEntrySchema, clientKeyLifetimeDaysDefault } from '../lambda/shared/client-keys';
import {
  clientKeyGraceDaysDefault,
  clientKeyGraceDaysMax,
  clientKeyLifetimeDaysMax,
  fileClientKeyStore,
  issueClientKey,
  listClientKeys,
  localClientKeysFile,
  revokeClientKey,
  rotateClientKey,
  secretsManagerClientKeyStore,
  type ClientKeyRow,
  type ClientKeyStore,
  type IssuedClientKey,
} from './client-key-store';
import { devClientKeysFile } from './dev-layout';

/**
 * `npm run keys -- <command>`: manage the proxy's client (API) keys (AUTH-07, docs/runbooks/keys.md).
 * A new key is printed once and stored nowhere; no hash and no other key is ever printed.
 * Exit codes: 0 done, 1 failed, 2 usage error.
 */

export const helpText = `Manage the proxy's client API keys.

Usage: npm run keys -- <command> [options]

Commands:
  issue  --user <user_id> [--days ${clientKeyLifetimeDaysDefault}] [--label <text>]
         Issue a new key for a user; prints the key once.
  list   [--user <user_id>]
         List keys: id, user, created, expires, status (active, expired, disabled), label.
  revoke --id <key_id>
         Disable a key at once (the entry is kept for audit).
  rotate --id <key_id> [--grace-days ${clientKeyGraceDaysDefault}] [--days ${clientKeyLifetimeDaysDefault}] [--label <text>]
         Issue a new key for the same user (printed once); the old key expires after the grace period.

Where the key set lives (one of):
  --file <path>                      a local file (default: npm run dev's, $DEV_DATA_DIR/client-keys.json,
                                     ${localClientKeysFile} without DEV_DATA_DIR)
  --secret-id <arn-or-name> [--region <region>]
                                     a Secrets Manager secret (the api stack's client key secret);
                                     the region defaults to the ARN's, then to the AWS CLI's
  -h, --help                         this text

Limits: --days 1 to ${clientKeyLifetimeDaysMax}, --grace-days 0 to ${clientKeyGraceDaysMax}, --label up to 200 printable characters.
Exit codes: 0 done, 1 failed, 2 usage error.`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface CliIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  readonly now: () => Date;
  /** Injected in tests; by default a file store or a Secrets Manager store, from the flags. */
  readonly openStore?: (location: StoreLocation) => ClientKeyStore;
}

export type StoreLocation =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'secret'; readonly secretId: string; readonly region?: string };

const commands = ['issue', 'list', 'revoke', 'rotate'] as const;
type Command = (typeof commands)[number];

const optionsSpec = {
  user: { type: 'string' },
  days: { type: 'string' },
  label: { type: 'string' },
  id: { type: 'string' },
  'grace-days': { type: 'string' },
  file: { type: 'string' },
  'secret-id': { type: 'string' },
  region: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;
type Flag = keyof typeof optionsSpec;
type Values = Partial<Record<Flag, string | boolean>>;

const storeFlags: Flag[] = ['file', 'secret-id', 'region', 'help'];
const flagsOf: Record<Command, Flag[]> = {
  issue: ['user', 'days', 'label', ...storeFlags],
  list: ['user', ...storeFlags],
  revoke: ['id', ...storeFlags],
  rotate: ['id', 'grace-days', 'days', 'label', ...storeFlags],
};

const secretArnRegion = /^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):\d{12}:secret:/;

/** Runs one command; returns the exit code. */
export async function runKeysCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const parsed = parseCommandLine(argv);
    if (parsed === 'help') {
      io.out(helpText);
      return 0;
    }
    const store = (io.openStore ?? openStore)(storeLocation(parsed.values));
    await runCommand(parsed.command, parsed.values, store, io);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`keys: ${error.message}`);
      io.err('Run `npm run keys -- --help` for usage.');
      return 2;
    }
    io.err(`keys: failed: ${describeError(error)}`);
    return 1;
  }
}

function parseCommandLine(argv: readonly string[]): 'help' | { command: Command; values: Values } {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...argv],
      options: optionsSpec,
      allowPositionals: true,
      strict: true,
    }) as { values: Values; positionals: string[] };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help === true || positionals[0] === 'help') return 'help';
  if (positionals.length === 0)
    throw new UsageError(`no command; expected one of ${commands.join(', ')}`);
  const command = positionals[0];
  if (!(commands as readonly string[]).includes(command))
    throw new UsageError(`unknown command '${command}'; expected one of ${commands.join(', ')}`);
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const allowed = flagsOf[command as Command];
  for (const flag of Object.keys(values) as Flag[]) {
    if (!allowed.includes(flag)) throw new UsageError(`--${flag} does not apply to ${command}`);
  }
  if (values.file !== undefined && values['secret-id'] !== undefined)
    throw new UsageError('give either --file or --secret-id, not both');
  if (values.region !== undefined && values['secret-id'] === undefined)
    throw new UsageError('--region needs --secret-id');
  return { command: command as Command, values };
}

async function runCommand(
  command: Command,
  values: Values,
  store: ClientKeyStore,
  io: CliIo,
): Promise<void> {
  const now = io.now();
  if (command === 'list') {
    const userId = values.user === undefined ? undefined : userIdFlag(values);
    printTable(listClientKeys(await store.read(), { userId, now }), io);
    return;
  }
  if (command === 'issue') {
    const options = {
      userId: userIdFlag(values),
      lifetimeDays: integerFlag(values, 'days', 1, clientKeyLifetimeDaysMax),
      label: labelFlag(values),
      now,
    };
    const result = issueClientKey(await store.read(), options);
    await store.write(result.set);
    printIssued(result.issued, store, io);
    return;
  }
  const keyId = keyIdFlag(values);
  if (command === 'revoke') {
    const result = revokeClientKey(await store.read(), keyId);
    if (result.alreadyRevoked) {
      io.out(`Key ${keyId} (user ${result.entry.user_id}) was already revoked; nothing changed.`);
      return;
    }
    await store.write(result.set);
    io.out(`Revoked key ${keyId} (user ${result.entry.user_id}) in ${store.description}.`);
    io.out(
      'The proxy refuses it (401, "disabled") from its next read of the key set, within about a minute.',
    );
    return;
  }
  const options = {
    graceDays: integerFlag(values, 'grace-days', 0, clientKeyGraceDaysMax),
    lifetimeDays: integerFlag(values, 'days', 1, clientKeyLifetimeDaysMax),
    label: labelFlag(values),
    now,
  };
  const result = rotateClientKey(await store.read(), keyId, options);
  await store.write(result.set);
  printIssued(result.issued, store, io);
  io.out(
    `The old key ${keyId} now expires at ${result.old.expires_at}; the client must switch to the new key before then.`,
  );
}

function printIssued(issued: IssuedClientKey, store: ClientKeyStore, io: CliIo): void {
  const { entry } = issued;
  io.out(
    `Issued key ${entry.id} for user ${entry.user_id}, expires ${entry.expires_at} (stored in ${store.description}).`,
  );
  io.out('');
  io.out(`  ${issued.key}`);
  io.out('');
  io.out('This key cannot be shown again: send it to the client now, over a secure channel.');
}

function printTable(rows: readonly ClientKeyRow[], io: CliIo): void {
  if (rows.length === 0) {
    io.out('No keys.');
    return;
  }
  const header = ['ID', 'USER', 'CREATED', 'EXPIRES', 'STATUS', 'LABEL'];
  const cells = rows.map((row) => [
    row.id,
    row.userId,
    row.createdAt,
    row.expiresAt,
    row.status,
    row.label ?? '',
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...cells.map((cell) => cell[column].length)),
  );
  for (const line of [header, ...cells])
    io.out(
      line
        .map((cell, column) => cell.padEnd(widths[column]))
        .join('  ')
        .trimEnd(),
    );
}

function storeLocation(values: Values): StoreLocation {
  const secretId = values['secret-id'] as string | undefined;
  if (secretId === undefined)
    return {
      kind: 'file',
      // npm run dev's file (DEV_DATA_DIR honoured), so a key issued here answers there.
      path: (values.file as string | undefined) ?? devClientKeysFile(),
    };
  if (secretId.trim() === '') throw new UsageError('--secret-id is empty');
  const region = (values.region as string | undefined) ?? secretArnRegion.exec(secretId)?.[1];
  return { kind: 'secret', secretId, ...(region === undefined ? {} : { region }) };
}

function openStore(location: StoreLocation): ClientKeyStore {
  if (location.kind === 'file') return fileClientKeyStore(location.path);
  // No region: the SDK's own chain (AWS_REGION, the profile's region).
  const client = new SecretsManagerClient(
    location.region === undefined ? {} : { region: location.region },
  );
  return secretsManagerClientKeyStore({ client, secretId: location.secretId });
}

function userIdFlag(values: Values): string {
  const userId = values.user as string | undefined;
  if (userId === undefined) throw new UsageError('missing --user <user_id>');
  if (!clientKeyEntrySchema.shape.user_id.safeParse(userId).success) {
    throw new UsageError(
      '--user must be 1 to 128 characters: letters, digits and . _ : @ - (starting with a letter or digit)',
    );
  }
  return userId;
}

function keyIdFlag(values: Values): string {
  const keyId = values.id as string | undefined;
  if (keyId === undefined) throw new UsageError('missing --id <key_id>');
  if (!clientKeyEntrySchema.shape.id.safeParse(keyId).success)
    throw new UsageError(
      `--id '${keyId}' is not a key id (key_ followed by 8 to 32 letters and digits)`,
    );
  return keyId;
}

function integerFlag(
  values: Values,
  flag: 'days' | 'grace-days',
  min: number,
  max: number,
): number | undefined {
  const text = values[flag] as string | undefined;
  if (text === undefined) return undefined;
  const value = /^\d{1,6}$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max))
    throw new UsageError(`--${flag} must be a whole number from ${min} to ${max}`);
  return value;
}

function labelFlag(values: Values): string | undefined {
  const label = values.label as string | undefined;
  if (label === undefined) return undefined;
  // eslint-disable-next-line no-control-regex
  if (label.length > 200 || /[\u0000-\u001f\u007f]/.test(label))
    throw new UsageError('--label must be at most 200 printable characters');
  return label;
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // SDK errors (no credentials, access denied, KMS) carry their own message; none quotes a secret value.
  return error.name === 'ClientKeyError' || error.name === 'Error'
    ? error.message
    : `${error.name}: ${error.message}`;
}

if (require.main === module) {
  void runKeysCli(process.argv.slice(2), {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    now: () => new Date(),
  }).then((code) => {
    process.exitCode = code;
  });
}
