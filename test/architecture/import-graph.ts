import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import * as ts from 'typescript';

/**
 * The import graph of the repository's TypeScript, read with TypeScript's own pre-processor
 * (`ts.preProcessFile`: imports, re-exports and `import()` of every file, without type-checking).
 * Only the project's own files are nodes: packages and Node built-ins are left out.
 */

export const repositoryRoot = resolve(__dirname, '..', '..');
/** The source folders whose files the architecture tests look at (tests and benchmarks are callers only). */
export const sourceFolders = ['bin', 'lib', 'lambda', 'runtime', 'tigerbeetle', 'scripts'] as const;

/** Module path (relative to the repository, forward slashes) -> the project modules it imports. */
export type ImportGraph = ReadonlyMap<string, readonly string[]>;

function typeScriptFiles(folder: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(folder)) {
    if (name === 'node_modules' || name === 'cdk.out') continue;
    const path = join(folder, name);
    if (statSync(path).isDirectory()) files.push(...typeScriptFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) files.push(path);
  }
  return files;
}

const toModulePath = (absolute: string) => relative(repositoryRoot, absolute).split(sep).join('/');

/** The file a relative specifier names, as TypeScript resolves it here (`x.ts`, then `x/index.ts`). */
function resolveRelative(fromFile: string, specifier: string): string | undefined {
  const base = resolve(dirname(fromFile), specifier);
  for (const candidate of [base, `${base}.ts`, join(base, 'index.ts')]) {
    if (candidate.endsWith('.ts') && existsSync(candidate) && statSync(candidate).isFile())
      return candidate;
  }
  return undefined;
}

export function readImportGraph(folders: readonly string[] = sourceFolders): ImportGraph {
  const graph = new Map<string, string[]>();
  for (const folder of folders) {
    for (const file of typeScriptFiles(join(repositoryRoot, folder))) {
      const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
      const imports = importedFiles
        .map(({ fileName }) => fileName)
        .filter((specifier) => specifier.startsWith('.'))
        .map((specifier) => {
          const target = resolveRelative(file, specifier);
          if (target === undefined)
            throw new Error(`${toModulePath(file)} imports '${specifier}', which is not a file`);
          return toModulePath(target);
        });
      graph.set(toModulePath(file), [...new Set(imports)].sort());
    }
  }
  return graph;
}

/**
 * Every import cycle, each as the path that closes it (`a.ts -> b.ts -> a.ts`): one per strongly
 * connected component of the graph (Tarjan's algorithm), so a tangle of many files is one finding.
 */
export function importCycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const lowLink = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let counter = 0;

  const visit = (node: string): void => {
    index.set(node, counter);
    lowLink.set(node, counter);
    counter += 1;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        lowLink.set(node, Math.min(lowLink.get(node)!, lowLink.get(next)!));
      } else if (onStack.has(next)) {
        lowLink.set(node, Math.min(lowLink.get(node)!, index.get(next)!));
      }
    }
    if (lowLink.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    const selfImport = (graph.get(node) ?? []).includes(node);
    if (component.length > 1 || selfImport) components.push(component);
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node);
  return components.map((component) => cyclePath(graph, new Set(component)));
}

/** One cycle through a component: from its first file, the shortest way back to it (breadth first). */
function cyclePath(graph: ImportGraph, component: ReadonlySet<string>): string[] {
  const start = [...component].sort()[0];
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const next of graph.get(node) ?? []) {
      if (!component.has(next)) continue;
      if (next === start) {
        const path = [node];
        while (path[0] !== start) path.unshift(previous.get(path[0])!);
        return [...path, start];
      }
      if (!previous.has(next)) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return [start, start];
}
