import { Findings, type AuditTemplates } from '../templates';
import type { EvidenceRules } from './rule';
import { containers } from './shared';

/** Asset hashes change with every code change and say nothing to an auditor. */
function withoutAssetHash(image: unknown): unknown {
  const text =
    typeof image === 'object' && image !== null && 'Fn::Sub' in image
      ? String((image as Record<string, unknown>)['Fn::Sub'])
      : image;
  return typeof text === 'string' ? text.replace(/[0-9a-f]{64}/g, '<asset hash>') : text;
}

function pinnedImages({ templates }: AuditTemplates) {
  const findings = new Findings();
  const all = containers(templates);
  findings.expect(all.length > 0, 'no container');
  for (const { task, container } of all) {
    const image = withoutAssetHash(container.Image);
    // Images are built from pinned Dockerfiles and pushed to the account's CDK asset repository in ECR.
    findings.expect(
      typeof image === 'string' && /\.dkr\.ecr\./.test(image) && !image.endsWith(':latest'),
      `${task.logicalId} pulls ${String(image)}, not a pinned image from ECR`,
    );
    findings.cite(task, { container: container.Name, Image: image });
  }
  return findings.result();
}

function hardenedContainers({ templates }: AuditTemplates) {
  const findings = new Findings();
  findings.expectEvidence(containers(templates), 'no ledger container to read');
  for (const { task, container } of containers(templates)) {
    const capabilities = (
      container.LinuxParameters as
        { Capabilities?: { Drop?: string[]; Add?: string[] } } | undefined
    )?.Capabilities;
    const ok =
      typeof container.User === 'string' &&
      !/^0(:|$)|^root/.test(container.User) &&
      container.ReadonlyRootFilesystem === true &&
      container.Privileged !== true &&
      capabilities?.Drop?.includes('ALL') === true &&
      (container.DockerSecurityOptions as string[] | undefined)?.includes('no-new-privileges') ===
        true;
    findings.expect(
      ok,
      `${task.logicalId}/${String(container.Name)} is not non-root, read-only, capability-free and no-new-privileges`,
    );
    findings.cite(task, {
      container: container.Name,
      User: container.User,
      ReadonlyRootFilesystem: container.ReadonlyRootFilesystem,
      Privileged: container.Privileged,
      Capabilities: capabilities,
      DockerSecurityOptions: container.DockerSecurityOptions,
    });
  }
  return findings.result();
}

export const dependencyRules: EvidenceRules = {
  'DEP-01': {
    how: 'Every dependency is pinned to an exact version in package.json (typescript ~6.0.x by policy) and locked in package-lock.json; CI installs with `npm ci`; tigerbeetle-node is pinned to the cluster version (synth checks it).',
    docs: ['docs/dependencies.md'],
  },
  'DEP-02': {
    how: 'CI (.ci/run) runs scripts/audit-dependencies.sh: `npm audit --omit=dev --audit-level=high`, failing on high or critical advisories; a registry without the audit endpoint is reported UNAVAILABLE, never as a pass.',
    docs: ['docs/dependencies.md'],
  },
  'DEP-03': {
    how: 'The replica image is the official ghcr.io/tigerbeetle/tigerbeetle image at the exact tigerbeetle-node version (synth refuses a mismatch); the gateway base image is pinned (node:<exact>-bookworm-slim); both are pushed to the CDK asset repository in ECR, whose scan on push is set up once per account (docs/runbooks/deploy-rollback.md).',
    template: pinnedImages,
  },
  'DEP-04': {
    how: 'Every ledger container runs as uid 1000 with a read-only root filesystem, all capabilities dropped, privileged off, no-new-privileges (lib/constructs/tigerbeetle-replica.ts, tigerbeetle-gateway.ts).',
    template: hardenedContainers,
  },
};
