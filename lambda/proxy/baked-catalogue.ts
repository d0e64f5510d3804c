/**
 * The model catalogue (JSON), baked into the bundle at synth: esbuild replaces this exact expression
 * with the catalogue's text (lib/constructs/lambda-bundling.ts `modelCatalogueDefine`), so the
 * deployed function reads no environment variable for it and pays no call or parse of a file at cold
 * start. Unbundled (tests, local runs) it is the process's variable of that name: the handler's test
 * goes through the same seam.
 */
export function bakedModelCatalogue(): string | undefined {
  return process.env.PROXY_MODEL_CATALOGUE;
}
