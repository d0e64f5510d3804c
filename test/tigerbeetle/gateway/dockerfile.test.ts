import { execFileSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, posix } from 'node:path';
import { DockerIgnoreStrategy } from 'aws-cdk-lib';
import {
  gatewayDockerIgnore,
  gatewayImage,
  gatewayImageExcludes,
} from '../../../lib/deployed-code';
import { readImportGraph } from '../../architecture/import-graph';

/**
 * No Docker engine runs here, so the image's invariants are checked on the Dockerfile itself
 * (DEP-01, DEP-03, DEP-04, CFG-02), and its bundling step is run for real.
 */

const root = join(__dirname, '../../..');
/** Named by the AWS SDK only inside an error message about SigV4a signing (not a call); Secrets Manager does not use SigV4a. */
const optionalRequires = ['@aws-sdk/signature-v4-crt'];
const dockerfilePath = join(root, gatewayImage.dockerfile);

interface Instruction {
  readonly keyword: string;
  readonly argument: string;
}

interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Joins continuation lines, drops comments and the parser directive, splits into stages. */
function parseDockerfile(text: string): Stage[] {
  const logical = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const stages: Stage[] = [];
  for (const line of logical) {
    const [, keyword, argument] = /^(\S+)\s+(.*)$/.exec(line) ?? [];
    if (keyword === undefined) throw new Error(`unparsable Dockerfile line: ${line}`);
    if (keyword.toUpperCase() === 'FROM') {
      const [, from, name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(argument) ?? [];
      stages.push({ from, name, instructions: [] });
      continue;
    }
    if (stages.length === 0) throw new Error(`instruction before FROM: ${line}`);
    stages[stages.length - 1].instructions.push({
      keyword: keyword.toUpperCase(),
      argument: argument.replace(/\s+/g, ' '),
    });
  }
  return stages;
}

const stages = parseDockerfile(readFileSync(dockerfilePath, 'utf8'));
const build = stages[0];
const runtime = stages[stages.length - 1];
const all = (stage: Stage, keyword: string) =>
  stage.instructions
    .filter((instruction) => instruction.keyword === keyword)
    .map((instruction) => instruction.argument);

/** The bundle's entry: the gateway's process. */
const gatewayEntry = 'tigerbeetle/gateway/server.ts';

/**
 * Every project file the image's bundle is built from: the install's inputs and the import closure
 * of the gateway's server, read over every source folder (an import into lambda/ or lib/ shows up).
 */
function gatewayBuildInputs(): string[] {
  const graph = readImportGraph();
  const closure = new Set<string>();
  const pending = [gatewayEntry];
  while (pending.length > 0) {
    const file = pending.pop() as string;
    if (closure.has(file)) continue;
    closure.add(file);
    pending.push(...(graph.get(file) ?? []));
  }
  return ['package.json', 'package-lock.json', ...[...closure].sort()];
}

/** Where a build-stage COPY puts a file of the context, relative to the WORKDIR (undefined: not copied). */
function copiedTo(file: string): string | undefined {
  for (const copy of all(build, 'COPY').filter((argument) => !argument.startsWith('--'))) {
    const words = copy.split(' ');
    const sources = words.slice(0, -1).map((source) => posix.normalize(source));
    const destination = words[words.length - 1];
    const intoFolder = sources.length > 1 || destination.endsWith('/');
    for (const source of sources) {
      if (file !== source && !file.startsWith(`${source}/`)) continue;
      const target = intoFolder ? posix.join(destination, basename(source)) : destination;
      return posix.normalize(posix.join(target, file.slice(source.length)));
    }
  }
  return undefined;
}

const contextRules = new DockerIgnoreStrategy(root, gatewayDockerIgnore());
const assetRules = new DockerIgnoreStrategy(root, gatewayImageExcludes());

/** Why a file the bundle needs would be missing from the image's build (empty: it is there). */
function missingFromBuild(file: string): string[] {
  const problems: string[] = [];
  if (!existsSync(join(root, file))) problems.push('not in the repository');
  if (contextRules.ignores(join(root, file)))
    problems.push(`ignored by ${gatewayImage.dockerignore}`);
  if (assetRules.ignores(join(root, file)))
    problems.push("left out of the CDK image asset's staging");
  const copied = copiedTo(file);
  if (copied === undefined) problems.push('copied by no COPY of the build stage');
  else if (copied !== file) problems.push(`copied to ${copied}, so its imports would not resolve`);
  return problems.map((problem) => `${file}: ${problem}`);
}

describe('ledger gateway Dockerfile', () => {
  it('has a build stage and a runtime stage, both on an exactly pinned Node 22 slim image (DEP-03)', () => {
    expect(stages.map((stage) => stage.name)).toEqual(['build', 'runtime']);
    for (const stage of stages)
      expect(stage.from).toMatch(/^node:22\.\d+\.\d+-(bookworm-)?slim(@sha256:[0-9a-f]{64})?$/);
    expect(new Set(stages.map((stage) => stage.from)).size).toBe(1);
  });

  it('installs exactly the lockfile in the build stage and bundles server.ts with tigerbeetle-node external (DEP-01)', () => {
    const runs = all(build, 'RUN');
    expect(runs.some((run) => /^npm ci\b/.test(run))).toBe(true);
    expect(runs.some((run) => /\bnpm install\b/.test(run))).toBe(false);
    const bundle = runs.find((run) => run.includes('esbuild'));
    expect(bundle).toContain('tigerbeetle/gateway/server.ts');
    expect(bundle).toContain('--bundle');
    expect(bundle).toContain('--external:tigerbeetle-node');
    expect(all(build, 'COPY')).toContain('package.json package-lock.json ./');
  });

  it('ships only production code in the runtime stage: the bundle and tigerbeetle-node, or npm ci --omit=dev', () => {
    const copies = all(runtime, 'COPY');
    const runs = all(runtime, 'RUN');
    const omitsDev = runs.some((run) => /npm ci\b.*--omit=dev/.test(run));
    const copiesOnlyTheNativeClient = copies.some((copy) =>
      /--from=build .*\/node_modules\/tigerbeetle-node \.\/node_modules\/tigerbeetle-node$/.test(
        copy,
      ),
    );
    expect(omitsDev || copiesOnlyTheNativeClient).toBe(true);
    expect(
      copies.some((copy) => /node_modules(\/)? /.test(copy) && !copy.includes('tigerbeetle-node')),
    ).toBe(false); // never all of node_modules
    expect(copies.some((copy) => /--from=build\b.* \S*\/dist \.\/dist$/.test(copy))).toBe(true);
    expect(runs.some((run) => /\bnpm (ci|install)\b(?!.*--omit=dev)/.test(run))).toBe(false); // no dev dependencies at runtime
  });

  it('runs as the non-root node user, with the command in exec form (DEP-04)', () => {
    const users = all(runtime, 'USER');
    expect(users).toEqual(['node']);
    const keywords = runtime.instructions.map((instruction) => instruction.keyword);
    expect(keywords.indexOf('USER')).toBeLessThan(keywords.indexOf('CMD'));
    expect(keywords.lastIndexOf('RUN')).toBeLessThan(keywords.indexOf('USER'));
    const [command] = all(runtime, 'CMD');
    expect(JSON.parse(command)).toEqual(['node', '--enable-source-maps', 'dist/server.js']);
  });

  it('listens on 0.0.0.0:7300 in cluster mode, with a HEALTHCHECK on /health', () => {
    expect(all(runtime, 'EXPOSE')).toEqual(['7300']);
    const environment = all(runtime, 'ENV').join(' ');
    expect(environment).toContain('GATEWAY_HOST=0.0.0.0');
    expect(environment).toContain('GATEWAY_PORT=7300');
    expect(environment).toContain('LEDGER_MODE=cluster');
    const [healthcheck] = all(runtime, 'HEALTHCHECK');
    expect(healthcheck).toMatch(/--timeout=\d+s/);
    expect(healthcheck).toContain('/health');
  });

  it('holds no secrets: no token, key or password in ENV, ARG or LABEL, and no copy of the whole context (CFG-02, AUTH-03)', () => {
    for (const stage of stages) {
      for (const instruction of stage.instructions.filter((entry) =>
        ['ENV', 'ARG', 'LABEL'].includes(entry.keyword),
      )) {
        expect(instruction.argument).not.toMatch(
          /TOKEN|SECRET|PASSWORD|PRIVATE|ACCESS_KEY|CREDENTIAL/i,
        );
      }
      for (const copy of all(stage, 'COPY').concat(all(stage, 'ADD')))
        expect(copy).not.toMatch(/^\.\s|\s\.\s/);
      expect(stage.instructions.some((entry) => entry.keyword === 'ADD')).toBe(false);
    }
  });

  it('sends only what the build copies: the ignore file starts from nothing and admits each COPY source', () => {
    const ignore = gatewayDockerIgnore();
    expect(ignore[0]).toBe('*');
    const admitted = ignore
      .filter((line) => line.startsWith('!'))
      .map((line) => line.slice(1).replace(/\/$/, ''));
    const sources = all(build, 'COPY')
      .filter((copy) => !copy.startsWith('--from'))
      .flatMap((copy) => copy.split(' ').slice(0, -1));
    for (const source of sources) {
      expect(
        admitted.some(
          (path) =>
            source === path ||
            source.startsWith(`${path}/`) ||
            source.replace(/^\.\//, '') === path,
        ),
      ).toBe(true);
      expect(existsSync(join(root, source))).toBe(true);
    }
  });

  it('bundles for real with the Dockerfile’s esbuild flags, leaving tigerbeetle-node as the only external package', () => {
    const bundle = all(build, 'RUN').find((run) => run.includes('esbuild')) as string;
    const flags = bundle.split(' ').slice(bundle.split(' ').indexOf('esbuild') + 1);
    const outputDirectory = mkdtempSync(join(tmpdir(), 'gateway-bundle-'));
    try {
      const outfile = join(outputDirectory, 'server.js');
      const args = flags
        .map((flag) => (flag.startsWith('--outfile=') ? `--outfile=${outfile}` : flag))
        .concat('--log-level=error');
      execFileSync(join(root, 'node_modules/.bin/esbuild'), args, { cwd: root, stdio: 'pipe' });
      const code = readFileSync(outfile, 'utf8');
      const required = new Set(
        [...code.matchAll(/\brequire\("([^"]+)"\)/g)].map((match) => match[1]),
      );
      const builtins = new Set([
        ...builtinModules,
        ...builtinModules.map((name) => `node:${name}`),
      ]);
      expect(
        [...required].filter((name) => !builtins.has(name) && !optionalRequires.includes(name)),
      ).toEqual(['tigerbeetle-node']);
    } finally {
      rmSync(outputDirectory, { recursive: true, force: true });
    }
  });

  it("admits and copies every file the bundle is built from: the server's import closure and the lockfile (so the image builds)", () => {
    const inputs = gatewayBuildInputs();
    expect(inputs).toEqual(
      expect.arrayContaining([gatewayEntry, 'runtime/node-server.ts', 'tigerbeetle/limits.ts']),
    );
    expect(inputs.flatMap(missingFromBuild)).toEqual([]);
    // The Dockerfile itself is staged with the asset (CDK builds from the staged copy).
    expect(assetRules.ignores(join(root, gatewayImage.dockerfile))).toBe(false);
  });

  it('names a file the build would miss (its own failing case)', () => {
    expect(missingFromBuild('lambda/shared/metrics.ts')).toEqual([
      `lambda/shared/metrics.ts: ignored by ${gatewayImage.dockerignore}`,
      "lambda/shared/metrics.ts: left out of the CDK image asset's staging",
      'lambda/shared/metrics.ts: copied by no COPY of the build stage',
    ]);
    expect(missingFromBuild('tigerbeetle/host/setup.sh')).toEqual([
      "tigerbeetle/host/setup.sh: left out of the CDK image asset's staging",
    ]);
    expect(missingFromBuild('tigerbeetle/gateway/README.md')).toEqual(
      expect.arrayContaining([
        `tigerbeetle/gateway/README.md: ignored by ${gatewayImage.dockerignore}`,
      ]),
    );
    expect(missingFromBuild('runtime/no-such-module.ts')).toEqual([
      'runtime/no-such-module.ts: not in the repository',
    ]);
  });
});
