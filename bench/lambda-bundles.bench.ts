/**
 * The Lambda bundles as ServiceFunction builds them (minified ESM, names kept): their size and the
 * time a fresh Node process takes to import each one (the module-loading part of a cold start). The
 * imports are interleaved in rounds (an empty module, then each bundle, `importRuns` times), so a
 * burst of load on this shared machine hits every row alike; each row is the median over the rounds
 * and its cost above the empty module's (the ESM loader's own floor). Not a test; the size is also
 * capped by test/lambda/proxy/bundle.test.ts. One more row is not deployed: the proxy with the
 * Bedrock SDK client bundled in (`proxy+sdk`), the alternative to lambda/proxy/providers/bedrock.ts's
 * signed fetch, measured so the choice stays checkable. The proxy carries the shipped model catalogue
 * baked in, as deployed (lib/constructs/lambda-bundling.ts `modelCatalogueDefine`); `proxy+100`
 * carries the most models a stage may configure (100), so the catalogue's cost stays visible.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { proxyConfigFromStage, splitProxyConfig } from '../lambda/proxy/config';
import { lambdaEsbuildOptions, modelCatalogueDefine } from '../lib/constructs/lambda-bundling';
import { resolveStageConfig } from '../lib/config';

const importRuns = 15;
const repoRoot = join(__dirname, '..');
const entries = {
  proxy: 'lambda/proxy/handler.ts',
  credits: 'lambda/credits/handler.ts',
  settle: 'lambda/settlement/handler.ts',
} as const;
/** The shipped catalogue (the same in every stage). */
const shippedCatalogue = splitProxyConfig(
  proxyConfigFromStage(resolveStageConfig('dev')),
).catalogue;
/** The schema's most models (lib/config/schema.ts), each as long as the longest shipped one. */
const largestCatalogue = {
  ...shippedCatalogue,
  models: Array.from({ length: 100 }, (_, index) => {
    const longest = [...shippedCatalogue.models].sort(
      (a, b) => JSON.stringify(b).length - JSON.stringify(a).length,
    )[0];
    return { ...longest, id: `${longest.id}-${index}` };
  }),
};
const defines: Record<string, Record<string, string>> = {
  proxy: modelCatalogueDefine(shippedCatalogue),
};

function importMilliseconds(file: string): number {
  const script =
    'const started = performance.now(); import(process.argv[1]).then(() => process.stdout.write(String(performance.now() - started)))';
  return Number(execFileSync(process.execPath, ['-e', script, file], { encoding: 'utf8' }));
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function bundle(
  entry: string,
  outfile: string,
  define: Record<string, string> = {},
): Promise<void> {
  await build({
    ...lambdaEsbuildOptions(define),
    entryPoints: [join(repoRoot, entry)],
    outfile,
    logLevel: 'silent',
  });
}

/** The proxy as it would be with @aws-sdk/client-bedrock-runtime for Converse and ConverseStream. */
async function bundleProxyWithBedrockSdk(outfile: string): Promise<void> {
  await build({
    ...lambdaEsbuildOptions(defines.proxy),
    stdin: {
      contents: `export * from './${entries.proxy}'; export { BedrockRuntimeClient, ConverseCommand, ConverseStreamCommand } from '@aws-sdk/client-bedrock-runtime';`,
      resolveDir: repoRoot,
      loader: 'ts',
    },
    outfile,
    logLevel: 'silent',
  });
}

async function main(): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), 'lambda-bundles-'));
  try {
    const files: Record<string, string> = { '(empty)': join(directory, 'empty.mjs') };
    writeFileSync(files['(empty)'], 'export {};\n');
    for (const [name, entry] of Object.entries(entries)) {
      files[name] = join(directory, `${name}.mjs`);
      await bundle(entry, files[name], defines[name]);
    }
    files['proxy+100'] = join(directory, 'proxy-100.mjs');
    await bundle(entries.proxy, files['proxy+100'], modelCatalogueDefine(largestCatalogue));
    files['proxy+sdk'] = join(directory, 'proxy-sdk.mjs');
    await bundleProxyWithBedrockSdk(files['proxy+sdk']);
    const times: Record<string, number[]> = Object.fromEntries(
      Object.keys(files).map((name) => [name, []]),
    );
    for (let round = 0; round < importRuns; round += 1) {
      for (const [name, file] of Object.entries(files)) times[name].push(importMilliseconds(file));
    }
    const floor = median(times['(empty)']);
    console.log(
      `Lambda bundles (minified ESM, names kept); cold import: median of ${importRuns} fresh processes, interleaved`,
    );
    for (const [name, file] of Object.entries(files)) {
      const p50 = median(times[name]);
      const above =
        name === '(empty)'
          ? "(the loader's floor)"
          : `${(p50 - floor).toFixed(1).padStart(5)} ms above the floor`;
      console.log(
        `${name.padEnd(9)} ${(statSync(file).size / 1024).toFixed(0).padStart(5)} KiB   import p50 ${p50.toFixed(1).padStart(5)} ms   min ${Math.min(
          ...times[name],
        )
          .toFixed(1)
          .padStart(5)} ms   ${above}`,
      );
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`bench: ${(error as Error).message}`);
  process.exit(1);
});
