import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Generates the ledger hosts' Docker seccomp profile (tigerbeetle/host/seccomp-io-uring.json):
 * Docker's own default profile (vendored, docker-default-seccomp/README.md) with every rule kept
 * as is, plus one rule that allows exactly the io_uring system calls TigerBeetle does all its I/O
 * with (Docker 25 removed them from the default). Run: npx tsx tigerbeetle/host/generate-seccomp-profile.ts
 */

export const dockerDefaultProfilePath = join(__dirname, 'docker-default-seccomp', 'default.json');
export const ioUringProfilePath = join(__dirname, 'seccomp-io-uring.json');
export const ioUringSyscalls = ['io_uring_setup', 'io_uring_enter', 'io_uring_register'] as const;

export interface SeccompRule {
  readonly names: readonly string[];
  readonly action: string;
  readonly [field: string]: unknown;
}

export interface SeccompProfile {
  readonly defaultAction: string;
  readonly syscalls: readonly SeccompRule[];
  readonly [field: string]: unknown;
}

export const ioUringRule: SeccompRule = {
  names: [...ioUringSyscalls],
  action: 'SCMP_ACT_ALLOW',
  comment:
    'TigerBeetle (replica and client) does all its I/O through io_uring; Docker 25 removed these from its default profile',
};

/** The default profile with the io_uring rule appended; refuses a default that already allows them. */
export function withIoUring(defaultProfile: SeccompProfile): SeccompProfile {
  const present = defaultProfile.syscalls
    .flatMap((rule) => rule.names)
    .filter((name) => (ioUringSyscalls as readonly string[]).includes(name));
  if (present.length > 0)
    throw new Error(
      `the default profile already names ${present.join(', ')}: review it before adding io_uring`,
    );
  return { ...defaultProfile, syscalls: [...defaultProfile.syscalls, ioUringRule] };
}

/** The file's text, formatted as Docker formats its own (tabs, trailing newline). */
export function renderProfile(profile: SeccompProfile): string {
  return `${JSON.stringify(profile, null, '\t')}\n`;
}

export function generatedProfileText(): string {
  return renderProfile(
    withIoUring(JSON.parse(readFileSync(dockerDefaultProfilePath, 'utf8')) as SeccompProfile),
  );
}

if (require.main === module) {
  writeFileSync(ioUringProfilePath, generatedProfileText());
  console.log(`wrote ${ioUringProfilePath}`);
}
