import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ACMClient, DescribeCertificateCommand } from '@aws-sdk/client-acm';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { GetAccountSettingsCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { createStageApp } from '../lib/app';
import {
  ConfigError,
  isStageName,
  readOverridesFile,
  resolveStageConfig,
  stageNames,
  type StageConfig,
} from '../lib/config';
import {
  findPolicyNotices,
  lambdaUnreservedConcurrencyMin,
  requiredAccountConcurrency,
  reservedConcurrencyTotal,
} from '../lib/config/policy';
import { readStackOutputs, StackNotFoundError, type StackOutputs } from './stack-outputs';

/**
 * `npm run preflight -- --stage NAME [--overrides FILE]`: everything a deploy of the stage needs,
 * checked before `cdk deploy` starts, each printed ok, fail or skip; then the deploy plan in order.
 * Offline: the configuration (schema, security policy, placeholders, the concurrency relation),
 * Docker with buildx for the linux/arm64 image assets, the certificate path. With AWS credentials,
 * read-only calls: who is deploying, the account's Lambda concurrency quota, the CDK bootstrap
 * stack, an imported certificate, and which of the stage's stacks exist already.
 * Exit codes: 0 nothing failed, 1 a check failed, 2 usage error.
 */

export const helpText = `Check that a stage can be deployed, and print the deploy plan.

Usage: npm run preflight -- --stage <${stageNames.join('|')}> [--overrides <file.json>]

  --stage <name>        the stage (as cdk -c stage=)
  --overrides <file>    JSON overrides merged over the shipped config (as cdk -c overrides=)
  -h, --help            this text

Offline checks always run; with AWS credentials (the usual chain: AWS_PROFILE, ...), read-only
AWS calls run too (sts:GetCallerIdentity, lambda:GetAccountSettings, cloudformation:DescribeStacks,
acm:DescribeCertificate). Exit codes: 0 nothing failed, 1 a check failed, 2 usage error.`;

export type CheckStatus = 'ok' | 'fail' | 'skip';

export interface CheckResult {
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
}

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
}

export interface PreflightIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  /** The environment external commands (docker) run with. Default: this process's. */
  readonly env?: NodeJS.ProcessEnv;
}

/** External commands (docker) must answer within this bound; a hung daemon is a failed check. */
const commandTimeoutMilliseconds = 20_000;
/** The oldest CDK bootstrap stack whose assets and roles this app can use (read from the synthesized assembly otherwise). */
const bootstrapVersionFallback = 6;

function runCommand(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { env, timeout: commandTimeoutMilliseconds, encoding: 'utf8' },
      (error, stdout) => {
        if (error === null) resolve({ code: 0, stdout });
        else
          resolve({
            code: typeof error.code === 'number' ? error.code : 127,
            stdout: stdout ?? '',
          });
      },
    );
  });
}

const ok = (name: string, detail: string): CheckResult => ({ name, status: 'ok', detail });
const fail = (name: string, detail: string): CheckResult => ({ name, status: 'fail', detail });
const skip = (name: string, detail: string): CheckResult => ({ name, status: 'skip', detail });

/** Docker with buildx that can build linux/arm64 (the ledger's replica and gateway images). */
export async function checkDocker(env: NodeJS.ProcessEnv): Promise<CheckResult> {
  const name = 'docker (arm64 image assets)';
  const needs =
    'cdk deploy builds the ledger replica and gateway images for linux/arm64 and needs Docker with buildx';
  const server = await runCommand('docker', ['version', '--format', '{{.Server.Version}}'], env);
  if (server.code === 127) return fail(name, `docker is not installed (not on PATH); ${needs}`);
  if (server.code !== 0)
    return fail(
      name,
      `the Docker daemon does not answer (docker version failed); start it: ${needs}`,
    );
  const buildx = await runCommand('docker', ['buildx', 'version'], env);
  if (buildx.code !== 0) return fail(name, `docker buildx is missing; ${needs}`);
  const builder = await runCommand('docker', ['buildx', 'inspect', '--bootstrap'], env);
  const platforms = /^Platforms:\s*(.*)$/m.exec(builder.stdout)?.[1] ?? '';
  if (builder.code !== 0 || !/linux\/arm64/.test(platforms)) {
    return fail(
      name,
      'the buildx builder cannot build linux/arm64 (on an x86 machine: docker run --privileged --rm tonistiigi/binfmt --install arm64)',
    );
  }
  return ok(
    name,
    `Docker ${server.stdout.trim()}, ${buildx.stdout.trim().split('\n')[0]}, builds linux/arm64`,
  );
}

