import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The replica entrypoint (tigerbeetle/replica/entrypoint.sh) run for real with /bin/sh and a fake
 * `tigerbeetle` binary that records its arguments. Its decision table (DATA-01):
 *
 *   data file | cluster formation (host) | replica formatted before | action
 *   exists    | any                      | any                      | start
 *   missing   | unknown / absent         | any                      | refuse (the host recorded nothing)
 *   missing   | forming                  | no                       | format, then start
 *   missing   | forming                  | yes                      | recover (3+ replicas) or refuse
 *   missing   | formed                   | any                      | recover (3+ replicas) or refuse
 */

const entrypoint = join(__dirname, '../../../tigerbeetle/replica/entrypoint.sh');
const addresses = '10.42.64.10:3000,10.42.65.10:3000,10.42.66.10:3000';

let directory: string;
let dataDirectory: string;
let callLog: string;
let fakeBinary: string;

/**
 * A fake tigerbeetle: logs its arguments; `format` and `recover` create the file they are given
 * (unless FAKE_FORMAT_FAILS / FAKE_RECOVER_FAILS is set, when they write part of it and fail).
 */
function writeFakeBinary(): void {
  fakeBinary = join(directory, 'tigerbeetle');
  writeFileSync(
    fakeBinary,
    [
      '#!/bin/sh',
      `echo "$*" >> "${callLog}"`,
      'for last; do :; done',
      'if [ "$1" = format ]; then',
      '  [ -z "${FAKE_FORMAT_FAILS:-}" ] || { echo partial > "$last"; exit 3; }',
      '  echo formatted > "$last"',
      'fi',
      'if [ "$1" = recover ]; then',
      '  [ -z "${FAKE_RECOVER_FAILS:-}" ] || { echo partial > "$last"; echo "error: cluster unavailable" >&2; exit 4; }',
      '  echo recovered > "$last"',
      'fi',
      'exit 0',
    ].join('\n'),
  );
  chmodSync(fakeBinary, 0o755);
}

function run(extraEnvironment: Record<string, string> = {}, args: string[] = []) {
  return spawnSync('/bin/sh', [entrypoint, ...args], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      TIGERBEETLE: fakeBinary,
      TB_DATA_DIR: dataDirectory,
      TB_CLUSTER_ID: '2',
      TB_REPLICA: '1',
      TB_REPLICA_COUNT: '3',
      TB_ADDRESSES: addresses,
      TB_CACHE_GRID: '2048MiB',
      ...extraEnvironment,
    },
  });
}

function calls(): string[] {
  return existsSync(callLog) ? readFileSync(callLog, 'utf8').trim().split('\n') : [];
}

/** What the host's setup.sh writes on the volume from the cluster marker (SSM) at boot. */
function hostRecords(formation: string): void {
  writeFileSync(join(dataDirectory, '.cluster-formation'), `${formation}\n`);
}

const dataFile = () => join(dataDirectory, '2_1.tigerbeetle');
const formattedFlag = () => join(dataDirectory, '.replica-formatted');
const startCall = () => `start --addresses=${addresses} --cache-grid=2048MiB ${dataFile()}`;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'tigerbeetle-entrypoint-'));
  dataDirectory = join(directory, 'data');
  mkdirSync(dataDirectory);
  writeFileSync(join(dataDirectory, '.ledger-volume'), 'replica 1\n');
  callLog = join(directory, 'calls.log');
  writeFakeBinary();
});

afterEach(() => rmSync(directory, { recursive: true, force: true }));

describe('replica entrypoint: a cluster that has never been formed', () => {
  beforeEach(() => hostRecords('forming'));

  test('DATA-01: formats the data file on the first start, records it, then starts with the ordered addresses and the cache size', () => {
    const result = run();
    expect(result.status).toBe(0);
    expect(calls()).toEqual([
      `format --cluster=2 --replica=1 --replica-count=3 ${dataFile()}.formatting`,
      startCall(),
    ]);
    expect(readFileSync(dataFile(), 'utf8')).toBe('formatted\n');
    expect(existsSync(formattedFlag())).toBe(true);
  });

  test('never formats an existing data file again', () => {
    expect(run().status).toBe(0);
    writeFileSync(dataFile(), 'ledger state');
    const second = run();
    expect(second.status).toBe(0);
    expect(second.stdout).toContain('exists; not formatting');
    expect(calls().filter((call) => call.startsWith('format'))).toHaveLength(1);
    expect(calls().filter((call) => call.startsWith('start'))).toHaveLength(2);
    expect(readFileSync(dataFile(), 'utf8')).toBe('ledger state');
  });

  test('DATA-01: a replica that was formatted once and lost its data file is recovered, not formatted again, even while forming', () => {
    expect(run().status).toBe(0);
    rmSync(dataFile());
    const result = run();
    expect(result.status).toBe(0);
    expect(calls().filter((call) => call.startsWith('format'))).toHaveLength(1);
    expect(calls()).toContain(
      `recover --cluster=2 --addresses=${addresses} --replica=1 --replica-count=3 ${dataFile()}.recovering`,
    );
  });

  test('a failed format leaves no data file, does not start, and the next start formats again', () => {
    const failed = run({ FAKE_FORMAT_FAILS: '1' });
    expect(failed.status).not.toBe(0);
    expect(failed.stderr).toContain('format failed');
    expect(existsSync(dataFile())).toBe(false);
    expect(existsSync(formattedFlag())).toBe(false);
    expect(calls().some((call) => call.startsWith('start'))).toBe(false);
    expect(run().status).toBe(0);
    expect(readFileSync(dataFile(), 'utf8')).toBe('formatted\n');
    expect(readdirSync(dataDirectory).sort()).toEqual([
      '.cluster-formation',
      '.ledger-volume',
      '.replica-formatted',
      '2_1.tigerbeetle',
    ]);
  });

  test('refuses to format when the replica volume is not mounted (no marker)', () => {
    rmSync(join(dataDirectory, '.ledger-volume'));
    const result = run();
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("the replica's volume is not mounted");
    expect(calls()).toEqual([]);
  });
});

