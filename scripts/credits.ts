import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { z } from 'zod';
import {
  balanceAnswerSchema,
  chargesAnswerSchema,
  errorAnswerSchema,
  insufficientCreditsAnswerSchema,
  historyAnswerSchema,
  movedAnswerSchema,
} from '../lambda/credits/contract';
import { formatMicros } from '../lambda/shared/money';
import { serviceKeyFromSecretString } from '../lambda/shared/service-secret';
import {
  httpRequestOf,
  operatorInvocationVersion,
  type OperatorEvent,
  type OperatorOperation,
} from '../lambda/credits/operator-invoke';
import { parseClientKeySet, type ClientKeySet } from '../lambda/shared/client-keys';
import type { output, ZodMiniType } from '../runtime/zod-mini';
import { isStageName, stageNames, type StageName } from '../lib/config';
import { shippedStages } from '../lib/config/stages';
import {
  auditRecordsOf,
  collectCharges,
  reconcile,
  reconciliationLines,
  usageCsv,
  UsageNames,
} from './credits-usage';
import {
  devClientKeysFile,
  devPortBase,
  devPortOffsets,
  devPorts,
  devSecretsFile,
  readDevSecrets,
} from './dev-layout';
import { readStackOutputs, StackNotFoundError, stageStackName } from './stack-outputs';

/**
 * `npm run credits -- <command> --stage NAME ...`: top-ups, adjustments, balances, history and usage of a
 * deployed stage, with no network route to the internal credits service (NET-09). It invokes the
 * credits function through the Lambda API with the operator's own AWS credentials (so CloudTrail
 * records who), after reading the admin key from Secrets Manager; both are found in the api stack's
 * outputs. The function serves the call with the same app as its HTTP API (operator-invoke.ts).
 * Exit codes: 0 done, 1 refused or failed, 2 usage error.
 */

export const helpText = `Top up and inspect credits of a deployed stage (through the Lambda API, with your AWS identity).

Usage: npm run credits -- <command> --stage <${stageNames.join('|')}> [options]

Commands:
  topup   --user <user_id> --amount <decimal> [--idempotency-key <key>]
          Add credits (from the funding account) to a user; creates the account on first use.
  adjust  --user <user_id> --amount <decimal> --direction <credit|debit> --reason <text> [--idempotency-key <key>]
          Correct a balance either way; a debit over the available balance is refused
          (402 insufficient_credits, naming the available balance) and moves nothing.
  balance --user <user_id>
          Available, held, credited and spent.
  history --user <user_id> [--limit <n>] [--before <timestamp>]
          Transfers, newest first; --before pages back.
  usage   --from <date> --to <date> [--keys-file <path> | --keys-secret-id <arn>]
          Charges per day, user, key and model as CSV (settled and released requests, UTC days,
          from <from> up to but not including <to>; dates as 2026-12-01 or ISO 8601 times).
  reconcile --from <date> --to <date> --audit-log <path> [--keys-file <path> | --keys-secret-id <arn>]
          Sums the ledger's charges per model against tokens x price from the proxy's audit
          records (one JSON object per line) and lists every request that does not match (exit 1).

Users and keys are named from the client key set (--keys-file, or --keys-secret-id read with your
own identity, as npm run keys does); without one, as account ids and key references.

Amounts are decimal strings with at most 6 decimal places, in the stage's currency (10.50).
A write without --idempotency-key gets a new key, printed first: to retry it safely (a timeout, a
lost answer), run it again with that key; it is applied exactly once.

Where (found in the stack ai-proxy-<stage>-api unless given):
  --function <name-or-arn>   the credits function (output CreditsFunctionArn)
  --secret-id <arn>          the admin key secret (output CreditsAdminKeySecretArn)
  --region <region>          default: the stage's configured region
  --local                    npm run dev's credits service on this machine instead (implies
                             --stage dev; DEV_PORT_BASE and DEV_DATA_DIR as for npm run dev;
                             usage names users from its $DEV_DATA_DIR/client-keys.json)
  --json                     print the service's JSON answer instead of a summary
  -h, --help                 this text

Your identity needs the api stack's CreditsOperatorPolicyArn policy (lambda:InvokeFunction on the
function, secretsmanager:GetSecretValue on the admin key, kms:Decrypt through Secrets Manager,
cloudformation:DescribeStacks on the stack). AWS credentials come from the usual chain (AWS_PROFILE, ...).
Exit codes: 0 done, 1 refused or failed, 2 usage error.`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A failure with a message written for the operator. */
export class CreditsCliError extends Error {
  override readonly name = 'CreditsCliError';
}

