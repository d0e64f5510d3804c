import { bedrockRegionProblems } from './bedrock';
import { ledgerHostProblems } from './ledger-hosts';
import type { StageConfig } from './schema';
import { timeoutChainOf, timeoutChainProblems } from './timeouts';

/**
 * Security policy checked at synth time (CFG-01). Each rule returns the problems it finds, worded
 * for the platform team and tagged with the checklist id it protects, so a refused synth lists
 * every problem at once.
 */

type Rule = (config: StageConfig) => string[];

/** Production stays above these floors. */
export const productionReplicaCountMin = 3;
export const productionLogRetentionDaysMin = 365;
export const productionAvailabilityZoneCountMin = 3;
/** Daily ledger snapshots are kept at least this long in production (DATA-02). */
export const productionLedgerBackupRetentionDaysMin = 35;
/** Lambda keeps at least this many concurrent executions of an account unreserved (its own rule). */
export const lambdaUnreservedConcurrencyMin = 100;

/** The concurrency the stage's functions reserve. */
export function reservedConcurrencyTotal(config: StageConfig): number {
  return (config.api.proxyReservedConcurrency ?? 0) + (config.api.creditsReservedConcurrency ?? 0);
}

/** The account quota the stage needs: what it reserves plus what Lambda keeps unreserved. */
export function requiredAccountConcurrency(config: StageConfig): number {
  return reservedConcurrencyTotal(config) + lambdaUnreservedConcurrencyMin;
}

function corsOriginProblems(config: StageConfig): string[] {
  const problems: string[] = [];
  config.cors.allowedOrigins.forEach((origin, index) => {
    const where = `cors.allowedOrigins[${index}] '${origin}'`;
    if (origin.includes('*')) {
      problems.push(`${where} is a wildcard; list each origin explicitly (NET-01)`);
      return;
    }
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      problems.push(`${where} is not a URL origin such as https://app.example.com (NET-01)`);
      return;
    }
    if (parsed.origin !== origin) {
      problems.push(
        `${where} must be exactly scheme://host[:port], no path or trailing slash (NET-01)`,
      );
      return;
    }
    if (config.stage === 'production' && parsed.protocol !== 'https:') {
      problems.push(`${where} is not HTTPS; production origins must be HTTPS (NET-01)`);
    }
  });
  return problems;
}

function topologyProblems(config: StageConfig): string[] {
  const problems: string[] = [];
  const azCount = config.availabilityZones.length;
  if (new Set(config.availabilityZones).size !== azCount) {
    problems.push('availabilityZones lists a zone twice');
  }
  for (const zone of config.availabilityZones) {
    if (!zone.startsWith(config.region))
      problems.push(`availability zone '${zone}' is not in region '${config.region}'`);
  }
  if (config.network.natGateways > azCount) {
    problems.push(
      `network.natGateways (${config.network.natGateways}) exceeds the ${azCount} availability zones`,
    );
  }
  if (config.network.interfaceEndpointAzCount > azCount) {
    problems.push(
      `network.interfaceEndpointAzCount (${config.network.interfaceEndpointAzCount}) exceeds the ${azCount} availability zones`,
    );
  }
  return problems;
}

