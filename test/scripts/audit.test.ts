import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultChecklistPath, repoRoot, runAuditCli } from '../../scripts/audit';
import {
  ChecklistError,
  parseChecklist,
  readChecklist,
} from '../../scripts/checklist-audit/checklist';
import { renderMarkdown } from '../../scripts/checklist-audit/render';
import { auditPassed, buildAuditReport } from '../../scripts/checklist-audit/report';
import { evidenceRules } from '../../scripts/checklist-audit/rules';
import {
  documentExclusions,
  idMatcher,
  scanDocs,
  scanTestNames,
  titledCalls,
} from '../../scripts/checklist-audit/sources';
import type {
  AuditTemplates,
  CfnTemplate,
  Citation,
  StageTemplates,
} from '../../scripts/checklist-audit/templates';
import { synthesizeStage } from '../support/synth';

/**
 * The audit report (npm run audit): the checklist parser, the test-name and document scanners, the
 * evidence rules against a real synthesized production template, and the failure when an item has
 * no proof. The production stage is synthesized once, without bundling (templates only).
 */

const fixtureChecklist = `# The security checklist

How an item is proven ("proof"):
- **template**: an assertion on the synthesized CloudFormation;
- **app**: a handler test through the real HTTP interface;

## NET: network
| id | requirement | proof | seeds |
|---|---|---|---|
| NET-03 | Public traffic is HTTPS only | template | 000 001 |
| NET-99 | A requirement with a | pipe in it | app, doc | 002 |

## ZZZ: invented
| id | requirement | proof | seeds |
|---|---|---|---|
| ZZZ-01 | Something | config | (hardening) |

Items that do not apply to this system, with the reason (the audit report lists them too):
Redis hardening (004: neither is used; the ledger replaces them); uploads and file
extensions (002).
`;

function toTemplates(stage: ReturnType<typeof synthesizeStage>): StageTemplates {
  return Object.fromEntries(
    Object.entries(stage.templates).map(([part, template]) => [
      part,
      template.toJSON() as CfnTemplate,
    ]),
  );
}

let production: StageTemplates;
let audit: AuditTemplates;
beforeAll(() => {
  production = toTemplates(synthesizeStage('production'));
  audit = { stage: 'production', templates: production, otherStages: {}, repoRoot };
});

describe('checklist parser', () => {
  test('reads ids, sections, requirements, proof kinds, the legend and the not-applicable items', () => {
    const checklist = parseChecklist(fixtureChecklist);
    expect(checklist.items.map((item) => item.id)).toEqual(['NET-03', 'NET-99', 'ZZZ-01']);
    expect(checklist.items[0]).toMatchObject({
      section: 'NET: network',
      requirement: 'Public traffic is HTTPS only',
      proof: ['template'],
      seeds: '000 001',
      line: 10,
    });
    expect(checklist.items[1]).toMatchObject({
      requirement: 'A requirement with a | pipe in it',
      proof: ['app', 'doc'],
    });
    expect(checklist.proofLegend).toEqual({
      template: 'an assertion on the synthesized CloudFormation',
      app: 'a handler test through the real HTTP interface',
    });
    expect(checklist.notApplicable).toEqual([
      {
        item: 'Redis hardening',
        seeds: '004',
        reason: 'neither is used; the ledger replaces them',
      },
      { item: 'uploads and file extensions', seeds: '002', reason: undefined },
    ]);
  });

  test('refuses an unknown proof kind, duplicate ids and a file without items', () => {
    expect(() => parseChecklist('| AUTH-01 | x | magic | 000 |')).toThrow(
      /AUTH-01 has an unknown proof kind 'magic'/,
    );
    expect(() =>
      parseChecklist('| AUTH-01 | x | app | 000 |\n| AUTH-01 | y | app | 000 |'),
    ).toThrow(/duplicate checklist ids: AUTH-01/);
    expect(() => parseChecklist('# nothing here')).toThrow(ChecklistError);
  });

  test('a missing checklist is a clear error naming where it was looked for', () => {
    expect(() => readChecklist('/nonexistent/checklist.md')).toThrow(
      /security checklist is missing: expected it at \/nonexistent\/checklist.md/,
    );
  });

  test("the real checklist is the repository's own document (docs/security-checklist.md), never a file beside the clone", () => {
    expect(defaultChecklistPath).toBe(join(repoRoot, 'docs', 'security-checklist.md'));
    // Fails, never skips, when the document is missing: the audit and CI need it.
    expect(existsSync(defaultChecklistPath)).toBe(true);
    expect(documentExclusions).toContain('docs/security-checklist.md');
  });

  test('the real checklist: every id row is found, each with known proof kinds', () => {
    const text = readFileSync(defaultChecklistPath, 'utf8');
    const rows = text
      .split('\n')
      .filter((line) => /^\| [A-Z]+-\d{2} \|/.test(line))
      .map((line) => line.split('|')[1].trim());
    const checklist = parseChecklist(text);
    expect(checklist.items.map((item) => item.id)).toEqual(rows);
    expect(rows.length).toBeGreaterThan(50);
    expect(checklist.items.find((item) => item.id === 'MON-01')?.proof).toEqual([
      'app',
      'template',
    ]);
    expect(checklist.notApplicable.map((item) => item.item)).toEqual(
      expect.arrayContaining(['uploads and file extensions', 'zero-knowledge proof endpoints']),
    );
    // Every id has an evidence rule, and every rule an id.
    expect(Object.keys(evidenceRules).sort()).toEqual([...rows].sort());
  });
});

