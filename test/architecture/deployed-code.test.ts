import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import * as ts from 'typescript';
import {
  entryPaths,
  gatewayImage,
  ledgerHostFiles,
  replicaImage,
  repositoryPath,
} from '../../lib/deployed-code';
import { readImportGraph, repositoryRoot } from './import-graph';

/**
 * lib/deployed-code.ts is the one place of the CDK app (lib/ and bin/) that names where the deployed
 * code is: the Lambda entry files, the image build contexts and Dockerfiles, the files the ledger
 * hosts download. No other file of lib/ or bin/ spells a path into lambda/, runtime/ or tigerbeetle/
 * in a string (an import of them is imports.test.ts's rule), and every path the seam names exists.
 */

const seam = 'lib/deployed-code.ts';
const deployedFolders = ['lambda', 'runtime', 'tigerbeetle'];

/** The literal pieces of text in a file: strings, and the fixed parts of template strings. */
function literalTexts(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (
      ts.isStringLiteralLike(node) ||
      ts.isTemplateHead(node) ||
      ts.isTemplateMiddle(node) ||
      ts.isTemplateTail(node)
    )
      found.push(node.text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const intoDeployedFolder = (absolute: string) => {
  const [first] = relative(repositoryRoot, absolute).split(sep);
  return deployedFolders.includes(first);
};

/**
 * The literals of a file that name a path into the deployed code: read from the repository root
 * (`'lambda/proxy/handler.ts'`, a `join(root, 'tigerbeetle', ...)` piece, the `/runtime/x.ts` of a
 * template) or, when relative, from the file's folder (`'../../lambda/x'`). Text with spaces is a
 * message, not a path.
 */
function deployedPathsNamed(file: string, text: string): string[] {
  return literalTexts(file, text).filter((literal) => {
    if (literal === '' || !/^[\w./@-]+$/.test(literal)) return false;
    const fromRoot = resolve(repositoryRoot, literal.replace(/^\/+/, ''));
    const fromFile = resolve(repositoryRoot, dirname(file), literal);
    return (
      intoDeployedFolder(fromRoot) || (literal.startsWith('.') && intoDeployedFolder(fromFile))
    );
  });
}

function typeScriptFiles(folder: string): string[] {
  return readdirSync(join(repositoryRoot, folder)).flatMap((name) => {
    const path = `${folder}/${name}`;
    if (statSync(join(repositoryRoot, path)).isDirectory()) return typeScriptFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

describe('only lib/deployed-code.ts names a path into lambda/, runtime/ or tigerbeetle/', () => {
  test('no other file of lib/ or bin/ does', () => {
    const files = [...typeScriptFiles('lib'), ...typeScriptFiles('bin')].filter(
      (file) => file !== seam,
    );
    expect(files).toEqual(expect.arrayContaining(['bin/app.ts', 'lib/stacks/api-stack.ts']));
    const found = files.flatMap((file) =>
      deployedPathsNamed(file, readFileSync(join(repositoryRoot, file), 'utf8')).map(
        (literal) => `${file}: '${literal}'`,
      ),
    );
    expect(found).toEqual([]);
  });

  test('the scan finds each way of naming such a path (its own failing case), and no look-alike', () => {
    const text = [
      "new ServiceFunction(this, 'Proxy', { entry: 'lambda/proxy/handler.ts' });",
      "ContainerImage.fromAsset(join(__dirname, '..', '..', 'tigerbeetle', 'replica'));",
      'const asset = `${root}/runtime/keys.ts`;',
      "import { x } from '../../lambda/shared/metrics';",
      // Look-alikes: packages, container paths, IAM actions, log groups, messages.
      "import { Function } from 'aws-cdk-lib/aws-lambda';",
      "const dataPath = '/var/lib/tigerbeetle';",
      "const actions = ['lambda:InvokeFunction'];",
      'const group = `/aws/lambda/${name}`;',
      "const client = 'tigerbeetle-node';",
      "throw new Error('the runtime/ folder is not a path here');",
      "import { ServiceFunction } from './service-function';",
    ].join('\n');
    expect(deployedPathsNamed('lib/constructs/example.ts', text)).toEqual([
      'lambda/proxy/handler.ts',
      'tigerbeetle',
      '/runtime/keys.ts',
      '../../lambda/shared/metrics',
    ]);
  });
});

describe('every path the seam names exists', () => {
  const isFile = (path: string) =>
    existsSync(repositoryPath(path)) && statSync(repositoryPath(path)).isFile();
  const isFolder = (path: string) =>
    existsSync(repositoryPath(path)) && statSync(repositoryPath(path)).isDirectory();

  test.each(Object.entries(entryPaths))(
    'the %s function: %s exists and exports its handler',
    (_name, path) => {
      expect(isFile(path)).toBe(true);
      expect(readFileSync(repositoryPath(path), 'utf8')).toMatch(
        /^export (const|async function|function) handler\b/m,
      );
    },
  );

  test('every Lambda handler of lambda/ is an entry the seam names (none deployed by a second spelling)', () => {
    const handlers = [...readImportGraph(['lambda']).keys()].filter((path) =>
      /^lambda\/[a-z-]+\/handler\.ts$/.test(path),
    );
    expect(handlers.sort()).toEqual(Object.values(entryPaths).sort());
  });

  test('the image build contexts and Dockerfiles, and the ledger host files', () => {
    expect(isFolder(gatewayImage.context)).toBe(true);
    expect(isFile(gatewayImage.dockerfile)).toBe(true);
    expect(isFile(gatewayImage.dockerignore)).toBe(true);
    for (const folder of gatewayImage.unusedFolders) expect(isFolder(folder)).toBe(true);
    expect(isFolder(replicaImage.context)).toBe(true);
    expect(isFile(join(replicaImage.context, 'Dockerfile'))).toBe(true);
    for (const path of Object.values(ledgerHostFiles)) expect(isFile(path)).toBe(true);
  });

  test('the existence checks fail for a path that is not there (their own failing case)', () => {
    expect(isFile('lambda/proxy/no-such-handler.ts')).toBe(false);
    expect(isFolder('tigerbeetle/no-such-image')).toBe(false);
    expect(isFolder(entryPaths.proxy)).toBe(false);
  });
});
