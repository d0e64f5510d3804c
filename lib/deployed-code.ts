import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The seam between the CDK app and the code it deploys: the only module of lib/ (and bin/) that
 * imports from lambda/, tigerbeetle/ or runtime/, or names a file there
 * (test/architecture/imports.test.ts and deployed-code.test.ts hold it to that). What crosses it:
 * - where the deployed code is: the Lambda entry files, the image build contexts and Dockerfiles,
 *   the files the ledger hosts download;
 * - values both sides must agree on: the metric catalogue the alarms read, the proxy's
 *   configuration as its function receives it (and the limits derived from it), the client key
 *   set's format version and the API key's pattern for the web ACL.
 * Every path is relative to the repository root (`repositoryPath` makes it absolute).
 */
export {
  metricDefinitions,
  metricsNamespace,
  type MetricName,
  type MetricsService,
} from '../lambda/shared/metrics';
export {
  proxyConfigDefaults,
  proxyConfigFromStage,
  proxyRequestMillisecondsMax,
  splitProxyConfig,
} from '../lambda/proxy/config';
export { clientKeySetVersion } from '../lambda/shared/client-keys';
export { apiKeyPatternSource } from '../runtime/api-key-format';

/** The repository root: the build context of the gateway image and esbuild's project root. */
export const repositoryRoot = join(__dirname, '..');

export const repositoryPath = (path: string): string => join(repositoryRoot, path);

/** The handler module of each Lambda function (it exports `handler`), bundled by ServiceFunction. */
export const entryPaths = {
  proxy: 'lambda/proxy/handler.ts',
  credits: 'lambda/credits/handler.ts',
  settlement: 'lambda/settlement/handler.ts',
  /** Secrets Manager rotation of the service keys and of the ledger gateway token. */
  rotation: 'lambda/rotation/handler.ts',
} as const;

/**
 * The ledger gateway image: built from the repository root with its own Dockerfile, whose ignore
 * file BuildKit reads instead of a root .dockerignore (the build copies runtime/ and tigerbeetle/).
 */
export const gatewayImage = {
  context: '.',
  dockerfile: 'tigerbeetle/gateway/Dockerfile',
  dockerignore: 'tigerbeetle/gateway/Dockerfile.dockerignore',
  /** Admitted by the ignore file (inside tigerbeetle/) but not used by the build: kept out of the asset so a change there does not rebuild the gateway. */
  unusedFolders: ['tigerbeetle/replica', 'tigerbeetle/host'],
} as const;

/** The replica image: the official TigerBeetle image plus our entrypoint (its own folder is the context). */
export const replicaImage = { context: 'tigerbeetle/replica' } as const;

/** Files each ledger host downloads at boot (S3 assets). */
export const ledgerHostFiles = {
  setupScript: 'tigerbeetle/host/setup.sh',
  seccompProfile: 'tigerbeetle/host/seccomp-io-uring.json',
} as const;

/** The patterns of the gateway's ignore file, so that asset staging copies what the build uses, nothing else. */
export function gatewayDockerIgnore(): string[] {
  return readFileSync(repositoryPath(gatewayImage.dockerignore), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/** What the gateway's image asset leaves out of its staged context (and so out of its hash). */
export function gatewayImageExcludes(): string[] {
  return [...gatewayDockerIgnore(), `!${gatewayImage.dockerfile}`, ...gatewayImage.unusedFolders];
}