describe('test-name and document scanners', () => {
  test('titles in any quote style, across lines and after .each(...) are found with their lines', () => {
    const source = [
      "describe('A-01: group', () => {",
      '  test.each([1, 2])(',
      '    `A-02: case %s`,',
      '  );',
      '  it("A-03: \\"quoted\\"", () => {});',
      '});',
    ].join('\n');
    expect(titledCalls(source)).toEqual([
      { kind: 'describe', title: 'A-01: group', line: 1 },
      { kind: 'test', title: 'A-02: case %s', line: 2 },
      { kind: 'it', title: 'A-03: \\"quoted\\"', line: 5 },
    ]);
  });

  test('an id matches only as a whole id', () => {
    expect(idMatcher('NET-01').test('NET-01: cors')).toBe(true);
    expect(idMatcher('NET-01').test('(NET-01, NET-02)')).toBe(true);
    expect(idMatcher('NET-01').test('NET-010')).toBe(false);
    expect(idMatcher('NET-01').test('XNET-01')).toBe(false);
  });

  test('finds the edge stack test that proves the TLS listener', () => {
    const found = scanTestNames(repoRoot, ['NET-03']).get('NET-03') ?? [];
    const edge = found.find((reference) => reference.file === 'test/stacks/edge-stack.test.ts');
    expect(edge?.title).toMatch(/^NET-03: HTTPS on 443/);
    const line = readFileSync(join(repoRoot, edge?.file ?? ''), 'utf8').split('\n')[
      (edge?.line ?? 0) - 1
    ];
    expect(line).toContain('NET-03');
  });

  test('documents name ids or are mapped; the checklist and the example report do not count as documents', () => {
    const docs = scanDocs(
      repoRoot,
      ['AUTH-07', 'NET-03'],
      new Map([['NET-03', ['docs/runbooks/deploy-rollback.md']]]),
    );
    expect(docs.get('AUTH-07')?.map((doc) => doc.file)).toContain('docs/runbooks/keys.md');
    expect(
      docs.get('NET-03')?.find((doc) => doc.file === 'docs/runbooks/deploy-rollback.md')?.mapped,
    ).toBe(true);
    for (const references of docs.values()) {
      expect(
        references.every(
          (doc) =>
            !doc.file.startsWith('docs/audit-example/') &&
            doc.file !== 'docs/audit.md' &&
            doc.file !== 'docs/security-checklist.md',
        ),
      ).toBe(true);
    }
  });
});