describe('replica entrypoint: a formed cluster', () => {
  beforeEach(() => hostRecords('formed'));

  test('DATA-01: starts an existing data file without formatting or recovering', () => {
    writeFileSync(dataFile(), 'ledger state');
    expect(run().status).toBe(0);
    expect(calls()).toEqual([startCall()]);
  });

  test('DATA-01: a missing data file is rebuilt with `tigerbeetle recover` (never format), then the replica starts and state-syncs', () => {
    const result = run();
    expect(result.status).toBe(0);
    expect(calls()).toEqual([
      `recover --cluster=2 --addresses=${addresses} --replica=1 --replica-count=3 ${dataFile()}.recovering`,
      startCall(),
    ]);
    expect(readFileSync(dataFile(), 'utf8')).toBe('recovered\n');
    expect(result.stdout).toContain('recovering');
  });

  test('a failed recover (the cluster cannot view-change) leaves no data file and does not start; the next start recovers again', () => {
    const failed = run({ FAKE_RECOVER_FAILS: '1' });
    expect(failed.status).not.toBe(0);
    expect(failed.stderr).toContain('recover failed');
    expect(failed.stderr).toContain('docs/runbooks/ledger-restore.md');
    expect(existsSync(dataFile())).toBe(false);
    expect(calls().some((call) => call.startsWith('start') || call.startsWith('format'))).toBe(
      false,
    );
    expect(run().status).toBe(0);
    expect(readFileSync(dataFile(), 'utf8')).toBe('recovered\n');
  });

  test.each(['1', '2'])(
    'DATA-01: a %s-replica cluster cannot recover (TigerBeetle refuses it): refuses with the runbook, formats nothing',
    (count) => {
      const only = addresses.split(',').slice(0, Number(count)).join(',');
      const result = run({ TB_REPLICA: '0', TB_REPLICA_COUNT: count, TB_ADDRESSES: only });
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain(`a ${count}-replica cluster cannot recover a replica`);
      expect(result.stderr).toContain('docs/runbooks/ledger-restore.md');
      expect(calls()).toEqual([]);
    },
  );
});

describe('replica entrypoint: refusals', () => {
  test.each([
    ['absent', undefined],
    ['empty', ''],
    ['unexpected', 'formd'],
  ])(
    'DATA-01: with the cluster formation %s, a missing data file is never formatted',
    (_name, formation) => {
      if (formation !== undefined) hostRecords(formation);
      const result = run();
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain('refusing to format or recover');
      expect(result.stderr).toContain('docs/runbooks/ledger-restore.md');
      expect(calls()).toEqual([]);
      expect(existsSync(dataFile())).toBe(false);
    },
  );

  test('the health check passes only when something listens on the replica port', () => {
    // Port 1 is never listened on by an unprivileged test process.
    const result = run({ TB_ADDRESSES: '127.0.0.1:1,127.0.0.1:1,127.0.0.1:1' }, ['health']);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('nothing listens on port 1');
  });

  test.each([
    [{ TB_CLUSTER_ID: '' }, 'TB_CLUSTER_ID is not set'],
    [{ TB_REPLICA: '3' }, 'TB_REPLICA 3 is not below TB_REPLICA_COUNT 3'],
    [{ TB_REPLICA: 'x' }, "TB_REPLICA must be a number, got 'x'"],
    [
      { TB_ADDRESSES: '10.0.0.1:3000,10.0.0.2:3000' },
      'TB_ADDRESSES lists 2 addresses for 3 replicas',
    ],
  ])('refuses a bad configuration %j without running tigerbeetle', (environment, message) => {
    hostRecords('forming');
    const result = run(environment);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(message);
    expect(calls()).toEqual([]);
  });
});
