import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/**
 * Dependency hygiene (docs/dependencies.md): exact pins and a lockfile that matches (DEP-01), and
 * the CI step that fails on high or critical advisories (DEP-02), run against a fake `npm` on PATH
 * so that the failure path is proven without a network.
 */

const repoRoot = join(__dirname, '..', '..');
const exactVersion = /^\d+\.\d+\.\d+$/;

interface PackageJson {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  overrides?: Record<string, string>;
}

interface PackageLock {
  lockfileVersion: number;
  packages: Record<
    string,
    {
      version?: string;
      dependencies?: Record<string, string>;
      devDependencies?: Record<string, string>;
    }
  >;
}

const packageJson = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as PackageJson;

describe('DEP-01: versions are pinned and locked', () => {
  test('every dependency is an exact version; typescript alone is ~6.0.x by policy', () => {
    const entries = {
      ...packageJson.dependencies,
      ...packageJson.devDependencies,
      ...packageJson.overrides,
    };
    const loose = Object.entries(entries).filter(
      ([name, version]) => name !== 'typescript' && !exactVersion.test(version),
    );
    expect(loose).toEqual([]);
    expect(packageJson.devDependencies.typescript).toMatch(/^~6\.0\.\d+$/);
  });

  test('package-lock.json exists and holds the same names and versions as package.json', () => {
    const lockPath = join(repoRoot, 'package-lock.json');
    expect(existsSync(lockPath)).toBe(true);
    const lock = JSON.parse(readFileSync(lockPath, 'utf8')) as PackageLock;
    expect(lock.lockfileVersion).toBeGreaterThanOrEqual(2);
    expect(lock.packages[''].dependencies).toEqual(packageJson.dependencies);
    expect(lock.packages[''].devDependencies).toEqual(packageJson.devDependencies);
    for (const [name, version] of Object.entries({
      ...packageJson.dependencies,
      ...packageJson.devDependencies,
    })) {
      const locked = lock.packages[`node_modules/${name}`]?.version;
      if (name === 'typescript') expect(locked).toMatch(/^6\.0\.\d+$/);
      else expect([name, locked]).toEqual([name, version]);
    }
  });

  test('tigerbeetle-node is pinned to the ledger version of every stage', () => {
    const stages = readFileSync(join(repoRoot, 'lib/config/stages.ts'), 'utf8');
    expect(stages).toContain(
      `tigerbeetleVersion: '${packageJson.dependencies['tigerbeetle-node']}'`,
    );
  });
});