describe('evidence from the synthesized production templates', () => {
  test('the HTTPS listener: its logical id, TLS 1.3 policy and certificate', () => {
    const findings = evidenceRules['NET-03'].template?.(audit);
    expect(findings?.problems).toEqual([]);
    const listener = findings?.citations.find(
      (citation) => citation.type === 'AWS::ElasticLoadBalancingV2::Listener',
    );
    expect(listener?.stack).toBe('edge');
    expect(listener?.logicalId).toMatch(/^PublicAlbLoadBalancerHttps/);
    expect(listener?.values.SslPolicy).toMatch(/^ELBSecurityPolicy-TLS13-1-2-/);
    expect(
      findings?.citations.some(
        (citation) => citation.type === 'AWS::CertificateManager::Certificate',
      ),
    ).toBe(true);
  });

  test('the backup plan keeps daily snapshots 35 days; the service keys rotate every 90 days', () => {
    const backups = evidenceRules['DATA-02'].template?.(audit);
    expect(backups?.problems).toEqual([]);
    expect(
      backups?.citations.find((citation) => citation.type === 'AWS::Backup::BackupPlan')?.values,
    ).toMatchObject({ DeleteAfterDays: 35, ScheduleExpression: 'cron(0 3 * * ? *)' });
    const rotation = evidenceRules['AUTH-04'].template?.(audit);
    expect(rotation?.problems).toEqual([]);
    expect(rotation?.citations.map((citation) => citation.values.ScheduleExpression)).toEqual([
      'rate(90 days)',
      'rate(90 days)',
      'rate(90 days)',
    ]);
  });

  test('a template that breaks an item is a problem, not evidence', () => {
    const edge = JSON.parse(JSON.stringify(production.edge)) as {
      Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    };
    for (const resource of Object.values(edge.Resources)) {
      if (resource.Properties?.Protocol === 'HTTPS')
        resource.Properties.SslPolicy = 'ELBSecurityPolicy-2016-08';
    }
    const findings = evidenceRules['NET-03'].template?.({
      ...audit,
      templates: { ...production, edge },
    });
    expect(findings?.problems.join('\n')).toMatch(
      /uses ELBSecurityPolicy-2016-08, not a TLS 1.3 policy/,
    );
  });

  test('MON-01 / NET-08: the streaming path is evidence: the endpoint targets are checked over HTTPS, the route forwards only the API paths with its transforms', () => {
    const health = evidenceRules['MON-01'].template?.(audit);
    expect(health?.problems).toEqual([]);
    expect(
      health?.citations.find((citation) => citation.logicalId.startsWith('StreamingApiTargets'))
        ?.values,
    ).toMatchObject({ HealthCheckProtocol: 'HTTPS', Matcher: '200,403', TargetType: 'ip' });
    const routes = evidenceRules['NET-08'].template?.(audit);
    expect(routes?.problems).toEqual([]);
    expect(
      routes?.citations.find((citation) => citation.logicalId.startsWith('StreamingApiRoute'))
        ?.values,
    ).toMatchObject({
      'path-pattern': ['/v1/*', '/health', '/ready'],
      Transforms: ['host-header-rewrite', 'url-rewrite'],
    });
    // An endpoint group checked over plain HTTP is a problem, not evidence.
    const api = JSON.parse(JSON.stringify(production.api)) as {
      Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    };
    for (const [id, resource] of Object.entries(api.Resources))
      if (id.startsWith('StreamingApiTargets')) resource.Properties.HealthCheckProtocol = 'HTTP';
    expect(
      evidenceRules['MON-01']
        .template?.({ ...audit, templates: { ...production, api } })
        .problems.join('\n'),
    ).toMatch(/StreamingApiTargets.* does not check the endpoint over HTTPS/);
  });

  test('AUTH-09: the report lists what stays by design under the proactive controls, each with its resource and reason', () => {
    const checklist = readChecklist(defaultChecklistPath);
    const report = buildAuditReport({
      repoRoot,
      checklistPath: 'docs/security-checklist.md',
      checklist,
      templates: audit,
      compliance: { packs: [], acknowledgments: [] },
    });
    expect(report.byDesign.map((entry) => entry.control)).toEqual(
      expect.arrayContaining([
        'KMS key policy: kms:* to the account root',
        'Lambda permission: SourceArn is a pattern',
      ]),
    );
    const markdown = renderMarkdown(report, { example: true });
    expect(markdown).toContain('## Proactive controls: what stays by design');
    expect(markdown).toMatch(
      /\| Lambda permission: SourceAccount, not SourceArn \| api \| `RotationFunctionInvoke\w+` \| One rotation function serves several secrets/,
    );
    expect(
      report.items
        .find((item) => item.id === 'AUTH-09')
        ?.template?.citations.some((citation) => citation.type === 'AWS::Lambda::Permission'),
    ).toBe(true);
  });

  test('DR-01 without the staging stage is a problem', () => {
    expect(evidenceRules['DR-01'].template?.(audit).problems).toEqual([
      'the staging stage was not synthesized',
    ]);
  });
});

