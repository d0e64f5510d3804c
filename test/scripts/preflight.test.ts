import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ACMClient, DescribeCertificateCommand } from '@aws-sdk/client-acm';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetAccountSettingsCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import {
  checkBootstrap,
  checkCertificatePath,
  checkDocker,
  checkImportedCertificate,
  checkLambdaQuota,
  runPreflight,
} from '../../scripts/preflight';
import { deployableConfig } from '../support/synth';

/**
 * `npm run preflight`: the checks one by one (Docker through a stand-in `docker` executable on PATH,
 * AWS through aws-sdk-client-mock), a whole run of production with credentials, and a real child
 * process without any credentials, which must say so and still print the plan.
 */

const repoRoot = join(__dirname, '..', '..');
const fixture = join(repoRoot, 'test', 'fixtures', 'production.json');
const certificateArn =
  'arn:aws:acm:eu-west-1:210987654321:certificate/0f6d4f4e-1111-2222-3333-444455556666';

const sts = mockClient(STSClient);
const lambda = mockClient(LambdaClient);
const cloudFormation = mockClient(CloudFormationClient);
const acm = mockClient(ACMClient);

let binDirectory: string;

/** A `docker` on PATH that answers like Docker with buildx, or fails in the way FAKE_DOCKER asks. */
const fakeDocker = `#!/bin/sh
mode="\${FAKE_DOCKER:-ok}"
case "$1 $2" in
  "version --format")
    [ "$mode" = "no-daemon" ] && { echo "Cannot connect to the Docker daemon" >&2; exit 1; }
    echo "27.3.1" ;;
  "buildx version")
    [ "$mode" = "no-buildx" ] && { echo "docker: 'buildx' is not a docker command." >&2; exit 1; }
    echo "github.com/docker/buildx v0.17.1 d4a2d1e" ;;
  "buildx inspect")
    echo "Name:   default"
    if [ "$mode" = "no-arm64" ]; then echo "Platforms: linux/amd64, linux/386"; else echo "Platforms: linux/amd64, linux/arm64"; fi ;;
  *) exit 2 ;;
esac
`;

const withDocker = (mode = 'ok'): NodeJS.ProcessEnv => ({
  PATH: `${binDirectory}:/usr/bin:/bin`,
  FAKE_DOCKER: mode,
});
const withoutDocker = (): NodeJS.ProcessEnv => ({ PATH: join(binDirectory, 'empty') });

beforeAll(() => {
  binDirectory = mkdtempSync(join(tmpdir(), 'preflight-bin-'));
  writeFileSync(join(binDirectory, 'docker'), fakeDocker);
  chmodSync(join(binDirectory, 'docker'), 0o755);
});
afterAll(() => rmSync(binDirectory, { recursive: true, force: true }));
beforeEach(() => {
  for (const mock of [sts, lambda, cloudFormation, acm]) mock.reset();
});

const notFound = (name: string) =>
  Object.assign(new Error(`Stack with id ${name} does not exist`), { name: 'ValidationError' });

describe('docker: deploy builds linux/arm64 image assets', () => {
  test('Docker with buildx that builds linux/arm64 is ok', async () => {
    expect(await checkDocker(withDocker())).toEqual({
      name: 'docker (arm64 image assets)',
      status: 'ok',
      detail: 'Docker 27.3.1, github.com/docker/buildx v0.17.1 d4a2d1e, builds linux/arm64',
    });
  });

  test.each([
    ['not installed', 'absent', 'docker is not installed (not on PATH)'],
    ['a daemon that does not answer', 'no-daemon', 'the Docker daemon does not answer'],
    ['no buildx', 'no-buildx', 'docker buildx is missing'],
    ['a builder without arm64', 'no-arm64', 'cannot build linux/arm64'],
  ])('%s fails, saying what to do', async (_name, mode, message) => {
    const result = await checkDocker(mode === 'absent' ? withoutDocker() : withDocker(mode));
    expect(result.status).toBe('fail');
    expect(result.detail).toContain(message);
  });
});

describe('lambda concurrency: the account quota covers 200 + 100 reserved + 100 unreserved', () => {
  const production = deployableConfig('production');

  test('a quota of 1000 is ok', async () => {
    lambda.on(GetAccountSettingsCommand).resolves({
      AccountLimit: { ConcurrentExecutions: 1000, UnreservedConcurrentExecutions: 1000 },
    });
    expect(await checkLambdaQuota(production)).toMatchObject({
      status: 'ok',
      detail: "the account's quota in eu-west-1 is 1000 (1000 unreserved now); the stage needs 400",
    });
  });

  test("a new account's low quota fails with the quota code to raise", async () => {
    lambda
      .on(GetAccountSettingsCommand)
      .resolves({ AccountLimit: { ConcurrentExecutions: 10, UnreservedConcurrentExecutions: 10 } });
    const result = await checkLambdaQuota(production);
    expect(result).toMatchObject({ status: 'fail' });
    expect(result.detail).toContain(
      'the stage needs 400: request an increase of Service Quotas L-B99A9384',
    );
  });

  test('a live quota below the configured one fails: the config must say the truth', async () => {
    lambda.on(GetAccountSettingsCommand).resolves({
      AccountLimit: { ConcurrentExecutions: 500, UnreservedConcurrentExecutions: 500 },
    });
    expect((await checkLambdaQuota(production)).detail).toContain(
      'below api.accountConcurrentExecutionsQuota (1000)',
    );
  });
});

