import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { type Template } from 'aws-cdk-lib/assertions';
import { synthesizeStage } from '../support/synth';

/**
 * DR-02: the runbooks an on-call engineer needs exist, carry the exact commands, and every link to
 * them (from other docs and from the alarms) resolves.
 */

const repoRoot = join(__dirname, '..', '..');
const runbooks = join(repoRoot, 'docs', 'runbooks');
const read = (name: string) => readFileSync(join(runbooks, name), 'utf8');

describe('DR-02: runbooks', () => {
  test.each([
    ['deploy-rollback.md', 'deploy and roll back', ['npx cdk deploy --all -c stage=', 'rollback']],
    [
      'credits-operations.md',
      'top-ups and corrections through the Lambda API (NET-09)',
      ['npm run credits -- topup', 'CreditsOperatorPolicyArn', '--idempotency-key'],
    ],
    [
      'keys.md',
      'key compromise and rotation',
      ['npm run keys -- revoke', 'aws secretsmanager rotate-secret'],
    ],
    [
      'ledger-restore.md',
      'ledger replica loss and full restore',
      ['tigerbeetle recover', 'restore'],
    ],
    ['incident-response.md', 'incident response', ['fields @timestamp', 'audit_event']],
    ['provider-outage.md', 'a provider outage', ['provider']],
    ['credits-down.md', 'the credits service down', ['credits']],
    ['maintenance.md', 'the maintenance calendar', ['quarterly']],
  ])('%s covers %s with its commands', (file, _what, phrases) => {
    const text = read(file);
    expect(text.length).toBeGreaterThan(1000);
    for (const phrase of phrases) expect(text.toLowerCase()).toContain(phrase.toLowerCase());
  });

  test('every relative link in the docs resolves to a file', () => {
    const docs = [
      join(repoRoot, 'README.md'),
      ...readdirSync(runbooks).map((file) => join(runbooks, file)),
    ];
    for (const doc of docs) {
      for (const [, target] of readFileSync(doc, 'utf8').matchAll(
        /\]\(((?!https?:|#)[^)#\s]+)(#[^)]*)?\)/g,
      )) {
        const path = resolve(dirname(doc), target);
        if (!existsSync(path)) throw new Error(`${doc} links to ${target}, which does not exist`);
      }
    }
  });

  test('every alarm names a runbook that exists (MON-03)', () => {
    const stage = synthesizeStage('production');
    const templates: Template[] = Object.values(stage.templates);
    let alarms = 0;
    for (const template of templates) {
      for (const alarm of Object.values(template.findResources('AWS::CloudWatch::Alarm'))) {
        alarms += 1;
        const description = JSON.stringify(
          (alarm as { Properties: { AlarmDescription?: unknown } }).Properties.AlarmDescription,
        );
        const match = /docs\/runbooks\/([a-z-]+\.md)/.exec(description);
        if (!match) throw new Error(`an alarm has no runbook link: ${description}`);
        expect(existsSync(join(runbooks, match[1]))).toBe(true);
      }
    }
    expect(alarms).toBeGreaterThan(20);
  });
});
