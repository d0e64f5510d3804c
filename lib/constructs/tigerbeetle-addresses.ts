/**
 * The fixed addresses of the TigerBeetle replicas, computed once at synth. Every replica's
 * `--addresses` and every client's address list come from `ReplicaPlacement.addressList`, so the
 * order can never differ between them (TigerBeetle requires the same order everywhere).
 *
 * Pure functions on IPv4 text: no tokens, no lookups, so they are unit-tested directly.
 */

/** The port every replica listens on. */
export const replicaPort = 3000;
/** TigerBeetle's replicas_max. */
export const replicaCountMax = 6;
/** AWS reserves the first four addresses and the last one of every subnet. */
const subnetReservedLowCount = 4;
const subnetReservedHighCount = 1;

export interface ReplicaPlacement {
  /** Replica index, 0-based: the `--replica` given to `tigerbeetle format`. */
  readonly replica: number;
  /** Index of the availability zone (and of its ledger subnet) in the configured order. */
  readonly zoneIndex: number;
  readonly subnetCidr: string;
  /** The replica's fixed private IPv4 address. */
  readonly address: string;
  /** `address:port`, as it appears in the address list. */
  readonly endpoint: string;
}

export interface ReplicaAddressPlan {
  readonly replicas: readonly ReplicaPlacement[];
  /** Comma-separated `IP:port` in replica order: the value of `--addresses` and of `TB_ADDRESSES`. */
  readonly addressList: string;
}

export interface ReplicaAddressOptions {
  /** The ledger subnet of each availability zone, in the configured zone order. */
  readonly subnetCidrs: readonly string[];
  readonly replicaCount: number;
  /** Host offset of the first replica address in each subnet. */
  readonly firstHostOffset: number;
  readonly port?: number;
}

/** A problem with the address plan; synth stops with its message. */
export class ReplicaAddressError extends Error {
  constructor(message: string) {
    super(`TigerBeetle replica addresses: ${message}`);
    this.name = 'ReplicaAddressError';
  }
}

interface Cidr {
  readonly network: number;
  readonly prefixLength: number;
}

export function parseIpv4(text: string): number {
  const parts = text.split('.');
  if (
    parts.length !== 4 ||
    parts.some((part) => !/^(0|[1-9]\d{0,2})$/.test(part) || Number(part) > 255)
  ) {
    throw new ReplicaAddressError(`'${text}' is not an IPv4 address`);
  }
  return parts.reduce((value, part) => value * 256 + Number(part), 0);
}

export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

export function parseCidr(text: string): Cidr {
  const [address, prefixText, ...rest] = text.split('/');
  const prefixLength = Number(prefixText);
  if (rest.length > 0 || !/^\d{1,2}$/.test(prefixText ?? '') || prefixLength > 32) {
    throw new ReplicaAddressError(`'${text}' is not an IPv4 CIDR block`);
  }
  const network = parseIpv4(address);
  if (network % 2 ** (32 - prefixLength) !== 0)
    throw new ReplicaAddressError(`'${text}' has host bits set`);
  return { network, prefixLength };
}

/** Whether `address` lies inside `cidr` (network and broadcast included). */
export function cidrContains(cidr: string, address: string): boolean {
  const { network, prefixLength } = parseCidr(cidr);
  const value = parseIpv4(address);
  return value >= network && value < network + 2 ** (32 - prefixLength);
}

/**
 * Replica i goes to zone `i mod zoneCount` and takes host `firstHostOffset + floor(i / zoneCount)`
 * of that zone's subnet: with 6 replicas over 3 zones, replicas 0 and 3 share the first zone.
 * Fails on a replica count TigerBeetle refuses, an address AWS reserves or outside its subnet, and
 * on two replicas with one address (overlapping subnets).
 */
export function planReplicaAddresses(options: ReplicaAddressOptions): ReplicaAddressPlan {
  const { subnetCidrs, replicaCount, firstHostOffset } = options;
  const port = options.port ?? replicaPort;
  if (!Number.isInteger(replicaCount) || replicaCount < 1 || replicaCount > replicaCountMax) {
    throw new ReplicaAddressError(`replica count ${replicaCount} is outside 1..${replicaCountMax}`);
  }
  if (subnetCidrs.length === 0)
    throw new ReplicaAddressError('no ledger subnets to place replicas in');
  if (!Number.isInteger(port) || port < 1 || port > 65_535)
    throw new ReplicaAddressError(`port ${port} is not a TCP port`);
  const zoneCount = subnetCidrs.length;
  const replicas: ReplicaPlacement[] = [];
  const owners = new Map<string, number>();
  for (let replica = 0; replica < replicaCount; replica += 1) {
    const zoneIndex = replica % zoneCount;
    const subnetCidr = subnetCidrs[zoneIndex];
    const { network, prefixLength } = parseCidr(subnetCidr);
    const size = 2 ** (32 - prefixLength);
    const hostOffset = firstHostOffset + Math.floor(replica / zoneCount);
    if (
      !Number.isInteger(hostOffset) ||
      hostOffset < subnetReservedLowCount ||
      hostOffset > size - 1 - subnetReservedHighCount
    ) {
      throw new ReplicaAddressError(
        `replica ${replica} would take host ${hostOffset} of ${subnetCidr}, outside its usable hosts ` +
          `${subnetReservedLowCount}..${size - 1 - subnetReservedHighCount} (AWS reserves the first ${subnetReservedLowCount} and the last one)`,
      );
    }
    const address = formatIpv4(network + hostOffset);
    const owner = owners.get(address);
    if (owner !== undefined) {
      throw new ReplicaAddressError(
        `replica ${replica} and replica ${owner} would both use ${address}; the ledger subnets overlap`,
      );
    }
    owners.set(address, replica);
    replicas.push({ replica, zoneIndex, subnetCidr, address, endpoint: `${address}:${port}` });
  }
  return { replicas, addressList: replicas.map((placement) => placement.endpoint).join(',') };
}

/**
 * The ledger subnets of the network stack, computed from the config the way the VPC allocates them:
 * subnet groups in order (public /24, private /20, ledger /24), one block per zone, each block at
 * the next address aligned to its size. The ledger stack checks the result against the VPC's own
 * subnets, so a change to the network layout fails synth instead of misplacing a replica.
 */
export function ledgerSubnetCidrs(
  vpcCidr: string,
  zoneCount: number,
  groupPrefixLengths: readonly number[] = [24, 20, 24],
): string[] {
  const vpc = parseCidr(vpcCidr);
  const vpcEnd = vpc.network + 2 ** (32 - vpc.prefixLength);
  let next = vpc.network;
  let last: string[] = [];
  for (const prefixLength of groupPrefixLengths) {
    last = [];
    const size = 2 ** (32 - prefixLength);
    for (let zone = 0; zone < zoneCount; zone += 1) {
      const start = Math.ceil(next / size) * size;
      if (start + size > vpcEnd)
        throw new ReplicaAddressError(`the subnets do not fit in ${vpcCidr}`);
      last.push(`${formatIpv4(start)}/${prefixLength}`);
      next = start + size;
    }
  }
  return last;
}
