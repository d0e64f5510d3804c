import { resolveStageConfig } from '../../lib/config';
import { shippedStages } from '../../lib/config/stages';
import { deployableConfig, deployableProblems } from '../support/synth';

/**
 * NET-07 / CFG-01: the internal hops carry service keys, so production refuses to synthesize them in
 * plain text; the internal domain must sit under the zone that validates its certificate.
 */

const problemsOf = deployableProblems;

describe('NET-07 / CFG-01: internal TLS in the config policy', () => {
  test('production without internal TLS is refused: no plaintext internal hops', () => {
    expect(problemsOf('production', { internalTls: null })).toContain(
      'internalTls is missing; production refuses plaintext internal hops, which carry service keys (NET-07)',
    );
  });

  test('staging and production ship with internal TLS; dev without (plain HTTP inside the VPC)', () => {
    // Shipped with placeholders (refused until replaced); the fixtures carry real names.
    expect(shippedStages.production.internalTls?.domain).toBe('internal.example.com');
    expect(shippedStages.staging.internalTls?.domain).toBe('internal.staging.example.com');
    expect(deployableConfig('production').internalTls?.domain).toBe('internal.acme-ai.net');
    expect(deployableConfig('staging').internalTls?.domain).toBe('internal.staging.acme-ai.net');
    expect(resolveStageConfig('dev').internalTls).toBeUndefined();
    expect(
      problemsOf('staging', { internalTls: null }).filter((problem) =>
        problem.includes('internalTls'),
      ),
    ).toEqual([]);
  });

  test('the internal domain must be inside its validation hosted zone, and not be the public API name', () => {
    expect(
      problemsOf('production', {
        internalTls: { validationHostedZone: { id: 'Z0123456789ABCDEFGHIJ', name: 'other.org' } },
      }),
    ).toContain(
      "internalTls.domain 'internal.acme-ai.net' is not inside its validation hosted zone 'other.org' (NET-07)",
    );
    const inside = problemsOf('production', {
      internalTls: { validationHostedZone: { id: 'Z0123456789ABCDEFGHIJ', name: 'acme-ai.net' } },
    });
    expect(inside.filter((problem) => problem.includes('internalTls'))).toEqual([]);
    expect(problemsOf('production', { internalTls: { domain: 'api.acme-ai.net' } })).toContain(
      "internalTls.domain 'api.acme-ai.net' is the public API's name; use a sub-domain of its own, e.g. internal.<domain> (NET-07)",
    );
  });

  test('the schema names a malformed internal domain', () => {
    expect(
      problemsOf('production', { internalTls: { domain: 'Not A Domain' } }).join('\n'),
    ).toMatch(/internalTls\.domain/);
  });
});

describe('NET-07: an internal certificate that cannot be validated automatically', () => {
  test('is refused in production, naming the zone to give', () => {
    expect(problemsOf('production', { internalTls: { validationHostedZone: null } })).toContain(
      'internalTls without validationHostedZone would leave the production deploy waiting for a DNS validation record added by hand; ' +
        'give internalTls.validationHostedZone { id, name }, the public zone above internalTls.domain (NET-07)',
    );
  });
});
