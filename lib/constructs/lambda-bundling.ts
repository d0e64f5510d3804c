/**
 * How every Lambda function is bundled, in one place: ServiceFunction hands these to CDK's esbuild,
 * and the bundle-size test and the cold-import benchmark build with the same values, so what they
 * measure is what is deployed.
 */
export const lambdaBundling = {
  minify: true,
  // Readable stack traces without --enable-source-maps, whose cost lands on every error and on
  // cold start: names survive minification, and the source map ships beside the bundle for
  // symbolicating a trace offline.
  keepNames: true,
  format: 'esm',
  target: 'node24',
  mainFields: ['module', 'main'],
  // Some dependencies still call require(); ESM bundles get one.
  banner:
    "import { createRequire as topLevelCreateRequire } from 'module'; const require = topLevelCreateRequire(import.meta.url);",
} as const;

/**
 * The esbuild `define` that bakes the proxy's model catalogue into its code (read by
 * lambda/proxy/handler.ts `bakedModelCatalogue`): the expression becomes a string constant holding
 * the catalogue's JSON, so the catalogue costs the environment nothing (Lambda caps it at 4 KB) and
 * the cold start no network call or file read. Values are JavaScript expressions, as esbuild takes them.
 */
export function modelCatalogueDefine(catalogue: unknown): Record<string, string> {
  return { 'process.env.PROXY_MODEL_CATALOGUE': JSON.stringify(JSON.stringify(catalogue)) };
}

/** The same options in esbuild's own shape (for builds outside CDK: the bundle test and benchmark). */
export function lambdaEsbuildOptions(define: Record<string, string> = {}): {
  bundle: true;
  platform: 'node';
  minify: boolean;
  keepNames: boolean;
  format: 'esm';
  target: string;
  mainFields: string[];
  banner: { js: string };
  define: Record<string, string>;
} {
  return {
    bundle: true,
    platform: 'node',
    minify: lambdaBundling.minify,
    keepNames: lambdaBundling.keepNames,
    format: lambdaBundling.format,
    target: lambdaBundling.target,
    mainFields: [...lambdaBundling.mainFields],
    banner: { js: lambdaBundling.banner },
    define,
  };
}