export interface CreditsCliIo {
  /** The answer (stdout). */
  readonly out: (line: string) => void;
  /** Progress and errors (stderr). */
  readonly err: (line: string) => void;
}

const commands = ['topup', 'adjust', 'balance', 'history', 'usage', 'reconcile'] as const;
type Command = (typeof commands)[number];

const optionsSpec = {
  stage: { type: 'string' },
  user: { type: 'string' },
  amount: { type: 'string' },
  direction: { type: 'string' },
  reason: { type: 'string' },
  'idempotency-key': { type: 'string' },
  limit: { type: 'string' },
  before: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  'audit-log': { type: 'string' },
  'keys-file': { type: 'string' },
  'keys-secret-id': { type: 'string' },
  local: { type: 'boolean' },
  function: { type: 'string' },
  'secret-id': { type: 'string' },
  region: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;
type Flag = keyof typeof optionsSpec;
type Values = Partial<Record<Flag, string | boolean>>;

const whereFlags: Flag[] = ['stage', 'function', 'secret-id', 'region', 'local', 'help'];
const commonFlags: Flag[] = [...whereFlags, 'user', 'json'];
const usageFlags: Flag[] = [...whereFlags, 'from', 'to', 'keys-file', 'keys-secret-id'];
const flagsOf: Record<Command, Flag[]> = {
  topup: [...commonFlags, 'amount', 'idempotency-key'],
  adjust: [...commonFlags, 'amount', 'direction', 'reason', 'idempotency-key'],
  balance: commonFlags,
  history: [...commonFlags, 'limit', 'before'],
  usage: usageFlags,
  reconcile: [...usageFlags, 'audit-log'],
};

/** The credits service's own rules (docs/credits-api.md); checked here too, before any AWS call. */
const decimalAmountPattern = /^[0-9]{1,33}(\.[0-9]{1,6})?$/;
const idempotencyKeyPattern = /^[A-Za-z0-9._:-]{8,128}$/;
const historyLimitPattern = /^[1-9][0-9]{0,3}$/;

/** An export of a period: [fromTimestamp, toTimestamp] in ledger nanoseconds. */
interface UsageExport {
  readonly command: 'usage' | 'reconcile';
  readonly fromTimestamp: bigint;
  readonly toTimestamp: bigint;
  readonly keys?: { readonly file: string } | { readonly secretId: string };
  readonly auditLog?: string;
}

interface Invocation {
  readonly stage: StageName;
  readonly region: string;
  readonly operation: OperatorOperation | UsageExport;
  readonly functionName?: string;
  readonly secretId?: string;
  readonly local: boolean;
  readonly json: boolean;
}

/** Runs one command; returns the exit code. */
export async function runCreditsCli(argv: readonly string[], io: CreditsCliIo): Promise<number> {
  let invocation: Invocation | 'help';
  try {
    invocation = parseCommandLine(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`credits: ${error.message}`);
    io.err('Run `npm run credits -- --help` for usage.');
    return 2;
  }
  if (invocation === 'help') {
    io.out(helpText);
    return 0;
  }
  try {
    return await invoke(invocation, io);
  } catch (error) {
    io.err(`credits: failed: ${describeError(error)}`);
    return 1;
  }
}

function parseCommandLine(argv: readonly string[]): Invocation | 'help' {
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
  const command = positionals[0];
  if (command === undefined)
    throw new UsageError(`no command; expected one of ${commands.join(', ')}`);
  if (!(commands as readonly string[]).includes(command))
    throw new UsageError(`unknown command '${command}'; expected one of ${commands.join(', ')}`);
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  for (const flag of Object.keys(values) as Flag[]) {
    if (!flagsOf[command as Command].includes(flag))
      throw new UsageError(`--${flag} does not apply to ${command}`);
  }
  const local = values.local === true;
  // --local is npm run dev's credits service, which runs stage dev: --stage is implied.
  const stage = (values.stage as string | undefined) ?? (local ? 'dev' : undefined);
  if (stage === undefined)
    throw new UsageError(`--stage is required (${stageNames.join(', ')}), or --local`);
  if (!isStageName(stage))
    throw new UsageError(`unknown stage '${stage}'; choose one of ${stageNames.join(', ')}`);
  if (local && stage !== 'dev')
    throw new UsageError(
      `--local is npm run dev's credits service (stage dev); it cannot be used with --stage ${stage}`,
    );
  if (local && (values.function !== undefined || values['secret-id'] !== undefined))
    throw new UsageError('--local needs no --function or --secret-id');
  return {
    stage,
    region: (values.region as string | undefined) ?? shippedStages[stage].region,
    operation:
      command === 'usage' || command === 'reconcile'
        ? usageExportOf(command, values)
        : operationOf(command as Exclude<Command, 'usage' | 'reconcile'>, values),
    functionName: values.function as string | undefined,
    secretId: values['secret-id'] as string | undefined,
    local,
    json: values.json === true,
  };
}

const datePattern = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** A date or time of the command line in ledger nanoseconds; a bare date is midnight UTC. */
function timeFlag(values: Values, flag: 'from' | 'to'): bigint {
  const text = required(values, flag);
  const milliseconds = datePattern.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isFinite(milliseconds) || milliseconds <= 0)
    throw new UsageError(
      `--${flag} '${text}' is not a date such as 2026-12-01 or 2026-12-01T08:00Z`,
    );
  return BigInt(milliseconds) * 1_000_000n;
}

