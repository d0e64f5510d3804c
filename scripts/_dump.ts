import { writeFileSync } from 'node:fs';
import { synthesizeStage } from '../test/support/synth';
for (const stage of (process.argv[2] ?? 'dev,staging,production').split(',') as ('dev' | 'staging' | 'production')[]) {
  const s = synthesizeStage(stage);
  for (const [part, t] of Object.entries(s.templates)) writeFileSync(`/tmp/sec/${stage}-${part}.json`, JSON.stringify(t.toJSON(), null, 1));
}