/** The account quota the stage's reserved concurrency needs, from the config alone. */
export function checkConcurrencyConfig(config: StageConfig): CheckResult {
  const reserved = reservedConcurrencyTotal(config);
  const required = requiredAccountConcurrency(config);
  const detail =
    `reserves ${reserved} (proxy ${config.api.proxyReservedConcurrency ?? 0}, credits ${config.api.creditsReservedConcurrency ?? 0}) + ` +
    `${lambdaUnreservedConcurrencyMin} unreserved = ${required}; api.accountConcurrentExecutionsQuota is ${config.api.accountConcurrentExecutionsQuota}`;
  return ok('lambda concurrency (config)', detail);
}

/** How the public certificate comes to be, and whether the deploy waits for someone. */
export function checkCertificatePath(config: StageConfig): CheckResult {
  const name = 'certificate';
  const { certificate } = config;
  if (certificate === undefined)
    return ok(
      name,
      'none: the public load balancer serves plain HTTP (dev only; production refuses it)',
    );
  if (certificate.kind === 'import') {
    const region = certificate.arn.split(':')[3];
    if (region !== config.region)
      return fail(
        name,
        `the imported certificate is in ${region}; the load balancer needs one in ${config.region}`,
      );
    return ok(name, `imported ${certificate.arn}`);
  }
  if (certificate.hostedZone) {
    return ok(
      name,
      `created for ${config.domainName}, DNS-validated automatically in hosted zone ${certificate.hostedZone.name} (${certificate.hostedZone.id})`,
    );
  }
  return ok(
    name,
    `created for ${config.domainName}, DNS-validated by hand: the edge stack's deploy waits until the validation record exists`,
  );
}

/** Read-only AWS calls; `undefined` when there are no credentials. */
async function awsIdentity(
  config: StageConfig,
): Promise<{ account: string; arn: string } | { error: Error }> {
  try {
    const identity = await new STSClient({ region: config.region }).send(
      new GetCallerIdentityCommand({}),
    );
    return { account: identity.Account ?? '(unknown)', arn: identity.Arn ?? '(unknown)' };
  } catch (error) {
    return { error: error as Error };
  }
}

export async function checkLambdaQuota(config: StageConfig): Promise<CheckResult> {
  const name = 'lambda concurrency (account)';
  const settings = await new LambdaClient({ region: config.region }).send(
    new GetAccountSettingsCommand({}),
  );
  const quota = settings.AccountLimit?.ConcurrentExecutions;
  const unreserved = settings.AccountLimit?.UnreservedConcurrentExecutions;
  if (quota === undefined) return fail(name, 'GetAccountSettings returned no concurrency limit');
  const required = requiredAccountConcurrency(config);
  const live = `the account's quota in ${config.region} is ${quota} (${unreserved ?? '?'} unreserved now)`;
  if (quota < required)
    return fail(
      name,
      `${live}; the stage needs ${required}: request an increase of Service Quotas L-B99A9384 before deploying`,
    );
  if (quota < config.api.accountConcurrentExecutionsQuota) {
    return fail(
      name,
      `${live}, below api.accountConcurrentExecutionsQuota (${config.api.accountConcurrentExecutionsQuota}); set the config to the real quota`,
    );
  }
  return ok(name, `${live}; the stage needs ${required}`);
}

export async function checkBootstrap(
  config: StageConfig,
  requiredVersion: number,
): Promise<CheckResult> {
  const name = 'cdk bootstrap';
  let outputs: StackOutputs;
  try {
    outputs = await readStackOutputs(
      new CloudFormationClient({ region: config.region }),
      'CDKToolkit',
    );
  } catch (error) {
    if (!(error instanceof StackNotFoundError)) throw error;
    return fail(
      name,
      `no CDKToolkit stack in ${config.region}: run npx cdk bootstrap aws://ACCOUNT/${config.region} once`,
    );
  }
  const version = Number(outputs.get('BootstrapVersion'));
  if (!(version >= requiredVersion))
    return fail(
      name,
      `CDKToolkit is version ${outputs.get('BootstrapVersion') ?? '(unknown)'}; this app needs ${requiredVersion} or later: run npx cdk bootstrap again`,
    );
  return ok(name, `CDKToolkit version ${version} in ${config.region} (needs ${requiredVersion})`);
}

