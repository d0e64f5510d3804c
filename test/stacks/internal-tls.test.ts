import { Match } from 'aws-cdk-lib/assertions';
import { evidenceRules } from '../../scripts/checklist-audit/rules';
import type { CfnTemplate } from '../../scripts/checklist-audit/templates';
import { resourcesOf, synthesizeStage, type SynthesizedStage } from '../support/synth';

/**
 * NET-07: the internal hops that carry service keys (proxy -> credits, credits -> ledger gateway)
 * use TLS in staging and production, with a free public ACM certificate for *.<internal domain>
 * (DNS-validated in the public zone) and names that resolve only inside the VPC (a private hosted
 * zone with alias records to the internal load balancers). Dev stays plain HTTP inside the VPC.
 */

const validationHostedZone = { id: 'Z0123456789ABCDEFGHIJ', name: 'acme-ai.net' };
let production: SynthesizedStage;
let staging: SynthesizedStage;
let dev: SynthesizedStage;
beforeAll(() => {
  production = synthesizeStage('production', {
    overrides: { internalTls: { validationHostedZone } },
  });
  staging = synthesizeStage('staging');
  dev = synthesizeStage('dev');
});

function ofType(stage: SynthesizedStage, part: keyof SynthesizedStage['templates'], type: string) {
  return resourcesOf(stage.templates[part]).filter(([, resource]) => resource.Type === type);
}

function environment(stage: SynthesizedStage, prefix: string): Record<string, unknown> {
  const fn = ofType(stage, 'api', 'AWS::Lambda::Function').find(([id]) => id.startsWith(prefix));
  return (fn?.[1].Properties?.Environment as { Variables: Record<string, unknown> }).Variables;
}

describe.each([
  ['production', () => production, 'internal.acme-ai.net'],
  ['staging', () => staging, 'internal.staging.acme-ai.net'],
])('NET-07: internal TLS in %s', (_name, stage, domain) => {
  test('a wildcard ACM certificate for the internal domain, DNS-validated, and a private hosted zone of the VPC', () => {
    const network = stage().templates.network;
    network.hasResourceProperties('AWS::CertificateManager::Certificate', {
      DomainName: `*.${domain}`,
      ValidationMethod: 'DNS',
    });
    network.hasResourceProperties('AWS::Route53::HostedZone', {
      Name: `${domain}.`,
      VPCs: [Match.objectLike({ VPCId: { Ref: Match.stringLikeRegexp('^Vpc') } })],
    });
  });

  test('the credits ALB listens only with HTTPS on 443 with that certificate, and the proxy calls https://credits.<domain>', () => {
    const listeners = ofType(stage(), 'api', 'AWS::ElasticLoadBalancingV2::Listener');
    expect(
      listeners.map(([, listener]) => [listener.Properties?.Protocol, listener.Properties?.Port]),
    ).toEqual([['HTTPS', 443]]);
    const listener = listeners[0][1].Properties ?? {};
    expect(listener.SslPolicy).toMatch(/^ELBSecurityPolicy-TLS13-1-2-/);
    expect(JSON.stringify(listener.Certificates)).toMatch(/InternalTlsCertificate/);
    expect(environment(stage(), 'ProxyFunction').CREDITS_URL).toBe(`https://credits.${domain}`);
    stage().templates.api.hasResourceProperties('AWS::Route53::RecordSet', {
      Name: `credits.${domain}.`,
      Type: 'A',
      HostedZoneId: { 'Fn::ImportValue': Match.stringLikeRegexp('-network:.*InternalTlsZone') },
    });
  });

  test('the gateway NLB terminates TLS on 7300 with that certificate, forwards TCP, and credits calls https://ledger-gateway.<domain>:7300', () => {
    const listeners = ofType(stage(), 'ledger', 'AWS::ElasticLoadBalancingV2::Listener');
    expect(
      listeners.map(([, listener]) => [listener.Properties?.Protocol, listener.Properties?.Port]),
    ).toEqual([['TLS', 7300]]);
    expect(JSON.stringify(listeners[0][1].Properties?.Certificates)).toMatch(
      /InternalTlsCertificate/,
    );
    expect(listeners[0][1].Properties?.SslPolicy).toMatch(/^ELBSecurityPolicy-TLS13-1-2-/);
    stage().templates.ledger.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      Protocol: 'TCP',
      Port: 7300,
    });
    expect(environment(stage(), 'CreditsFunction').GATEWAY_URL).toBe(
      `https://ledger-gateway.${domain}:7300`,
    );
    stage().templates.ledger.hasResourceProperties('AWS::Route53::RecordSet', {
      Name: `ledger-gateway.${domain}.`,
      Type: 'A',
      AliasTarget: Match.objectLike({
        DNSName: Match.objectLike({
          'Fn::Join': Match.arrayWith([
            Match.arrayWith([
              Match.objectLike({
                'Fn::GetAtt': Match.arrayWith([
                  Match.stringLikeRegexp('^TigerBeetleGatewayLoadBalancer'),
                ]),
              }),
            ]),
          ]),
        }),
      }),
    });
  });

  test('the proxy and the settle function reach the credits ALB on 443 only', () => {
    const egress = ofType(stage(), 'api', 'AWS::EC2::SecurityGroupEgress').map(
      ([, rule]) => rule.Properties ?? {},
    );
    const toCredits = egress.filter((rule) =>
      JSON.stringify(rule.DestinationSecurityGroupId).includes('CreditsAlbSecurityGroup'),
    );
    expect(toCredits.map((rule) => [rule.FromPort, rule.ToPort])).toEqual([
      [443, 443],
      [443, 443],
    ]);
  });
});

