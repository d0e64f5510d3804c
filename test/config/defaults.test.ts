import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ts from 'typescript';
import { commonRuleSetBodyRules, stageNames, type StageName } from '../../lib/config/schema';
import { shippedStages } from '../../lib/config/stages';
import { proxyConfigDefaults } from '../../lib/deployed-code';

/**
 * Every "Default:" comment in the config schema (lib/config/schema.ts) says what the shipped stages
 * (lib/config/stages.ts) hold, so a platform team reading the schema reads the truth. The form is
 * `Default: VALUE` with per-stage exceptions in parentheses, `(dev VALUE, production VALUE)`; other
 * parentheses are glosses (`1048576 (1 MiB)`). VALUE is a number, true or false, a word, `unset`
 * (absent), `none` (an empty list), `every` (every option of a list) or `set` (present,
 * whatever its value). The proxy's optional
 * limits are checked against the function's own defaults (lambda/proxy/config.ts) when unset.
 */

const schemaFile = join(__dirname, '..', '..', 'lib', 'config', 'schema.ts');

export interface DocumentedDefault {
  readonly path: string;
  /** What each stage should hold, as written. */
  readonly expected: Record<StageName, string>;
}

const stagePattern = stageNames.join('|');

/** The default a comment states, or undefined when it states none. */
export function parseDefault(comment: string): Record<StageName, string> | undefined {
  const text = comment.replace(/^\s*\*\s?/gm, ' ').replace(/\s+/g, ' ');
  const match = /Default: ([^\s,;()]+)(.*)$/.exec(text);
  if (!match) return undefined;
  const base = match[1].replace(/\.$/, '');
  const expected = Object.fromEntries(stageNames.map((stage) => [stage, base])) as Record<
    StageName,
    string
  >;
  const overrides = new RegExp(`\\(((?:${stagePattern}) [^()]*)\\)`).exec(match[2]);
  for (const item of overrides?.[1].split(', ') ?? []) {
    const [stage, value] = item.split(' ');
    expected[stage as StageName] = value;
  }
  return expected;
}

/** Every documented default of the schema, with the property path it documents. */
export function documentedDefaults(source: string): DocumentedDefault[] {
  const file = ts.createSourceFile('schema.ts', source, ts.ScriptTarget.Latest, true);
  const found: DocumentedDefault[] = [];
  const visit = (node: ts.Node, path: readonly string[]): void => {
    let here = path;
    if (ts.isPropertyAssignment(node) && ts.isIdentifier(node.name)) {
      here = [...path, node.name.text];
      for (const range of ts.getLeadingCommentRanges(source, node.getFullStart()) ?? []) {
        const expected = parseDefault(source.slice(range.pos, range.end));
        if (expected) found.push({ path: here.join('.'), expected });
      }
    }
    ts.forEachChild(node, (child) => visit(child, here));
  };
  file.forEachChild((node) => {
    if (
      ts.isVariableStatement(node) &&
      node.declarationList.declarations.some(
        (declaration) =>
          ts.isIdentifier(declaration.name) && declaration.name.text === 'configSchema',
      )
    )
      visit(node, []);
  });
  return found;
}

function valueAt(stage: StageName, path: string): unknown {
  let value: unknown = shippedStages[stage];
  for (const key of path.split('.'))
    value = value === undefined ? undefined : (value as Record<string, unknown>)[key];
  if (value === undefined && path.startsWith('proxy.'))
    return (proxyConfigDefaults as Record<string, unknown>)[path.slice('proxy.'.length)];
  return value;
}

/** Whether a stage's value is what the comment says. */
export function matches(value: unknown, expected: string): boolean {
  if (expected === 'unset') return value === undefined;
  if (expected === 'set') return value !== undefined;
  if (expected === 'none') return Array.isArray(value) && value.length === 0;
  if (expected === 'every')
    return Array.isArray(value) && value.length === commonRuleSetBodyRules.length;
  return typeof value !== 'object' && String(value) === expected;
}

test('every "Default:" comment of the config schema matches the shipped stages', () => {
  const defaults = documentedDefaults(readFileSync(schemaFile, 'utf8'));
  expect(defaults.length).toBeGreaterThan(30);
  const mismatches = defaults.flatMap(({ path, expected }) =>
    stageNames
      .filter((stage) => !matches(valueAt(stage, path), expected[stage]))
      .map(
        (stage) =>
          `${path}: the comment says ${expected[stage]} in ${stage}, the stage holds ${JSON.stringify(valueAt(stage, path))}`,
      ),
  );
  expect(mismatches).toEqual([]);
});

test('the reader finds a wrong default (its own failing case)', () => {
  const source = `const configSchema = z.strictObject({
    edge: z.strictObject({
      /** Days to keep ALB access logs. Default: 90 (dev 14, production 365). */
      accessLogExpirationDays: z.number(),
    }),
  });`;
  const [documented] = documentedDefaults(source);
  expect(documented).toEqual({
    path: 'edge.accessLogExpirationDays',
    expected: { dev: '14', staging: '90', production: '365' },
  });
  expect(matches(shippedStages.staging.edge.accessLogExpirationDays, '91')).toBe(false);
  expect(parseDefault('/** Body limit. Default: 1048576 (1 MiB). */')).toEqual({
    dev: '1048576',
    staging: '1048576',
    production: '1048576',
  });
});