export async function checkImportedCertificate(
  config: StageConfig,
): Promise<CheckResult | undefined> {
  if (config.certificate?.kind !== 'import') return undefined;
  const name = 'certificate (account)';
  const answer = await new ACMClient({ region: config.region }).send(
    new DescribeCertificateCommand({ CertificateArn: config.certificate.arn }),
  );
  const certificate = answer.Certificate;
  if (certificate?.Status !== 'ISSUED')
    return fail(
      name,
      `the imported certificate is ${certificate?.Status ?? 'missing'}, not ISSUED`,
    );
  const names = [certificate.DomainName, ...(certificate.SubjectAlternativeNames ?? [])].filter(
    (value): value is string => value !== undefined,
  );
  const covers = (pattern: string) =>
    pattern === config.domainName ||
    (pattern.startsWith('*.') &&
      config.domainName?.split('.').slice(1).join('.') === pattern.slice(2));
  if (config.domainName !== undefined && !names.some(covers))
    return fail(
      name,
      `the imported certificate (${names.join(', ')}) does not cover ${config.domainName}`,
    );
  return ok(
    name,
    `ISSUED for ${names.join(', ')}, valid until ${certificate.NotAfter?.toISOString() ?? '(unknown)'}`,
  );
}

/** Which of the stage's stacks exist: a stack that does not is created by this deploy. */
async function existingStacks(
  config: StageConfig,
  stackNames: readonly string[],
): Promise<Map<string, boolean>> {
  const client = new CloudFormationClient({ region: config.region });
  const existing = new Map<string, boolean>();
  for (const stackName of stackNames) {
    try {
      await readStackOutputs(client, stackName);
      existing.set(stackName, true);
    } catch (error) {
      if (!(error instanceof StackNotFoundError)) throw error;
      existing.set(stackName, false);
    }
  }
  return existing;
}

interface PlannedStack {
  readonly stackName: string;
  readonly description: string;
  readonly creates: string;
  readonly resourceCount: number;
  readonly terminationProtection: boolean;
}

interface Plan {
  readonly stacks: readonly PlannedStack[];
  readonly notes: readonly string[];
  readonly bootstrapVersion: number;
}

/** What each stack creates, in words, from its synthesized template. */
const highlights: [string, string][] = [
  ['AWS::EC2::VPC', 'VPC'],
  ['AWS::EC2::Subnet', 'subnet'],
  ['AWS::EC2::NatGateway', 'NAT gateway'],
  ['AWS::EC2::VPCEndpoint', 'VPC endpoint'],
  ['AWS::CertificateManager::Certificate', 'ACM certificate'],
  ['AWS::ElasticLoadBalancingV2::LoadBalancer', 'load balancer'],
  ['AWS::WAFv2::WebACL', 'web ACL'],
  ['AWS::AutoScaling::AutoScalingGroup', 'ledger host group'],
  ['AWS::EC2::Volume', 'ledger data volume'],
  ['AWS::ECS::Service', 'ECS service'],
  ['AWS::Backup::BackupPlan', 'backup plan'],
  ['AWS::Lambda::Function', 'Lambda function'],
  ['AWS::SecretsManager::Secret', 'secret'],
  ['AWS::KMS::Key', 'KMS key'],
  ['AWS::IAM::ManagedPolicy', 'managed policy'],
  ['AWS::SNS::Topic', 'SNS topic'],
  ['AWS::CloudWatch::Alarm', 'alarm'],
  ['AWS::CloudWatch::Dashboard', 'dashboard'],
];

interface SynthesizedTemplate {
  Resources?: Record<
    string,
    { Type: string; CreationPolicy?: { ResourceSignal?: { Timeout?: string } } }
  >;
}

function summaryOf(template: SynthesizedTemplate): string {
  const resources = Object.values(template.Resources ?? {});
  const counts = highlights
    .map(
      ([type, label]) =>
        [resources.filter((resource) => resource.Type === type).length, label] as const,
    )
    .filter(([count]) => count > 0)
    .map(([count, label]) => `${count} ${label}${count === 1 ? '' : 's'}`);
  return counts.join(', ');
}

