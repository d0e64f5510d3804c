import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import {
  InvokeCommand,
  LambdaClient,
  type InvokeCommandInput,
  type InvokeCommandOutput,
} from '@aws-sdk/client-lambda';
import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { createCreditsApp, type CreditsPrincipal } from '../../lambda/credits/app';
import { handler } from '../../lambda/credits/handler';
import { creditsKeyEntries } from '../../lambda/credits/keys';
import { clientKeySetVersion, type ClientKeySet } from '../../lambda/shared/client-keys';
import { createKeyring, generateApiKey, hashKey } from '../../runtime/keys';
import { startServer } from '../../runtime/node-server';
import { shippedStages } from '../../lib/config/stages';
import { createGatewayClient } from '../../tigerbeetle/gateway/client';
import { runCreditsCli } from '../../scripts/credits';
import { usageCsvHeader } from '../../scripts/credits-usage';
import {
  creditsFunctionSecretArns,
  startCreditsFunctionWorld,
  type CreditsFunctionWorld,
} from '../support/credits-function';
import { RecordingLogger } from '../support/recording-logger';
import { RecordingMetrics } from '../support/recording-metrics';

/**
 * `npm run credits -- usage | reconcile` over a seeded ledger (issue 15). The seed goes through a
 * credits app on a real gateway client, as the proxy's admissions and settlements would; the export
 * goes through the Lambda API's transport (mocked at the SDK) into the real credits handler, which
 * pages the charges out of the same gateway with query_transfers.
 */

const region = 'eu-west-1';
const functionArn = 'arn:aws:lambda:eu-west-1:123456789012:function:ai-proxy-production-credits';
const keySetArn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:client-keys-AbCdEf';
const secrets = creditsFunctionSecretArns(region);
const adminKey = generateApiKey();
const proxyKey = generateApiKey();
const models = shippedStages.production.models;
const codeOf = (id: string) => models.find((model) => model.id === id)!.ledgerCode;

const secretsManager = mockClient(SecretsManagerClient);
const lambda = mockClient(LambdaClient);
const sts = mockClient(STSClient);
mockClient(CloudFormationClient);

let world: CreditsFunctionWorld;
let seeder: ReturnType<typeof createCreditsApp>;
let directory: string;

const keySet: ClientKeySet = {
  version: clientKeySetVersion,
  keys: [
    keyEntry('key_AliceLaptop0001', 'alice'),
    keyEntry('key_AliceServer0002', 'alice'),
    keyEntry('key_BobCi000000003', 'bob'),
  ],
};

function keyEntry(id: string, userId: string) {
  return {
    id,
    user_id: userId,
    sha256: hashKey(generateApiKey()).toString('hex'),
    created_at: '2026-01-01T00:00:00Z',
    expires_at: '2099-01-01T00:00:00Z',
    disabled: false,
  };
}

function payloadOf(value: unknown): InvokeCommandOutput['Payload'] {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  return Object.assign(bytes, { transformToString: () => new TextDecoder().decode(bytes) });
}

async function invokeRealHandler(input: InvokeCommandInput) {
  const event: unknown = JSON.parse(new TextDecoder().decode(input.Payload as Uint8Array));
  return { StatusCode: 200, Payload: payloadOf(await handler(event)) };
}

async function cli(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCreditsCli(args, {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
  });
  return { code, out, err: err.join('\n') };
}

