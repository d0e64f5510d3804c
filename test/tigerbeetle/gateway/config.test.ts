import { gatewayConfigFromEnvironment } from '../../../tigerbeetle/gateway/config';

const token = 'local-token-0123456789abcdef0123456789abcdef';

describe('ledger gateway configuration from the environment', () => {
  it('uses loopback, port 7300, INFO and a 5 s ledger deadline by default', () => {
    const { config, problems } = gatewayConfigFromEnvironment({
      LEDGER_MODE: 'embedded',
      GATEWAY_TOKEN: token,
    });
    expect(problems).toEqual([]);
    expect(config).toEqual({
      port: 7300,
      host: '127.0.0.1',
      ledger: { kind: 'embedded', dataFile: undefined },
      ledgerRequestTimeoutMilliseconds: 5_000,
      logLevel: 'INFO',
      tokens: { kind: 'environment', token },
    });
  });

  it('reads a cluster with its id, its ordered addresses and its deadline', () => {
    const { config } = gatewayConfigFromEnvironment({
      LEDGER_MODE: 'cluster',
      TB_CLUSTER_ID: '340282366920938463463374607431768211455',
      TB_ADDRESSES: '10.0.2.11:3000, 10.0.1.10:3000,[fd00::12]:3001',
      LEDGER_REQUEST_TIMEOUT_MS: '2500',
      GATEWAY_HOST: '0.0.0.0',
      GATEWAY_PORT: '8080',
      LOG_LEVEL: 'warn',
      GATEWAY_TOKEN_SECRET_ARN:
        'arn:aws:secretsmanager:us-east-1:123456789012:secret:gateway-AbCdEf',
    });
    expect(config).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      logLevel: 'WARN',
      ledgerRequestTimeoutMilliseconds: 2_500,
      ledger: {
        kind: 'cluster',
        clusterId: (1n << 128n) - 1n,
        replicaAddresses: ['10.0.2.11:3000', '10.0.1.10:3000', '[fd00::12]:3001'],
        requestTimeoutMilliseconds: 2_500,
      },
      tokens: { kind: 'secrets-manager', region: 'us-east-1' },
    });
  });

  it('lists every problem at once', () => {
    const { config, problems } = gatewayConfigFromEnvironment({
      LEDGER_MODE: 'cluster',
      LEDGER_DATA_FILE: '/data/ledger',
      TB_CLUSTER_ID: '-1',
      TB_ADDRESSES:
        '10.0.0.1:3000,10.0.0.1:3000,10.0.0.2:3000,10.0.0.3:3000,10.0.0.4:3000,10.0.0.5:3000,10.0.0.6:3000',
      LEDGER_REQUEST_TIMEOUT_MS: '0',
      GATEWAY_HOST: 'localhost',
      GATEWAY_PORT: '7300.5',
      LOG_LEVEL: 'TRACE',
    });
    expect(config).toBeUndefined();
    expect(problems).toEqual([
      'GATEWAY_PORT must be an integer from 0 to 65535, got "7300.5"',
      'GATEWAY_HOST must be an IP address (e.g. 127.0.0.1 or 0.0.0.0), got "localhost"',
      'LEDGER_REQUEST_TIMEOUT_MS must be an integer from 1 to 60000, got "0"',
      'LOG_LEVEL must be one of DEBUG, INFO, WARN, ERROR, got "TRACE"',
      'LEDGER_DATA_FILE applies only to LEDGER_MODE=embedded',
      'TB_CLUSTER_ID must be a decimal u128, got "-1"',
      'TB_ADDRESSES lists 7 replicas; a cluster has at most 6',
      'TB_ADDRESSES lists a replica twice',
      expect.stringContaining('no gateway token'),
    ]);
  });

  it.each([
    [{ GATEWAY_TOKEN: token }, 'LEDGER_MODE must be one of embedded, cluster, got nothing'],
    [
      { GATEWAY_TOKEN: token, LEDGER_MODE: 'memory' },
      'LEDGER_MODE must be one of embedded, cluster, got "memory"',
    ],
    [
      { GATEWAY_TOKEN: token, LEDGER_MODE: 'embedded', TB_ADDRESSES: '3000' },
      'TB_ADDRESSES applies only to LEDGER_MODE=cluster',
    ],
    [
      { GATEWAY_TOKEN: token, LEDGER_MODE: 'cluster', TB_CLUSTER_ID: '0' },
      expect.stringContaining('TB_ADDRESSES is required'),
    ],
    [
      {
        GATEWAY_TOKEN: token,
        LEDGER_MODE: 'cluster',
        TB_CLUSTER_ID: '0',
        TB_ADDRESSES: '10.0.0.1',
      },
      'TB_ADDRESSES must hold IP:port entries, these are not: "10.0.0.1"',
    ],
    [
      {
        GATEWAY_TOKEN: token,
        LEDGER_MODE: 'cluster',
        TB_CLUSTER_ID: '0',
        TB_ADDRESSES: '10.0.0.1:99999',
      },
      expect.stringContaining('"10.0.0.1:99999"'),
    ],
    [
      {
        GATEWAY_TOKEN: token,
        LEDGER_MODE: 'cluster',
        TB_CLUSTER_ID: '0',
        TB_ADDRESSES: '999.0.0.1:3000',
      },
      expect.stringContaining('"999.0.0.1:3000"'),
    ],
    [
      { GATEWAY_TOKEN: token, LEDGER_MODE: 'cluster', TB_CLUSTER_ID: '0x1', TB_ADDRESSES: '3000' },
      'TB_CLUSTER_ID must be a decimal u128, got "0x1"',
    ],
  ])('refuses %j', (environment, problem) => {
    const { config, problems } = gatewayConfigFromEnvironment(environment);
    expect(config).toBeUndefined();
    expect(problems).toEqual([problem]);
  });

  it('accepts a bare port as a loopback replica address (a local cluster)', () => {
    const { config } = gatewayConfigFromEnvironment({
      GATEWAY_TOKEN: token,
      LEDGER_MODE: 'cluster',
      TB_CLUSTER_ID: '0',
      TB_ADDRESSES: '3000',
    });
    expect(config?.ledger).toMatchObject({ replicaAddresses: ['3000'] });
  });
});
