import { importCycles, readImportGraph, sourceFolders, type ImportGraph } from './import-graph';

/**
 * The import graph of bin/, lib/, lambda/, runtime/, tigerbeetle/ and scripts/ has no cycles, and
 * its layers hold: each rule below names what may not import what, with an import that breaks it
 * (its own failing case) and one it allows. A finding names the files, so the fix is clear.
 */

let graph: ImportGraph;
beforeAll(() => {
  graph = readImportGraph();
});

interface Edge {
  readonly from: string;
  readonly to: string;
}

const edges = (of: ImportGraph): Edge[] =>
  [...of].flatMap(([from, imports]) => imports.map((to) => ({ from, to })));
const under = (folder: string) => (path: string) => path.startsWith(`${folder}/`);
const describeEdges = (found: readonly Edge[]) => found.map(({ from, to }) => `${from} -> ${to}`);

/** The code that is deployed: the Lambda services, the ledger pieces and the runtime library both use. */
const deployed = (path: string) =>
  under('lambda')(path) || under('runtime')(path) || under('tigerbeetle')(path);
const inCredits = under('lambda/credits');
const creditsContract = 'lambda/credits/contract.ts';
/** lib/ and bin/ reach deployed code only through this module (lib/deployed-code.ts says why). */
const deployedCodeSeam = 'lib/deployed-code.ts';
const services = ['lambda/proxy', 'lambda/credits', 'lambda/settlement', 'lambda/rotation'];
const engine = under('tigerbeetle/engine');

interface Rule {
  readonly name: string;
  /** True for an import the rule forbids. */
  readonly forbids: (edge: Edge) => boolean;
  /** Imports that break the rule: each must be found (the rule's own failing case). */
  readonly breaking: readonly Edge[];
  /** Imports of the same files' kind that the rule allows: none may be found. */
  readonly allowed: readonly Edge[];
}

const rules: readonly Rule[] = [
  {
    name: 'the services reach the credits service only through its contract (lambda/credits/contract.ts)',
    forbids: ({ from, to }) =>
      deployed(from) && !inCredits(from) && inCredits(to) && to !== creditsContract,
    breaking: [{ from: 'lambda/proxy/billing.ts', to: 'lambda/credits/domain/amount.ts' }],
    allowed: [{ from: 'lambda/proxy/credits-client.ts', to: creditsContract }],
  },
  {
    name: 'lib/ and bin/ import deployed code only through their named seam (lib/deployed-code.ts)',
    forbids: ({ from, to }) =>
      (under('lib')(from) || under('bin')(from)) && from !== deployedCodeSeam && deployed(to),
    breaking: [
      { from: 'lib/stacks/api-stack.ts', to: 'lambda/proxy/config.ts' },
      { from: 'lib/constructs/api-web-acl.ts', to: 'runtime/api-key-format.ts' },
      { from: 'bin/app.ts', to: 'tigerbeetle/limits.ts' },
    ],
    allowed: [
      { from: deployedCodeSeam, to: 'lambda/proxy/config.ts' },
      { from: 'lib/stacks/api-stack.ts', to: deployedCodeSeam },
    ],
  },
  {
    name: 'the ledger pieces (tigerbeetle/) import nothing from lambda/',
    forbids: ({ from, to }) => under('tigerbeetle')(from) && under('lambda')(to),
    breaking: [{ from: 'tigerbeetle/gateway/app.ts', to: 'lambda/shared/metrics.ts' }],
    allowed: [{ from: 'tigerbeetle/gateway/app.ts', to: 'runtime/http.ts' }],
  },
  {
    name: 'the runtime library (runtime/) imports only itself: nothing from lambda/, tigerbeetle/, lib/, scripts/ or bin/',
    forbids: ({ from, to }) => under('runtime')(from) && !under('runtime')(to),
    breaking: [
      { from: 'runtime/http.ts', to: 'lambda/shared/metrics.ts' },
      { from: 'runtime/keys.ts', to: 'tigerbeetle/limits.ts' },
      { from: 'runtime/logger.ts', to: 'lib/config/index.ts' },
      { from: 'runtime/node-server.ts', to: 'scripts/local-services.ts' },
      { from: 'runtime/environment.ts', to: 'bin/app.ts' },
    ],
    allowed: [{ from: 'runtime/secret-keyring.ts', to: 'runtime/keys.ts' }],
  },
  {
    name: 'what only the Lambda services share (lambda/shared/) imports no service (the runtime library it may)',
    forbids: ({ from, to }) =>
      under('lambda/shared')(from) && services.some((service) => under(service)(to)),
    breaking: [{ from: 'lambda/shared/metrics.ts', to: 'lambda/proxy/config.ts' }],
    allowed: [{ from: 'lambda/shared/metrics-listener.ts', to: 'runtime/node-server.ts' }],
  },
  {
    name: "the embedded engine stands alone (but for TigerBeetle's limits)",
    forbids: ({ from, to }) => engine(from) && !engine(to) && to !== 'tigerbeetle/limits.ts',
    breaking: [{ from: 'tigerbeetle/engine/engine.ts', to: 'runtime/logger.ts' }],
    allowed: [{ from: 'tigerbeetle/engine/engine.ts', to: 'tigerbeetle/limits.ts' }],
  },
  {
    name: 'deployed code imports neither the CDK app, the scripts nor the tests',
    forbids: ({ from, to }) =>
      deployed(from) && ['bin', 'scripts', 'test', 'bench'].some((folder) => under(folder)(to)),
    breaking: [
      { from: 'lambda/proxy/app.ts', to: 'scripts/dev.ts' },
      { from: 'runtime/http.ts', to: 'test/support/proxy.ts' },
      { from: 'tigerbeetle/gateway/server.ts', to: 'bin/app.ts' },
    ],
    allowed: [{ from: 'scripts/dev.ts', to: 'lambda/proxy/app.ts' }],
  },
];