function firstDeployNotes(
  config: StageConfig,
  templates: Map<string, SynthesizedTemplate>,
): string[] {
  const notes = findPolicyNotices(config).map((notice) => `The ${notice}.`);
  if (config.certificate?.kind === 'create' && config.certificate.hostedZone) {
    notes.push(
      `The certificate's validation record is created in ${config.certificate.hostedZone.name}; the edge stack waits until ACM issues it (usually minutes).`,
    );
  }
  const ledger = templates.get(`ai-proxy-${config.stage}-ledger`);
  const hostGroups = Object.values(ledger?.Resources ?? {}).filter(
    (resource) => resource.Type === 'AWS::AutoScaling::AutoScalingGroup',
  );
  const timeout = hostGroups[0]?.CreationPolicy?.ResourceSignal?.Timeout;
  notes.push(
    'The ledger stack builds two linux/arm64 images (the TigerBeetle replica and the ledger gateway) with Docker and pushes them to the bootstrap repository.',
    `Each of the ${hostGroups.length} ledger host groups waits${timeout ? ` up to ${timeout.replace(/^PT/, '').toLowerCase()}` : ''} for its host to signal a healthy replica.`,
  );
  if (config.deletionProtection)
    notes.push(
      'The stacks are termination-protected and the load balancers and ledger have deletion protection.',
    );
  notes.push(
    'Then: point the API domain at the edge output LoadBalancerDnsName, fill the provider secret, issue client keys, and top up with npm run credits (README, first steps).',
  );
  return notes;
}