function consistencyProblems(config: StageConfig): string[] {
  const problems: string[] = [];
  if (config.certificate?.kind === 'create' && config.domainName === undefined) {
    problems.push("certificate.kind 'create' needs domainName (NET-03)");
  }
  if (config.certificate?.kind === 'create' && config.certificate.hostedZone && config.domainName) {
    const zone = config.certificate.hostedZone.name;
    if (config.domainName !== zone && !config.domainName.endsWith(`.${zone}`)) {
      problems.push(`domainName '${config.domainName}' is not inside hosted zone '${zone}'`);
    }
  }
  const reserved = reservedConcurrencyTotal(config);
  if (
    reserved > 0 &&
    requiredAccountConcurrency(config) > config.api.accountConcurrentExecutionsQuota
  ) {
    problems.push(
      `api: the reserved concurrency (${reserved}) plus the ${lambdaUnreservedConcurrencyMin} Lambda keeps unreserved needs an account quota of ` +
        `${requiredAccountConcurrency(config)}, above api.accountConcurrentExecutionsQuota (${config.api.accountConcurrentExecutionsQuota}); ` +
        'request a quota increase (Service Quotas L-B99A9384) or reserve less',
    );
  }
  for (const model of config.models) {
    if (model.defaultMaxOutputTokens > model.outputTokensMax) {
      problems.push(`models '${model.id}': defaultMaxOutputTokens exceeds outputTokensMax`);
    }
  }
  const modelIds = config.models.map((model) => model.id);
  if (new Set(modelIds).size !== modelIds.length) problems.push('models lists a model id twice');
  // One namespace: GET /v1/models/{id} answers one model per id.
  const allIds = [...modelIds, ...config.embeddingModels.map((model) => model.id)];
  if (new Set(allIds).size !== allIds.length)
    problems.push('models and embeddingModels list a model id twice');
  problems.push(...fallbackProblems(config.models));
  // One numbering for chat and embedding models: both are billed, and receipts name them by it.
  const ledgerCodes = [...config.models, ...config.embeddingModels].map(
    (model) => model.ledgerCode,
  );
  if (new Set(ledgerCodes).size !== ledgerCodes.length)
    problems.push(
      'models and embeddingModels list a ledgerCode twice: every model needs its own, or its charges could not be told apart on the ledger',
    );
  if (
    config.rateLimit.enabled &&
    config.edge.waf.keyRequestsPerMinute < config.rateLimit.requestsPerMinute
  ) {
    problems.push(
      `edge.waf.keyRequestsPerMinute (${config.edge.waf.keyRequestsPerMinute}) is below rateLimit.requestsPerMinute ` +
        `(${config.rateLimit.requestsPerMinute}): the WAF would block before the app's exact limit answers 429 (RATE-04)`,
    );
  }
  return problems;
}

function productionProblems(config: StageConfig): string[] {
  if (config.stage !== 'production') return [];
  const problems: string[] = [];
  if (config.logLevel === 'DEBUG')
    problems.push('logLevel DEBUG is refused in production; use INFO or WARN (LOG-01)');
  if (!config.rateLimit.enabled)
    problems.push('rateLimit.enabled is false; production cannot turn rate limiting off (RATE-01)');
  if (config.certificate === undefined)
    problems.push('certificate is missing; production serves HTTPS only (NET-03)');
  if (config.ledger.replicaCount < productionReplicaCountMin) {
    problems.push(
      `ledger.replicaCount ${config.ledger.replicaCount} is below ${productionReplicaCountMin}; a production ledger must survive a replica loss (DATA-01)`,
    );
  }
  if (!config.deletionProtection)
    problems.push(
      'deletionProtection is false; production must protect its load balancer and ledger (DR-04)',
    );
  if (config.alarmEmail === undefined)
    problems.push('alarmEmail is missing; production alarms need a recipient (MON-03)');
  if (config.logRetentionDays < productionLogRetentionDaysMin) {
    problems.push(
      `logRetentionDays ${config.logRetentionDays} is below ${productionLogRetentionDaysMin} days (LOG-03)`,
    );
  }
  if (config.availabilityZones.length < productionAvailabilityZoneCountMin) {
    problems.push(
      `production needs at least ${productionAvailabilityZoneCountMin} availability zones, found ${config.availabilityZones.length} (DR-01)`,
    );
  }
  if (config.network.natGateways < config.availabilityZones.length) {
    problems.push(
      'production needs one NAT gateway per availability zone (no single point of failure)',
    );
  }
  for (const cidr of config.api.creditsAdminCidrs) {
    if (Number(cidr.split('/')[1]) < 16)
      problems.push(
        `api.creditsAdminCidrs '${cidr}' is broader than a /16; admin access is for operators' networks only (NET-09)`,
      );
  }
  return [...problems, ...productionLedgerProblems(config)];
}

function productionLedgerProblems(config: StageConfig): string[] {
  const problems: string[] = [];
  const { ledger } = config;
  // Below the replica floor, that problem is already reported; this one is about the spread.
  if (
    ledger.replicaCount >= productionReplicaCountMin &&
    ledger.replicaCount < config.availabilityZones.length
  ) {
    problems.push(
      `ledger.replicaCount ${ledger.replicaCount} leaves an availability zone without a replica; production spreads replicas over all ${config.availabilityZones.length} (DATA-01)`,
    );
  }
  if (ledger.backup.retentionDays < productionLedgerBackupRetentionDaysMin) {
    problems.push(
      `ledger.backup.retentionDays ${ledger.backup.retentionDays} is below ${productionLedgerBackupRetentionDaysMin} days (DATA-02)`,
    );
  }
  return problems;
}

