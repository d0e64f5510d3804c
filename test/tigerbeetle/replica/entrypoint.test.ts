import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The replica entrypoint (tigerbeetle/replica/entrypoint.sh) run for real with /bin/sh and a fake
 * `tigerbeetle` binary that records its arguments: the data file is formatted once, never again,
 * and never onto a directory that is not the replica's mounted volume.
 */

const entrypoint = join(__dirname, '../../../tigerbeetle/replica/entrypoint.sh');
const addresses = '10.42.64.10:3000,10.42.65.10:3000,10.42.66.10:3000';

let directory: string;
let dataDirectory: string;
let callLog: string;
let fakeBinary: string;

/** A fake tigerbeetle: logs its arguments; `format` creates the file it is given unless FAKE_FORMAT_FAILS is set. */
function writeFakeBinary(): void {
  fakeBinary = join(directory, 'tigerbeetle');
  writeFileSync(
    fakeBinary,
    [
      '#!/bin/sh',
      `echo "$*" >> "${callLog}"`,
      'if [ "$1" = format ]; then',
      '  for last; do :; done',
      '  [ -z "${FAKE_FORMAT_FAILS:-}" ] || { echo partial > "$last"; exit 3; }',
      '  echo formatted > "$last"',
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
      TB_FORMAT_MISSING: 'allow', // bootstrapping; the refusal outside bootstrap has its own test
      ...extraEnvironment,
    },
  });
}

function calls(): string[] {
  return existsSync(callLog) ? readFileSync(callLog, 'utf8').trim().split('\n') : [];
}

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'tigerbeetle-entrypoint-'));
  dataDirectory = join(directory, 'data');
  mkdirSync(dataDirectory);
  writeFileSync(join(dataDirectory, '.ledger-volume'), 'replica 1\n');
  callLog = join(directory, 'calls.log');
  writeFakeBinary();
});

afterEach(() => rmSync(directory, { recursive: true, force: true }));

describe('replica entrypoint', () => {
  const dataFile = () => join(dataDirectory, '2_1.tigerbeetle');

  test('formats the data file on the first start, then starts with the ordered addresses and the cache size', () => {
    const result = run();
    expect(result.status).toBe(0);
    expect(calls()).toEqual([
      `format --cluster=2 --replica=1 --replica-count=3 ${dataFile()}.formatting`,
      `start --addresses=${addresses} --cache-grid=2048MiB ${dataFile()}`,
    ]);
    expect(readFileSync(dataFile(), 'utf8')).toBe('formatted\n');
  });

  test('DATA-01: past its bootstrap, a replica whose data file is missing refuses to format and does not start', () => {
    for (const setting of ['refuse', '']) {
      const result = run({ TB_FORMAT_MISSING: setting });
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain('refusing to format a replica of a running cluster; recover it (docs/runbooks/ledger-restore.md)');
      expect(calls()).toEqual([]);
      expect(existsSync(dataFile())).toBe(false);
    }
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

  test('a failed format leaves no data file, does not start, and the next start formats again', () => {
    const failed = run({ FAKE_FORMAT_FAILS: '1' });
    expect(failed.status).not.toBe(0);
    expect(failed.stderr).toContain('format failed');
    expect(existsSync(dataFile())).toBe(false);
    expect(calls().some((call) => call.startsWith('start'))).toBe(false);
    expect(run().status).toBe(0);
    expect(readFileSync(dataFile(), 'utf8')).toBe('formatted\n');
    expect(readdirSync(dataDirectory).sort()).toEqual(['.ledger-volume', '2_1.tigerbeetle']);
  });

  test('refuses to format when the replica volume is not mounted (no marker)', () => {
    rmSync(join(dataDirectory, '.ledger-volume'));
    const result = run();
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('the replica\'s volume is not mounted');
    expect(calls()).toEqual([]);
  });

  test.each([
    [{ TB_CLUSTER_ID: '' }, 'TB_CLUSTER_ID is not set'],
    [{ TB_REPLICA: '3' }, 'TB_REPLICA 3 is not below TB_REPLICA_COUNT 3'],
    [{ TB_REPLICA: 'x' }, "TB_REPLICA must be a number, got 'x'"],
    [{ TB_ADDRESSES: '10.0.0.1:3000,10.0.0.2:3000' }, 'TB_ADDRESSES lists 2 addresses for 3 replicas'],
  ])('refuses a bad configuration %j without running tigerbeetle', (environment, message) => {
    const result = run(environment);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(message);
    expect(calls()).toEqual([]);
  });
});
