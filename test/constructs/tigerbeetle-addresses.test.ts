import {
  cidrContains,
  ledgerSubnetCidrs,
  planReplicaAddresses,
  ReplicaAddressError,
} from '../../lib/constructs/tigerbeetle-addresses';

const threeZones = ['10.42.64.0/24', '10.42.65.0/24', '10.42.66.0/24'];

describe('planReplicaAddresses', () => {
  test('DATA-01: six replicas, two per zone, replica i in zone i mod 3, in one ordered list', () => {
    const plan = planReplicaAddresses({
      subnetCidrs: threeZones,
      replicaCount: 6,
      firstHostOffset: 10,
    });
    expect(plan.replicas.map((replica) => [replica.zoneIndex, replica.address])).toEqual([
      [0, '10.42.64.10'],
      [1, '10.42.65.10'],
      [2, '10.42.66.10'],
      [0, '10.42.64.11'],
      [1, '10.42.65.11'],
      [2, '10.42.66.11'],
    ]);
    expect(plan.addressList).toBe(
      '10.42.64.10:3000,10.42.65.10:3000,10.42.66.10:3000,10.42.64.11:3000,10.42.65.11:3000,10.42.66.11:3000',
    );
    for (const replica of plan.replicas)
      expect(cidrContains(replica.subnetCidr, replica.address)).toBe(true);
  });

  test('one replica (dev) takes the first zone', () => {
    expect(
      planReplicaAddresses({ subnetCidrs: threeZones, replicaCount: 1, firstHostOffset: 4 })
        .addressList,
    ).toBe('10.42.64.4:3000');
  });

  test('refuses an address AWS reserves at the start of a subnet', () => {
    expect(() =>
      planReplicaAddresses({ subnetCidrs: threeZones, replicaCount: 3, firstHostOffset: 3 }),
    ).toThrow(
      'TigerBeetle replica addresses: replica 0 would take host 3 of 10.42.64.0/24, outside its usable hosts 4..254 (AWS reserves the first 4 and the last one)',
    );
  });

  test('refuses an address beyond the end of a small subnet', () => {
    expect(() =>
      planReplicaAddresses({
        subnetCidrs: ['10.0.0.0/28', '10.0.0.16/28'],
        replicaCount: 6,
        firstHostOffset: 13,
      }),
    ).toThrow(/replica 4 would take host 15 of 10\.0\.0\.0\/28, outside its usable hosts 4\.\.14/);
  });

  test('refuses two replicas on one address (overlapping subnets)', () => {
    expect(() =>
      planReplicaAddresses({
        subnetCidrs: ['10.1.0.0/24', '10.1.0.0/24', '10.1.2.0/24'],
        replicaCount: 3,
        firstHostOffset: 10,
      }),
    ).toThrow(
      'TigerBeetle replica addresses: replica 1 and replica 0 would both use 10.1.0.10; the ledger subnets overlap',
    );
  });

  test('refuses replica counts TigerBeetle refuses, and malformed subnets', () => {
    expect(() =>
      planReplicaAddresses({ subnetCidrs: threeZones, replicaCount: 7, firstHostOffset: 10 }),
    ).toThrow('replica count 7 is outside 1..6');
    expect(() =>
      planReplicaAddresses({ subnetCidrs: threeZones, replicaCount: 0, firstHostOffset: 10 }),
    ).toThrow(ReplicaAddressError);
    expect(() =>
      planReplicaAddresses({ subnetCidrs: [], replicaCount: 1, firstHostOffset: 10 }),
    ).toThrow('no ledger subnets');
    expect(() =>
      planReplicaAddresses({ subnetCidrs: ['10.0.0.1/24'], replicaCount: 1, firstHostOffset: 10 }),
    ).toThrow("'10.0.0.1/24' has host bits set");
    expect(() =>
      planReplicaAddresses({
        subnetCidrs: ['10.0.0.300/24'],
        replicaCount: 1,
        firstHostOffset: 10,
      }),
    ).toThrow("'10.0.0.300' is not an IPv4 address");
  });
});

describe('ledgerSubnetCidrs', () => {
  test('follows the VPC layout: public /24s, private /20s, then the ledger /24s', () => {
    expect(ledgerSubnetCidrs('10.42.0.0/16', 3)).toEqual(threeZones);
    expect(ledgerSubnetCidrs('10.40.0.0/16', 2)).toEqual(['10.40.48.0/24', '10.40.49.0/24']);
  });

  test('refuses a VPC too small for the layout', () => {
    expect(() => ledgerSubnetCidrs('10.0.0.0/20', 3)).toThrow(
      'the subnets do not fit in 10.0.0.0/20',
    );
  });
});
