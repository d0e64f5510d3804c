import {
  environmentOf,
  Findings,
  findResources,
  functionNamed,
  prop,
  type AuditTemplates,
} from '../templates';
import type { EvidenceRules } from './rule';
import { proxySettings } from './shared';

type WafRule = { Name: string; Statement: { RateBasedStatement?: Record<string, unknown> } };

function wafRateRules(audit: AuditTemplates): {
  acl: ReturnType<typeof findResources>[number] | undefined;
  rules: WafRule[];
} {
  const acl = findResources(audit.templates, 'AWS::WAFv2::WebACL')[0];
  return {
    acl,
    rules: ((acl ? prop(acl, 'Rules') : []) as WafRule[]).filter(
      (rule) => rule.Statement.RateBasedStatement !== undefined,
    ),
  };
}

function rateLimitOn({ templates }: AuditTemplates) {
  const findings = new Findings();
  const settings = proxySettings(templates);
  if (!findings.expect(settings !== undefined, 'the proxy function or its PROXY_CONFIG is missing'))
    return findings.result();
  const rateLimit = settings!.config.rateLimit as
    { enabled?: boolean; requestsPerMinute?: number } | undefined;
  findings.expect(rateLimit?.enabled === true, 'rate limiting is off');
  findings.cite(settings!.proxy, { 'PROXY_CONFIG.rateLimit': rateLimit });
  return findings.result();
}

function sharedStore({ templates }: AuditTemplates) {
  const findings = new Findings();
  const settings = proxySettings(templates);
  const credits = functionNamed(templates, 'CreditsFunction');
  if (
    !findings.expect(
      settings !== undefined && credits !== undefined,
      'the proxy or the credits function is missing',
    )
  )
    return findings.result();
  const creditsUrl = environmentOf(settings!.proxy).CREDITS_URL;
  findings.expect(
    creditsUrl !== undefined,
    'the proxy has no shared store to count in (CREDITS_URL)',
  );
  findings.cite(settings!.proxy, {
    'PROXY_CONFIG.rateLimit': settings!.config.rateLimit,
    CREDITS_URL: creditsUrl,
  });
  findings.cite(credits!, { GATEWAY_URL: environmentOf(credits!).GATEWAY_URL });
  return findings.result();
}

function edgeRates(audit: AuditTemplates) {
  const findings = new Findings();
  const { acl, rules } = wafRateRules(audit);
  if (!findings.expect(acl !== undefined, 'no web ACL')) return findings.result();
  const perIp = rules.find(
    (rule) =>
      rule.Statement.RateBasedStatement?.AggregateKeyType === 'IP' &&
      rule.Statement.RateBasedStatement.ScopeDownStatement === undefined,
  );
  const perKey = rules.filter(
    (rule) => rule.Statement.RateBasedStatement?.AggregateKeyType === 'CUSTOM_KEYS',
  );
  findings.expect(perIp !== undefined, 'no per-IP rate rule');
  findings.expect(perKey.length > 0, 'no per-key rate rule');
  findings.cite(acl!, {
    rules: [perIp, ...perKey]
      .filter((rule) => rule !== undefined)
      .map((rule) => ({
        name: rule!.Name,
        limit: rule!.Statement.RateBasedStatement?.Limit,
        aggregate: rule!.Statement.RateBasedStatement?.AggregateKeyType,
        windowSeconds: rule!.Statement.RateBasedStatement?.EvaluationWindowSec,
      })),
  });
  return findings.result();
}

function authFailureThrottle(audit: AuditTemplates) {
  const findings = new Findings();
  const { acl, rules } = wafRateRules(audit);
  const anonymous = rules.find((rule) => rule.Name === 'RatePerIpWithoutApiKey');
  findings.expect(
    anonymous !== undefined,
    'no lower per-IP limit for requests without a well-formed key',
  );
  if (acl && anonymous)
    findings.cite(acl, {
      rule: anonymous.Name,
      limit: anonymous.Statement.RateBasedStatement?.Limit,
      aggregate: 'IP, scoped to requests without a well-formed key',
    });
  const settings = proxySettings(audit.templates);
  findings.expect(
    typeof settings?.config.authFailuresPerMinute === 'number',
    'the proxy does not throttle authentication failures',
  );
  if (settings)
    findings.cite(settings.proxy, {
      'PROXY_CONFIG.authFailuresPerMinute': settings.config.authFailuresPerMinute,
    });
  return findings.result();
}

export const rateRules: EvidenceRules = {
  'RATE-01': {
    how: 'rateLimit in the stage config (60 per minute per key by default); the config policy refuses rateLimit.enabled false in production; the proxy enforces it per key (lambda/proxy/app.ts).',
    template: rateLimitOn,
  },
  'RATE-02': {
    how: "Per-key limits are counted on the TigerBeetle ledger through the credits service (TigerBeetle's rate-limiting recipe: pending transfers with a timeout), so every proxy instance shares one exact count.",
    template: sharedStore,
  },
  'RATE-03': {
    how: 'Web ACL rate-based rules per IP and per API key (Authorization, X-API-Key) over 60 seconds (lib/constructs/api-web-acl.ts).',
    template: edgeRates,
  },
  'RATE-04': {
    how: 'Over the limit the proxy answers 429 with Retry-After and RateLimit-* headers and writes a `rate_limited` audit record.',
  },
  'RATE-05': {
    how: 'At the edge, requests without a well-formed key get a low per-IP limit; in the proxy, failed authentications are counted per source on the ledger and answered 429 over authFailuresPerMinute.',
    template: authFailureThrottle,
  },
};
