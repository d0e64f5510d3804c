import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, readOverridesFile, resolveStageConfig } from '../../../lib/config';
import { credentialsFromEnvironment } from '../../../lambda/proxy/providers/credentials';
import { proxyServerConfig } from '../../../lambda/proxy/server';
import { openAiAnswer } from '../../support/fake-providers';
import { startProxyFixture, type ProxyFixture } from '../../support/proxy';

/**
 * A local model without editing TypeScript: the same JSON overrides file serves `-c overrides=` at
 * synth and DEV_OVERRIDES for `npm run dev` (whose proxy builds its config with proxyServerConfig).
 */

let directory: string;
let fixture: ProxyFixture | undefined;
beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), 'dev-overrides-'));
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

const localModels = {
  // Arrays replace: the file lists every model the stage should serve.
  models: [
    {
      id: 'llama3.2',
      provider: 'openai-compatible',
      upstreamModel: 'llama3.2:1b',
      ledgerCode: 101,
      inputMicrosPerMillionTokens: 1_000_000,
      outputMicrosPerMillionTokens: 2_000_000,
      defaultMaxOutputTokens: 256,
      outputTokensMax: 2048,
    },
  ],
  embeddingModels: [
    {
      id: 'nomic-embed-text',
      provider: 'openai-compatible',
      upstreamModel: 'nomic-embed-text',
      ledgerCode: 102,
      inputMicrosPerMillionTokens: 0,
      dimensions: 8,
      dimensionsConfigurable: false,
    },
  ],
};

function overridesFile(name: string, content: unknown): string {
  const path = join(directory, name);
  writeFileSync(path, JSON.stringify(content));
  return path;
}

test("npm run dev's config builder takes the models of DEV_OVERRIDES; without it, the stage's", () => {
  const file = overridesFile('local.json', localModels);
  const config = proxyServerConfig({ STAGE: 'dev', DEV_OVERRIDES: file });
  expect(config.models.map((model) => model.id)).toEqual(['llama3.2']);
  expect(config.embeddingModels.map((model) => model.id)).toEqual(['nomic-embed-text']);
  // The same file at synth (-c overrides=FILE) gives the same models.
  expect(resolveStageConfig('dev', readOverridesFile(file)).models).toEqual(config.models);
  const shipped = proxyServerConfig({ STAGE: 'dev' });
  expect(shipped.models.map((model) => model.id)).toContain('gpt-4.1-mini');
});

test('an override that breaks the schema refuses to start, naming the field', () => {
  const file = overridesFile('broken.json', {
    models: [{ ...localModels.models[0], provider: 'unknown-provider' }],
  });
  expect(() => proxyServerConfig({ STAGE: 'dev', DEV_OVERRIDES: file })).toThrow(ConfigError);
  expect(() => proxyServerConfig({ STAGE: 'dev', DEV_OVERRIDES: file })).toThrow(
    /models\.0\.provider/,
  );
});

test('at a local start, a configuration problem is the local service refusing it, naming the overrides file', () => {
  const broken = overridesFile('broken-local.json', {
    models: [{ ...localModels.models[0], provider: 'unknown-provider' }],
  });
  const refusal = (file: string) => {
    try {
      proxyServerConfig({ STAGE: 'dev', DEV_OVERRIDES: file });
    } catch (error) {
      return (error as Error).message;
    }
    return 'no refusal';
  };
  const schemaProblem = refusal(broken);
  expect(schemaProblem).toMatch(
    new RegExp(
      `^the local service refuses to start with this configuration \\(stage 'dev' with DEV_OVERRIDES=${broken}\\): 1 configuration problem:\n  - models\\.0\\.provider`,
    ),
  );
  const notJson = overridesFile('not-json.json', 'irrelevant');
  writeFileSync(notJson, '{ "models": ');
  expect(refusal(notJson)).toContain(
    `the local service refuses to start with this configuration (stage 'dev' with DEV_OVERRIDES=${notJson}): 1 configuration problem:\n  - overrides file '${notJson}' is not valid JSON`,
  );
  for (const message of [schemaProblem, refusal(notJson)]) {
    expect(message).not.toContain('synthesize');
    expect(message).not.toContain('(overrides)');
  }
});

test('the overridden model answers through a stand-in OpenAI server named by OPENAI_COMPATIBLE_*', async () => {
  const config = proxyServerConfig({
    STAGE: 'dev',
    DEV_OVERRIDES: overridesFile('answer.json', localModels),
  });
  fixture = await startProxyFixture({
    models: config.models,
    embeddingModels: config.embeddingModels,
  });
  // The variables the README documents configure the provider exactly as the fixture's stand-in.
  expect(
    credentialsFromEnvironment({
      OPENAI_COMPATIBLE_BASE_URL: `${fixture.openAi.baseUrl}/`,
      OPENAI_COMPATIBLE_API_KEY: 'local-key',
    }).openaiCompatible,
  ).toEqual({ baseUrl: fixture.openAi.baseUrl, apiKey: 'local-key' });
  await fixture.topUp('alice', '1.00');
  fixture.openAi.script(openAiAnswer('Hello from llama.'));
  const response = await fixture.request('POST', '/v1/chat/completions', {
    body: { model: 'llama3.2', messages: [{ role: 'user', content: 'Hi' }] },
  });
  expect(response.status).toBe(200);
  expect(await response.json()).toMatchObject({
    model: 'llama3.2',
    choices: [{ message: { content: 'Hello from llama.' } }],
  });
  expect(fixture.openAi.requests[0].body).toMatchObject({ model: 'llama3.2:1b' });
  const embedded = await fixture.request('POST', '/v1/embeddings', {
    body: { model: 'nomic-embed-text', input: 'Hi' },
  });
  expect(embedded.status).toBe(200);
  // A free local model holds one micro (the ledger takes no empty hold) and is charged nothing.
  expect(embedded.headers.get('x-credits-charged-micros')).toBe('0');
  expect(fixture.openAi.requests[1].body).toMatchObject({ model: 'nomic-embed-text' });
});
