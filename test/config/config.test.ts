import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  mergeOverrides,
  resolveStageConfig,
  stageNames,
  type StageName,
} from '../../lib/config';
import {
  findPolicyNotices,
  lambdaUnreservedConcurrencyMin,
  requiredAccountConcurrency,
} from '../../lib/config/policy';
import { shippedStages } from '../../lib/config/stages';
import { deployableConfig, deployableOverrides, layerOverrides } from '../support/synth';

const repoRoot = join(__dirname, '..', '..');

/** The problems of a stage's config: its deployable fixture (realistic values) with these overrides merged in. */
function problemsOf(stage: StageName, overrides: unknown): string[] {
  return problemsOfShipped(stage, layerOverrides(deployableOverrides(stage), overrides));
}

/** The problems of the shipped config with only these overrides. */
function problemsOfShipped(stage: string, overrides: unknown): string[] {
  try {
    resolveStageConfig(stage, overrides);
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

describe('shipped stage configs', () => {
  test('dev is valid as shipped', () => {
    expect(resolveStageConfig('dev').stage).toBe('dev');
  });

  test.each(['staging', 'production'] as const)(
    '%s is valid with the realistic values of its CI fixture',
    (stage) => {
      expect(deployableConfig(stage).stage).toBe(stage);
    },
  );

  test('RATE-01: rate limiting is on by default at 60 requests per minute per key in every stage', () => {
    for (const stage of stageNames) {
      expect(shippedStages[stage].rateLimit).toEqual({ enabled: true, requestsPerMinute: 60 });
    }
  });

  test('LOG-01: production and staging log at INFO', () => {
    expect(deployableConfig('production').logLevel).toBe('INFO');
    expect(deployableConfig('staging').logLevel).toBe('INFO');
  });

  test('an unknown stage is refused with the list of stages', () => {
    expect(() => resolveStageConfig('prod')).toThrow(
      /unknown stage; choose one of dev, staging, production/,
    );
  });
});

describe('CFG-01: synth refuses an insecure production config, naming each problem', () => {
  const refusals: [string, unknown, RegExp][] = [
    [
      'a wildcard CORS origin (NET-01)',
      { cors: { allowedOrigins: ['*'] } },
      /cors\.allowedOrigins\[0\] '\*' is a wildcard/,
    ],
    [
      'a non-HTTPS CORS origin (NET-01)',
      { cors: { allowedOrigins: ['http://app.acme-ai.net'] } },
      /is not HTTPS/,
    ],
    ['DEBUG logging (LOG-01)', { logLevel: 'DEBUG' }, /logLevel DEBUG is refused in production/],
    [
      'rate limiting off (RATE-01)',
      { rateLimit: { enabled: false } },
      /cannot turn rate limiting off/,
    ],
    [
      'no certificate (NET-03)',
      { certificate: null },
      /certificate is missing; production serves HTTPS only/,
    ],
    [
      'fewer than 3 ledger replicas',
      { ledger: { replicaCount: 2 } },
      /ledger\.replicaCount 2 is below 3/,
    ],
    [
      'deletion protection off (DR-04)',
      { deletionProtection: false },
      /deletionProtection is false/,
    ],
    ['no alarm e-mail (MON-03)', { alarmEmail: null }, /alarmEmail is missing/],
    ['short log retention (LOG-03)', { logRetentionDays: 30 }, /logRetentionDays 30 is below 365/],
    [
      'a single NAT gateway',
      { network: { natGateways: 1 } },
      /one NAT gateway per availability zone/,
    ],
    [
      'admin access from anywhere (NET-09)',
      { api: { creditsAdminCidrs: ['0.0.0.0/0'] } },
      /broader than a \/16/,
    ],
  ];

  test.each(refusals)('refuses %s', (_name, overrides, message) => {
    const problems = problemsOf('production', overrides);
    expect(problems.some((problem) => message.test(problem))).toBe(true);
  });

  test('lists every problem at once', () => {
    const overrides = {
      cors: { allowedOrigins: ['*', 'http://app.acme-ai.net'] },
      logLevel: 'DEBUG',
      rateLimit: { enabled: false },
      ledger: { replicaCount: 1 },
      deletionProtection: false,
    };
    const error = captureConfigError(() => deployableConfig('production', overrides));
    expect(error.problems).toHaveLength(6);
    expect(error.message).toMatch(
      /^Refusing to synthesize stage 'production': 6 configuration problems:/,
    );
    for (const problem of error.problems) expect(error.message).toContain(`  - ${problem}`);
  });

  test('a wildcard origin is refused in every stage, not only production (NET-01)', () => {
    expect(problemsOf('dev', { cors: { allowedOrigins: ['https://*.example.com'] } })).toEqual([
      "cors.allowedOrigins[0] 'https://*.example.com' is a wildcard; list each origin explicitly (NET-01)",
    ]);
  });

  test('an origin with a path is refused (NET-01)', () => {
    expect(
      problemsOf('dev', { cors: { allowedOrigins: ['https://app.example.com/'] } })[0],
    ).toMatch(/exactly scheme:\/\/host\[:port\]/);
  });

  test('dev may use DEBUG, HTTP origins, one replica and no certificate', () => {
    expect(problemsOf('dev', {})).toEqual([]);
    const dev = resolveStageConfig('dev');
    expect(dev.logLevel).toBe('DEBUG');
    expect(dev.certificate).toBeUndefined();
    expect(dev.ledger.replicaCount).toBe(1);
  });

  test('schema errors name the field', () => {
    const problems = problemsOf('production', {
      rateLimit: { requestsPerMinute: 0 },
      region: 'Europe',
      ledger: { instanceType: 'm7i.large' },
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^region: a region looks like eu-west-1/),
        expect.stringMatching(/^rateLimit\.requestsPerMinute:/),
        expect.stringMatching(/^ledger\.instanceType: a Graviton/),
      ]),
    );
  });

  test('a created certificate needs a domain name', () => {
    expect(problemsOf('staging', { domainName: null })).toContain(
      "certificate.kind 'create' needs domainName (NET-03)",
    );
  });

  test('the WAF per-key limit may not undercut the exact per-key limit of the app (RATE-04)', () => {
    expect(problemsOf('production', { rateLimit: { requestsPerMinute: 500 } })[0]).toMatch(
      /keyRequestsPerMinute \(120\) is below/,
    );
  });
});