describe('DEP-02: CI fails on high or critical advisories in production dependencies', () => {
  let directory: string;
  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'fake-npm-'));
    // A fake npm: prints the canned report, exits with the canned status, records its arguments.
    const fake = join(directory, 'npm');
    writeFileSync(
      fake,
      `#!/usr/bin/env bash\necho "$*" >> "${join(directory, 'calls')}"\ncat "${join(directory, 'report.json')}"\nexit "$(cat "${join(directory, 'status')}")"\n`,
    );
    chmodSync(fake, 0o755);
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  function runAudit(report: unknown, status: number, env: Record<string, string> = {}) {
    writeFileSync(
      join(directory, 'report.json'),
      typeof report === 'string' ? report : JSON.stringify(report),
    );
    writeFileSync(join(directory, 'status'), String(status));
    const { NPM_AUDIT_REQUIRED: _inherited, ...inherited } = process.env;
    const result = spawnSync('bash', [join(repoRoot, 'scripts/audit-dependencies.sh')], {
      cwd: repoRoot,
      env: { ...inherited, ...env, PATH: `${directory}${delimiter}${process.env.PATH}` },
      encoding: 'utf8',
    });
    return {
      code: result.status,
      output: `${result.stdout}${result.stderr}`,
      calls: readFileSync(join(directory, 'calls'), 'utf8'),
    };
  }

  /** What registry.npmjs.org answers where the advisory endpoint is blocked (seen from this CI). */
  const endpointRefused = {
    message:
      '405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk',
    method: 'POST',
    statusCode: 405,
    body: '',
  };
  const bannerLine = /^#{80}$/m;

  test('.ci/run runs the dependency audit script', () => {
    expect(readFileSync(join(repoRoot, '.ci/run'), 'utf8')).toMatch(
      /^bash scripts\/audit-dependencies\.sh$/m,
    );
  });

  test('a report with a high advisory fails, and npm was asked for production dependencies at level high', () => {
    const report = {
      auditReportVersion: 2,
      vulnerabilities: {
        'evil-lib': { name: 'evil-lib', severity: 'high', via: ['GHSA-xxxx'], range: '<1.2.3' },
      },
      metadata: {
        vulnerabilities: { info: 0, low: 0, moderate: 0, high: 1, critical: 0, total: 1 },
      },
    };
    const run = runAudit(report, 1);
    expect(run.code).toBe(1);
    expect(run.output).toContain('evil-lib');
    expect(run.calls.split('\n')[0]).toBe('audit --omit=dev --audit-level=high --json');
  });

  test('a clean report passes', () => {
    const run = runAudit(
      {
        auditReportVersion: 2,
        vulnerabilities: {},
        metadata: { vulnerabilities: { high: 0, critical: 0, total: 0 } },
      },
      0,
    );
    expect(run.code).toBe(0);
    expect(run.output).toContain('no high or critical advisories');
  });

  test('a critical advisory fails too, and the failure line gives the counts', () => {
    const report = {
      auditReportVersion: 2,
      vulnerabilities: {
        'worse-lib': { name: 'worse-lib', severity: 'critical', via: ['GHSA-yyyy'], range: '*' },
      },
      metadata: {
        vulnerabilities: { info: 0, low: 0, moderate: 0, high: 0, critical: 1, total: 1 },
      },
    };
    const run = runAudit(report, 1);
    expect(run.code).toBe(1);
    expect(run.output).toContain(
      'npm audit: FAILED: 0 high and 1 critical advisories in production dependencies',
    );
  });

  test('a registry without the audit endpoint is reported UNAVAILABLE in a banner, never as a pass; CI continues', () => {
    const run = runAudit(endpointRefused, 1);
    expect(run.code).toBe(0);
    expect(run.output).toMatch(bannerLine);
    expect(run.output).toContain(
      '### npm audit: UNAVAILABLE: the advisory service could not be reached; DEP-02 was NOT checked in this run.',
    );
    expect(run.output).toContain(
      '### npm said: 405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk',
    );
    expect(run.output).toContain('This is not a pass');
    expect(run.output).not.toContain('no high or critical advisories');
  });

  test('no network at all (npm reports ENOTFOUND) is UNAVAILABLE as well', () => {
    const run = runAudit(
      {
        error: {
          code: 'ENOTFOUND',
          summary: 'request to https://registry.example/ failed',
          detail: '',
        },
      },
      1,
    );
    expect(run.code).toBe(0);
    expect(run.output).toContain('npm audit: UNAVAILABLE');
    expect(run.output).toContain('npm said: ENOTFOUND');
  });

  test('with NPM_AUDIT_REQUIRED=1 (release builds) an unavailable advisory service fails', () => {
    const run = runAudit(endpointRefused, 1, { NPM_AUDIT_REQUIRED: '1' });
    expect(run.code).toBe(1);
    expect(run.output).toContain('npm audit: UNAVAILABLE');
    expect(run.output).toContain('npm audit: FAILED: NPM_AUDIT_REQUIRED=1 and no audit result');
  });

  test('output that is not a report, or an error that is not the service being unreachable, fails', () => {
    const crashed = runAudit('npm ERR! something unexpected', 1);
    expect(crashed.code).toBe(1);
    expect(crashed.output).toContain('npm audit: FAILED: npm audit printed no JSON report');
    const lockfileError = runAudit(
      {
        error: {
          code: 'ENOLOCK',
          summary: 'This command requires an existing lockfile.',
          detail: '',
        },
      },
      1,
    );
    expect(lockfileError.code).toBe(1);
    expect(lockfileError.output).toContain(
      'npm audit: FAILED: This command requires an existing lockfile.',
    );
  });
});