describe('every evidence rule against the real production templates', () => {
  test("finds no problem in any rule (what CI's npm run audit would refuse is caught here first)", () => {
    // DR-01 reads the staging stage too, which this file does not synthesize (its own test is below).
    const rules = Object.entries(evidenceRules).filter(([id]) => id !== 'DR-01');
    expect(rules.length).toBeGreaterThan(30);
    const problems = rules.flatMap(([id, rule]) =>
      (rule.template?.(audit).problems ?? []).map((problem) => `${id}: ${problem}`),
    );
    expect(problems).toEqual([]);
  });

  test("NET-06 / LOG-01 / LOG-03: a workload function outside the VPC, without a log level or JSON logs, is a problem; CDK's deploy-time providers are not workloads", () => {
    const api = JSON.parse(JSON.stringify(production.api)) as CfnTemplate & {
      Resources: Record<string, unknown>;
    };
    const bare = {
      Type: 'AWS::Lambda::Function',
      Properties: { Runtime: 'nodejs24.x', Handler: 'index.handler' },
    };
    const rules = (templates: StageTemplates) =>
      ['NET-06', 'LOG-01', 'LOG-03'].flatMap(
        (id) => evidenceRules[id].template?.({ ...audit, templates }).problems ?? [],
      );
    api.Resources.StrayFunction = bare;
    expect(rules({ ...production, api })).toEqual([
      'StrayFunction does not run in the VPC',
      'StrayFunction logs at undefined',
      'StrayFunction does not log JSON to its own log group',
    ]);
    delete api.Resources.StrayFunction;
    // The address lookups' provider (AwsCustomResource) runs only while CloudFormation deploys.
    api.Resources.AWS679f53fac002430cb0da5b7982bd2287Extra = bare;
    expect(rules({ ...production, api })).toEqual([]);
  });
});

/**
 * Each evidence rule has a compliant and a non-compliant case, in the style of cdk-nag's rule tests:
 * against the real production templates it cites evidence and reports nothing; with the resources
 * it cites taken out of the templates (the control gone), it reports a problem instead of passing
 * on nothing. Targeted breaks of single values are the tests above.
 */
const templateRules = Object.entries(evidenceRules).filter(
  // DR-01 reads the staging stage, which this file does not synthesize (its own test is above).
  ([id, rule]) => rule.template !== undefined && id !== 'DR-01',
);

/** The templates without the resources a rule cited. */
function withoutCited(templates: StageTemplates, citations: readonly Citation[]): StageTemplates {
  const copy = JSON.parse(JSON.stringify(templates)) as Record<
    string,
    { Resources?: Record<string, unknown> }
  >;
  for (const { stack, logicalId } of citations) delete copy[stack]?.Resources?.[logicalId];
  return copy as StageTemplates;
}

describe.each(templateRules)('evidence rule %s', (_id, rule) => {
  test('compliant: the production templates are evidence, with no problem', () => {
    const findings = rule.template!(audit);
    expect(findings.problems).toEqual([]);
    expect(findings.citations.length).toBeGreaterThan(0);
  });

  test('non-compliant: without the resources it cites, it reports a problem', () => {
    const { citations } = rule.template!(audit);
    const broken = rule.template!({ ...audit, templates: withoutCited(production, citations) });
    expect(broken.problems.length).toBeGreaterThan(0);
  });
});

