import {
  environmentOf,
  Findings,
  findResources,
  functionNamed,
  ingressRulesOf,
  loadBalancerAttributes,
  prop,
  referencedId,
  type AuditTemplates,
  type FoundResource,
  type StageTemplates,
} from '../templates';
import type { EvidenceRules } from './rule';
import { isInternetFacing, proxySettings, serviceFunctions } from './shared';

function publicLoadBalancer(templates: StageTemplates): FoundResource | undefined {
  return findResources(templates, 'AWS::ElasticLoadBalancingV2::LoadBalancer').find(
    isInternetFacing,
  );
}

function listenersOf(
  templates: StageTemplates,
  loadBalancer: FoundResource | undefined,
): FoundResource[] {
  if (!loadBalancer) return [];
  return findResources(templates, 'AWS::ElasticLoadBalancingV2::Listener').filter(
    (listener) =>
      listener.stack === loadBalancer.stack &&
      referencedId(prop(listener, 'LoadBalancerArn')) === loadBalancer.logicalId,
  );
}

function corsOrigins({ templates }: AuditTemplates) {
  const findings = new Findings();
  const settings = proxySettings(templates);
  if (!findings.expect(settings !== undefined, 'the proxy function or its PROXY_CONFIG is missing'))
    return findings.result();
  const origins = (settings!.config.allowedOrigins ?? []) as string[];
  findings.expect(origins.length > 0, 'no CORS origin configured');
  findings.expect(
    origins.every((origin) => origin.startsWith('https://') && !origin.includes('*')),
    `CORS origins must be HTTPS without wildcards: ${origins.join(', ')}`,
  );
  findings.cite(settings!.proxy, { 'PROXY_CONFIG.allowedOrigins': origins });
  return findings.result();
}

function httpsOnly({ templates }: AuditTemplates) {
  const findings = new Findings();
  const loadBalancer = publicLoadBalancer(templates);
  const https = listenersOf(templates, loadBalancer).filter(
    (listener) => prop(listener, 'Protocol') === 'HTTPS',
  );
  findings.expect(https.length > 0, 'the internet-facing load balancer has no HTTPS listener');
  for (const listener of https) {
    const sslPolicy = String(prop(listener, 'SslPolicy'));
    findings.expect(
      /^ELBSecurityPolicy-TLS13-1-2-/.test(sslPolicy),
      `${listener.logicalId} uses ${sslPolicy}, not a TLS 1.3 policy with TLS 1.2 minimum`,
    );
    const certificateArn = prop(listener, 'Certificates.0.CertificateArn');
    findings.expect(certificateArn !== undefined, `${listener.logicalId} has no certificate`);
    findings.cite(listener, {
      Port: prop(listener, 'Port'),
      Protocol: 'HTTPS',
      SslPolicy: sslPolicy,
      CertificateArn: certificateArn,
    });
    const certificate = findResources(templates, 'AWS::CertificateManager::Certificate').find(
      (found) => found.logicalId === referencedId(certificateArn),
    );
    if (certificate)
      findings.cite(certificate, {
        DomainName: prop(certificate, 'DomainName'),
        ValidationMethod: prop(certificate, 'ValidationMethod'),
      });
  }
  return findings.result();
}

function httpRedirects({ templates }: AuditTemplates) {
  const findings = new Findings();
  const http = listenersOf(templates, publicLoadBalancer(templates)).filter(
    (listener) => prop(listener, 'Protocol') === 'HTTP',
  );
  findings.expect(http.length > 0, 'no HTTP listener to redirect');
  for (const listener of http) {
    const redirect = prop(listener, 'DefaultActions.0.RedirectConfig') as
      Record<string, unknown> | undefined;
    findings.expect(
      redirect?.Protocol === 'HTTPS' && redirect.StatusCode === 'HTTP_301',
      `${listener.logicalId} does not redirect permanently to HTTPS`,
    );
    findings.cite(listener, {
      Port: prop(listener, 'Port'),
      'DefaultActions.0.Type': prop(listener, 'DefaultActions.0.Type'),
      RedirectConfig: redirect,
    });
  }
  return findings.result();
}

