import { importCycles, readImportGraph, type ImportGraph } from './import-graph';

/**
 * The import graph of bin/, lib/, lambda/, tigerbeetle/ and scripts/ has no cycles, and its layers
 * hold: each rule below names what may import what. A finding names the files, so the fix is clear.
 */

let graph: ImportGraph;
beforeAll(() => {
  graph = readImportGraph();
});

interface Edge {
  readonly from: string;
  readonly to: string;
}

const edges = (): Edge[] =>
  [...graph].flatMap(([from, imports]) => imports.map((to) => ({ from, to })));
const under = (folder: string) => (path: string) => path.startsWith(`${folder}/`);
const describeEdges = (found: readonly Edge[]) => found.map(({ from, to }) => `${from} -> ${to}`);

/**
 * Imports that break a rule today and are moved by the layering work (issue 14): each is listed
 * here until its move lands, and the test fails if one of them is gone but still listed, so the list
 * only shrinks.
 */
const pendingMoves: readonly Edge[] = [
  // Money formatting and service-secret parsing, used by the proxy and the settle function: to a shared place.
  // The runtime library the Lambda services and the gateway container share: to one place named for it.
  { from: 'tigerbeetle/gateway/app.ts', to: 'lambda/shared/http.ts' },
  { from: 'tigerbeetle/gateway/app.ts', to: 'lambda/shared/keys.ts' },
  { from: 'tigerbeetle/gateway/app.ts', to: 'lambda/shared/logger.ts' },
  { from: 'tigerbeetle/gateway/client.ts', to: 'lambda/shared/http-client.ts' },
  { from: 'tigerbeetle/gateway/config.ts', to: 'lambda/shared/environment.ts' },
  { from: 'tigerbeetle/gateway/config.ts', to: 'lambda/shared/logger.ts' },
  { from: 'tigerbeetle/gateway/config.ts', to: 'lambda/shared/zod-mini.ts' },
  { from: 'tigerbeetle/gateway/server.ts', to: 'lambda/shared/logger.ts' },
  { from: 'tigerbeetle/gateway/server.ts', to: 'lambda/shared/node-server.ts' },
  { from: 'tigerbeetle/gateway/token-source.ts', to: 'lambda/shared/keys.ts' },
  { from: 'tigerbeetle/gateway/token-source.ts', to: 'lambda/shared/logger.ts' },
  { from: 'tigerbeetle/gateway/token-source.ts', to: 'lambda/shared/sdk-secret-reader.ts' },
  { from: 'tigerbeetle/gateway/token-source.ts', to: 'lambda/shared/secret-keyring.ts' },
];

function violations(rule: (edge: Edge) => boolean): string[] {
  const pending = new Set(describeEdges(pendingMoves));
  return describeEdges(edges().filter(rule)).filter((edge) => !pending.has(edge));
}

test('the graph reads every source folder (a rule over an empty graph proves nothing)', () => {
  for (const folder of ['bin', 'lib', 'lambda', 'tigerbeetle', 'scripts'])
    expect([...graph.keys()].some(under(folder))).toBe(true);
  expect(graph.get('lambda/proxy/handler.ts')).toContain('lambda/proxy/app.ts');
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

test('the services reach the credits service only through its contract (lambda/credits/contract.ts)', () => {
  const inCredits = under('lambda/credits');
  const runtime = (path: string) => under('lambda')(path) || under('tigerbeetle')(path);
  expect(
    violations(
      ({ from, to }) =>
        runtime(from) && !inCredits(from) && inCredits(to) && to !== 'lambda/credits/contract.ts',
    ),
  ).toEqual([]);
});

/** lib/ imports runtime code only through lib/runtime.ts, and that seam reaches only these modules. */
const runtimeSeam = 'lib/runtime.ts';
const seamModules = [
  'lambda/proxy/config.ts',
  'lambda/shared/api-key-format.ts',
  'lambda/shared/client-keys.ts',
  'lambda/shared/metrics.ts',
];

test('lib/ imports runtime code only through its named seam (lib/runtime.ts)', () => {
  const runtime = (path: string) => under('lambda')(path) || under('tigerbeetle')(path);
  expect(
    violations(({ from, to }) => under('lib')(from) && from !== runtimeSeam && runtime(to)),
  ).toEqual([]);
  expect(graph.get(runtimeSeam)).toEqual(seamModules);
});

test('the ledger gateway (tigerbeetle/) imports nothing from lambda/', () => {
  expect(violations(({ from, to }) => under('tigerbeetle')(from) && under('lambda')(to))).toEqual(
    [],
  );
});

test("the embedded engine stands alone (but for TigerBeetle's limits); the shared runtime library imports no service", () => {
  const engine = under('tigerbeetle/engine');
  expect(
    violations(({ from, to }) => engine(from) && !engine(to) && to !== 'tigerbeetle/limits.ts'),
  ).toEqual([]);
  const services = ['lambda/proxy', 'lambda/credits', 'lambda/settlement', 'lambda/rotation'];
  expect(
    violations(
      ({ from, to }) =>
        under('lambda/shared')(from) && services.some((service) => under(service)(to)),
    ),
  ).toEqual([]);
});

test('deployed code imports neither the CDK app, the scripts nor the tests', () => {
  const runtime = (path: string) => under('lambda')(path) || under('tigerbeetle')(path);
  const tooling = ['bin', 'scripts', 'test', 'bench'];
  expect(
    violations(({ from, to }) => runtime(from) && tooling.some((folder) => under(folder)(to))),
  ).toEqual([]);
});

test('every pending move is still an import (the list only shrinks)', () => {
  const present = new Set(describeEdges(edges()));
  expect(describeEdges(pendingMoves).filter((edge) => !present.has(edge))).toEqual([]);
});
