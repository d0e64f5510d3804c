import { isIP } from 'node:net';
import {
  environmentProblems,
  logLevelVariable,
  readEnvironment,
  variable,
} from '../../runtime/environment';
import type { LogLevel } from '../../runtime/logger';
import * as z from '../../runtime/zod-mini';
import { clusterRequestTimeoutMillisecondsDefault, type LedgerOptions } from '../ledger';
import { tokenSettingsFromEnvironment, type TokenSettings } from './token-source';
import { u128Max } from '../limits';

/**
 * The gateway's configuration, read from the environment once at start-up (and only here). Every
 * problem is collected, so one failed start lists all of them.
 */

export const gatewayPortDefault = 7300;
/** Loopback locally; the container image sets 0.0.0.0. */
export const gatewayHostDefault = '127.0.0.1';
export const ledgerRequestTimeoutMillisecondsMax = 60_000;
/** TigerBeetle's replicas_max. */
export const clusterReplicasMax = 6;

const ledgerModes = ['embedded', 'cluster'] as const;

export interface GatewayConfig {
  /** 0 picks a free port (tests). */
  readonly port: number;
  readonly host: string;
  readonly ledger: LedgerOptions;
  readonly ledgerRequestTimeoutMilliseconds: number;
  readonly logLevel: LogLevel;
  readonly tokens: TokenSettings;
}

export type ConfigResult =
  | { readonly config: GatewayConfig; readonly problems: [] }
  | { readonly config?: undefined; readonly problems: string[] };

/** The gateway's own settings; each is read, or refused with a problem naming it. */
const gatewayEnvironment = {
  GATEWAY_PORT: variable.integer(0, 65_535, gatewayPortDefault),
  GATEWAY_HOST: z.pipe(
    variable.withDefault(gatewayHostDefault),
    z.string().check(
      z.refine((host) => isIP(host.trim()) !== 0, {
        error: (issue) =>
          `must be an IP address (e.g. 127.0.0.1 or 0.0.0.0), got "${String(issue.input).trim()}"`,
      }),
    ),
  ),
  LEDGER_REQUEST_TIMEOUT_MS: variable.integer(
    1,
    ledgerRequestTimeoutMillisecondsMax,
    clusterRequestTimeoutMillisecondsDefault,
  ),
  LOG_LEVEL: logLevelVariable(),
};
/** The ledger's variables: which ones apply depends on LEDGER_MODE, so readLedger checks them together. */
const ledgerEnvironment = {
  LEDGER_MODE: variable.optional(),
  LEDGER_DATA_FILE: variable.optional(),
  TB_CLUSTER_ID: variable.optional(),
  TB_ADDRESSES: variable.optional(),
};

export function gatewayConfigFromEnvironment(environment: NodeJS.ProcessEnv): ConfigResult {
  const gateway = readEnvironment(gatewayEnvironment, environment);
  const problems = environmentProblems(gateway);
  const ledgerRequestTimeoutMilliseconds =
    gateway.values?.LEDGER_REQUEST_TIMEOUT_MS ?? clusterRequestTimeoutMillisecondsDefault;
  const ledger = readLedger(
    trimmed(readEnvironment(ledgerEnvironment, environment).values),
    ledgerRequestTimeoutMilliseconds,
    problems,
  );
  const tokens = tokenSettingsFromEnvironment(environment);
  problems.push(...tokens.problems);
  if (
    gateway.values === undefined ||
    problems.length > 0 ||
    ledger === undefined ||
    tokens.settings === undefined
  )
    return { problems };
  return {
    config: {
      port: gateway.values.GATEWAY_PORT,
      host: gateway.values.GATEWAY_HOST.trim(),
      ledger,
      ledgerRequestTimeoutMilliseconds,
      logLevel: gateway.values.LOG_LEVEL,
      tokens: tokens.settings,
    },
    problems: [],
  };
}