function privatePlacement({ templates }: AuditTemplates) {
  const findings = new Findings();
  const loadBalancers = findResources(templates, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
  const facing = loadBalancers.filter(isInternetFacing);
  findings.expect(
    facing.length === 1 && prop(facing[0], 'Type') !== 'network',
    `expected exactly one internet-facing load balancer (the public ALB), found ${facing.length}`,
  );
  for (const loadBalancer of loadBalancers)
    findings.cite(loadBalancer, {
      Scheme: prop(loadBalancer, 'Scheme') ?? 'internet-facing',
      Type: prop(loadBalancer, 'Type') ?? 'application',
    });
  const publicSubnets = findResources(templates, 'AWS::EC2::Subnet').filter(
    (subnet) => prop(subnet, 'MapPublicIpOnLaunch') !== false,
  );
  findings.expect(
    publicSubnets.length === 0,
    `subnets hand out public addresses: ${publicSubnets.map((subnet) => subnet.logicalId).join(', ')}`,
  );
  for (const template of findResources(templates, 'AWS::EC2::LaunchTemplate')) {
    const associate = prop(
      template,
      'LaunchTemplateData.NetworkInterfaces.0.AssociatePublicIpAddress',
    );
    findings.expect(associate === false, `${template.logicalId} may give hosts a public address`);
    findings.cite(template, { 'NetworkInterfaces.0.AssociatePublicIpAddress': associate });
  }
  for (const fn of serviceFunctions(templates)) {
    findings.expect(
      prop(fn, 'VpcConfig.SubnetIds') !== undefined,
      `${fn.logicalId} does not run in the VPC`,
    );
  }
  return findings.result();
}

/** The load balancer an `https://<name>` URL reaches: an alias record of a private hosted zone to it. */
function internalNameTarget(
  templates: StageTemplates,
  url: unknown,
): { record: FoundResource; loadBalancerId: string | undefined; zonePrivate: boolean } | undefined {
  const host = typeof url === 'string' ? /^https:\/\/([^/:]+)/.exec(url)?.[1] : undefined;
  if (host === undefined) return undefined;
  const record = findResources(templates, 'AWS::Route53::RecordSet').find(
    (found) => prop(found, 'Name') === `${host}.`,
  );
  if (record === undefined) return undefined;
  const loadBalancerId = /"Fn::GetAtt":\["([A-Za-z0-9]+)","(?:Canonical)?DNSName"\]/.exec(
    JSON.stringify(prop(record, 'AliasTarget.DNSName') ?? ''),
  )?.[1];
  const zone = findResources(templates, 'AWS::Route53::HostedZone').find(
    (found) => prop(found, 'Name') === `${host.slice(host.indexOf('.') + 1)}.`,
  );
  return {
    record,
    loadBalancerId,
    zonePrivate: zone !== undefined && Array.isArray(prop(zone, 'VPCs')),
  };
}

/** The internal hop to `loadBalancer` goes over TLS by its internal name, or (dev only) plain HTTP to its DNS name. */
function internalHop(
  findings: Findings,
  templates: StageTemplates,
  caller: string,
  url: unknown,
  loadBalancer: FoundResource | undefined,
): void {
  if (loadBalancer === undefined) return;
  const listeners = findResources(templates, 'AWS::ElasticLoadBalancingV2::Listener').filter(
    (listener) => referencedId(prop(listener, 'LoadBalancerArn')) === loadBalancer.logicalId,
  );
  for (const listener of listeners) {
    const protocol = prop(listener, 'Protocol');
    findings.expect(
      protocol === 'HTTPS' || protocol === 'TLS',
      `${listener.logicalId} listens in plain ${String(protocol)}: the internal hops carry service keys and must use TLS`,
    );
    findings.cite(listener, {
      Protocol: protocol,
      Port: prop(listener, 'Port'),
      SslPolicy: prop(listener, 'SslPolicy'),
      Certificates: prop(listener, 'Certificates'),
    });
  }
  const target = internalNameTarget(templates, url);
  if (
    !findings.expect(
      target !== undefined,
      `${caller} does not call ${loadBalancer.logicalId} by an https:// internal name with a record in the stage (${JSON.stringify(url)})`,
    )
  )
    return;
  findings.expect(
    target!.loadBalancerId === loadBalancer.logicalId,
    `${target!.record.logicalId} does not point at ${loadBalancer.logicalId}`,
  );
  findings.expect(
    target!.zonePrivate,
    `${target!.record.logicalId} is not in a private hosted zone of the VPC`,
  );
  findings.cite(target!.record, {
    Name: prop(target!.record, 'Name'),
    AliasTarget: prop(target!.record, 'AliasTarget.DNSName'),
  });
}

function internalServiceTraffic({ templates }: AuditTemplates) {
  const findings = new Findings();
  const proxy = functionNamed(templates, 'ProxyFunction');
  const credits = functionNamed(templates, 'CreditsFunction');
  const internal = findResources(templates, 'AWS::ElasticLoadBalancingV2::LoadBalancer').filter(
    (found) => !isInternetFacing(found),
  );
  const creditsAlb = internal.find((found) => found.logicalId.startsWith('CreditsAlb'));
  const gatewayNlb = internal.find((found) => prop(found, 'Type') === 'network');
  findings.expect(creditsAlb !== undefined, 'the credits service has no internal load balancer');
  findings.expect(gatewayNlb !== undefined, 'the ledger gateway has no internal load balancer');
  for (const loadBalancer of [creditsAlb, gatewayNlb])
    if (loadBalancer) findings.cite(loadBalancer, { Scheme: prop(loadBalancer, 'Scheme') });
  if (proxy) {
    internalHop(findings, templates, 'the proxy', environmentOf(proxy).CREDITS_URL, creditsAlb);
    findings.cite(proxy, { CREDITS_URL: environmentOf(proxy).CREDITS_URL });
  }
  if (credits) {
    internalHop(
      findings,
      templates,
      'the credits service',
      environmentOf(credits).GATEWAY_URL,
      gatewayNlb,
    );
    findings.cite(credits, { GATEWAY_URL: environmentOf(credits).GATEWAY_URL });
  }
  for (const certificate of findResources(templates, 'AWS::CertificateManager::Certificate').filter(
    (found) => String(prop(found, 'DomainName')).startsWith('*.'),
  )) {
    findings.cite(certificate, {
      DomainName: prop(certificate, 'DomainName'),
      ValidationMethod: prop(certificate, 'ValidationMethod'),
    });
  }
  const endpoints = findResources(templates, 'AWS::EC2::VPCEndpoint');
  for (const endpoint of endpoints)
    findings.cite(endpoint, {
      ServiceName: prop(endpoint, 'ServiceName'),
      VpcEndpointType: prop(endpoint, 'VpcEndpointType') ?? 'Gateway',
    });
  return findings.result();
}

function internalPathsNotRouted({ templates }: AuditTemplates) {
  const findings = new Findings();
  const rules = findResources(templates, 'AWS::ElasticLoadBalancingV2::ListenerRule');
  const blocked = rules.find((rule) => rule.logicalId.startsWith('PublicAlbInternalPathsNotFound'));
  if (
    findings.expect(blocked !== undefined, 'no listener rule answers 404 for the internal paths')
  ) {
    const paths = prop(blocked!, 'Conditions.0.PathPatternConfig.Values') as string[];
    findings.expect(
      paths.includes('/metrics') &&
        prop(blocked!, 'Actions.0.FixedResponseConfig.StatusCode') === '404',
      'the internal paths rule does not answer /metrics with 404',
    );
    findings.cite(blocked!, {
      Priority: prop(blocked!, 'Priority'),
      'path-pattern': paths,
      StatusCode: prop(blocked!, 'Actions.0.FixedResponseConfig.StatusCode'),
    });
  }
  const route = rules.find((rule) => rule.logicalId.startsWith('StreamingApiRoute'));
  if (route) {
    const paths = prop(route, 'Conditions.0.PathPatternConfig.Values') as string[];
    findings.expect(
      !paths.some((path) => path.startsWith('/metrics')),
      'the proxy route forwards /metrics',
    );
    findings.cite(route, {
      Priority: prop(route, 'Priority'),
      'path-pattern': paths,
      Transforms: (prop(route, 'Transforms') as { Type: string }[] | undefined)?.map(
        (transform) => transform.Type,
      ),
    });
  }
  return findings.result();
}

function adminAccess({ templates }: AuditTemplates) {
  const findings = new Findings();
  const group = findResources(templates, 'AWS::EC2::SecurityGroup').find((found) =>
    found.logicalId.startsWith('CreditsAlbSecurityGroup'),
  );
  if (!findings.expect(group !== undefined, 'the credits load balancer has no security group'))
    return findings.result();
  const rules = ingressRulesOf(templates, group!);
  findings.expect(rules.length > 0, 'nothing may reach the credits service');
  for (const rule of rules) {
    findings.expect(
      rule.source !== '0.0.0.0/0' && rule.source !== '::/0',
      `${rule.rule.logicalId} opens the credits service to any address`,
    );
    findings.cite(rule.rule, { source: rule.source, FromPort: rule.fromPort, ToPort: rule.toPort });
  }
  return findings.result();
}

function webAcl({ templates }: AuditTemplates) {
  const findings = new Findings();
  const acl = findResources(templates, 'AWS::WAFv2::WebACL')[0];
  if (!findings.expect(acl !== undefined, 'no web ACL')) return findings.result();
  const rules = (prop(acl, 'Rules') ?? []) as {
    Name: string;
    Statement: { ManagedRuleGroupStatement?: { Name: string } };
  }[];
  const groups = rules.flatMap((rule) =>
    rule.Statement.ManagedRuleGroupStatement ? [rule.Statement.ManagedRuleGroupStatement.Name] : [],
  );
  for (const required of [
    'AWSManagedRulesAmazonIpReputationList',
    'AWSManagedRulesCommonRuleSet',
    'AWSManagedRulesKnownBadInputsRuleSet',
  ]) {
    findings.expect(groups.includes(required), `the web ACL lacks ${required}`);
  }
  findings.cite(acl, {
    Scope: prop(acl, 'Scope'),
    'managed rule groups': groups,
    rules: rules.map((rule) => rule.Name),
  });
  const association = findResources(templates, 'AWS::WAFv2::WebACLAssociation')[0];
  const loadBalancer = publicLoadBalancer(templates);
  findings.expect(
    association !== undefined &&
      referencedId(prop(association, 'ResourceArn')) === loadBalancer?.logicalId,
    'the web ACL is not associated with the public load balancer',
  );
  if (association)
    findings.cite(association, {
      ResourceArn: prop(association, 'ResourceArn'),
      WebACLArn: prop(association, 'WebACLArn'),
    });
  return findings.result();
}

function headerHardening({ templates }: AuditTemplates) {
  const findings = new Findings();
  const albs = findResources(templates, 'AWS::ElasticLoadBalancingV2::LoadBalancer').filter(
    (found) => prop(found, 'Type') !== 'network',
  );
  findings.expect(albs.length > 0, 'no application load balancer');
  for (const alb of albs) {
    const attributes = loadBalancerAttributes(alb);
    const drop = attributes['routing.http.drop_invalid_header_fields.enabled'];
    const desync = attributes['routing.http.desync_mitigation_mode'];
    findings.expect(
      drop === 'true' && desync === 'strictest',
      `${alb.logicalId} keeps invalid headers or is not strictest`,
    );
    findings.cite(alb, {
      'routing.http.drop_invalid_header_fields.enabled': drop,
      'routing.http.desync_mitigation_mode': desync,
    });
  }
  return findings.result();
}

function bodyLimit({ templates }: AuditTemplates) {
  const findings = new Findings();
  const acl = findResources(templates, 'AWS::WAFv2::WebACL')[0];
  const rule = (
    (acl ? prop(acl, 'Rules') : []) as {
      Name: string;
      Action?: { Block?: { CustomResponse?: { ResponseCode?: number } } };
    }[]
  ).find((candidate) => candidate.Name === 'BodyTooLarge');
  findings.expect(
    rule?.Action?.Block?.CustomResponse?.ResponseCode === 413,
    'the web ACL has no rule answering 413 for large bodies',
  );
  if (acl && rule)
    findings.cite(acl, {
      rule: rule.Name,
      ResponseCode: rule.Action?.Block?.CustomResponse?.ResponseCode,
    });
  const settings = proxySettings(templates);
  findings.expect(
    typeof settings?.config.requestBodyBytesMax === 'number',
    'the proxy has no body limit',
  );
  if (settings)
    findings.cite(settings.proxy, {
      'PROXY_CONFIG.requestBodyBytesMax': settings.config.requestBodyBytesMax,
    });
  return findings.result();
}

function noSsh({ templates }: AuditTemplates) {
  const findings = new Findings();
  for (const group of findResources(templates, 'AWS::EC2::SecurityGroup')) {
    for (const rule of ingressRulesOf(templates, group)) {
      const from = Number(rule.fromPort);
      const to = Number(rule.toPort);
      findings.expect(!(from <= 22 && 22 <= to), `${rule.rule.logicalId} opens port 22`);
    }
  }
  const launchTemplates = findResources(templates, 'AWS::EC2::LaunchTemplate');
  findings.expectEvidence(launchTemplates, 'no ledger host launch template to read');
  for (const template of launchTemplates) {
    const data = prop(template, 'LaunchTemplateData') as Record<string, unknown>;
    findings.expect(data.KeyName === undefined, `${template.logicalId} installs an SSH key pair`);
    findings.cite(template, {
      KeyName: data.KeyName ?? '(none)',
      'MetadataOptions.HttpTokens': prop(template, 'LaunchTemplateData.MetadataOptions.HttpTokens'),
    });
  }
  const hostRoles = findResources(templates, 'AWS::IAM::Role').filter((role) =>
    JSON.stringify(prop(role, 'ManagedPolicyArns') ?? []).includes('AmazonSSMManagedInstanceCore'),
  );
  findings.expect(
    hostRoles.length > 0 || findResources(templates, 'AWS::EC2::LaunchTemplate').length === 0,
    'the hosts have no Session Manager policy',
  );
  for (const role of hostRoles)
    findings.cite(role, {
      ManagedPolicyArns: 'includes AmazonSSMManagedInstanceCore (Session Manager)',
    });
  return findings.result();
}

export const networkRules: EvidenceRules = {
  'NET-01': {
    how: 'The config policy (lib/config/policy.ts) refuses wildcard, malformed and (in production) non-HTTPS origins; the proxy answers CORS only for the configured list (lambda/proxy/app.ts).',
    template: corsOrigins,
  },
  'NET-02': {
    how: "hono's CORS middleware with the configured allow-list: an allowed origin is echoed on preflight; an unknown origin gets no Access-Control-Allow-Origin.",
  },
  'NET-03': {
    how: 'lib/constructs/hardened-alb.ts: the public ALB listens HTTPS on 443 with an ACM certificate and ELBSecurityPolicy-TLS13-1-2-Res-PQ (TLS 1.3, TLS 1.2 minimum); production refuses to synthesize without a certificate.',
    template: httpsOnly,
  },
  'NET-04': {
    how: 'lib/constructs/hardened-alb.ts: the port 80 listener only redirects to HTTPS 443 with HTTP 301.',
    template: httpRedirects,
  },
  'NET-05': {
    how: "hono's secureHeaders in both services: HSTS, X-Content-Type-Options nosniff, X-Frame-Options DENY, a default-src 'none' CSP; no Server or X-Powered-By header.",
  },
  'NET-06': {
    how: 'Only the public ALB is internet-facing, in the public subnets; functions run in private subnets, the ledger in isolated subnets; every security group opens nothing by default and admits only named callers; the execute-api endpoint of the streaming API admits 443 only from the security group of the public ALB, and the private API admits only that endpoint (lib/constructs/streaming-api.ts).',
    template: privatePlacement,
  },
  'NET-07': {
    how:
      'The public ALB reaches the proxy through a private REST API on an execute-api interface endpoint inside the VPC; ' +
      'the proxy calls the credits service on an internal ALB (lib/constructs/internal-service-alb.ts); the credits service calls the ledger gateway on an internal NLB; AWS APIs through VPC endpoints. ' +
      'Both internal hops carry service keys, so they use TLS by internal names (lib/constructs/internal-tls.ts): a public ACM certificate for *.<internal domain>, names resolved only in the VPC by a private hosted zone; production refuses to synthesize without it (lib/config/policy.ts).',
    template: internalServiceTraffic,
  },
  'NET-08': {
    how: 'The public ALB answers /metrics, /internal/*, /admin/* and /api/v1/* (the credits API) with a JSON 404 before any route (rule priority 1); the proxy route forwards only /v1/*, /health and /ready, to a private API that defines only those resources; the local /metrics servers bind to localhost.',
    template: internalPathsNotRouted,
  },
  'NET-09': {
    how: 'The credits ALB security group admits the proxy function and the configured operator CIDRs (api.creditsAdminCidrs) only; admin routes also need the admin key.',
    template: adminAccess,
  },
  'NET-10': {
    how: 'lib/constructs/api-web-acl.ts: a regional web ACL on the public ALB with the IP reputation, common and known bad inputs rule groups.',
    template: webAcl,
  },
  'NET-11': {
    how: 'Both ALBs drop invalid header fields and use the strictest desync mitigation (hardened-alb.ts, internal-service-alb.ts).',
    template: headerHardening,
  },
  'NET-12': {
    how: "The web ACL's BodyTooLarge rule answers 413 when Content-Length exceeds requestBodyBytesMax; the app's body limit answers 413 on the bytes it reads.",
    template: bodyLimit,
  },
  'NET-13': {
    how: 'No security group opens port 22 and no host has a key pair; ledger hosts carry AmazonSSMManagedInstanceCore for Session Manager; IMDSv2 only.',
    template: noSsh,
  },
};

/** Used by the not-applicable list: the only paths the public API serves. */
export function publicRoutes(
  templates: StageTemplates,
): { route: FoundResource; paths: unknown } | undefined {
  const route = findResources(templates, 'AWS::ElasticLoadBalancingV2::ListenerRule').find((rule) =>
    rule.logicalId.startsWith('StreamingApiRoute'),
  );
  return route ? { route, paths: prop(route, 'Conditions.0.PathPatternConfig.Values') } : undefined;
}
