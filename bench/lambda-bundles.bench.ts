/**
 * The Lambda bundles as ServiceFunction builds them (minified ESM, names kept): their size and the
 * time a fresh Node process takes to import each one (the module-loading part of a cold start),
 * the median of `importRuns` processes run one after the other. Not a test; the size is also
 * capped by test/lambda/proxy/bundle.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';

const importRuns = 9;
const repoRoot = join(__dirname, '..');
const entries = { proxy: 'lambda/proxy/handler.ts', credits: 'lambda/credits/handler.ts' } as const;

function importMilliseconds(file: string): number {
  const script = 'const started = performance.now(); import(process.argv[1]).then(() => process.stdout.write(String(performance.now() - started)))';
  return Number(execFileSync(process.execPath, ['-e', script, file], { encoding: 'utf8' }));
}

async function main(): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), 'lambda-bundles-'));
  try {
    console.log(`Lambda bundles (minified ESM, names kept); cold import: median of ${importRuns} fresh processes`);
    for (const [name, entry] of Object.entries(entries)) {
      const outfile = join(directory, `${name}.mjs`);
      await build({
        entryPoints: [join(repoRoot, entry)],
        bundle: true,
        minify: true,
        keepNames: true,
        platform: 'node',
        format: 'esm',
        target: 'node24',
        mainFields: ['module', 'main'],
        banner: { js: "import { createRequire as topLevelCreateRequire } from 'module'; const require = topLevelCreateRequire(import.meta.url);" },
        outfile,
        logLevel: 'silent',
      });
      const times = Array.from({ length: importRuns }, () => importMilliseconds(outfile)).sort((a, b) => a - b);
      console.log(`${name.padEnd(8)} ${(statSync(outfile).size / 1024).toFixed(0).padStart(5)} KiB   import p50 ${times[Math.floor(importRuns / 2)].toFixed(1)} ms   min ${times[0].toFixed(1)} ms`);
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`bench: ${(error as Error).message}`);
  process.exit(1);
});