/** Synthesizes the stage without bundling (templates only) into a temporary directory. */
function planOf(config: StageConfig): Plan {
  const outdir = mkdtempSync(join(tmpdir(), `preflight-${config.stage}-`));
  try {
    const { app } = createStageApp(config, { outdir, bundling: false, complianceChecks: false });
    const assembly = app.synth();
    // The assembly lists stacks in dependency order: the order cdk deploy --all deploys them.
    const stacks = assembly.stacks.map((stack): PlannedStack => ({
      stackName: stack.stackName,
      description: (stack.template as { Description?: string }).Description ?? '',
      creates: summaryOf(stack.template as SynthesizedTemplate),
      resourceCount: Object.keys((stack.template as SynthesizedTemplate).Resources ?? {}).length,
      terminationProtection: stack.terminationProtection === true,
    }));
    const templates = new Map(
      assembly.stacks.map((stack) => [stack.stackName, stack.template as SynthesizedTemplate]),
    );
    const versions = assembly.stacks.map(
      (stack) => stack.requiresBootstrapStackVersion ?? bootstrapVersionFallback,
    );
    return {
      stacks,
      notes: firstDeployNotes(config, templates),
      bootstrapVersion: Math.max(bootstrapVersionFallback, ...versions),
    };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

function describeAwsError(error: unknown): string {
  const problem = error as Error;
  return `${problem.name}: ${problem.message}`;
}

/** The read-only AWS checks; skipped (not failed) without credentials. */
async function awsChecks(
  config: StageConfig,
  plan: Plan,
): Promise<{ checks: CheckResult[]; existing?: Map<string, boolean> }> {
  const identity = await awsIdentity(config);
  if ('error' in identity) {
    const reason =
      identity.error.name === 'CredentialsProviderError'
        ? 'no AWS credentials found'
        : describeAwsError(identity.error);
    return {
      checks: [
        skip(
          'aws account',
          `${reason}; the account checks (Lambda quota, CDK bootstrap, certificate, existing stacks) did not run. Set AWS_PROFILE or log in, then run preflight again`,
        ),
      ],
    };
  }
  const checks: CheckResult[] = [];
  if (config.account !== undefined && config.account !== identity.account) {
    checks.push(
      fail(
        'aws account',
        `the credentials are for account ${identity.account} (${identity.arn}); the stage deploys to ${config.account}`,
      ),
    );
  } else {
    checks.push(ok('aws account', `${identity.account} as ${identity.arn}`));
  }
  const guarded = async (name: string, check: () => Promise<CheckResult | undefined>) => {
    try {
      const result = await check();
      if (result) checks.push(result);
    } catch (error) {
      checks.push(fail(name, describeAwsError(error)));
    }
  };
  await guarded('lambda concurrency (account)', () => checkLambdaQuota(config));
  await guarded('cdk bootstrap', () => checkBootstrap(config, plan.bootstrapVersion));
  await guarded('certificate (account)', () => checkImportedCertificate(config));
  let existing: Map<string, boolean> | undefined;
  await guarded('existing stacks', async () => {
    existing = await existingStacks(
      config,
      plan.stacks.map((stack) => stack.stackName),
    );
    return undefined;
  });
  return { checks, existing };
}

function printChecks(checks: readonly CheckResult[], io: PreflightIo): void {
  for (const check of checks) io.out(`  ${check.status.padEnd(4)}  ${check.name}: ${check.detail}`);
}

function printPlan(
  config: StageConfig,
  plan: Plan,
  overridesPath: string | undefined,
  existing: Map<string, boolean> | undefined,
  io: PreflightIo,
): void {
  const command = `npx cdk deploy --all -c stage=${config.stage}${overridesPath ? ` -c overrides=${overridesPath}` : ''}`;
  io.out('');
  io.out(`Deploy plan (${command}), in this order:`);
  plan.stacks.forEach((stack, index) => {
    const action =
      existing === undefined ? '' : existing.get(stack.stackName) ? ' [update]' : ' [create]';
    io.out(
      `  ${index + 1}. ${stack.stackName}${action}${stack.terminationProtection ? ' (termination-protected)' : ''}`,
    );
    io.out(`     ${stack.description}`);
    io.out(`     creates ${stack.creates} (${stack.resourceCount} resources in all)`);
  });
  const firstDeploy = existing === undefined || [...existing.values()].some((exists) => !exists);
  io.out('');
  io.out(
    existing === undefined
      ? 'First deploy notes (whether this is the first deploy is known with AWS credentials):'
      : firstDeploy
        ? 'First deploy notes:'
        : 'Notes:',
  );
  for (const note of plan.notes) io.out(`  - ${note}`);
}

interface Options {
  readonly stage: string;
  readonly overridesPath?: string;
}

function parseCommandLine(argv: readonly string[]): Options | 'help' {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      stage: { type: 'string' },
      overrides: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return 'help';
  if (positionals.length > 0) throw new Error(`unexpected argument '${positionals[0]}'`);
  if (values.stage === undefined) throw new Error(`--stage is required (${stageNames.join(', ')})`);
  if (!isStageName(values.stage))
    throw new Error(`unknown stage '${values.stage}'; choose one of ${stageNames.join(', ')}`);
  return { stage: values.stage, overridesPath: values.overrides };
}

/** The configuration check: schema and policy; on failure, every problem. */
function resolveConfig(options: Options): { config?: StageConfig; check: CheckResult } {
  const name = 'configuration';
  try {
    const overrides =
      options.overridesPath === undefined ? undefined : readOverridesFile(options.overridesPath);
    const config = resolveStageConfig(options.stage, overrides);
    return {
      config,
      check: ok(name, 'the schema and the security policy accept it (no placeholder values)'),
    };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return {
      check: fail(
        name,
        `${error.message.split('\n')[0]}\n${error.problems.map((problem) => `          - ${problem}`).join('\n')}`,
      ),
    };
  }
}

/** Runs the preflight; returns the exit code. */
export async function runPreflight(argv: readonly string[], io: PreflightIo): Promise<number> {
  let options: Options | 'help';
  try {
    options = parseCommandLine(argv);
  } catch (error) {
    io.err(`preflight: ${(error as Error).message}`);
    io.err('Run `npm run preflight -- --help` for usage.');
    return 2;
  }
  if (options === 'help') {
    io.out(helpText);
    return 0;
  }
  io.out(
    `Preflight for stage '${options.stage}'${options.overridesPath ? ` with ${options.overridesPath}` : ''}:`,
  );
  const { config, check } = resolveConfig(options);
  const checks: CheckResult[] = [check];
  if (config === undefined) {
    printChecks(checks, io);
    io.out(
      '\nResult: the configuration is refused; fix it first (no deploy plan without a valid configuration).',
    );
    return 1;
  }
  checks.push(
    checkConcurrencyConfig(config),
    checkCertificatePath(config),
    await checkDocker(io.env ?? process.env),
  );
  const plan = planOf(config);
  const aws = await awsChecks(config, plan);
  checks.push(...aws.checks);
  printChecks(checks, io);
  printPlan(config, plan, options.overridesPath, aws.existing, io);
  const failed = checks.filter((result) => result.status === 'fail');
  const skipped = checks.filter((result) => result.status === 'skip');
  io.out('');
  io.out(
    failed.length > 0
      ? `Result: ${failed.length} check(s) failed: ${failed.map((result) => result.name).join(', ')}.`
      : `Result: ready to deploy${skipped.length > 0 ? ` (${skipped.length} check(s) skipped: ${skipped.map((result) => result.name).join(', ')})` : ''}.`,
  );
  return failed.length > 0 ? 1 : 0;
}

if (require.main === module) {
  void runPreflight(process.argv.slice(2), {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  }).then((code) => {
    process.exitCode = code;
  });
}