describe('NET-07: validation of the internal certificate', () => {
  test('with a validation hosted zone the DNS record is created in it; without, the deploy waits for manual validation', () => {
    production.templates.network.hasResourceProperties('AWS::CertificateManager::Certificate', {
      DomainName: '*.internal.acme-ai.net',
      DomainValidationOptions: [
        { DomainName: '*.internal.acme-ai.net', HostedZoneId: validationHostedZone.id },
      ],
    });
    const [, certificate] = ofType(staging, 'network', 'AWS::CertificateManager::Certificate')[0];
    expect(certificate.Properties?.DomainValidationOptions).toBeUndefined();
  });

  test('the audit cites the TLS listeners and the internal names, and finds no problem in production', () => {
    const templates = Object.fromEntries(
      Object.entries(production.templates).map(([part, template]) => [
        part,
        template.toJSON() as CfnTemplate,
      ]),
    );
    const findings = evidenceRules['NET-07'].template?.({
      stage: 'production',
      templates,
      otherStages: {},
    });
    expect(findings?.problems).toEqual([]);
    expect(
      findings?.citations
        .filter((citation) => citation.type === 'AWS::ElasticLoadBalancingV2::Listener')
        .map((citation) => citation.values.Protocol)
        .sort(),
    ).toEqual(['HTTPS', 'TLS']);
    expect(
      findings?.citations.filter((citation) => citation.type === 'AWS::Route53::RecordSet'),
    ).toHaveLength(2);
  });

  test('the audit rule fails a stage whose internal hops are plain (dev, as a failing case)', () => {
    const templates = Object.fromEntries(
      Object.entries(dev.templates).map(([part, template]) => [
        part,
        template.toJSON() as CfnTemplate,
      ]),
    );
    const problems = evidenceRules['NET-07']
      .template?.({ stage: 'dev', templates, otherStages: {} })
      .problems.join('\n');
    expect(problems).toMatch(/CreditsAlbLoadBalancerHttp\w+ listens in plain HTTP/);
    expect(problems).toMatch(/TigerBeetleGatewayLoadBalancerGateway\w+ listens in plain TCP/);
  });
});

describe('NET-07: dev stays plain inside the VPC (no domain needed)', () => {
  test('HTTP on 80 to credits, TCP on 7300 to the gateway, no certificate and no private zone', () => {
    expect(
      ofType(dev, 'api', 'AWS::ElasticLoadBalancingV2::Listener').map(([, listener]) => [
        listener.Properties?.Protocol,
        listener.Properties?.Port,
      ]),
    ).toEqual([['HTTP', 80]]);
    expect(
      ofType(dev, 'ledger', 'AWS::ElasticLoadBalancingV2::Listener').map(
        ([, listener]) => listener.Properties?.Protocol,
      ),
    ).toEqual(['TCP']);
    expect(ofType(dev, 'network', 'AWS::Route53::HostedZone')).toEqual([]);
    expect(ofType(dev, 'network', 'AWS::CertificateManager::Certificate')).toEqual([]);
    expect(JSON.stringify(environment(dev, 'CreditsFunction').GATEWAY_URL)).toMatch(/"http:\/\/"/);
  });
});
