import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * DATA-01: how a ledger host copies the cluster marker onto its replica's volume
 * (record_cluster_formation in tigerbeetle/host/setup.sh, run as written with bash and a fake
 * `aws`): the parameter's value is copied, `formed` is never downgraded, anything else fails setup.
 */

const setupScript = readFileSync(join(__dirname, '../../../tigerbeetle/host/setup.sh'), 'utf8');
const recordFunction = /^record_cluster_formation\(\) \{\n[\s\S]*?^\}\n/m.exec(setupScript)?.[0];

let directory: string;
let dataDirectory: string;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'ledger-host-setup-'));
  dataDirectory = join(directory, 'data');
  mkdirSync(dataDirectory);
  mkdirSync(join(directory, 'bin'));
});

afterEach(() => rmSync(directory, { recursive: true, force: true }));

/** Runs the function with the marker's value as `aws ssm get-parameter` answers it (or a failing call). */
function record(parameterValue: string | undefined) {
  const aws = join(directory, 'bin', 'aws');
  const answer =
    parameterValue === undefined
      ? 'echo "An error occurred (ParameterNotFound)" >&2; exit 254'
      : `echo "${parameterValue}"`;
  writeFileSync(aws, `#!/bin/bash\necho "aws $*" >> "${directory}/calls.log"\n${answer}\n`);
  chmodSync(aws, 0o755);
  const script = [
    'set -Eeuo pipefail',
    `readonly data_dir='${dataDirectory}' region=eu-west-1 formation_parameter=/ai-proxy-staging-ledger/tigerbeetle-1/formation`,
    'log() { echo "ledger-host-setup: $*" >&2; }',
    recordFunction,
    'record_cluster_formation',
  ].join('\n');
  return spawnSync('/bin/bash', ['-c', script], {
    encoding: 'utf8',
    env: { PATH: `${join(directory, 'bin')}:/usr/bin:/bin` },
  });
}

const formation = () =>
  existsSync(join(dataDirectory, '.cluster-formation'))
    ? readFileSync(join(dataDirectory, '.cluster-formation'), 'utf8')
    : undefined;

describe('DATA-01: the host records the cluster formation on the volume', () => {
  test('the function exists in setup.sh and setup.sh calls it after mounting the volume', () => {
    expect(recordFunction).toBeDefined();
    expect(setupScript).toMatch(/^mount_volume\nrecord_cluster_formation\n/m);
  });

  test.each(['forming', 'formed'])('copies %s from the marker', (value) => {
    const result = record(value);
    expect(result.status).toBe(0);
    expect(formation()).toBe(`${value}\n`);
    expect(readFileSync(join(directory, 'calls.log'), 'utf8')).toContain(
      'ssm get-parameter --region eu-west-1 --name /ai-proxy-staging-ledger/tigerbeetle-1/formation',
    );
  });

  test('a volume that has seen formed keeps it when the marker says forming again (a recreated parameter)', () => {
    writeFileSync(join(dataDirectory, '.cluster-formation'), 'formed\n');
    const result = record('forming');
    expect(result.status).toBe(0);
    expect(result.stderr).toContain("keeping 'formed'");
    expect(formation()).toBe('formed\n');
  });

  test.each([
    ['an unexpected value', 'FORMED'],
    ['an unreadable marker', undefined],
  ])('fails the setup on %s, writing nothing', (_name, value) => {
    const result = record(value);
    expect(result.status).not.toBe(0);
    expect(formation()).toBeUndefined();
  });
});