describe('cdk bootstrap', () => {
  const production = deployableConfig('production');

  test('a CDKToolkit stack of a recent version is ok', async () => {
    cloudFormation.on(DescribeStacksCommand, { StackName: 'CDKToolkit' }).resolves({
      Stacks: [
        {
          StackName: 'CDKToolkit',
          CreationTime: new Date(),
          StackStatus: 'UPDATE_COMPLETE',
          Outputs: [{ OutputKey: 'BootstrapVersion', OutputValue: '29' }],
        },
      ],
    });
    expect(await checkBootstrap(production, 6)).toMatchObject({
      status: 'ok',
      detail: 'CDKToolkit version 29 in eu-west-1 (needs 6)',
    });
  });

  test('no bootstrap stack, or an old one, fails with the command to run', async () => {
    cloudFormation
      .on(DescribeStacksCommand, { StackName: 'CDKToolkit' })
      .rejects(notFound('CDKToolkit'));
    expect((await checkBootstrap(production, 6)).detail).toBe(
      'no CDKToolkit stack in eu-west-1: run npx cdk bootstrap aws://ACCOUNT/eu-west-1 once',
    );
    cloudFormation.reset();
    cloudFormation.on(DescribeStacksCommand).resolves({
      Stacks: [
        {
          StackName: 'CDKToolkit',
          CreationTime: new Date(),
          StackStatus: 'CREATE_COMPLETE',
          Outputs: [{ OutputKey: 'BootstrapVersion', OutputValue: '4' }],
        },
      ],
    });
    expect((await checkBootstrap(production, 6)).detail).toContain(
      'CDKToolkit is version 4; this app needs 6 or later',
    );
  });
});

describe('the certificate path', () => {
  test('offline: each way a certificate comes to be, and a certificate in the wrong region', () => {
    expect(checkCertificatePath(deployableConfig('production')).detail).toBe(
      'created for api.acme-ai.net, DNS-validated automatically in hosted zone acme-ai.net (Z04471532QX4MWD0B5ZKQ)',
    );
    expect(checkCertificatePath(deployableConfig('staging')).detail).toContain(
      "DNS-validated by hand: the edge stack's deploy waits",
    );
    expect(checkCertificatePath(deployableConfig('dev')).detail).toContain('plain HTTP');
    const elsewhere = deployableConfig('staging', {
      certificate: { kind: 'import', arn: certificateArn.replace('eu-west-1', 'us-east-1') },
    });
    expect(checkCertificatePath(elsewhere)).toMatchObject({
      status: 'fail',
      detail: 'the imported certificate is in us-east-1; the load balancer needs one in eu-west-1',
    });
  });

  test('with credentials: an imported certificate must be ISSUED and cover the domain', async () => {
    const imported = deployableConfig('staging', {
      certificate: { kind: 'import', arn: certificateArn },
    });
    acm.on(DescribeCertificateCommand).resolves({
      Certificate: {
        CertificateArn: certificateArn,
        Status: 'ISSUED',
        DomainName: '*.staging.acme-ai.net',
        NotAfter: new Date('2027-06-01T00:00:00Z'),
      },
    });
    expect(await checkImportedCertificate(imported)).toMatchObject({
      status: 'ok',
      detail: 'ISSUED for *.staging.acme-ai.net, valid until 2027-06-01T00:00:00.000Z',
    });
    acm.reset();
    acm.on(DescribeCertificateCommand).resolves({
      Certificate: {
        CertificateArn: certificateArn,
        Status: 'ISSUED',
        DomainName: 'www.acme-ai.net',
      },
    });
    expect((await checkImportedCertificate(imported))?.detail).toBe(
      'the imported certificate (www.acme-ai.net) does not cover api.staging.acme-ai.net',
    );
    acm.reset();
    acm.on(DescribeCertificateCommand).resolves({
      Certificate: {
        CertificateArn: certificateArn,
        Status: 'PENDING_VALIDATION',
        DomainName: 'api.staging.acme-ai.net',
      },
    });
    expect((await checkImportedCertificate(imported))?.detail).toBe(
      'the imported certificate is PENDING_VALIDATION, not ISSUED',
    );
  });
});

