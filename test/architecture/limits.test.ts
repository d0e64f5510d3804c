import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ts from 'typescript';
import { readImportGraph, repositoryRoot } from './import-graph';

/**
 * TigerBeetle's limits (the u128, u64 and u32 maxima, the batch size, the timestamp range, nanoseconds per
 * second) are defined once, in tigerbeetle/limits.ts, and imported everywhere else: a literal that
 * spells one of them anywhere in bin/ lib/ lambda/ runtime/ tigerbeetle/ scripts/ is a second definition.
 */

const limitsModule = 'tigerbeetle/limits.ts';
/** What a second definition looks like: the literal (or the shift) a limit is written with. */
const spelledLimits: readonly [string, (node: ts.Node) => boolean][] = [
  [
    'a 2^n bound (u128, u64, the u63 timestamp)',
    (node) =>
      ts.isBinaryExpression(node) &&
      node.operatorToken.kind === ts.SyntaxKind.LessThanLessThanToken &&
      ts.isBigIntLiteral(node.left) &&
      node.left.text === '1n' &&
      ts.isBigIntLiteral(node.right) &&
      ['128n', '64n', '63n'].includes(node.right.text),
  ],
  ['the batch size', (node) => ts.isNumericLiteral(node) && node.text === '8189'],
  [
    'nanoseconds per second',
    (node) => ts.isBigIntLiteral(node) && node.text.replaceAll('_', '') === '1000000000n',
  ],
  ['u32 max', (node) => ts.isNumericLiteral(node) && node.text === String(0xffff_ffff)],
];

/** Literals that equal a limit and mean something else, each with its reason. */
const notLimits: Record<string, string> = {
  'tigerbeetle/engine/checksum.ts':
    "CRC-32's initial value and final XOR (0xffffffff), not a bound",
};

function secondDefinitions(path: string, text: string): string[] {
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, false);
  const found = new Set<string>();
  const visit = (node: ts.Node): void => {
    for (const [what, matches] of spelledLimits) if (matches(node)) found.add(what);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return [...found].map((what) => `${path} spells ${what}`);
}

test('every ledger limit is defined once, in tigerbeetle/limits.ts', () => {
  const found = [...readImportGraph().keys()]
    .filter((path) => path !== limitsModule && notLimits[path] === undefined)
    .flatMap((path) => secondDefinitions(path, readFileSync(join(repositoryRoot, path), 'utf8')));
  expect(found).toEqual([]);
});

test('the check sees a limit in code, not in a comment (its own failing case)', () => {
  expect(secondDefinitions('x.ts', 'const max = (1n << 128n) - 1n;')).toEqual([
    'x.ts spells a 2^n bound (u128, u64, the u63 timestamp)',
  ]);
  expect(secondDefinitions('x.ts', '// a batch of 8189 events\nconst n = 1;')).toEqual([]);
  expect(
    secondDefinitions(limitsModule, readFileSync(join(repositoryRoot, limitsModule), 'utf8')),
  ).toHaveLength(spelledLimits.length);
});
