import type { StageConfig } from './schema';

/**
 * The ledger hosts: their AMI, and their memory sizing (DATA-01), from TigerBeetle's guidance:
 * - "A replica requires at least 6 GiB RAM per machine" (docs/operating/hardware.md);
 * - besides its grid cache, a replica uses about 3 GiB: `--cache-grid` is "(Total RAM) - 3GiB
 *   (TigerBeetle) - 1GiB (System)" (`tigerbeetle --help`). It allocates all of it at start
 *   and locks it, so a container limit below that is an OOM kill at start, not a slow replica.
 * The host runs the replica and the gateway containers next to the OS, Docker and the ECS agent.
 */

/** TigerBeetle's floor for one replica. */
export const tigerbeetleReplicaMemoryMiBMin = 6 * 1024;
/** What a replica allocates besides its grid cache (message buses, journal, other caches, the binary). */
export const tigerbeetleMemoryBesidesGridCacheMiB = 3 * 1024;
/**
 * Kept free on the host for the kernel, the OS, Docker and the ECS agent. The agent registers the
 * memory the kernel reports (a few hundred MiB below the nominal size), so this also covers that gap.
 */
export const ledgerHostReservedMemoryMiB = 1536;

/** Memory of each Graviton instance type a ledger host may run on, MiB (EC2 instance type specifications). */
export const ledgerInstanceMemoryMiB: Readonly<Record<string, number>> = {
  't4g.large': 8 * 1024,
  't4g.xlarge': 16 * 1024,
  't4g.2xlarge': 32 * 1024,
  'm7g.large': 8 * 1024,
  'm7g.xlarge': 16 * 1024,
  'm7g.2xlarge': 32 * 1024,
  'm7g.4xlarge': 64 * 1024,
  'm8g.large': 8 * 1024,
  'm8g.xlarge': 16 * 1024,
  'm8g.2xlarge': 32 * 1024,
  'r7g.large': 16 * 1024,
  'r7g.xlarge': 32 * 1024,
  'r7g.2xlarge': 64 * 1024,
  'r8g.large': 16 * 1024,
  'r8g.xlarge': 32 * 1024,
  'r8g.2xlarge': 64 * 1024,
  'c7g.2xlarge': 16 * 1024,
  'c7g.4xlarge': 32 * 1024,
};

/** The public SSM parameter of one ECS-optimized AL2023 arm64 release (its value never changes). */
export function hostImageReleaseParameter(name: string): string {
  return `/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/${name}/image_id`;
}

/** Only dev may follow the recommended AMI; a pinned AMI id must belong to the stage's region. */
export function ledgerHostImageProblems(config: StageConfig): string[] {
  const image = config.ledger.hostImage;
  if (image.kind === 'recommended' && config.stage !== 'dev') {
    return [
      `ledger.hostImage 'recommended' is refused in ${config.stage}: every deploy after an AMI release would replace every ledger host; pin a release or an AMI id (docs/runbooks/ledger-upgrade.md) (DATA-01)`,
    ];
  }
  if (image.kind === 'id' && image.region !== config.region) {
    return [
      `ledger.hostImage ${image.imageId} belongs to ${image.region}, but the stage deploys to ${config.region}; AMI ids are regional (DATA-01)`,
    ];
  }
  return [];
}

/** The largest replica container the instance type leaves room for, next to the gateway; undefined for an unknown type. */
export function replicaMemoryMiBAvailable(
  instanceType: string,
  gatewayMemoryMiB: number,
): number | undefined {
  const instance = ledgerInstanceMemoryMiB[instanceType];
  return instance === undefined
    ? undefined
    : instance - ledgerHostReservedMemoryMiB - gatewayMemoryMiB;
}

/** Every problem with the stage's ledger hosts, worded for the platform team. */
export function ledgerHostProblems(config: StageConfig): string[] {
  return [...ledgerSizingProblems(config), ...ledgerHostImageProblems(config)];
}

/** Every sizing problem of the stage's ledger. */
export function ledgerSizingProblems(config: StageConfig): string[] {
  const { ledger } = config;
  const problems: string[] = [];
  const replicaMemoryMiBMin = Math.max(
    tigerbeetleReplicaMemoryMiBMin,
    ledger.cacheGridMiB + tigerbeetleMemoryBesidesGridCacheMiB,
  );
  if (ledger.replicaMemoryMiB < replicaMemoryMiBMin) {
    problems.push(
      `ledger.replicaMemoryMiB ${ledger.replicaMemoryMiB} is below ${replicaMemoryMiBMin}: TigerBeetle needs at least ` +
        `${tigerbeetleReplicaMemoryMiBMin} MiB per replica, and ${tigerbeetleMemoryBesidesGridCacheMiB} MiB besides ` +
        `ledger.cacheGridMiB (${ledger.cacheGridMiB}) (DATA-01)`,
    );
  }
  const available = replicaMemoryMiBAvailable(ledger.instanceType, ledger.gatewayMemoryMiB);
  if (available === undefined) {
    problems.push(
      `ledger.instanceType '${ledger.instanceType}' has no known memory size; choose one of ${Object.keys(ledgerInstanceMemoryMiB).join(', ')} ` +
        '(or add it to ledgerInstanceMemoryMiB in lib/config/ledger-hosts.ts) (DATA-01)',
    );
  } else if (ledger.replicaMemoryMiB > available) {
    problems.push(
      `ledger.instanceType '${ledger.instanceType}' (${ledgerInstanceMemoryMiB[ledger.instanceType]} MiB) leaves ${available} MiB ` +
        `for the replica after ${ledgerHostReservedMemoryMiB} MiB for the OS and ECS agent and the gateway's ` +
        `${ledger.gatewayMemoryMiB} MiB; ledger.replicaMemoryMiB is ${ledger.replicaMemoryMiB}: choose a larger instance type (DATA-01)`,
    );
  }
  return problems;
}