describe('a whole run', () => {
  test('production with credentials: every check ok, the plan in deploy order, each stack to create', async () => {
    sts.on(GetCallerIdentityCommand).resolves({
      Account: '210987654321',
      Arn: 'arn:aws:sts::210987654321:assumed-role/platform-deployer/carol',
    });
    lambda.on(GetAccountSettingsCommand).resolves({
      AccountLimit: { ConcurrentExecutions: 1000, UnreservedConcurrentExecutions: 1000 },
    });
    cloudFormation.on(DescribeStacksCommand).rejects(notFound('any'));
    cloudFormation.on(DescribeStacksCommand, { StackName: 'CDKToolkit' }).resolves({
      Stacks: [
        {
          StackName: 'CDKToolkit',
          CreationTime: new Date(),
          StackStatus: 'UPDATE_COMPLETE',
          Outputs: [{ OutputKey: 'BootstrapVersion', OutputValue: '29' }],
        },
      ],
    });
    const out: string[] = [];
    const code = await runPreflight(['--stage', 'production', '--overrides', fixture], {
      out: (line) => out.push(line),
      err: (line) => out.push(line),
      env: withDocker(),
    });
    const text = out.join('\n');
    expect(text).toContain(
      '  ok    aws account: 210987654321 as arn:aws:sts::210987654321:assumed-role/platform-deployer/carol',
    );
    expect(text).toContain('  ok    lambda concurrency (account)');
    expect(text).toContain('  ok    cdk bootstrap: CDKToolkit version 29');
    expect(text).not.toMatch(/^ {2}fail/m);
    const order = [
      ...text.matchAll(
        /^ {2}\d\. (ai-proxy-production-[a-z]+) \[create\] \(termination-protected\)$/gm,
      ),
    ].map((match) => match[1]);
    expect(order).toEqual(
      ['network', 'edge', 'ledger', 'api', 'observability'].map(
        (part) => `ai-proxy-production-${part}`,
      ),
    );
    expect(text).toMatch(/creates .*6 ledger host groups, 6 ledger data volumes/);
    expect(text).toContain('First deploy notes:');
    expect(text).toContain('Each of the 6 ledger host groups waits up to');
    expect(text).toContain('Result: ready to deploy.');
    expect(code).toBe(0);
  });

  test('a refused configuration lists every problem and prints no plan', async () => {
    const out: string[] = [];
    const code = await runPreflight(['--stage', 'production'], {
      out: (line) => out.push(line),
      err: (line) => out.push(line),
      env: withDocker(),
    });
    const text = out.join('\n');
    expect(code).toBe(1);
    expect(text).toContain("  fail  configuration: Refusing to synthesize stage 'production'");
    expect(text).toContain("- domainName 'api.example.com' is a placeholder");
    expect(text).not.toContain('Deploy plan');
    expect(sts.commandCalls(GetCallerIdentityCommand)).toHaveLength(0);
  });

  test('usage errors exit 2', async () => {
    const err: string[] = [];
    expect(
      await runPreflight(['--stage', 'prod'], {
        out: () => undefined,
        err: (line) => err.push(line),
      }),
    ).toBe(2);
    expect(err[0]).toBe("preflight: unknown stage 'prod'; choose one of dev, staging, production");
  });

  test('offline, as a real process with no AWS credentials at all: says so clearly, no crash, still plans', async () => {
    const home = mkdtempSync(join(tmpdir(), 'preflight-home-'));
    try {
      const env = {
        PATH: `${binDirectory}:${process.env.PATH ?? ''}`,
        HOME: home,
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_CONFIG_FILE: join(home, 'none'),
        AWS_SHARED_CREDENTIALS_FILE: join(home, 'none'),
      };
      const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
        (resolve) => {
          const child = execFile(
            process.execPath,
            [
              join(repoRoot, 'node_modules', 'tsx', 'dist', 'cli.mjs'),
              'scripts/preflight.ts',
              '--stage',
              'dev',
            ],
            { cwd: repoRoot, env, timeout: 120_000 },
            (_error, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }),
          );
        },
      );
      expect(result.stdout).toContain(
        '  skip  aws account: no AWS credentials found; the account checks (Lambda quota, CDK bootstrap, certificate, existing stacks) did not run',
      );
      expect(result.stdout).toContain('  ok    docker (arm64 image assets)');
      expect(result.stdout).toContain(
        'Deploy plan (npx cdk deploy --all -c stage=dev), in this order:',
      );
      expect(result.stdout).toContain('Result: ready to deploy (1 check(s) skipped: aws account).');
      expect(result.stderr).not.toMatch(/\n\s+at /);
      expect(result.code).toBe(0);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
