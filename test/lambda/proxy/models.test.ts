import { resolveStageConfig } from '../../../lib/config';
import { startProxyFixture, testModels, type ProxyFixture } from '../../support/proxy';

/** GET /v1/models and GET /v1/models/{id}: OpenAI's model objects, the same in the list and alone. */

let fixture: ProxyFixture;
beforeAll(async () => {
  fixture = await startProxyFixture({
    rateLimit: { enabled: false, requestsPerMinute: 60 },
    models: [
      ...testModels,
      {
        ...testModels[1],
        id: 'meta-llama/Llama-3.1-8B.Instruct',
        upstreamModel: 'llama',
        ledgerCode: 301,
      },
    ],
  });
});
afterAll(() => fixture.close());

interface ModelObject {
  id: string;
  object: string;
  created: number;
  owned_by: string;
}

async function listed(): Promise<ModelObject[]> {
  const response = await fixture.request('GET', '/v1/models');
  return ((await response.json()) as { data: ModelObject[] }).data;
}

test('every listed model, chat and embedding, is retrieved alone as the same object', async () => {
  const models = await listed();
  expect(models.map((model) => model.id)).toEqual(
    expect.arrayContaining([
      'gemini-2.5-flash',
      'echo',
      'text-embedding-3-small',
      'echo-embedding',
    ]),
  );
  for (const model of models) {
    const response = await fixture.request('GET', `/v1/models/${encodeURIComponent(model.id)}`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(model);
    expect(model).toMatchObject({ object: 'model', created: 0, owned_by: expect.any(String) });
  }
});

test('an id with / and . is found sent as is and percent-encoded (as the SDKs send it)', async () => {
  for (const path of [
    '/v1/models/meta-llama/Llama-3.1-8B.Instruct',
    '/v1/models/meta-llama%2FLlama-3.1-8B.Instruct',
  ]) {
    const response = await fixture.request('GET', path);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ id: 'meta-llama/Llama-3.1-8B.Instruct' });
  }
});

test('an unknown model is a 404 in the API error shape, with the request id', async () => {
  const response = await fixture.request('GET', '/v1/models/gpt-unknown');
  expect(response.status).toBe(404);
  expect(await response.json()).toEqual({
    error: { message: expect.any(String), type: 'not_found_error', code: 'model_not_found' },
    request_id: response.headers.get('x-request-id'),
  });
});

test('AUTH-01: retrieving a model needs a key', async () => {
  expect((await fixture.request('GET', '/v1/models/echo', { key: null })).status).toBe(401);
});

test('the shipped stages serve an openai-compatible chat model and embedding models, priced', () => {
  const config = resolveStageConfig('dev');
  expect(config.models).toContainEqual(
    expect.objectContaining({
      id: 'gpt-4.1-mini',
      provider: 'openai-compatible',
      inputMicrosPerMillionTokens: 400_000,
      outputMicrosPerMillionTokens: 1_600_000,
    }),
  );
  expect(config.embeddingModels).toContainEqual(
    expect.objectContaining({
      id: 'text-embedding-3-small',
      provider: 'openai-compatible',
      inputMicrosPerMillionTokens: 20_000,
    }),
  );
});

test('a model id used twice across chat and embedding models refuses to synthesize', () => {
  expect(() =>
    resolveStageConfig('dev', {
      embeddingModels: [
        {
          id: 'echo',
          provider: 'echo',
          upstreamModel: 'echo',
          ledgerCode: 301,
          inputMicrosPerMillionTokens: 1,
          dimensions: 8,
          dimensionsConfigurable: false,
        },
      ],
    }),
  ).toThrow('models and embeddingModels list a model id twice');
});
