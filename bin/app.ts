#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { addComplianceChecks } from '../lib/compliance';
import { buildStage } from '../lib/app';
import { ConfigError, readOverridesFile, resolveStageConfig } from '../lib/config';
import { findPolicyNotices } from '../lib/config/policy';

// The only place that reads the outside world: the CLI's context (-c stage=..., -c overrides=...).
const app = new App();
const stage: unknown = app.node.tryGetContext('stage') ?? 'dev';
const overridesPath: unknown = app.node.tryGetContext('overrides');

try {
  const overrides =
    typeof overridesPath === 'string' ? readOverridesFile(overridesPath) : undefined;
  const config = resolveStageConfig(String(stage), overrides);
  for (const notice of findPolicyNotices(config))
    console.error(`Note for stage '${config.stage}': ${notice}`);
  addComplianceChecks(app);
  buildStage(app, config);
  app.synth();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}