function usageExportOf(command: 'usage' | 'reconcile', values: Values): UsageExport {
  const fromTimestamp = timeFlag(values, 'from');
  const toTimestamp = timeFlag(values, 'to');
  if (toTimestamp <= fromTimestamp) throw new UsageError('--to must be after --from');
  const keysFile = values['keys-file'] as string | undefined;
  const keysSecretId = values['keys-secret-id'] as string | undefined;
  if (keysFile !== undefined && keysSecretId !== undefined)
    throw new UsageError('give either --keys-file or --keys-secret-id, not both');
  return {
    command,
    fromTimestamp,
    toTimestamp: toTimestamp - 1n, // the period excludes its end
    keys:
      keysFile !== undefined
        ? { file: keysFile }
        : keysSecretId !== undefined
          ? { secretId: keysSecretId }
          : undefined,
    auditLog: command === 'reconcile' ? required(values, 'audit-log') : undefined,
  };
}

function required(values: Values, flag: Flag): string {
  const value = values[flag];
  if (typeof value !== 'string' || value.length === 0)
    throw new UsageError(`--${flag} is required`);
  return value;
}

function amountFlag(values: Values): string {
  const amount = required(values, 'amount');
  if (!decimalAmountPattern.test(amount)) {
    throw new UsageError(
      `--amount '${amount}' is not a decimal amount such as 10.50 (digits, at most 6 decimal places, no sign or exponent)`,
    );
  }
  return amount;
}

function idempotencyKeyFlag(values: Values): string {
  const key = (values['idempotency-key'] as string | undefined) ?? `operator-${randomUUID()}`;
  if (!idempotencyKeyPattern.test(key))
    throw new UsageError(
      '--idempotency-key must be 8 to 128 characters: letters, digits and . _ : -',
    );
  return key;
}

function operationOf(
  command: Exclude<Command, 'usage' | 'reconcile'>,
  values: Values,
): OperatorOperation {
  const userId = required(values, 'user');
  switch (command) {
    case 'topup':
      return {
        action: 'topup',
        userId,
        amount: amountFlag(values),
        idempotencyKey: idempotencyKeyFlag(values),
      };
    case 'adjust': {
      const direction = required(values, 'direction');
      if (direction !== 'credit' && direction !== 'debit')
        throw new UsageError(`--direction must be credit or debit, not '${direction}'`);
      return {
        action: 'adjust',
        userId,
        amount: amountFlag(values),
        direction,
        reason: required(values, 'reason'),
        idempotencyKey: idempotencyKeyFlag(values),
      };
    }
    case 'balance':
      return { action: 'balance', userId };
    case 'history': {
      const limit = values.limit as string | undefined;
      if (limit !== undefined && !historyLimitPattern.test(limit))
        throw new UsageError('--limit must be a whole number from 1 to 9999');
      const before = values.before as string | undefined;
      return {
        action: 'history',
        userId,
        ...(limit === undefined ? {} : { limit: Number(limit) }),
        ...(before === undefined ? {} : { before }),
      };
    }
  }
}