describe('CFG-01: staging and production refuse placeholder values, all listed at once', () => {
  test.each(['staging', 'production'] as const)(
    '%s as shipped is refused with each placeholder named',
    (stage) => {
      const error = captureConfigError(() => resolveStageConfig(stage));
      const shipped = shippedStages[stage];
      expect(error.problems).toEqual(
        expect.arrayContaining([
          `domainName '${shipped.domainName}' is a placeholder (example.com is reserved for documentation); set the real value (CFG-01)`,
          `cors.allowedOrigins[0] '${shipped.cors.allowedOrigins[0]}' is a placeholder (example.com is reserved for documentation); set the real value (CFG-01)`,
          `alarmEmail 'oncall@example.com' is a placeholder (example.com is reserved for documentation); set the real value (CFG-01)`,
        ]),
      );
      expect(error.message).toContain(
        `Refusing to synthesize stage '${stage}': ${error.problems.length} configuration problems:`,
      );
    },
  );

  const placeholders: [string, unknown, string][] = [
    [
      'a documentation domain',
      { domainName: 'api.example.org' },
      "domainName 'api.example.org' is a placeholder (example.org is reserved",
    ],
    [
      'a reserved top-level domain',
      { domainName: 'api.acme.test' },
      "domainName 'api.acme.test' is a placeholder (test is reserved",
    ],
    [
      'a placeholder e-mail',
      { alarmEmail: 'ops@example.net' },
      "alarmEmail 'ops@example.net' is a placeholder (example.net is reserved",
    ],
    [
      'a localhost origin',
      { cors: { allowedOrigins: ['https://localhost:8443'] } },
      "cors.allowedOrigins[0] 'https://localhost:8443' is a placeholder (localhost is reserved",
    ],
    [
      'a placeholder hosted zone',
      {
        domainName: 'api.example.com',
        certificate: { kind: 'create', hostedZone: { id: 'Z0123456789', name: 'example.com' } },
      },
      "certificate.hostedZone.name 'example.com' is a placeholder",
    ],
    [
      'a CHANGE ME marker anywhere',
      { models: [{ ...shippedStages.production.models[0], upstreamModel: 'CHANGE ME' }] },
      "models[0].upstreamModel 'CHANGE ME' is a placeholder (CHANGE ME)",
    ],
    [
      'a change_me marker',
      {
        ledger: {
          backup: {
            copyToVaultArn: 'arn:aws:backup:eu-central-1:210987654321:backup-vault:change_me',
          },
        },
      },
      'ledger.backup.copyToVaultArn',
    ],
    [
      'the documentation account',
      { account: '123456789012' },
      "account '123456789012' names an AWS documentation account",
    ],
    [
      'a certificate of the documentation account',
      {
        certificate: {
          kind: 'import',
          hostedZone: null,
          arn: 'arn:aws:acm:eu-west-1:123456789012:certificate/0f6d4f4e-1111-2222-3333-444455556666',
        },
      },
      'certificate.arn',
    ],
  ];

  test.each(placeholders)('production refuses %s', (_name, overrides, message) => {
    const problems = problemsOf('production', overrides);
    expect(problems.filter((problem) => problem.includes(message))).toHaveLength(1);
  });

  test('staging refuses them too', () => {
    expect(problemsOf('staging', { domainName: 'api.staging.example.com' })).toEqual([
      "domainName 'api.staging.example.com' is a placeholder (example.com is reserved for documentation); set the real value (CFG-01)",
    ]);
  });

  test('dev may keep localhost and documentation names', () => {
    expect(
      problemsOfShipped('dev', {
        domainName: 'api.dev.example.com',
        cors: { allowedOrigins: ['http://localhost:5173'] },
      }),
    ).toEqual([]);
  });

  test('real names that merely contain the words are accepted', () => {
    expect(
      problemsOf('production', {
        domainName: 'example.acme-ai.net',
        cors: { allowedOrigins: ['https://testing.acme-ai.net'] },
        alarmEmail: 'test@acme-ai.net',
      }),
    ).toEqual([]);
  });
});

