import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stageNames, type StageName } from '../../lib/config';
import { synthesizeStage, type SynthesizedStage } from '../support/synth';

/**
 * What makes a first deploy retryable and every later deploy propagate, on every stage's templates:
 * resources with fixed physical names are not retained when their own first create rolls back
 * (DR-04: still retained on delete), and cross-stack references are strong (exports and imports),
 * so a producer change that would leave a consumer stale fails loudly instead.
 */

type Part = keyof SynthesizedStage['templates'];
interface Resource {
  Type: string;
  Properties?: Record<string, unknown>;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
}
interface Template {
  Resources: Record<string, Resource>;
  Outputs?: Record<string, { Value: unknown; Export?: { Name: unknown } }>;
}

const stages = {} as Record<StageName, SynthesizedStage>;
beforeAll(() => {
  for (const stage of stageNames) stages[stage] = synthesizeStage(stage);
});

function templatesOf(stage: StageName): [Part, Template][] {
  return Object.entries(stages[stage].templates).map(([part, template]) => [
    part as Part,
    template.toJSON() as Template,
  ]);
}

/** Properties that set a resource's physical name (CloudFormation names them *Name, or Name). */
function physicalNameProperties(resource: Resource): string[] {
  return Object.keys(resource.Properties ?? {}).filter(
    (key) =>
      /^(Name|[A-Z][A-Za-z]*Name)$/.test(key) && !nonNameProperties.has(`${resource.Type}.${key}`),
  );
}
/** *Name properties that do not name the resource itself. */
const nonNameProperties = new Set([
  'AWS::CertificateManager::Certificate.DomainName',
  'AWS::CloudWatch::Alarm.MetricName',
  'AWS::Logs::MetricFilter.MetricName',
]);

describe('DR-04: a rolled-back first deploy can simply be run again', () => {
  test.each(stageNames)(
    '%s: no resource with a fixed physical name is retained when its first create rolls back',
    (stage) => {
      const offenders: string[] = [];
      for (const [part, template] of templatesOf(stage)) {
        for (const [id, resource] of Object.entries(template.Resources)) {
          const names = physicalNameProperties(resource);
          if (names.length > 0 && resource.DeletionPolicy === 'Retain')
            offenders.push(`${part}/${id} (${resource.Type}.${names.join(', ')})`);
        }
      }
      expect(offenders).toEqual([]);
    },
  );

  test.each(stageNames)(
    '%s: the fixed-name vault and log groups (WAF, API Gateway execution) are RetainExceptOnCreate: kept on delete and replacement',
    (stage) => {
      const fixedNames = templatesOf(stage).flatMap(([, template]) =>
        Object.values(template.Resources).filter(
          (resource) =>
            ['AWS::Backup::BackupVault', 'AWS::Logs::LogGroup'].includes(resource.Type) &&
            physicalNameProperties(resource).length > 0,
        ),
      );
      expect(fixedNames.map((resource) => resource.Type).sort()).toEqual([
        'AWS::Backup::BackupVault',
        'AWS::Logs::LogGroup',
        'AWS::Logs::LogGroup',
      ]);
      for (const resource of fixedNames)
        expect(resource).toMatchObject({
          DeletionPolicy: 'RetainExceptOnCreate',
          UpdateReplacePolicy: 'Retain',
        });
    },
  );
});

describe('cross-stack references fail loudly or propagate in one cdk deploy --all', () => {
  test('cdk.json asks for strong references (exports), not weak ones (Fn::GetStackOutput)', () => {
    const cdkJson = JSON.parse(readFileSync(join(__dirname, '..', '..', 'cdk.json'), 'utf8')) as {
      context: Record<string, unknown>;
    };
    expect(cdkJson.context['@aws-cdk/core:defaultCrossStackReferences']).toBe('strong');
  });

  test.each(stageNames)(
    '%s: no Fn::GetStackOutput; every import is an export of a stack the consumer depends on',
    (stage) => {
      const templates = templatesOf(stage);
      const exporters = new Map<string, Part>();
      for (const [part, template] of templates) {
        for (const output of Object.values(template.Outputs ?? {}))
          if (typeof output.Export?.Name === 'string') exporters.set(output.Export.Name, part);
      }
      for (const [part, template] of templates) {
        const text = JSON.stringify(template);
        expect(text).not.toContain('Fn::GetStackOutput');
        const imported = [...text.matchAll(/"Fn::ImportValue":"([^"]+)"/g)].map(
          (match) => match[1],
        );
        const dependencies = stages[stage].stacks[part].dependencies.map(
          (stack) => stack.stackName,
        );
        for (const name of imported) {
          const producer = exporters.get(name);
          expect(producer).toBeDefined();
          // CDK deploys the producer first, in the same cdk deploy --all.
          expect(dependencies).toContain(stages[stage].stacks[producer as Part].stackName);
        }
      }
    },
  );

  test.each(stageNames)(
    '%s: the alarms split imported values, never weak references (Fn::Split over Fn::ImportValue)',
    (stage) => {
      const observability = JSON.stringify(stages[stage].templates.observability.toJSON());
      const splits = [...observability.matchAll(/"Fn::Split":\["\/",(\{[^}]*\})\]/g)].map(
        (match) => match[1],
      );
      expect(splits.length).toBeGreaterThan(0);
      for (const split of splits)
        expect(split).toMatch(/^\{"Fn::ImportValue":"ai-proxy-[a-z]+-(api|edge):/);
    },
  );
});
