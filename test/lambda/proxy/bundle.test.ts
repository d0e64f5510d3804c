import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { proxyConfigFromStage, splitProxyConfig } from '../../../lambda/proxy/config';
import {
  lambdaEsbuildOptions,
  modelCatalogueDefine,
} from '../../../lib/constructs/lambda-bundling';
import { resolveStageConfig } from '../../../lib/config';

/**
 * The Lambda bundles stay small (issue 11): a byte cap on the minified ESM output, as ServiceFunction
 * builds it (the target; a bundle's size is deterministic for a lockfile, so the cap cannot
 * flake), no AWS SDK on the request path (Secrets Manager and SQS go through
 * runtime/aws-json-client.ts), the proxy's schemas on zod/mini only, and no zod locale but
 * English. The cold import time is measured in `bench/lambda-bundles.bench.ts`, never timed here.
 */
export const lambdaBundleBytesMax = 300_000;

/** The shipped model catalogue (the same in every stage), baked into the proxy as deployed. */
const shippedCatalogue = splitProxyConfig(
  proxyConfigFromStage(resolveStageConfig('dev')),
).catalogue;
const defines: Record<string, Record<string, string>> = {
  'lambda/proxy/handler.ts': modelCatalogueDefine(shippedCatalogue),
};

const bundle = async (entry: string) => {
  const result = await build({
    ...lambdaEsbuildOptions(defines[entry]),
    entryPoints: [join(__dirname, '..', '..', '..', entry)],
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  // Inputs with bytes in the output: a module esbuild read but shook out entirely does not count.
  const [output] = Object.values(result.metafile.outputs);
  const inputs = Object.entries(output.inputs)
    .filter(([, input]) => input.bytesInOutput > 0)
    .map(([path]) => path);
  return {
    bytes: result.outputFiles[0].contents.byteLength,
    inputs,
    text: result.outputFiles[0].text,
  };
};

test('the proxy bundle carries the model catalogue as a constant: nothing reads it from the environment', async () => {
  const { text } = await bundle('lambda/proxy/handler.ts');
  expect(text).not.toContain('env.PROXY_MODEL_CATALOGUE');
  // esbuild writes the constant as a single-quoted literal: the JSON text appears as it is.
  expect(text).toContain(JSON.stringify(shippedCatalogue));
});

test.each(['lambda/proxy/handler.ts', 'lambda/credits/handler.ts', 'lambda/settlement/handler.ts'])(
  '%s: under the byte cap, no AWS SDK, no zod locale but English, no code of the CDK app',
  async (entry) => {
    const { bytes, inputs } = await bundle(entry);
    expect(bytes).toBeLessThanOrEqual(lambdaBundleBytesMax);
    // The services import lib/config only for its types (the model config's shape), which vanish.
    expect(inputs.filter((input) => /^(lib|bin|scripts)\//.test(input))).toEqual([]);
    expect(
      inputs.filter((input) => input.includes('/@aws-sdk/') || input.includes('/@smithy/')),
    ).toEqual([]);
    expect(inputs).toContain('node_modules/aws4fetch/dist/aws4fetch.esm.mjs');
    expect(
      inputs.filter(
        (input) =>
          input.includes('zod/v4/locales/') &&
          !input.endsWith('/en.js') &&
          !input.endsWith('/index.js'),
      ),
    ).toEqual([]);
  },
);

test.each(['lambda/proxy/handler.ts', 'lambda/settlement/handler.ts'])(
  "%s: zod/mini only (the classic API is most of zod's bytes and import time)",
  async (entry) => {
    const { inputs } = await bundle(entry);
    expect(inputs.filter((input) => input.startsWith('node_modules/zod/v4/mini/'))).not.toEqual([]);
    expect(inputs.filter((input) => input.startsWith('node_modules/zod/v4/classic/'))).toEqual([]);
  },
);

test("bundled alone, the proxy's request schema still answers in zod's English messages (zod/mini ships none; runtime/zod-mini.ts installs them)", async () => {
  // Run in a fresh Node process: in this one, modules on the classic API have installed the messages already.
  const directory = mkdtempSync(join(tmpdir(), 'zod-mini-'));
  try {
    const result = await build({
      stdin: {
        contents:
          "import { chatRequestSchema } from './lambda/proxy/openai'; const parsed = chatRequestSchema.safeParse({ model: 'm', messages: [{ role: 'user', content: 'x' }], temperature: 5 }); console.log(parsed.error.issues[0].message);",
        resolveDir: join(__dirname, '..', '..', '..'),
        loader: 'ts',
      },
      bundle: true,
      platform: 'node',
      format: 'esm',
      write: false,
      logLevel: 'silent',
    });
    const file = join(directory, 'schema.mjs');
    writeFileSync(file, result.outputFiles[0].contents);
    expect(execFileSync(process.execPath, [file], { encoding: 'utf8' }).trim()).toBe(
      'Too big: expected number to be <=2',
    );
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});