async function seed(path: string, body: unknown, key = proxyKey): Promise<Record<string, string>> {
  const response = await seeder.request(path, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${key}`,
      'content-type': 'application/json',
      'idempotency-key': `seed-${randomUUID()}`,
    },
    body: JSON.stringify(body),
  });
  expect([200, 201]).toContain(response.status);
  return (await response.json()) as Record<string, string>;
}

interface Seeded {
  readonly requestId: string;
  readonly model: string;
  readonly chargedMicros: bigint | undefined;
  readonly heldMicros: bigint;
}

/** One request: a hold with its receipt, then a settlement of `chargedMicros` or a release. */
async function request(
  userId: string,
  keyId: string,
  model: string,
  chargedMicros: bigint | undefined,
): Promise<Seeded> {
  const requestId = randomUUID();
  const heldMicros = 100_000n;
  const held = await seed('/api/v1/admissions', {
    user_id: userId,
    amount_micros: heldMicros.toString(),
    timeout_seconds: 300,
    receipt: { request_id: requestId, key_id: keyId, model_code: codeOf(model) },
  });
  const action = chargedMicros === undefined ? 'release' : 'settle';
  await seed(`/api/v1/holds/${held.hold_id}/${action}`, {
    user_id: userId,
    ...(chargedMicros === undefined ? {} : { amount_micros: chargedMicros.toString() }),
  });
  return { requestId, model, chargedMicros, heldMicros };
}

/** The proxy's audit record of a completion with these tokens (what CloudWatch Logs would hold). */
function auditLine(seeded: Seeded, promptTokens: number, completionTokens: number): string {
  return JSON.stringify({
    level: 'INFO',
    message: 'audit',
    service: 'proxy',
    timestamp: new Date().toISOString(),
    audit_event: 'chat_completion',
    request_id: seeded.requestId,
    model: seeded.model,
    held_micros: seeded.heldMicros.toString(),
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    charged_micros: seeded.chargedMicros?.toString(),
  });
}

/** The UTC day the ledger was seeded on, and the next: the export's period. */
let today: string;
let tomorrow: string;
const where = ['--stage', 'production', '--function', functionArn, '--secret-id', secrets.admin];
let requests: Record<string, Seeded>;

beforeAll(async () => {
  world = await startCreditsFunctionWorld({ region, stage: 'production' });
  directory = mkdtempSync(join(tmpdir(), 'credits-usage-'));
  seeder = createCreditsApp({
    ledger: createGatewayClient({
      baseUrl: world.gateway.url,
      token: () => world.gatewayToken,
      requestTimeoutMilliseconds: 30_000,
    }),
    keys: createKeyring<CreditsPrincipal>(
      creditsKeyEntries({ admin: [adminKey], proxy: [proxyKey] }),
    ),
    logger: new RecordingLogger(),
    metrics: new RecordingMetrics(),
  });
  for (const user of ['alice', 'bob'])
    await seed('/api/v1/topup', { user_id: user, amount: '10' }, adminKey);
  // echo: 1 micro per token either way; gemini-2.5-flash: 0.3 in, 2.5 out.
  requests = {
    aliceEcho1: await request('alice', 'key_AliceLaptop0001', 'echo', 13n),
    aliceEcho2: await request('alice', 'key_AliceLaptop0001', 'echo', 20n),
    aliceFlash: await request('alice', 'key_AliceServer0002', 'gemini-2.5-flash', 12n),
    aliceFailed: await request('alice', 'key_AliceServer0002', 'gemini-2.5-flash', undefined),
    bobEcho: await request('bob', 'key_BobCi000000003', 'echo', 7n),
  };
  writeFileSync(join(directory, 'keys.json'), JSON.stringify(keySet));
  today = new Date().toISOString().slice(0, 10);
  tomorrow = new Date(Date.parse(today) + 86_400_000).toISOString().slice(0, 10);
});

beforeEach(() => {
  for (const mock of [secretsManager, lambda, sts]) mock.reset();
  for (const [arn, value] of [
    [secrets.admin, adminKey],
    [secrets.proxy, proxyKey],
    [keySetArn, JSON.stringify(keySet)],
  ]) {
    secretsManager
      .on(GetSecretValueCommand, { SecretId: arn, VersionStage: 'AWSCURRENT' })
      .resolves({ SecretString: value });
    secretsManager
      .on(GetSecretValueCommand, { SecretId: arn, VersionStage: 'AWSPREVIOUS' })
      .rejects(new ResourceNotFoundException({ message: 'no such version', $metadata: {} }));
  }
  world.aws.secret(secrets.admin, { current: adminKey });
  world.aws.secret(secrets.proxy, { current: proxyKey });
  sts
    .on(GetCallerIdentityCommand)
    .resolves({ Arn: 'arn:aws:sts::123456789012:assumed-role/ops/al' });
  lambda.on(InvokeCommand, { FunctionName: functionArn }).callsFake(invokeRealHandler);
});

afterAll(async () => {
  rmSync(directory, { recursive: true, force: true });
  await world.close();
});

describe('NET-09: npm run credits -- usage, through the Lambda API', () => {
  test('exports charges per day, user, key and model as CSV, named from the key set', async () => {
    const run = await cli(
      'usage',
      ...where,
      '--from',
      today,
      '--to',
      tomorrow,
      '--keys-file',
      join(directory, 'keys.json'),
    );
    expect(run.err).not.toContain('refused');
    expect(run.code).toBe(0);
    expect(run.out).toEqual([
      usageCsvHeader,
      `${today},alice,key_AliceLaptop0001,echo,2,0,33,0.000033`,
      `${today},alice,key_AliceServer0002,gemini-2.5-flash,1,1,12,0.000012`,
      `${today},bob,key_BobCi000000003,echo,1,0,7,0.000007`,
    ]);
    expect(run.err).toContain('5 settled or released request(s) in the period.');
  });

  test('reads the key set from Secrets Manager with --keys-secret-id; without one, names ledger ids', async () => {
    const named = await cli(
      'usage',
      ...where,
      '--from',
      today,
      '--to',
      tomorrow,
      '--keys-secret-id',
      keySetArn,
    );
    expect(named.out[1]).toBe(`${today},alice,key_AliceLaptop0001,echo,2,0,33,0.000033`);
    const unnamed = await cli('usage', ...where, '--from', today, '--to', tomorrow);
    expect(unnamed.out[1]).toMatch(new RegExp(`^${today},account:\\d+,keyref:[0-9a-f]{16},`));
  });

  test('a period with nothing in it is just the header; a bad period is a usage error', async () => {
    const empty = await cli('usage', ...where, '--from', '2020-01-01', '--to', '2020-01-02');
    expect(empty).toMatchObject({ code: 0, out: [usageCsvHeader] });
    for (const [from, to] of [
      [tomorrow, today],
      ['yesterday', today],
      [today, '2026-13-45'],
    ])
      expect((await cli('usage', ...where, '--from', from, '--to', to)).code).toBe(2);
    expect((await cli('usage', ...where, '--from', today)).code).toBe(2);
  });
});

describe('npm run credits -- reconcile', () => {
  function auditLog(lines: string[]): string {
    const path = join(directory, `audit-${randomUUID()}.jsonl`);
    // Lines that are not completions' audit records are skipped, as in a real log.
    writeFileSync(path, ['not json', '{"message":"request"}', ...lines].join('\n'));
    return path;
  }

  test('every charge matches its tokens x price: exit 0, the per-model sums', async () => {
    const log = auditLog([
      auditLine(requests.aliceEcho1, 8, 5),
      auditLine(requests.aliceEcho2, 11, 9),
      auditLine(requests.aliceFlash, 12, 3), // ceil(12 x 0.3 + 3 x 2.5) = 12
      JSON.stringify({
        audit_event: 'provider_failure',
        request_id: requests.aliceFailed.requestId,
        model: 'gemini-2.5-flash',
        held_micros: '100000',
      }),
      auditLine(requests.bobEcho, 4, 3),
    ]);
    const run = await cli(
      'reconcile',
      ...where,
      '--from',
      today,
      '--to',
      tomorrow,
      '--audit-log',
      log,
    );
    expect(run.code).toBe(0);
    expect(run.out).toEqual([
      'model,requests,prompt_tokens,completion_tokens,ledger_charged_micros,tokens_x_price_micros,difference_micros',
      'echo,3,23,17,40,40,0',
      'gemini-2.5-flash,2,12,3,12,12,0',
      'Reconciled: every charge matches its tokens x price.',
    ]);
  });

  test('a mismatch is printed with the requests involved, and exits 1', async () => {
    const stray = randomUUID();
    const log = auditLog([
      auditLine(requests.aliceEcho1, 8, 5),
      auditLine(requests.aliceEcho2, 11, 19), // the ledger charged 20, the tokens say 30
      auditLine(requests.aliceFlash, 12, 3),
      // no record for bob's request; a record no ledger charge matches
      auditLine({ requestId: stray, model: 'echo', chargedMicros: 9n, heldMicros: 100n }, 4, 5),
    ]);
    const run = await cli(
      'reconcile',
      ...where,
      '--from',
      today,
      '--to',
      tomorrow,
      '--audit-log',
      log,
    );
    expect(run.code).toBe(1);
    expect(run.out).toContain('echo,3,19,24,40,52,-12');
    expect(run.out).toContain('3 mismatch(es):');
    const lines = run.out.join('\n');
    expect(lines).toContain(
      `${requests.aliceEcho2.requestId}  echo  ledger 20  tokens x price 30  (amount_differs)`,
    );
    expect(lines).toContain(
      `${requests.bobEcho.requestId}  echo  ledger 7  tokens x price -  (no_audit_record)`,
    );
    expect(lines).toContain(`${stray}  echo  ledger -  tokens x price 9  (not_on_ledger)`);
  });
});

describe('npm run credits -- --local (npm run dev has no Lambda API)', () => {
  test('sends the same operations to the local credits service with the development admin key', async () => {
    const server = await startServer({ fetch: seeder.fetch, hostname: '127.0.0.1', port: 0 });
    const saved = { ...process.env };
    try {
      const developmentKeys = { adminKey, proxyKey, gatewayToken: generateApiKey() };
      writeFileSync(join(directory, 'dev-secrets.json'), JSON.stringify(developmentKeys));
      // npm run dev's client key file, in its data directory: it names the users and keys.
      writeFileSync(join(directory, 'client-keys.json'), JSON.stringify(keySet));
      process.env.DEV_DATA_DIR = directory;
      process.env.DEV_PORT_BASE = String(Number(new URL(server.url).port) - 100);
      const usage = await cli('usage', '--local', '--from', today, '--to', tomorrow);
      expect(usage.code).toBe(0);
      expect(usage.out).toHaveLength(4);
      expect(usage.out).toContainEqual(
        expect.stringMatching(new RegExp(`^${today},alice,key_AliceLaptop0001,echo,`)),
      );
      expect(usage.err).toContain(`Calling ${server.url.replace(/\/$/, '')} (usage)`);
      // --local is stage dev: no --stage needed.
      const balance = await cli('balance', '--local', '--user', 'bob');
      expect(balance.out).toEqual([
        'bob: available 9.999993 USD, held 0.000000, credited 10.000000, spent 0.000007',
      ]);
      expect((await cli('balance', '--stage', 'dev', '--local', '--user', 'bob')).code).toBe(0);
      expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
      const otherStage = await cli('balance', '--stage', 'production', '--local', '--user', 'bob');
      expect(otherStage.code).toBe(2);
      expect(otherStage.err).toContain(
        "--local is npm run dev's credits service (stage dev); it cannot be used with --stage production",
      );
    } finally {
      process.env = saved;
      await server.close();
    }
  });

  test('with nothing listening, says so: where it looked, whether npm run dev runs, which DEV_PORT_BASE', async () => {
    // A port nothing listens on: one that was just free.
    const server = await startServer({ fetch: seeder.fetch, hostname: '127.0.0.1', port: 0 });
    const port = server.port;
    await server.close();
    const saved = { ...process.env };
    try {
      writeFileSync(
        join(directory, 'dev-secrets.json'),
        JSON.stringify({ adminKey, proxyKey, gatewayToken: generateApiKey() }),
      );
      process.env.DEV_DATA_DIR = directory;
      process.env.DEV_PORT_BASE = String(port - 100);
      const run = await cli('balance', '--local', '--user', 'bob');
      expect(run.code).toBe(1);
      expect(run.err).toContain(
        `credits: failed: nothing answers at http://127.0.0.1:${port}: is npm run dev running? ` +
          `(it assumed DEV_PORT_BASE=${port - 100}, the credits service at the base + 100)`,
      );
      expect(run.err).not.toContain('TypeError');
    } finally {
      process.env = saved;
    }
  });

  test('without the development keys, says where it looked and how to point it at a running npm run dev', async () => {
    const saved = { ...process.env };
    try {
      const empty = join(directory, 'no-dev-here');
      process.env.DEV_DATA_DIR = empty;
      const run = await cli('balance', '--local', '--user', 'bob');
      expect(run.code).toBe(1);
      expect(run.err).toContain(
        `no development admin key in ${join(empty, 'dev-secrets.json')}: start npm run dev first ` +
          '(it generates one), or set DEV_DATA_DIR to the data directory of the npm run dev you mean',
      );
    } finally {
      process.env = saved;
    }
  });
});
