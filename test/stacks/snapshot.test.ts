import { stageNames } from '../../lib/config';
import { synthesizeStage, type SynthesizedStage } from '../support/synth';

/**
 * Snapshots of every stack of every stage, so that any change to the synthesized infrastructure is
 * seen in review. Asset hashes change with every build of bundled code, so they are normalized.
 */
function normalized(template: Record<string, unknown>): unknown {
  const resources = { ...(template.Resources as Record<string, unknown>) };
  delete resources.CDKMetadata; // carries the CDK version, not our infrastructure
  const text = JSON.stringify({ ...template, Resources: resources }).replace(
    /[0-9a-f]{64}/g,
    '[ASSET_HASH]',
  );
  return JSON.parse(text);
}

const parts: (keyof SynthesizedStage['templates'])[] = [
  'network',
  'edge',
  'ledger',
  'api',
  'observability',
];

describe.each(stageNames)('%s stage', (stage) => {
  let synthesized: SynthesizedStage;
  beforeAll(() => {
    synthesized = synthesizeStage(stage);
  });

  test('every stack has a snapshot', () => {
    expect(Object.keys(synthesized.templates).sort()).toEqual([...parts].sort());
  });

  test.each(parts)('%s stack matches its snapshot', (part) => {
    expect(normalized(synthesized.templates[part].toJSON())).toMatchSnapshot();
  });
});