/** Where the function and the admin key are: the flags, else the api stack's outputs. */
async function locate(
  invocation: Invocation,
  io: CreditsCliIo,
): Promise<{ functionName: string; secretId: string }> {
  if (invocation.functionName !== undefined && invocation.secretId !== undefined) {
    return { functionName: invocation.functionName, secretId: invocation.secretId };
  }
  const stackName = stageStackName(invocation.stage, 'api');
  io.err(`Reading the outputs of ${stackName} in ${invocation.region} ...`);
  let outputs;
  try {
    outputs = await readStackOutputs(
      new CloudFormationClient({ region: invocation.region }),
      stackName,
    );
  } catch (error) {
    if (error instanceof StackNotFoundError)
      throw new CreditsCliError(
        `${error.message}; deploy the stage first, or pass --function and --secret-id`,
      );
    throw error;
  }
  const output = (key: string, flag: string): string => {
    const value = outputs.get(key);
    if (value === undefined)
      throw new CreditsCliError(
        `${stackName} has no output ${key}: deploy the current api stack, or pass --${flag}`,
      );
    return value;
  };
  return {
    functionName: invocation.functionName ?? output('CreditsFunctionArn', 'function'),
    secretId: invocation.secretId ?? output('CreditsAdminKeySecretArn', 'secret-id'),
  };
}

async function readAdminKey(secretId: string, region: string): Promise<string> {
  const answer = await new SecretsManagerClient({ region }).send(
    new GetSecretValueCommand({ SecretId: secretId, VersionStage: 'AWSCURRENT' }),
  );
  if (answer.SecretString === undefined)
    throw new CreditsCliError(`the admin key secret ${secretId} holds no string value`);
  return serviceKeyFromSecretString(answer.SecretString, 'current');
}

/** Who the calls are made as (what CloudTrail records); GetCallerIdentity needs no permission. */
async function callerIdentity(region: string): Promise<string> {
  const identity = await new STSClient({ region }).send(new GetCallerIdentityCommand({}));
  return identity.Arn ?? 'an unknown identity';
}

const operatorResultSchema = z.object({
  status: z.number().int(),
  body: z.unknown(),
  requestId: z.string(),
  replayed: z.boolean(),
});
type OperatorAnswer = z.infer<typeof operatorResultSchema>;
const functionErrorSchema = z.object({
  errorType: z.string().optional(),
  errorMessage: z.string().optional(),
});

async function invokeFunction(
  functionName: string,
  region: string,
  event: OperatorEvent,
): Promise<OperatorAnswer> {
  const answer = await new LambdaClient({ region }).send(
    new InvokeCommand({
      FunctionName: functionName,
      InvocationType: 'RequestResponse',
      Payload: new TextEncoder().encode(JSON.stringify(event)),
    }),
  );
  const text = answer.Payload === undefined ? '' : new TextDecoder().decode(answer.Payload);
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch {
    throw new CreditsCliError(
      `the credits function answered something that is not JSON (${text.length} bytes)`,
    );
  }
  if (answer.FunctionError !== undefined) {
    const failure = functionErrorSchema.safeParse(payload);
    const detail = failure.success
      ? `${failure.data.errorType ?? 'Error'}: ${failure.data.errorMessage ?? 'no message'}`
      : 'no details';
    throw new CreditsCliError(
      `the credits function failed (${answer.FunctionError}): ${detail}; see its log group (docs/runbooks/credits-down.md)`,
    );
  }
  const result = operatorResultSchema.safeParse(payload);
  if (!result.success)
    throw new CreditsCliError(
      'the credits function answered in an unexpected shape; is the deployed api stack older than this CLI?',
    );
  return result.data;
}

/** Sends one operation and returns the service's answer: through the Lambda API, or to npm run dev. */
type Send = (operation: OperatorOperation) => Promise<OperatorAnswer>;

async function lambdaSender(invocation: Invocation, io: CreditsCliIo): Promise<Send> {
  const { region } = invocation;
  const { functionName, secretId } = await locate(invocation, io);
  io.err(`Calling as ${await callerIdentity(region)} (CloudTrail records this identity)`);
  io.err(`Reading the admin key from ${secretId} ...`);
  const adminKey = await readAdminKey(secretId, region);
  return async (operation) => {
    const requestId = `operator-${randomUUID()}`;
    io.err(`Invoking ${functionName} (${operation.action}, request ${requestId}) ...`);
    return invokeFunction(functionName, region, {
      operatorInvocation: operatorInvocationVersion,
      adminKey,
      requestId,
      operation,
    });
  };
}