type LedgerVariables = Partial<Record<keyof typeof ledgerEnvironment, string>>;

/** Optional text cannot fail to read; its blanks around the value are not part of it. */
function trimmed(values: LedgerVariables | undefined): LedgerVariables {
  return Object.fromEntries(
    Object.entries(values ?? {}).map(([name, text]) => [name, text?.trim()]),
  );
}

function readLedger(
  variables: LedgerVariables,
  requestTimeoutMilliseconds: number,
  problems: string[],
): LedgerOptions | undefined {
  const mode = variables.LEDGER_MODE;
  const dataFile = variables.LEDGER_DATA_FILE;
  const clusterIdText = variables.TB_CLUSTER_ID;
  const addressesText = variables.TB_ADDRESSES;
  if (mode === 'embedded') {
    if (clusterIdText !== undefined)
      problems.push('TB_CLUSTER_ID applies only to LEDGER_MODE=cluster');
    if (addressesText !== undefined)
      problems.push('TB_ADDRESSES applies only to LEDGER_MODE=cluster');
    return { kind: 'embedded', dataFile };
  }
  if (mode === 'cluster') {
    if (dataFile !== undefined)
      problems.push('LEDGER_DATA_FILE applies only to LEDGER_MODE=embedded');
    const clusterId = readClusterId(clusterIdText, problems);
    const replicaAddresses = readAddresses(addressesText, problems);
    if (clusterId === undefined || replicaAddresses === undefined) return undefined;
    return { kind: 'cluster', clusterId, replicaAddresses, requestTimeoutMilliseconds };
  }
  problems.push(
    `LEDGER_MODE must be one of ${ledgerModes.join(', ')}, got ${mode === undefined ? 'nothing' : `"${mode}"`}`,
  );
  return undefined;
}

function readClusterId(text: string | undefined, problems: string[]): bigint | undefined {
  if (text === undefined) {
    problems.push(
      'TB_CLUSTER_ID is required with LEDGER_MODE=cluster (the id given to tigerbeetle format)',
    );
    return undefined;
  }
  if (!/^(0|[1-9][0-9]{0,38})$/.test(text) || BigInt(text) > u128Max) {
    problems.push(`TB_CLUSTER_ID must be a decimal u128, got "${text}"`);
    return undefined;
  }
  return BigInt(text);
}

/** Replica addresses in the cluster's order: IP literals with ports (or a bare port, meaning loopback). */
function readAddresses(text: string | undefined, problems: string[]): string[] | undefined {
  if (text === undefined) {
    problems.push(
      'TB_ADDRESSES is required with LEDGER_MODE=cluster (comma-separated, in the same order as the replicas)',
    );
    return undefined;
  }
  const addresses = text.split(',').map((address) => address.trim());
  const invalid = addresses.filter((address) => !isReplicaAddress(address));
  if (invalid.length > 0)
    problems.push(
      `TB_ADDRESSES must hold IP:port entries, these are not: ${invalid.map((a) => `"${a}"`).join(', ')}`,
    );
  if (addresses.length > clusterReplicasMax)
    problems.push(
      `TB_ADDRESSES lists ${addresses.length} replicas; a cluster has at most ${clusterReplicasMax}`,
    );
  if (new Set(addresses).size !== addresses.length)
    problems.push('TB_ADDRESSES lists a replica twice');
  return invalid.length === 0 ? addresses : undefined;
}

function isReplicaAddress(address: string): boolean {
  const match = /^(?:(\d{1,3}(?:\.\d{1,3}){3})|\[([0-9A-Fa-f:.]+)\]):(\d{1,5})$|^(\d{1,5})$/.exec(
    address,
  );
  if (!match) return false;
  const port = Number(match[3] ?? match[4]);
  if (!(port >= 1 && port <= 65_535)) return false;
  if (match[1] !== undefined) return isIP(match[1]) === 4;
  if (match[2] !== undefined) return isIP(match[2]) === 6;
  return true;
}
