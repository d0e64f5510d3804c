import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The repository root, where package.json and node_modules live. */
const repositoryRoot = join(__dirname, '..', '..');

/**
 * Fails synth unless the replica image's TigerBeetle version equals the tigerbeetle-node version
 * pinned in package.json and installed in node_modules (DEP-03): a client newer than the cluster
 * is refused by the replicas, and an older cluster must be upgraded first (docs/runbooks/ledger-upgrade.md).
 */
export function assertTigerBeetleVersionsAgree(
  imageVersion: string,
  root: string = repositoryRoot,
): void {
  const problems: string[] = [];
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  const pinned = manifest.dependencies?.['tigerbeetle-node'];
  if (pinned === undefined) problems.push('package.json does not depend on tigerbeetle-node');
  else if (pinned !== imageVersion) problems.push(`package.json pins tigerbeetle-node ${pinned}`);
  const installedManifest = join(root, 'node_modules', 'tigerbeetle-node', 'package.json');
  if (existsSync(installedManifest)) {
    const installed = (JSON.parse(readFileSync(installedManifest, 'utf8')) as { version: string })
      .version;
    if (installed !== imageVersion)
      problems.push(`node_modules holds tigerbeetle-node ${installed}`);
  }
  if (problems.length > 0) {
    throw new Error(
      `ledger.tigerbeetleVersion ${imageVersion} disagrees with the client: ${problems.join('; ')}. ` +
        "Pin tigerbeetle-node to exactly the replicas' version (the client must never be newer than the cluster; DEP-03).",
    );
  }
}
