import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { readEnvironment, variable } from '../runtime/environment';
import { repoRoot } from './local-services';

/**
 * Where `npm run dev` puts things, read one way by dev itself and by the CLIs that talk to it
 * (`npm run keys`, `npm run credits -- --local`): its ports (DEV_PORT_BASE) and its data directory
 * (DEV_DATA_DIR) with the ledger journal, the client key file and the development keys.
 */

export const devPortBaseDefault = 7100;
/** Each service's port above DEV_PORT_BASE; the local /metrics listeners sit 90 above theirs. */
export const devPortOffsets = { proxy: 0, credits: 100, gateway: 200 } as const;
export const devMetricsPortOffset = 90;
const portNumberMax = 65_535;
/** The lowest base: ports below 1024 need privileges. */
const devPortBaseMin = 1024;

/** Every port a dev run listens on, as offsets from its base (the port check covers them all). */
export const devListenerOffsets: readonly number[] = [
  devPortOffsets.proxy,
  devPortOffsets.credits,
  devPortOffsets.gateway,
  devPortOffsets.proxy + devMetricsPortOffset,
  devPortOffsets.credits + devMetricsPortOffset,
];
/**
 * How far apart two copies' DEV_PORT_BASE values must be so that none of their ports collide: one
 * more than the highest offset (README, "Running it locally").
 */
export const devPortBaseSpacing = Math.max(...devListenerOffsets) + 1;

const devEnvironment = {
  // Every derived port must fit below 65536.
  DEV_PORT_BASE: variable.integer(
    devPortBaseMin,
    portNumberMax - Math.max(...devListenerOffsets),
    devPortBaseDefault,
  ),
  DEV_DATA_DIR: variable.optional(),
};

/** A configuration problem of the dev loop, written for the developer. */
export class DevConfigurationError extends Error {
  override readonly name = 'DevConfigurationError';
}

/** DEV_PORT_BASE, checked: an integer such that every port of the run fits. */
export function devPortBase(environment: NodeJS.ProcessEnv = process.env): number {
  const reading = readEnvironment(devEnvironment, environment);
  if (reading.values !== undefined) return reading.values.DEV_PORT_BASE;
  throw new DevConfigurationError(reading.problems.join('; '));
}

export function devPorts(base: number): { proxy: number; credits: number; gateway: number } {
  return {
    proxy: base + devPortOffsets.proxy,
    credits: base + devPortOffsets.credits,
    gateway: base + devPortOffsets.gateway,
  };
}

/** The dev data directory: DEV_DATA_DIR, else .data in the repository (git-ignored). */
export function devDataDirectory(environment: NodeJS.ProcessEnv = process.env): string {
  const configured = environment.DEV_DATA_DIR;
  return configured === undefined || configured.trim() === ''
    ? join(repoRoot, '.data')
    : configured;
}

/** The client key file the dev proxy reads (and `npm run keys` writes by default). */
export function devClientKeysFile(environment: NodeJS.ProcessEnv = process.env): string {
  return join(devDataDirectory(environment), 'client-keys.json');
}

/** The embedded ledger's journal (its snapshot is written beside it). */
export function devLedgerDataFile(environment: NodeJS.ProcessEnv = process.env): string {
  return join(devDataDirectory(environment), 'ledger.tbj');
}

/** The development keys dev generates on its first start. */
export function devSecretsFile(environment: NodeJS.ProcessEnv = process.env): string {
  return join(devDataDirectory(environment), 'dev-secrets.json');
}

export const devSecretsSchema = z.object({
  adminKey: z.string().min(32),
  proxyKey: z.string().min(32),
  gatewayToken: z.string().min(32),
});
export type DevSecrets = z.infer<typeof devSecretsSchema>;

/**
 * The development keys in `file`, or undefined when there is none yet; a damaged file is refused,
 * naming it and how to recover (the keys are only for this machine's services: new ones do).
 */
export function readDevSecrets(file: string): DevSecrets | undefined {
  if (!existsSync(file)) return undefined;
  const refuse = (what: string) =>
    new DevConfigurationError(
      `${file} ${what}: delete it and npm run dev generates new development keys ` +
        '(the ledger and the client keys are kept)',
    );
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw refuse('is not JSON');
  }
  const parsed = devSecretsSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw refuse(
    `is not the development keys (${issue.path.join('.') || 'value'}: ${issue.message})`,
  );
}