/** Where npm run dev runs its credits service, and the admin key it generated (scripts/dev-layout.ts). */
export function localCreditsService(environment: NodeJS.ProcessEnv = process.env): {
  baseUrl: string;
  secretsFile: string;
  portBase: number;
} {
  const portBase = devPortBase(environment);
  return {
    baseUrl: `http://127.0.0.1:${devPorts(portBase).credits}`,
    secretsFile: devSecretsFile(environment),
    portBase,
  };
}

/** A fetch that failed before any answer (refused, reset): nothing of npm run dev answers there. */
function nothingAnswers(baseUrl: string, portBase: number): CreditsCliError {
  return new CreditsCliError(
    `nothing answers at ${baseUrl}: is npm run dev running? ` +
      `(it assumed DEV_PORT_BASE=${portBase}, the credits service at the base + ${devPortOffsets.credits})`,
  );
}

/** The same operations as HTTP requests to npm run dev's credits service (there is no Lambda locally). */
function localSender(io: CreditsCliIo): Send {
  const { baseUrl, secretsFile, portBase } = localCreditsService();
  const secrets = readDevSecrets(secretsFile);
  if (secrets === undefined)
    throw new CreditsCliError(
      `no development admin key in ${secretsFile}: start npm run dev first (it generates one), or set DEV_DATA_DIR to the data directory of the npm run dev you mean`,
    );
  const { adminKey } = secrets;
  return async (operation) => {
    const request = httpRequestOf(operation);
    const query = Object.entries(request.query)
      .map(([name, value]) => `${encodeURIComponent(name)}=${value}`)
      .join('&');
    io.err(`Calling ${baseUrl} (${operation.action}) ...`);
    const headers: Record<string, string> = { authorization: `Bearer ${adminKey}` };
    if (request.body !== undefined) headers['content-type'] = 'application/json';
    if (request.idempotencyKey !== undefined) headers['idempotency-key'] = request.idempotencyKey;
    let response: Response;
    try {
      response = await fetch(`${baseUrl}${request.path}${query === '' ? '' : `?${query}`}`, {
        method: request.method,
        headers,
        body: request.body === undefined ? undefined : JSON.stringify(request.body),
      });
    } catch {
      throw nothingAnswers(baseUrl, portBase);
    }
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // kept as text: the refusal message says what came back
    }
    return {
      status: response.status,
      body,
      requestId: response.headers.get('x-request-id') ?? 'unknown',
      replayed: response.headers.get('idempotent-replayed') === 'true',
    };
  };
}

async function invoke(invocation: Invocation, io: CreditsCliIo): Promise<number> {
  const { operation } = invocation;
  if ('idempotencyKey' in operation) {
    io.err(
      `Idempotency key: ${operation.idempotencyKey} (to retry this exact ${operation.action} safely, pass --idempotency-key ${operation.idempotencyKey})`,
    );
  }
  const send = invocation.local ? localSender(io) : await lambdaSender(invocation, io);
  if ('command' in operation) return exportUsage(invocation, operation, send, io);
  if (operation.action === 'usage') throw new Error('usage pages are sent by exportUsage');
  const result = await send(operation);
  if (result.status >= 400) {
    io.err(`credits: refused: ${refusalText(result)}`);
    return 1;
  }
  if (invocation.json) io.out(JSON.stringify(result.body, null, 2));
  else for (const line of summaryLines(operation, result)) io.out(line);
  return 0;
}

/** The key set that names users and keys, if the operator gave one. */
async function readKeySet(
  keys: UsageExport['keys'],
  region: string,
): Promise<ClientKeySet | undefined> {
  if (keys === undefined) return undefined;
  if ('file' in keys) return parseClientKeySet(readFileSync(keys.file, 'utf8'));
  const answer = await new SecretsManagerClient({ region }).send(
    new GetSecretValueCommand({ SecretId: keys.secretId, VersionStage: 'AWSCURRENT' }),
  );
  if (answer.SecretString === undefined)
    throw new CreditsCliError(`the key set secret ${keys.secretId} holds no string value`);
  return parseClientKeySet(answer.SecretString);
}

