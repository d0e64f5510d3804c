import { join } from 'node:path';
import { build } from 'esbuild';

/**
 * The Lambda bundles stay small (issue 11): a byte cap on the minified ESM output, as ServiceFunction
 * builds it, and no zod locale but the default one (the locales were half the bundle). The cold
 * import time is measured in `bench/lambda-bundles.bench.ts`, never timed here.
 */
export const lambdaBundleBytesMax = 560 * 1024;

const bundle = async (entry: string) => {
  const result = await build({
    entryPoints: [join(__dirname, '..', '..', '..', entry)],
    bundle: true,
    minify: true,
    keepNames: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    mainFields: ['module', 'main'],
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  // Inputs with bytes in the output: a module esbuild read but shook out entirely does not count.
  const [output] = Object.values(result.metafile.outputs);
  const inputs = Object.entries(output.inputs).filter(([, input]) => input.bytesInOutput > 0).map(([path]) => path);
  return { bytes: result.outputFiles[0].contents.byteLength, inputs };
};

test.each(['lambda/proxy/handler.ts', 'lambda/credits/handler.ts', 'lambda/settlement/handler.ts'])('%s: under the byte cap, with no zod locale but English', async (entry) => {
  const { bytes, inputs } = await bundle(entry);
  expect(bytes).toBeLessThanOrEqual(lambdaBundleBytesMax);
  expect(inputs.filter((input) => input.includes('zod/v4/locales/') && !input.endsWith('/en.js'))).toEqual([]);
});
