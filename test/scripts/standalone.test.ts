import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { listFiles } from '../../scripts/checklist-audit/sources';

/**
 * The repository stands alone: nothing its code, tests, CI or documents read lives outside it. A
 * clean clone with nothing beside it must lint, test, synthesize and audit (the security checklist
 * is the project's own docs/security-checklist.md).
 */

const repoRoot = join(__dirname, '..', '..');
/** Folders that are generated or installed, not authored (the audit example is regenerated from the checklist path). */
const generated = [
  'node_modules',
  'cdk.out',
  'audit',
  'coverage',
  '.data',
  'docs/audit-example',
  '.git',
];
const textFile = /\.(ts|js|mjs|cjs|json|md|sh|yml|yaml)$|^run$/;

/** Spelled in pieces, so that this file does not name what it looks for. */
const teamFolder = ['sha', 'red'].join('');
const outsideReferences = [
  new RegExp(`/work/${teamFolder}\\b`),
  new RegExp(`['"]\\.\\.['"]\\s*,\\s*['"]${teamFolder}['"]`),
];
/** A relative path up to that folder name is fine when it stays inside the repository (lambda/shared, imported by the services). */
const relativeTeamPath = new RegExp(`(?:\\.\\./)+${teamFolder}\\b`, 'g');

function authoredFiles(): string[] {
  return listFiles(repoRoot, (name) => textFile.test(name))
    .map((path) => relative(repoRoot, path).split(sep).join('/'))
    .filter(
      (file) => !generated.some((folder) => file === folder || file.startsWith(`${folder}/`)),
    );
}

/** A reference is fine only when it names an existing folder of the repository, from the file's folder or the root. */
function escapesRepository(file: string, reference: string): boolean {
  const bases = [dirname(join(repoRoot, file)), repoRoot];
  return !bases.some((base) => {
    const target = resolve(base, reference);
    return !relative(repoRoot, target).startsWith('..') && existsSync(target);
  });
}

describe('the repository stands alone (nothing read from outside the clone)', () => {
  const files = authoredFiles();

  test('the scan sees the code, the tests, the CI script and the documents', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        '.ci/run',
        'scripts/audit.ts',
        'test/scripts/audit.test.ts',
        'README.md',
        'docs/security-checklist.md',
      ]),
    );
  });

  test('no file names the team folder beside the repository', () => {
    const offenders: string[] = [];
    for (const file of files) {
      const text = readFileSync(join(repoRoot, file), 'utf8');
      for (const pattern of outsideReferences)
        if (pattern.test(text)) offenders.push(`${file}: ${pattern.source}`);
      for (const match of text.matchAll(relativeTeamPath)) {
        if (escapesRepository(file, match[0])) offenders.push(`${file}: ${match[0]}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  test('the check finds a reference that leaves the repository (and not one that stays inside)', () => {
    expect(escapesRepository('scripts/audit.ts', `../../${teamFolder}`)).toBe(true);
    expect(escapesRepository('README.md', `../${teamFolder}`)).toBe(true);
    expect(escapesRepository('docs/audit.md', `../${teamFolder}`)).toBe(true);
    expect(escapesRepository('lambda/proxy/handler.ts', `../${teamFolder}`)).toBe(false);
    expect(outsideReferences[1].test(`join(repoRoot, '..', '${teamFolder}', 'checklist.md')`)).toBe(
      true,
    );
  });
});
