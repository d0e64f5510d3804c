import { join } from 'node:path';
import { build } from 'esbuild';

/**
 * The TigerBeetle client needs io_uring and a long-lived session; it must never run in Lambda
 * (design: "Why a gateway"). The credits function's bundle may carry TigerBeetle's enums, nothing else.
 */
test('the credits Lambda bundle holds no TigerBeetle client and no embedded engine', async () => {
  const result = await build({
    entryPoints: [join(__dirname, '..', '..', '..', 'lambda', 'credits', 'handler.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const inputs = Object.keys(result.metafile.inputs);
  expect(inputs).toContain('node_modules/tigerbeetle-node/dist/bindings.js');
  expect(inputs.filter((input) => input.startsWith('node_modules/tigerbeetle-node/'))).toEqual([
    'node_modules/tigerbeetle-node/dist/bindings.js',
  ]);
  expect(inputs.filter((input) => input.startsWith('tigerbeetle/engine/'))).toEqual([]);
  expect(inputs.filter((input) => input.endsWith('.node'))).toEqual([]);
});
