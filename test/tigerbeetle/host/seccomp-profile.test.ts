import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  dockerDefaultProfilePath,
  generatedProfileText,
  ioUringProfilePath,
  ioUringSyscalls,
  renderProfile,
  type SeccompProfile,
  withIoUring,
} from '../../../tigerbeetle/host/generate-seccomp-profile';

/**
 * DEP-04: the ledger hosts' Docker seccomp profile is Docker's own default (vendored from moby at a
 * tag, with its licence) plus exactly the three io_uring calls; nothing the default keeps is lost.
 */

const vendoredText = readFileSync(dockerDefaultProfilePath, 'utf8');
const vendored = JSON.parse(vendoredText) as SeccompProfile;
const generated = JSON.parse(readFileSync(ioUringProfilePath, 'utf8')) as SeccompProfile;

describe("DEP-04: the ledger hosts' seccomp profile", () => {
  test('the vendored default is the file of moby v25.0.17, with its provenance and licence next to it', () => {
    expect(createHash('sha256').update(vendoredText).digest('hex')).toBe(
      '9c1025c88ccaa517b648da571961838744ea2137f176bfe6a48b21294cae9c76',
    );
    const provenance = readFileSync(join(dockerDefaultProfilePath, '..', 'README.md'), 'utf8');
    expect(provenance).toContain('`v25.0.17` (commit `35c78414205f6210072469caa5554ecccef4d859`)');
    expect(provenance).toContain(
      '9c1025c88ccaa517b648da571961838744ea2137f176bfe6a48b21294cae9c76',
    );
    expect(readFileSync(join(dockerDefaultProfilePath, '..', 'LICENSE'), 'utf8')).toContain(
      'Apache License',
    );
    // Re-rendering the parsed default gives the file back (plus a final newline): the generator changes nothing by formatting.
    expect(renderProfile(vendored)).toBe(`${vendoredText}\n`);
  });

  test('the committed profile is what the generator writes (regenerate: npx tsx tigerbeetle/host/generate-seccomp-profile.ts)', () => {
    expect(readFileSync(ioUringProfilePath, 'utf8')).toBe(generatedProfileText());
  });

  test("every field and every rule of Docker's default is kept, in order, and exactly one rule is added: the three io_uring calls", () => {
    const { syscalls: generatedRules, ...generatedFields } = generated;
    const { syscalls: defaultRules, ...defaultFields } = vendored;
    expect(generatedFields).toEqual(defaultFields);
    expect(generatedRules.slice(0, defaultRules.length)).toEqual(defaultRules);
    const added = generatedRules.slice(defaultRules.length);
    expect(added).toHaveLength(1);
    expect(added[0]).toEqual({
      names: ['io_uring_setup', 'io_uring_enter', 'io_uring_register'],
      action: 'SCMP_ACT_ALLOW',
      comment: expect.any(String),
    });
    // The added rule is unconditional: no args, arches or capabilities.
    expect(Object.keys(added[0]).sort()).toEqual(['action', 'comment', 'names']);
  });

  test('the default denies by default and does not allow io_uring by itself (else the added rule would hide a change)', () => {
    expect(vendored.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(vendored.syscalls.flatMap((rule) => rule.names)).not.toEqual(
      expect.arrayContaining([...ioUringSyscalls]),
    );
    expect(() => withIoUring(generated)).toThrow(
      /already names io_uring_setup, io_uring_enter, io_uring_register/,
    );
  });

  test('what the hand-written profile lost is back: capability-conditional rules and clone3 answering ENOSYS (glibc then falls back to clone)', () => {
    const rule = (name: string) =>
      generated.syscalls.filter((candidate) => candidate.names.includes(name));
    expect(rule('clone3')).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          action: 'SCMP_ACT_ERRNO',
          errnoRet: 38,
          excludes: { caps: ['CAP_SYS_ADMIN'] },
        }),
      ]),
    );
    // Dangerous calls are allowed only with a capability the ledger containers never have (they drop ALL).
    const unconditional = generated.syscalls.filter(
      (candidate) =>
        candidate.action === 'SCMP_ACT_ALLOW' &&
        Object.keys(candidate).every((key) => ['names', 'action', 'comment'].includes(key)),
    );
    const allowedUnconditionally = unconditional.flatMap((candidate) => candidate.names);
    for (const dangerous of [
      'mount',
      'unshare',
      'setns',
      'bpf',
      'init_module',
      'keyctl',
      'ptrace',
      'clone3',
    ])
      expect(allowedUnconditionally).not.toContain(dangerous);
    expect(rule('mount')).toEqual([
      expect.objectContaining({ includes: { caps: ['CAP_SYS_ADMIN'] } }),
    ]);
  });

  test("the hosts point Docker's daemon at the profile, never at unconfined", () => {
    const setup = readFileSync(join(ioUringProfilePath, '..', 'setup.sh'), 'utf8');
    expect(setup).toContain("config['seccomp-profile'] = '/etc/docker/seccomp-io-uring.json'");
    expect(setup).not.toMatch(/unconfined/);
  });
});