const violations = (rule: Rule, found: readonly Edge[]) =>
  describeEdges(found.filter(rule.forbids));

test('the graph reads every source folder (a rule over an empty graph proves nothing)', () => {
  for (const folder of sourceFolders) expect([...graph.keys()].some(under(folder))).toBe(true);
  expect(graph.get('lambda/proxy/handler.ts')).toContain('lambda/proxy/app.ts');
  expect(graph.get('tigerbeetle/gateway/server.ts')).toContain('runtime/node-server.ts');
});

test('no import cycles: no two files import each other, directly or around a loop', () => {
  expect(importCycles(graph).map((cycle) => cycle.join(' -> '))).toEqual([]);
});

test('the cycle finder names a cycle (its own failing case)', () => {
  const looped: ImportGraph = new Map([
    ['a.ts', ['b.ts']],
    ['b.ts', ['c.ts']],
    ['c.ts', ['a.ts', 'd.ts']],
    ['d.ts', []],
    ['e.ts', ['e.ts']],
  ]);
  expect(importCycles(looped)).toEqual([
    ['a.ts', 'b.ts', 'c.ts', 'a.ts'],
    ['e.ts', 'e.ts'],
  ]);
});

describe.each(rules)('$name', (rule) => {
  test('holds in the repository', () => {
    expect(violations(rule, edges(graph))).toEqual([]);
  });

  test('finds each import that breaks it, and none it allows (its own failing case)', () => {
    expect(violations(rule, [...rule.breaking, ...rule.allowed])).toEqual(
      describeEdges(rule.breaking),
    );
  });
});

/** The modules the seam re-exports values from: each is a value both sides must agree on. */
const seamModules = [
  'lambda/proxy/config.ts',
  'lambda/shared/client-keys.ts',
  'lambda/shared/metrics.ts',
  'runtime/api-key-format.ts',
];

test('the seam (lib/deployed-code.ts) reaches only the modules named here', () => {
  expect(graph.get(deployedCodeSeam)).toEqual(seamModules);
});

/** Deployed or started on their own: the Lambda handlers, the local servers, the gateway's server. */
const isEntryPoint = (path: string) =>
  /^lambda\/[a-z-]+\/(handler|server)\.ts$/.test(path) || path === 'tigerbeetle/gateway/server.ts';

test('code only the scripts (or the CDK app) use lives with them: every deployed module serves a deployed entry', () => {
  const usedByDeployedCode = new Set(
    edges(graph)
      .filter(({ from }) => deployed(from))
      .map(({ to }) => to),
  );
  // Run by hand to regenerate the hosts' seccomp profile (tsx), never imported.
  const tools = ['tigerbeetle/host/generate-seccomp-profile.ts'];
  const orphans = [...graph.keys()].filter(
    (path) =>
      deployed(path) &&
      !isEntryPoint(path) &&
      !usedByDeployedCode.has(path) &&
      !tools.includes(path),
  );
  expect(orphans).toEqual([]);
});