/**
 * Names that can never be a real deployment's: the documentation domains (RFC 2606 and 6761) and
 * the account ids of AWS's documentation. The shipped staging and production configs use them as
 * placeholders, so a deploy that forgot to replace one fails at synth, not half-way through.
 */
const placeholderDomainPattern = /(^|\.)(example\.(com|net|org)|example|test|invalid|localhost)$/;
const placeholderAccountIds = ['123456789012', '111122223333', '444455556666'];
const placeholderMarkerPattern = /change[\s_-]*me/i;

/** Every string value of the config with its path (cors.allowedOrigins[0]). */
function stringValues(value: unknown, path: string): [string, string][] {
  if (typeof value === 'string') return [[path, value]];
  if (Array.isArray(value))
    return value.flatMap((item, index) => stringValues(item, `${path}[${index}]`));
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([key, item]) =>
      stringValues(item, path === '' ? key : `${path}.${key}`),
    );
  }
  return [];
}

/** The host a value names: of a URL, an e-mail address or a bare domain name (with a dot). */
function hostOf(value: string): string | undefined {
  if (/^[^@\s]+@[^@\s]+$/.test(value)) return value.split('@')[1];
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    try {
      return new URL(value).hostname;
    } catch {
      return undefined;
    }
  }
  return /^([a-z0-9-]+\.)+[a-z0-9-]+$/i.test(value) ? value.toLowerCase() : undefined;
}

/** Staging and production are deployed for real: no placeholder may reach their templates (CFG-01). */
function placeholderProblems(config: StageConfig): string[] {
  if (config.stage === 'dev') return [];
  const problems: string[] = [];
  for (const [path, value] of stringValues(config, '')) {
    const reserved = placeholderDomainPattern.exec(hostOf(value) ?? '')?.[2];
    if (placeholderMarkerPattern.test(value))
      problems.push(`${path} '${value}' is a placeholder (CHANGE ME); set the real value (CFG-01)`);
    else if (reserved !== undefined)
      problems.push(
        `${path} '${value}' is a placeholder (${reserved} is reserved for documentation); set the real value (CFG-01)`,
      );
    else if (
      placeholderAccountIds.some((account) => value === account || value.includes(`:${account}:`))
    ) {
      problems.push(
        `${path} '${value}' names an AWS documentation account; set the real value (CFG-01)`,
      );
    }
  }
  return problems;
}

/**
 * The internal hops carry service keys (the proxy's credits key, the gateway token): production
 * refuses them in plain text (NET-07), and the names must sit under the zone that validates them.
 */
function internalTransportProblems(config: StageConfig): string[] {
  const problems: string[] = [];
  const tls = config.internalTls;
  if (config.stage === 'production' && tls === undefined) {
    problems.push(
      'internalTls is missing; production refuses plaintext internal hops, which carry service keys (NET-07)',
    );
  }
  const zone = tls?.validationHostedZone?.name;
  if (tls && zone && tls.domain !== zone && !tls.domain.endsWith(`.${zone}`)) {
    problems.push(
      `internalTls.domain '${tls.domain}' is not inside its validation hosted zone '${zone}' (NET-07)`,
    );
  }
  if (tls && config.domainName === tls.domain) {
    problems.push(
      `internalTls.domain '${tls.domain}' is the public API's name; use a sub-domain of its own, e.g. internal.<domain> (NET-07)`,
    );
  }
  return problems;
}

/** A created certificate without a hosted zone waits for someone to add its DNS validation record. */
export function certificateWaitsForManualValidation(config: StageConfig): boolean {
  return config.certificate?.kind === 'create' && config.certificate.hostedZone === undefined;
}

/** The internal names' certificate is created too; without its zone, it waits the same way. */
export function internalCertificateWaitsForManualValidation(config: StageConfig): boolean {
  return config.internalTls !== undefined && config.internalTls.validationHostedZone === undefined;
}

