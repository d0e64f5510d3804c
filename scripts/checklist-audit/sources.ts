import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

/**
 * Where the repository names checklist ids: test titles (the tests that prove an item) and
 * documents (the runbooks and docs that cover it).
 */

export interface TestReference {
  /** Path relative to the repository root, with forward slashes. */
  readonly file: string;
  readonly line: number;
  readonly kind: 'describe' | 'test' | 'it';
  readonly title: string;
}

export interface DocReference {
  readonly file: string;
  /** The first line that names the id (or 1 for an explicit mapping that does not). */
  readonly line: number;
  /** How many lines name the id. */
  readonly mentions: number;
  /** Named in the evidence rules rather than found by the id in the text. */
  readonly mapped: boolean;
}

/** Files under `directory` (recursively) whose name passes `accept`, sorted, skipping node_modules. */
export function listFiles(directory: string, accept: (name: string) => boolean): string[] {
  let entries;
  try {
    entries = readdirSync(directory, { withFileTypes: true });
  } catch {
    return [];
  }
  const files: string[] = [];
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(directory, entry.name);
    if (entry.isDirectory() && entry.name !== 'node_modules')
      files.push(...listFiles(path, accept));
    else if (entry.isFile() && accept(entry.name)) files.push(path);
  }
  return files;
}

function repoPath(repoRoot: string, path: string): string {
  return relative(repoRoot, path).split(sep).join('/');
}

/** A regular expression that finds `id` as a whole id (NET-01 does not match inside NET-010). */
export function idMatcher(id: string): RegExp {
  return new RegExp(`(?<![A-Za-z0-9-])${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?!\\d)`);
}

/**
 * `describe(`, `test(`, `it(` (also `.each(...)(`, `.only`, `.skip`, `.concurrent`) followed by a
 * string title in single, double or back quotes, possibly on the next line.
 */
const titledCall =
  /\b(describe|test|it)((?:\.(?:each|only|skip|concurrent|failing)\b(?:\([^)]*\))?)*)\(\s*(['"`])((?:\\.|(?!\3)[^\\])*)\3/g;

/** Every titled describe/test/it of one source text, with 1-based lines. */
export function titledCalls(
  text: string,
): { kind: TestReference['kind']; title: string; line: number }[] {
  const calls: { kind: TestReference['kind']; title: string; line: number }[] = [];
  for (const match of text.matchAll(titledCall)) {
    const line = text.slice(0, match.index).split('\n').length;
    calls.push({ kind: match[1] as TestReference['kind'], title: match[4], line });
  }
  return calls;
}

/** For each id, the tests (test/**\/*.test.ts) whose title names it. */
export function scanTestNames(
  repoRoot: string,
  ids: readonly string[],
): Map<string, TestReference[]> {
  const found = new Map<string, TestReference[]>(ids.map((id) => [id, []]));
  const matchers = ids.map((id) => [id, idMatcher(id)] as const);
  for (const path of listFiles(join(repoRoot, 'test'), (name) => name.endsWith('.test.ts'))) {
    const file = repoPath(repoRoot, path);
    for (const call of titledCalls(readFileSync(path, 'utf8'))) {
      for (const [id, matcher] of matchers) {
        if (matcher.test(call.title))
          found.get(id)?.push({ file, line: call.line, kind: call.kind, title: call.title });
      }
    }
  }
  return found;
}

/**
 * Documents that are evidence: docs/**\/*.md and README.md. The checklist itself, the audit's own
 * output and its description are not (they name every id, which would prove nothing).
 */
export const documentExclusions = [
  'docs/security-checklist.md',
  'docs/audit-example/',
  'docs/audit.md',
];

export function documentFiles(repoRoot: string): string[] {
  const docs = listFiles(join(repoRoot, 'docs'), (name) => name.endsWith('.md'))
    .map((path) => repoPath(repoRoot, path))
    .filter(
      (file) =>
        !documentExclusions.some((excluded) => file === excluded || file.startsWith(excluded)),
    );
  return ['README.md', ...docs];
}

/** For each id, the documents that name it, plus the ones mapped explicitly (which must exist). */
export function scanDocs(
  repoRoot: string,
  ids: readonly string[],
  mapped: ReadonlyMap<string, readonly string[]> = new Map(),
): Map<string, DocReference[]> {
  const texts = new Map<string, string[]>();
  for (const file of documentFiles(repoRoot)) {
    try {
      texts.set(file, readFileSync(join(repoRoot, file), 'utf8').split('\n'));
    } catch {
      // README.md may be absent in a fixture repository.
    }
  }
  const found = new Map<string, DocReference[]>();
  for (const id of ids) {
    const matcher = idMatcher(id);
    const references: DocReference[] = [];
    for (const [file, lines] of texts) {
      const hits = lines.flatMap((line, index) => (matcher.test(line) ? [index + 1] : []));
      if (hits.length > 0)
        references.push({ file, line: hits[0], mentions: hits.length, mapped: false });
    }
    for (const file of mapped.get(id) ?? []) {
      if (references.some((reference) => reference.file === file)) continue;
      if (texts.has(file)) references.push({ file, line: 1, mentions: 0, mapped: true });
    }
    found.set(id, references);
  }
  return found;
}
