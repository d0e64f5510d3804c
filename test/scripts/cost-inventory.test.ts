import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { costInventory, type CostInventory } from '../../scripts/cost-inventory';
import type { CfnTemplate, StageTemplates } from '../../scripts/checklist-audit/templates';
import { synthesizeStage } from '../support/synth';

/**
 * The README's cost table is counted from the synthesized templates: every count it shows matches
 * the inventory of that stage (load balancers, NAT gateways, endpoint ENIs, hosts, volumes, WAF
 * rules, keys, secrets, alarms, zones), so a change to the stacks that changes the bill fails here
 * until the table is redone.
 */

const stages = ['dev', 'staging', 'production'] as const;
const inventories = new Map<string, CostInventory>();

beforeAll(() => {
  for (const stage of stages) {
    const { templates } = synthesizeStage(stage);
    const json: StageTemplates = Object.fromEntries(
      Object.entries(templates).map(([part, template]) => [part, template.toJSON() as CfnTemplate]),
    );
    inventories.set(stage, costInventory(json));
  }
});

/** The cost table's rows: label, then one cell per stage (dev, staging, production). */
function costTable(): Map<string, string[]> {
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
  const section = readme.slice(
    readme.indexOf('## What it costs'),
    readme.indexOf('## Security and audit evidence'),
  );
  const rows = section
    .split('\n')
    .filter(
      (line) => line.startsWith('| ') && !line.startsWith('| item') && !line.startsWith('|---'),
    );
  return new Map(
    rows.map((line) => {
      const cells = line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim());
      return [cells[0], cells.slice(1)];
    }),
  );
}

function row(table: Map<string, string[]>, labelStart: string): string[] {
  const found = [...table].find(([label]) => label.startsWith(labelStart));
  if (!found) throw new Error(`the README cost table has no row starting '${labelStart}'`);
  return found[1];
}

describe('the README cost table matches the synthesized templates', () => {
  test('the inventory counts what production deploys: two ALBs and an NLB, endpoint ENIs in every AZ, six hosts', () => {
    const production = inventories.get('production');
    expect(production).toMatchObject({
      applicationLoadBalancers: 2,
      networkLoadBalancers: 1,
      natGateways: 3,
    });
    expect(production?.interfaceEndpointEnis).toBe(
      (production?.interfaceEndpointServices ?? 0) * 3,
    );
    expect(Object.values(production?.instances ?? {}).reduce((sum, count) => sum + count, 0)).toBe(
      6,
    );
    expect(inventories.get('dev')?.interfaceEndpointEnis).toBe(
      inventories.get('dev')?.interfaceEndpointServices,
    );
  });

  test.each(stages.map((stage, index) => [stage, index] as const))(
    "every count of %s in the table is the templates' count",
    (stage, column) => {
      const table = costTable();
      const inventory = inventories.get(stage) as CostInventory;
      const hosts = Object.entries(inventory.instances)
        .map(([type, count]) => `${count} ${type}`)
        .join(', ');
      const expected: [string, string][] = [
        ['NAT gateways', `${inventory.natGateways}:`],
        ['interface endpoint ENIs', `${inventory.interfaceEndpointEnis}:`],
        ['application load balancers', `${inventory.applicationLoadBalancers}:`],
        ['network load balancer', `${inventory.networkLoadBalancers}:`],
        ['ledger hosts', `${hosts}:`],
        ['gp3 GiB', `${inventory.dataVolumeGiB} + ${inventory.rootVolumeGiB} GiB:`],
        ['WAF rules', `${inventory.wafRules} rules:`],
        [
          'KMS keys',
          `${inventory.kmsKeys}, ${inventory.secrets}, ${inventory.alarms}, ${inventory.dashboards}, ${inventory.hostedZones}:`,
        ],
      ];
      for (const [label, start] of expected)
        expect([label, row(table, label)[column]]).toEqual([
          label,
          expect.stringMatching(new RegExp(`^${start.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`)),
        ]);
      // The streaming path's endpoint: counted from the templates once it exists, one ENI per endpoint AZ.
      const executeApi = row(table, 'execute-api endpoint')[column];
      const expectedEnis =
        inventory.executeApiEndpointEnis ||
        inventory.interfaceEndpointEnis / inventory.interfaceEndpointServices;
      expect(executeApi).toMatch(new RegExp(`^${expectedEnis}:`));
    },
  );

  test('the total of each stage is the sum of its rows, within rounding', () => {
    const table = costTable();
    stages.forEach((stage, column) => {
      const dollars = (cell: string) =>
        Number(/\$([\d,]+)/.exec(cell)?.[1].replace(/,/g, '') ?? NaN);
      const rows = [...table].filter(([label]) => !label.includes('total'));
      const sum = rows.reduce((total, [, cells]) => total + dollars(cells[column]), 0);
      const total = dollars(row(table, '**total')[column]);
      expect([stage, Math.abs(total - sum) <= 10]).toEqual([stage, true]);
    });
  });
});
