import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cfnSignal } from '../../../lib/constructs/tigerbeetle-replica';
import { resourcesOf, synthesizeStage } from '../../support/synth';

/**
 * The ledger hosts' user data, rendered from the synthesized launch templates (intrinsic functions
 * replaced by placeholders) and run for real with bash, with fake `aws`, `dnf`, `curl`, `docker`,
 * `shutdown`, `systemd-run` and `cfn-signal` that record their calls. A failure before the health
 * wait must signal CloudFormation failure at once (not leave it waiting for the 40-minute timeout).
 */

const repository = join(__dirname, '../../..');
let userData: Record<number, string>;

beforeAll(() => {
  const { templates } = synthesizeStage('staging');
  userData = {};
  for (const [id, template] of resourcesOf(templates.ledger)) {
    if (template.Type !== 'AWS::EC2::LaunchTemplate') continue;
    const replica = Number(/Replica(\d+)/.exec(id)?.[1]);
    const joined = (
      template.Properties?.LaunchTemplateData as {
        UserData: { 'Fn::Base64': { 'Fn::Join': [string, unknown[]] } };
      }
    ).UserData['Fn::Base64']['Fn::Join'][1];
    userData[replica] = joined
      .map((part, index) => (typeof part === 'string' ? part : `token${index}`))
      .join('');
  }
});

let directory: string;
let calls: string;

function fake(name: string, body: string[]): void {
  const path = join(directory, 'bin', name);
  writeFileSync(path, ['#!/bin/bash', `echo "${name} $*" >> "${calls}"`, ...body].join('\n'));
  chmodSync(path, 0o755);
}

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'ledger-user-data-'));
  mkdirSync(join(directory, 'bin'));
  mkdirSync(join(directory, 'downloads'));
  calls = join(directory, 'calls.log');
  // `aws s3 cp SRC DST` writes the script (FAKE_SETUP: the real setup.sh, or one that succeeds) or the profile.
  fake('aws', [
    'if [ "$1 $2" = "s3 cp" ]; then',
    '  [ -z "${FAKE_S3_FAILS:-}" ] || exit 1',
    '  case "$4" in *.sh) cp "$FAKE_SETUP" "$4" ;; *) echo "{}" > "$4" ;; esac',
    'fi',
    'exit 0',
  ]);
  fake('dnf', ['exit 0']);
  fake('curl', ['exit 7']); // the instance metadata service is unreachable here
  fake('shutdown', ['exit 0']);
  fake('docker', ['echo 0123456789ab']); // `docker ps --filter health=healthy`: the replica is healthy
  // Runs the unit's command at once; like the real one, it returns 0 once the unit started, whatever the unit does.
  fake('systemd-run', ['for last; do :; done', '"$last" || true']);
  fake('cfn-signal', ['exit 0']);
  const succeeding = join(directory, 'setup-succeeds.sh');
  writeFileSync(succeeding, '#!/bin/bash\necho "setup $*" >> "' + calls + '"\n');
  copyFileSync(join(repository, 'tigerbeetle/host/setup.sh'), join(directory, 'setup.sh'));
});

afterEach(() => rmSync(directory, { recursive: true, force: true }));

/** Runs replica i's user data with the host paths moved into the test directory. */
function runUserData(replica: number, environment: Record<string, string>) {
  // The downloads first: the test directory is itself under /tmp.
  const script = userData[replica]
    .replaceAll('/tmp/', `${directory}/downloads/`)
    .replaceAll(cfnSignal, join(directory, 'bin', 'cfn-signal'))
    .replaceAll('/usr/local/bin/', `${directory}/bin/`);
  const path = join(directory, 'user-data.sh');
  writeFileSync(path, script);
  return spawnSync('/bin/bash', [path], {
    encoding: 'utf8',
    env: {
      PATH: `${join(directory, 'bin')}:/usr/bin:/bin`,
      LEDGER_HOST_SETUP_LOG: join(directory, 'setup.log'),
      ...environment,
    },
  });
}

function recorded(): string[] {
  return existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : [];
}

const signals = () => recorded().filter((call) => call.startsWith('cfn-signal'));

describe('ledger host user data', () => {
  test('DATA-01: a failing step of setup.sh (the metadata service is unreachable) signals CloudFormation failure at once', () => {
    const result = runUserData(1, { FAKE_SETUP: join(directory, 'setup.sh') });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('ledger-host-setup: FAILED');
    expect(signals()).toEqual([
      expect.stringMatching(
        /^cfn-signal -e 1 --stack ai-proxy-staging-ledger --resource TigerBeetleReplica1HostASG\w+ --region eu-west-1$/,
      ),
    ]);
    // The host still powers itself off so that the group replaces it outside a CloudFormation operation.
    expect(recorded()).toContain('shutdown -h +10');
    expect(recorded().some((call) => call.startsWith('systemd-run'))).toBe(false);
  });

  test('DATA-01: a failing download (before setup.sh) signals failure at once and runs nothing after it', () => {
    const result = runUserData(0, {
      FAKE_SETUP: join(directory, 'setup-succeeds.sh'),
      FAKE_S3_FAILS: '1',
    });
    expect(result.status).not.toBe(0);
    expect(signals()).toEqual([
      expect.stringMatching(/^cfn-signal -e 1 .*--resource TigerBeetleReplica0HostASG/),
    ]);
    expect(recorded().some((call) => call.startsWith('setup'))).toBe(false);
  });

  test('once set up, the host signals success only after the replica is healthy; only the last replica marks the cluster formed', () => {
    const first = runUserData(0, { FAKE_SETUP: join(directory, 'setup-succeeds.sh') });
    expect(first.status).toBe(0);
    expect(recorded().find((call) => call.startsWith('setup'))).toMatch(
      / 0 token\d+ token\d+ 10\.41\.\d+\.10 .* \/ai-proxy-staging-ledger\/tigerbeetle-1\/formation$/,
    );
    expect(signals()).toEqual([
      expect.stringMatching(/^cfn-signal -e 0 .*--resource TigerBeetleReplica0HostASG/),
    ]);
    expect(recorded().some((call) => call.includes('put-parameter'))).toBe(false);

    rmSync(calls);
    const last = runUserData(2, { FAKE_SETUP: join(directory, 'setup-succeeds.sh') });
    expect(last.status).toBe(0);
    const order = recorded().filter(
      (call) => call.startsWith('cfn-signal') || call.includes('put-parameter'),
    );
    expect(order).toEqual([
      'aws ssm put-parameter --region eu-west-1 --name /ai-proxy-staging-ledger/tigerbeetle-1/formation --type String --value formed --overwrite',
      expect.stringMatching(/^cfn-signal -e 0 .*--resource TigerBeetleReplica2HostASG/),
    ]);
  });

  test('a replica that never becomes healthy signals failure, and the cluster is not marked formed', () => {
    fake('docker', ['exit 0']); // never healthy
    const script = userData[2].replace(
      /deadline=\$\(\(SECONDS \+ \d+\)\)/,
      'deadline=$((SECONDS - 1))',
    );
    userData[2] = script;
    const result = runUserData(2, { FAKE_SETUP: join(directory, 'setup-succeeds.sh') });
    expect(result.status).toBe(0); // the user data itself finished; the watcher reported the failure
    expect(signals()).toEqual([
      expect.stringMatching(/^cfn-signal -e 1 .*--resource TigerBeetleReplica2HostASG/),
    ]);
    expect(recorded().some((call) => call.includes('put-parameter'))).toBe(false);
  });
});