describe('NET-03: a certificate that cannot be validated automatically', () => {
  const manual = { certificate: { kind: 'create', hostedZone: null } };

  test('is refused in production, which would wait for a record added by hand', () => {
    expect(problemsOf('production', manual)).toEqual([
      "certificate.kind 'create' without certificate.hostedZone would leave the production deploy waiting for a DNS validation record added by hand; " +
        'give hostedZone { id, name } (records created automatically) or import a certificate (NET-03)',
    ]);
  });

  test('is accepted in staging with a notice that the deploy waits for manual DNS validation', () => {
    const staging = deployableConfig('staging', manual);
    expect(findPolicyNotices(staging)).toEqual([
      expect.stringMatching(
        /^the certificate for api\.staging\.acme-ai\.net is DNS-validated by hand: the edge stack's deploy waits/,
      ),
      // The staging fixture gives its internal certificate no validation zone either (NET-07).
      expect.stringMatching(
        /^the internal certificate for \*\.internal\.staging\.acme-ai\.net is DNS-validated by hand: the network stack's deploy waits/,
      ),
    ]);
  });

  test('with a hosted zone, or an imported certificate, there is nothing to wait for', () => {
    expect(findPolicyNotices(deployableConfig('production'))).toEqual([]);
    const imported = {
      certificate: {
        kind: 'import',
        hostedZone: null,
        arn: 'arn:aws:acm:eu-west-1:210987654321:certificate/0f6d4f4e-1111-2222-3333-444455556666',
      },
    };
    const internalZone = {
      internalTls: { validationHostedZone: { id: 'Z04471532QX4MWD0B5ZKQ', name: 'acme-ai.net' } },
    };
    expect(
      findPolicyNotices(deployableConfig('staging', { ...imported, ...internalZone })),
    ).toEqual([]);
  });
});

