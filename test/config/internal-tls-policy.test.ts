import { ConfigError, resolveStageConfig } from '../../lib/config';

/**
 * NET-07 / CFG-01: the internal hops carry service keys, so production refuses to synthesize them in
 * plain text; the internal domain must sit under the zone that validates its certificate.
 */

function problemsOf(stage: string, overrides: unknown): string[] {
  try {
    resolveStageConfig(stage, overrides);
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

describe('NET-07 / CFG-01: internal TLS in the config policy', () => {
  test('production without internal TLS is refused: no plaintext internal hops', () => {
    expect(problemsOf('production', { internalTls: null })).toContain('internalTls is missing; production refuses plaintext internal hops, which carry service keys (NET-07)');
  });

  test('staging and production ship with internal TLS; dev without (plain HTTP inside the VPC)', () => {
    expect(resolveStageConfig('production').internalTls?.domain).toBe('internal.example.com');
    expect(resolveStageConfig('staging').internalTls?.domain).toBe('internal.staging.example.com');
    expect(resolveStageConfig('dev').internalTls).toBeUndefined();
    expect(problemsOf('staging', { internalTls: null }).filter((problem) => problem.includes('internalTls'))).toEqual([]);
  });

  test('the internal domain must be inside its validation hosted zone, and not be the public API name', () => {
    expect(problemsOf('production', { internalTls: { validationHostedZone: { id: 'Z0123456789ABCDEFGHIJ', name: 'other.org' } } })).toContain(
      "internalTls.domain 'internal.example.com' is not inside its validation hosted zone 'other.org' (NET-07)",
    );
    const inside = problemsOf('production', { internalTls: { validationHostedZone: { id: 'Z0123456789ABCDEFGHIJ', name: 'example.com' } } });
    expect(inside.filter((problem) => problem.includes('internalTls'))).toEqual([]);
    expect(problemsOf('production', { internalTls: { domain: 'api.example.com' } })).toContain(
      "internalTls.domain 'api.example.com' is the public API's name; use a sub-domain of its own, e.g. internal.<domain> (NET-07)",
    );
  });

  test('the schema names a malformed internal domain', () => {
    expect(() => resolveStageConfig('production', { internalTls: { domain: 'Not A Domain' } })).toThrow(/internalTls\.domain/);
  });
});