function certificateValidationProblems(config: StageConfig): string[] {
  if (config.stage !== 'production') return [];
  const problems: string[] = [];
  if (certificateWaitsForManualValidation(config)) {
    problems.push(
      "certificate.kind 'create' without certificate.hostedZone would leave the production deploy waiting for a DNS " +
        'validation record added by hand; give hostedZone { id, name } (records created automatically) or import a certificate (NET-03)',
    );
  }
  if (internalCertificateWaitsForManualValidation(config)) {
    problems.push(
      'internalTls without validationHostedZone would leave the production deploy waiting for a DNS validation record ' +
        'added by hand; give internalTls.validationHostedZone { id, name }, the public zone above internalTls.domain (NET-07)',
    );
  }
  return problems;
}

const timeoutProblems: Rule = (config) => timeoutChainProblems(timeoutChainOf(config));

const rules: Rule[] = [
  corsOriginProblems,
  topologyProblems,
  consistencyProblems,
  ledgerHostProblems,
  timeoutProblems,
  productionProblems,
  placeholderProblems,
  certificateValidationProblems,
  internalTransportProblems,
  bedrockRegionProblems,
];

/**
 * What a deploy of an acceptable config should know before it starts (printed by synth and by
 * `npm run preflight`); none of these refuses the synth.
 */
export function findPolicyNotices(config: StageConfig): string[] {
  const notices: string[] = [];
  if (certificateWaitsForManualValidation(config)) {
    notices.push(
      `the certificate for ${config.domainName ?? '(no domain)'} is DNS-validated by hand: the edge stack's deploy waits (up to 72 hours) ` +
        'until the validation CNAME shown in the ACM console (and in the CloudFormation events) exists in your DNS; ' +
        'give certificate.hostedZone to create it automatically',
    );
  }
  if (internalCertificateWaitsForManualValidation(config)) {
    notices.push(
      `the internal certificate for *.${config.internalTls?.domain} is DNS-validated by hand: the network stack's deploy waits ` +
        'until its validation CNAME exists in your public DNS; give internalTls.validationHostedZone to create it automatically',
    );
  }
  return notices;
}

/** Every problem with a schema-valid config, in a stable order; empty when the config is acceptable. */
export function findPolicyProblems(config: StageConfig): string[] {
  return rules.flatMap((rule) => rule(config));
}

/**
 * Fallback lists name other configured models, each once, never the model itself, and the lists
 * form no cycle: a request to a model reaches exactly its own list (lists are not followed
 * transitively), and a graph without cycles reads one way when an operator asks "what can a request
 * to this model end up on".
 */
export function fallbackProblems(models: StageConfig['models']): string[] {
  const problems: string[] = [];
  const known = new Map(models.map((model) => [model.id, model]));
  for (const model of models) {
    const fallbacks = model.fallbacks ?? [];
    if (new Set(fallbacks).size !== fallbacks.length)
      problems.push(`models '${model.id}': fallbacks names a model twice`);
    for (const fallback of fallbacks) {
      if (fallback === model.id)
        problems.push(`models '${model.id}': fallbacks names the model itself`);
      else if (!known.has(fallback))
        problems.push(`models '${model.id}': fallback '${fallback}' is not a configured model id`);
    }
  }
  const cycle = fallbackCycle(known);
  if (cycle) problems.push(`models: the fallbacks form a cycle (${cycle.join(' -> ')})`);
  return problems;
}

/** The first cycle in the fallback graph (depth-first), or undefined. Self-references are reported apart. */
function fallbackCycle(models: Map<string, StageConfig['models'][number]>): string[] | undefined {
  const done = new Set<string>();
  const visit = (id: string, path: string[]): string[] | undefined => {
    if (path.includes(id)) return [...path.slice(path.indexOf(id)), id];
    if (done.has(id)) return undefined;
    for (const next of models.get(id)?.fallbacks ?? []) {
      if (next === id) continue;
      const cycle = visit(next, [...path, id]);
      if (cycle) return cycle;
    }
    done.add(id);
    return undefined;
  };
  for (const id of models.keys()) {
    const cycle = visit(id, []);
    if (cycle) return cycle;
  }
  return undefined;
}
