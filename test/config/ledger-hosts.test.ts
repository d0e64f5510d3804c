import { stageNames } from '../../lib/config';
import { deployableConfig, deployableProblems } from '../support/synth';
import {
  ledgerHostReservedMemoryMiB,
  ledgerInstanceMemoryMiB,
  replicaMemoryMiBAvailable,
  tigerbeetleMemoryBesidesGridCacheMiB,
  tigerbeetleReplicaMemoryMiBMin,
} from '../../lib/config/ledger-hosts';

/** DATA-01: a replica gets the memory TigerBeetle needs, on a host that has it; synth refuses less. */

const problemsOf = deployableProblems;

describe('DATA-01: ledger host sizing', () => {
  test.each(stageNames)(
    '%s: the replica has at least 6 GiB and its grid cache plus 3 GiB, and fits its host next to the gateway',
    (stage) => {
      const { ledger } = deployableConfig(stage);
      expect(ledger.replicaMemoryMiB).toBeGreaterThanOrEqual(tigerbeetleReplicaMemoryMiBMin);
      expect(ledger.replicaMemoryMiB).toBeGreaterThanOrEqual(
        ledger.cacheGridMiB + tigerbeetleMemoryBesidesGridCacheMiB,
      );
      const instance = ledgerInstanceMemoryMiB[ledger.instanceType];
      expect(
        ledger.replicaMemoryMiB + ledger.gatewayMemoryMiB + ledgerHostReservedMemoryMiB,
      ).toBeLessThanOrEqual(instance);
    },
  );

  test('staging and production run on 16 GiB hosts (r7g.large) with an 8 GiB grid cache', () => {
    for (const stage of ['staging', 'production'] as const) {
      const { ledger } = deployableConfig(stage);
      expect([
        ledger.instanceType,
        ledgerInstanceMemoryMiB[ledger.instanceType],
        ledger.cacheGridMiB,
        ledger.replicaMemoryMiB,
      ]).toEqual(['r7g.large', 16_384, 8192, 12_288]);
    }
  });

  test('refuses the former production sizing (5 GiB on an 8 GiB host), saying what TigerBeetle needs', () => {
    const problems = problemsOf('production', {
      ledger: { instanceType: 'm7g.large', cacheGridMiB: 2048, replicaMemoryMiB: 5120 },
    });
    expect(problems).toEqual([
      'ledger.replicaMemoryMiB 5120 is below 6144: TigerBeetle needs at least 6144 MiB per replica, and 3072 MiB besides ledger.cacheGridMiB (2048) (DATA-01)',
    ]);
  });

  test('refuses a replica container that its instance type cannot hold next to the gateway and the OS', () => {
    const problems = problemsOf('staging', { ledger: { instanceType: 'm7g.large' } });
    expect(problems).toEqual([
      `ledger.instanceType 'm7g.large' (8192 MiB) leaves ${8192 - ledgerHostReservedMemoryMiB - 512} MiB for the replica after 1536 MiB for the OS and ECS agent and the gateway's 512 MiB; ledger.replicaMemoryMiB is 12288: choose a larger instance type (DATA-01)`,
    ]);
  });

  test('refuses a grid cache that leaves TigerBeetle less than 3 GiB besides it', () => {
    const problems = problemsOf('production', { ledger: { cacheGridMiB: 10_240 } });
    expect(problems).toEqual([
      expect.stringMatching(
        /^ledger\.replicaMemoryMiB 12288 is below 13312: .* besides ledger\.cacheGridMiB \(10240\)/,
      ),
    ]);
  });

  test('refuses an instance type of unknown memory, listing the known ones', () => {
    const problems = problemsOf('dev', { ledger: { instanceType: 'x2gd.large' } });
    expect(problems).toEqual([
      expect.stringMatching(
        /^ledger\.instanceType 'x2gd\.large' has no known memory size; choose one of t4g\.large, .*r7g\.large/,
      ),
    ]);
  });

  test('the dev host (t4g.large) leaves exactly the replica floor next to the gateway', () => {
    expect(replicaMemoryMiBAvailable('t4g.large', 512)).toBe(tigerbeetleReplicaMemoryMiBMin);
    expect(replicaMemoryMiBAvailable('t4g.medium', 512)).toBeUndefined();
  });
});

describe("DATA-01: the ledger hosts' AMI is pinned", () => {
  test.each(stageNames)('%s ships a named AL2023 ECS release', (stage) => {
    expect(deployableConfig(stage).ledger.hostImage).toEqual({
      kind: 'release',
      name: 'al2023-ami-ecs-hvm-2023.0.20251108-kernel-6.1-arm64',
    });
  });

  test.each(['staging', 'production'] as const)(
    '%s refuses the "recommended" AMI (every deploy after a release would roll every host)',
    (stage) => {
      expect(
        problemsOf(stage, { ledger: { hostImage: { kind: 'recommended', name: null } } }),
      ).toEqual([
        `ledger.hostImage 'recommended' is refused in ${stage}: every deploy after an AMI release would replace every ledger host; pin a release or an AMI id (docs/runbooks/ledger-upgrade.md) (DATA-01)`,
      ]);
    },
  );

  test('dev may follow the recommended AMI', () => {
    expect(
      problemsOf('dev', { ledger: { hostImage: { kind: 'recommended', name: null } } }),
    ).toEqual([]);
  });

  test('an AMI id of another region is refused; a malformed one or an x86 release is a schema error', () => {
    expect(
      problemsOf('production', {
        ledger: {
          hostImage: {
            kind: 'id',
            imageId: 'ami-0a1b2c3d4e5f60718',
            region: 'us-east-1',
            name: null,
          },
        },
      }),
    ).toEqual([
      'ledger.hostImage ami-0a1b2c3d4e5f60718 belongs to us-east-1, but the stage deploys to eu-west-1; AMI ids are regional (DATA-01)',
    ]);
    expect(
      problemsOf('production', {
        ledger: {
          hostImage: { kind: 'id', imageId: 'ami-CHANGEME', region: 'eu-west-1', name: null },
        },
      }),
    ).toEqual([expect.stringMatching(/^ledger\.hostImage\.imageId: an AMI id/)]);
    expect(
      problemsOf('production', {
        ledger: {
          hostImage: {
            kind: 'release',
            name: 'al2023-ami-ecs-hvm-2023.0.20251108-kernel-6.1-x86_64',
          },
        },
      }),
    ).toEqual([
      expect.stringMatching(/^ledger\.hostImage\.name: an ECS-optimized AL2023 arm64 release/),
    ]);
  });
});
