/**
 * Runs TigerBeetle's own Node client test suite (tigerbeetle-node/dist/test.js), unchanged,
 * against the embedded ledger engine.
 *
 * The suite does `require('.')` for the client package; this script answers that one require
 * with the real package's exports, except that `createClient` returns clients of one shared
 * embedded ledger (the suite creates several clients and expects them to see one cluster).
 *
 * The suite stops at its first failing test, and some of its assertions (`assert.rejects`
 * without `await`) fail later as unhandled rejections; both are reported here, so the final line
 * `N passed, M failed` counts every test of the suite, with tests that never ran as failed.
 */
import * as fs from 'node:fs';
import Module from 'node:module';
import * as path from 'node:path';
import * as tigerbeetle from 'tigerbeetle-node';
import { openEmbeddedLedger } from '../tigerbeetle/engine';

type ResolveFilename = (
  request: string,
  parent: { filename?: string } | undefined,
  ...rest: unknown[]
) => string;
interface ModuleInternals {
  _resolveFilename: ResolveFilename;
}

const suitePath = require.resolve('tigerbeetle-node/dist/test.js');
const virtualPackagePath = path.join(path.dirname(suitePath), '__embedded_tigerbeetle_node__.js');

type Outcome = { status: 'passed' } | { status: 'failed'; reason: string };
const testNames = readTestNames(suitePath);
const outcomes = new Map<string, Outcome>();
let lastReported: string | null = null;
let summaryPrinted = false;

/** Test names in suite order, read from the suite's `test('name', ...)` calls. */
function readTestNames(file: string): string[] {
  const source = fs.readFileSync(file, 'utf8');
  const names: string[] = [];
  for (const match of source.matchAll(/^test\((['"])(.+?)\1,/gm)) names.push(match[2]);
  if (names.length === 0) throw new Error(`no tests found in ${file}`);
  return names;
}

function installEmbeddedPackage(): void {
  const ledger = openEmbeddedLedger();
  const patched: Record<string, unknown> = {
    ...tigerbeetle,
    createClient: () => ledger.createClient(),
  };
  const virtualModule = new Module(virtualPackagePath);
  virtualModule.filename = virtualPackagePath;
  virtualModule.loaded = true;
  virtualModule.exports = patched;
  require.cache[virtualPackagePath] = virtualModule;

  const internals = Module as unknown as ModuleInternals;
  const resolveFilename = internals._resolveFilename;
  internals._resolveFilename = function (request, parent, ...rest) {
    if (request === '.' && parent?.filename === suitePath) return virtualPackagePath;
    return resolveFilename.call(this, request, parent, ...rest);
  };
}

/** The suite reports each test as `<name>: PASSED` or `<name>: FAILED` on stdout. */
function watchSuiteOutput(): void {
  const log = console.log.bind(console);
  console.log = (...parts: unknown[]) => {
    log(...parts);
    const line = parts.map(String).join(' ');
    const match = /^(.*): (PASSED|FAILED)$/.exec(line);
    if (match === null || !testNames.includes(match[1])) return;
    lastReported = match[1];
    if (match[2] === 'PASSED') {
      if (!outcomes.has(match[1])) outcomes.set(match[1], { status: 'passed' });
    } else {
      outcomes.set(match[1], { status: 'failed', reason: 'the test threw (see the stack above)' });
    }
  };
}

function recordUnhandledRejection(reason: unknown): void {
  const message = reason instanceof Error ? `${reason.name}: ${reason.message}` : String(reason);
  const culprit = lastReported ?? testNames[0];
  console.error(
    `unhandled rejection (from a non-awaited assertion, surfaced around "${culprit}"): ${message}`,
  );
  outcomes.set(culprit, { status: 'failed', reason: `unhandled rejection: ${message}` });
}

function printSummary(): number {
  summaryPrinted = true;
  let passed = 0;
  let failed = 0;
  console.error('\n--- TigerBeetle client suite against the embedded engine ---');
  for (const name of testNames) {
    const outcome = outcomes.get(name);
    if (outcome?.status === 'passed') {
      passed += 1;
      process.stdout.write(`PASS  ${name}\n`);
    } else {
      failed += 1;
      process.stdout.write(
        `FAIL  ${name}: ${outcome === undefined ? 'not run (the suite stopped earlier)' : outcome.reason}\n`,
      );
    }
  }
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}

function main(): void {
  installEmbeddedPackage();
  watchSuiteOutput();
  process.on('unhandledRejection', recordUnhandledRejection);

  // The suite ends with process.exit(-1) on a failure; report before leaving.
  const exit = process.exit.bind(process);
  process.exit = ((code?: number) => {
    const summaryCode = summaryPrinted ? 1 : printSummary();
    exit(code === 0 || code === undefined ? summaryCode : 1);
  }) as typeof process.exit;
  process.on('beforeExit', () => {
    if (!summaryPrinted) process.exitCode = printSummary();
  });

  // Loaded as CommonJS, exactly as shipped; the hook above answers its `require('.')`.
  Module.createRequire(__filename)(suitePath);
}

main();