async function exportUsage(
  invocation: Invocation,
  usage: UsageExport,
  send: Send,
  io: CreditsCliIo,
): Promise<number> {
  const models = [
    ...shippedStages[invocation.stage].models,
    ...shippedStages[invocation.stage].embeddingModels,
  ];
  // Locally, npm run dev's own client key file names the users and keys unless another is given.
  const keys =
    usage.keys ??
    (invocation.local && existsSync(devClientKeysFile())
      ? { file: devClientKeysFile() }
      : undefined);
  const names = new UsageNames(models, await readKeySet(keys, invocation.region));
  const charges = await collectCharges(async (from) => {
    const result = await send({ action: 'usage', from, to: usage.toTimestamp.toString() });
    if (result.status >= 400) throw new CreditsCliError(`refused: ${refusalText(result)}`);
    return answerOf(chargesAnswerSchema, result);
  }, usage.fromTimestamp);
  io.err(`${charges.length} settled or released request(s) in the period.`);
  if (usage.command === 'usage') {
    for (const line of usageCsv(charges, names)) io.out(line);
    return 0;
  }
  const records = auditRecordsOf(readFileSync(usage.auditLog ?? '', 'utf8'));
  const result = reconcile(charges, records, models, names);
  for (const line of reconciliationLines(result)) io.out(line);
  return result.mismatches.length === 0 ? 0 : 1;
}

function refusalText(result: OperatorAnswer): string {
  const body = errorAnswerSchema.safeParse(result.body);
  const what = body.success ? `${body.data.error.code}: ${body.data.error.message}` : 'no details';
  return `${result.status} ${what}${availableText(result)} (request ${result.requestId})`;
}

/** A 402 names the balance a debit (or a hold) exceeded: the operator sees how much can be taken. */
function availableText(result: OperatorAnswer): string {
  if (result.status !== 402) return '';
  const body = insufficientCreditsAnswerSchema.safeParse(result.body);
  return body.success ? ` (available ${body.data.error.available})` : '';
}

/** The answer's body as the credits contract describes it, or a failure that says so. */
function answerOf<S extends ZodMiniType>(schema: S, result: OperatorAnswer): output<S> {
  const parsed = schema.safeParse(result.body);
  if (!parsed.success)
    throw new CreditsCliError(
      `the credits function answered ${result.status} with a body outside the credits contract; is the deployed api stack older than this CLI? (request ${result.requestId})`,
    );
  return parsed.data;
}

function balanceLine(balance: output<typeof balanceAnswerSchema>): string {
  const { currency } = balance;
  return (
    `${balance.user_id}: available ${formatMicros(balance.available_micros)} ${currency}, held ${formatMicros(balance.held_micros)}, ` +
    `credited ${formatMicros(balance.credited_micros)}, spent ${formatMicros(balance.spent_micros)}`
  );
}

/** A human summary of a successful answer; amounts as decimal strings (never floats). */
function summaryLines(
  operation: Exclude<OperatorOperation, { action: 'usage' }>,
  result: OperatorAnswer,
): string[] {
  switch (operation.action) {
    case 'topup':
    case 'adjust': {
      const moved = answerOf(movedAnswerSchema, result);
      const verb = operation.action === 'topup' ? 'Topped up' : `Adjusted (${operation.direction})`;
      const replay = result.replayed
        ? ' (already applied earlier with this idempotency key: nothing moved now)'
        : '';
      return [
        `${verb} ${formatMicros(moved.amount_micros)} ${moved.balance.currency}, transfer ${moved.transfer_id}${replay}`,
        balanceLine(moved.balance),
      ];
    }
    case 'balance':
      return [balanceLine(answerOf(balanceAnswerSchema, result))];
    case 'history': {
      const history = answerOf(historyAnswerSchema, result);
      const rows = history.transfers.map(
        (entry) =>
          `${entry.timestamp}  ${entry.kind.padEnd(14)} ${entry.direction.padEnd(6)} ${formatMicros(entry.amount_micros).padStart(20)}${entry.pending ? '  (pending)' : ''}  ${entry.transfer_id}`,
      );
      const more = history.next_before === null ? [] : [`More: --before ${history.next_before}`];
      return [
        `${history.transfers.length} transfer(s) of ${operation.userId}, newest first:`,
        ...rows,
        ...more,
      ];
    }
  }
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (['CreditsCliError', 'DevConfigurationError', 'Error'].includes(error.name))
    return error.message;
  if (error.name === 'CredentialsProviderError')
    return `no AWS credentials (${error.message}); set AWS_PROFILE or log in (aws sso login)`;
  if (error.name === 'AccessDeniedException' || error.name === 'AccessDenied') {
    return `${error.name}: ${error.message}; attach the api stack's CreditsOperatorPolicyArn policy to your role`;
  }
  // SDK errors carry their own message; none quotes a secret value.
  return `${error.name}: ${error.message}`;
}

if (require.main === module) {
  void runCreditsCli(process.argv.slice(2), {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  }).then((code) => {
    process.exitCode = code;
  });
}