describe('an item without proof fails the audit', () => {
  const unknownId = ['QQQ', '42'].join('-');
  let directory: string;
  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'audit-test-'));
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  function fakeChecklist(): string {
    const path = join(directory, 'checklist.md');
    writeFileSync(
      path,
      `| id | requirement | proof | seeds |\n|---|---|---|---|\n| NET-03 | HTTPS only | template | 000 |\n| ${unknownId} | Invented | app | 000 |\n`,
    );
    return path;
  }

  test('the report lists the id with what is missing; a proven item passes', () => {
    const checklist = readChecklist(fakeChecklist());
    const report = buildAuditReport({
      repoRoot,
      checklistPath: 'checklist.md',
      checklist,
      templates: audit,
      compliance: { packs: [], acknowledgments: [] },
    });
    expect(report.unproven).toEqual([unknownId]);
    expect(report.items.find((item) => item.id === unknownId)?.missing).toEqual([
      'app: no test names the id',
    ]);
    expect(report.items.find((item) => item.id === 'NET-03')?.status).toBe('enforced');
    expect(auditPassed(report)).toBe(false);
    expect(renderMarkdown(report, { example: true })).toContain(`**Without proof:** ${unknownId}.`);
  });

  test('npm run audit exits 1 and names the id; with no checklist it exits 2 and says where it looked', () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = {
      out: (text: string) => out.push(text),
      err: (text: string) => err.push(text),
      synthesize: () => ({
        synthesized: { templates: production, compliance: { packs: [], acknowledgments: [] } },
        staging: {},
      }),
    };
    expect(runAuditCli(['--checklist', fakeChecklist(), '--out', directory], io)).toBe(1);
    expect(err.join('\n')).toContain(`audit FAILED: no proof for ${unknownId}`);
    expect(out.join('\n')).toMatch(new RegExp(`${unknownId}\\s+no proof`));
    expect(readFileSync(join(directory, 'report.json'), 'utf8')).toContain(
      `"unproven": [\n    "${unknownId}"`,
    );

    err.length = 0;
    expect(runAuditCli(['--checklist', join(directory, 'absent.md')], io)).toBe(2);
    expect(err.join('\n')).toMatch(/security checklist is missing: expected it at .*absent\.md/);
  });
});

describe('CFG-01: the audit synthesizes configs the policy accepts', () => {
  let directory: string;
  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'audit-overrides-'));
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  const checklist = () => {
    const path = join(directory, 'checklist.md');
    writeFileSync(path, fixtureChecklist);
    return path;
  };

  test('the shipped production config is refused for its placeholders, with a pointer to --overrides', () => {
    const err: string[] = [];
    expect(
      runAuditCli(['--checklist', checklist(), '--out', directory], {
        out: () => undefined,
        err: (text) => err.push(text),
      }),
    ).toBe(2);
    expect(err.join('\n')).toContain("Refusing to synthesize stage 'production'");
    expect(err.join('\n')).toContain('is a placeholder');
    expect(err.join('\n')).toContain(
      'Pass your values with --overrides and --staging-overrides, or --example',
    );
  });

  test('--overrides and --staging-overrides reach the synth of each stage; --example reads CI fixtures', () => {
    const seen: unknown[] = [];
    const io = {
      out: () => undefined,
      err: () => undefined,
      synthesize: (overrides: unknown) => {
        seen.push(overrides);
        return {
          synthesized: { templates: production, compliance: { packs: [], acknowledgments: [] } },
          staging: {},
        };
      },
    };
    const fixtures = join(repoRoot, 'test', 'fixtures');
    runAuditCli(
      [
        '--checklist',
        checklist(),
        '--out',
        directory,
        '--overrides',
        join(fixtures, 'production.json'),
        '--staging-overrides',
        join(fixtures, 'staging.json'),
      ],
      io,
    );
    runAuditCli(['--checklist', checklist(), '--out', directory, '--example'], io);
    const expected = {
      production: JSON.parse(readFileSync(join(fixtures, 'production.json'), 'utf8')) as unknown,
      staging: JSON.parse(readFileSync(join(fixtures, 'staging.json'), 'utf8')) as unknown,
    };
    expect(seen).toEqual([expected, expected]);
  });
});