describe('Lambda reserved concurrency fits the account quota', () => {
  test('production reserves 200 + 100 and so needs an account quota of at least 400', () => {
    const production = deployableConfig('production');
    expect([
      production.api.proxyReservedConcurrency,
      production.api.creditsReservedConcurrency,
    ]).toEqual([200, 100]);
    expect(requiredAccountConcurrency(production)).toBe(400);
    expect(lambdaUnreservedConcurrencyMin).toBe(100);
  });

  test('a quota below that is refused at synth, naming the numbers; exactly 400 is enough', () => {
    expect(problemsOf('production', { api: { accountConcurrentExecutionsQuota: 399 } })).toEqual([
      'api: the reserved concurrency (300) plus the 100 Lambda keeps unreserved needs an account quota of 400, above ' +
        'api.accountConcurrentExecutionsQuota (399); request a quota increase (Service Quotas L-B99A9384) or reserve less',
    ]);
    expect(problemsOf('production', { api: { accountConcurrentExecutionsQuota: 400 } })).toEqual(
      [],
    );
  });

  test('a stage that reserves nothing fits any quota', () => {
    expect(problemsOfShipped('dev', { api: { accountConcurrentExecutionsQuota: 10 } })).toEqual([]);
  });
});

describe('overrides', () => {
  test('objects merge key by key, arrays replace, null removes', () => {
    expect(mergeOverrides({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, d: null })).toEqual({
      a: { b: 1, c: [3] },
    });
  });

  test('may not change the stage', () => {
    expect(problemsOfShipped('production', { stage: 'dev' })).toEqual([
      "overrides may not change the stage (got 'dev')",
    ]);
  });
});

describe('CFG-01: the CDK app itself refuses an insecure production variant', () => {
  let outdir: string;
  beforeEach(() => {
    outdir = mkdtempSync(join(tmpdir(), 'cdk-out-'));
  });
  afterEach(() => rmSync(outdir, { recursive: true, force: true }));

  function runApp(context: Record<string, string>): { status: number | null; stderr: string } {
    const result = spawnSync(
      process.execPath,
      [join(repoRoot, 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'bin/app.ts'],
      {
        cwd: repoRoot,
        env: { ...process.env, CDK_OUTDIR: outdir, CDK_CONTEXT_JSON: JSON.stringify(context) },
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    return { status: result.status, stderr: result.stderr };
  }

  test('exits 1 with every problem listed and writes no template', () => {
    const { status, stderr } = runApp({
      stage: 'production',
      overrides: 'test/fixtures/insecure-production.json',
    });
    expect(status).toBe(1);
    expect(stderr).toContain(
      "Refusing to synthesize stage 'production': 5 configuration problems:",
    );
    expect(stderr).toContain("cors.allowedOrigins[0] '*' is a wildcard");
    expect(stderr).toContain('logLevel DEBUG is refused in production');
    expect(stderr).toContain('rateLimit.enabled is false');
    expect(stderr).toContain('ledger.replicaCount 1 is below 3');
    expect(stderr).toContain('deletionProtection is false');
    expect(stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    expect(readdirSync(outdir).filter((file) => file.endsWith('.template.json'))).toEqual([]);
  });

  test('a missing overrides file is a clear message', () => {
    const { status, stderr } = runApp({
      stage: 'production',
      overrides: 'test/fixtures/no-such-file.json',
    });
    expect(status).toBe(1);
    expect(stderr).toContain("cannot read overrides file 'test/fixtures/no-such-file.json'");
  });
});

function captureConfigError(action: () => unknown): ConfigError {
  try {
    action();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}
