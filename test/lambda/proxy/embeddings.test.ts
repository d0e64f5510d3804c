import { fakeVector, geminiError } from '../../support/fake-providers';
import { startProxyFixture, type ProxyFixture } from '../../support/proxy';

/**
 * POST /v1/embeddings over HTTP, against stand-ins speaking Gemini's batchEmbedContents and OpenAI's
 * /embeddings, billed through the ledger and checked to the micro. Test prices (support/proxy.ts):
 * gemini-embedding-001 1 micro per token, text-embedding-3-small 2, echo-embedding 1.
 */

let fixture: ProxyFixture;
afterEach(() => fixture.close());

const startingMicros = 10_000_000n;
const embed = (body: unknown, headers: Record<string, string> = {}, key?: string) =>
  fixture.request('POST', '/v1/embeddings', { body, headers, key });

interface EmbeddingsBody {
  object: string;
  data: { object: string; index: number; embedding: number[] | string }[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

function decodeBase64(text: string): number[] {
  const bytes = Buffer.from(text, 'base64');
  return Array.from({ length: bytes.length / 4 }, (_, index) => bytes.readFloatLE(index * 4));
}

describe('POST /v1/embeddings', () => {
  beforeEach(async () => {
    fixture = await startProxyFixture();
    await fixture.topUp('alice', '10.00');
  });

  test('DATA-06: openai-compatible: the inputs reach /embeddings, the vectors come back in order, the reported tokens are charged', async () => {
    const response = await embed({
      model: 'text-embedding-3-small',
      input: ['alpha', 'beta gamma'],
      user: 'end-user-7',
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as EmbeddingsBody;
    expect(body).toMatchObject({
      object: 'list',
      model: 'text-embedding-3-small',
      usage: { prompt_tokens: 6, total_tokens: 6 },
    });
    // The stand-in answers out of order; `index` decides.
    expect(body.data.map((entry) => entry.embedding)).toEqual([fakeVector(0, 8), fakeVector(1, 8)]);
    expect(body.data.map((entry) => [entry.object, entry.index])).toEqual([
      ['embedding', 0],
      ['embedding', 1],
    ]);
    const sent = fixture.openAi.requests[0];
    expect(sent.path).toBe('/embeddings');
    expect(sent.headers.authorization).toBe('Bearer fake-openai-key-0123456789');
    expect(sent.body).toEqual({
      model: 'fake-embedding',
      input: ['alpha', 'beta gamma'],
      encoding_format: 'float',
      user: 'end-user-7',
    });
    // 6 tokens at 2 micros; the hold was 15 bytes at 2 micros, the rest returned.
    expect(response.headers.get('x-credits-charged-micros')).toBe('12');
    expect(await fixture.availableMicros('alice')).toBe(startingMicros - 12n);
  });

  test('gemini: one batchEmbedContents call with x-goog-api-key; no usage reported, so an estimate is charged and logged as one', async () => {
    const response = await embed({
      model: 'gemini-embedding-001',
      input: ['alpha', 'beta gamma'],
      dimensions: 4,
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as EmbeddingsBody;
    expect(body.data.map((entry) => entry.embedding)).toEqual([fakeVector(0, 4), fakeVector(1, 4)]);
    const sent = fixture.gemini.requests[0];
    expect(sent.path).toBe('/v1beta/models/gemini-embedding-001:batchEmbedContents');
    expect(sent.headers['x-goog-api-key']).toBe('fake-gemini-key-0123456789');
    expect(sent.body).toEqual({
      requests: [
        {
          model: 'models/gemini-embedding-001',
          content: { parts: [{ text: 'alpha' }] },
          outputDimensionality: 4,
        },
        {
          model: 'models/gemini-embedding-001',
          content: { parts: [{ text: 'beta gamma' }] },
          outputDimensionality: 4,
        },
      ],
    });
    // One token per four UTF-8 bytes per input, at least one: ceil(5/4) + ceil(10/4) = 5.
    expect(body.usage.prompt_tokens).toBe(5);
    expect(await fixture.availableMicros('alice')).toBe(startingMicros - 5n);
    expect(fixture.logger.auditEvents('embeddings')[0]).toMatchObject({
      usage_source: 'estimate',
      charged_micros: '5',
      held_micros: '15',
    });
  });

  test('encoding_format base64 is little-endian float32, the same vectors as float', async () => {
    const response = await embed({
      model: 'text-embedding-3-small',
      input: 'alpha',
      encoding_format: 'base64',
    });
    const body = (await response.json()) as EmbeddingsBody;
    expect(typeof body.data[0].embedding).toBe('string');
    expect(decodeBase64(body.data[0].embedding as string)).toEqual(fakeVector(0, 8));
  });

  test('echo: the same input gives the same unit vector, another input another; nulls mean absent', async () => {
    const vectors = async (input: string[]) => {
      const response = await embed({
        model: 'echo-embedding',
        input,
        dimensions: null,
        encoding_format: null,
        user: null,
      });
      expect(response.status).toBe(200);
      return ((await response.json()) as EmbeddingsBody).data.map(
        (entry) => entry.embedding as number[],
      );
    };
    const [first, other] = await vectors(['same text', 'other text']);
    const [again] = await vectors(['same text']);
    expect(again).toEqual(first);
    expect(other).not.toEqual(first);
    expect(first).toHaveLength(16);
    const norm = Math.sqrt(first.reduce((sum, value) => sum + value * value, 0));
    expect(norm).toBeCloseTo(1, 6);
    // ceil(9/4) + ceil(10/4) = 6 tokens, then ceil(9/4) = 3, at 1 micro.
    expect(await fixture.availableMicros('alice')).toBe(startingMicros - 9n);
  });

  test('DATA-06: a provider failure releases the hold: after one retry, 503; nothing charged', async () => {
    fixture.gemini.script(geminiError(500, 'internal'), geminiError(503, 'overloaded'));
    const response = await embed({ model: 'gemini-embedding-001', input: 'alpha' });
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({
      error: { code: 'provider_unavailable' },
      request_id: expect.any(String),
    });
    expect(fixture.gemini.requests).toHaveLength(2);
    expect(await fixture.availableMicros('alice')).toBe(startingMicros);
  });

  test('a malformed provider answer (one vector for two inputs) is a 502; nothing charged', async () => {
    fixture.openAi.script({
      status: 200,
      body: {
        data: [{ index: 0, embedding: fakeVector(0, 8) }],
        usage: { prompt_tokens: 4, total_tokens: 4 },
      },
    });
    const response = await embed({ model: 'text-embedding-3-small', input: ['a', 'b'] });
    expect(response.status).toBe(502);
    expect(await fixture.availableMicros('alice')).toBe(startingMicros);
  });

  test('without credits: 402 before any provider call', async () => {
    const response = await embed(
      { model: 'text-embedding-3-small', input: 'alpha' },
      {},
      fixture.keys.bob,
    );
    expect(response.status).toBe(402);
    expect(fixture.openAi.requests).toHaveLength(0);
  });

  test('Idempotency-Key: a retry is a 409 and is charged once', async () => {
    const headers = { 'idempotency-key': 'embeddings-retry-0001' };
    const body = { model: 'echo-embedding', input: 'hello world' };
    expect((await embed(body, headers)).status).toBe(200);
    const retry = await embed(body, headers);
    expect(retry.status).toBe(409);
    expect(await retry.json()).toMatchObject({ error: { code: 'idempotency_key_reused' } });
    // ceil(11/4) = 3 tokens at 1 micro, once.
    expect(await fixture.availableMicros('alice')).toBe(startingMicros - 3n);
  });
});

describe('POST /v1/embeddings: bad input is a 400 naming the field; nothing reaches the provider or the ledger', () => {
  beforeEach(async () => {
    fixture = await startProxyFixture({
      embeddingInputsPerRequestMax: 3,
      embeddingInputCharactersMax: 20,
    });
    await fixture.topUp('alice', '10.00');
  });

  test.each([
    [
      'token arrays',
      { input: [[1, 2, 3]] },
      'input[0]: token arrays are not supported',
      'input[0]',
    ],
    ['a token array', { input: [1, 2, 3] }, 'input[0]: token arrays are not supported', 'input[0]'],
    [
      'more inputs than allowed',
      { input: ['a', 'b', 'c', 'd'] },
      'input: at most 3 inputs',
      'input',
    ],
    [
      'an input over the characters limit',
      { input: ['ok', 'x'.repeat(21)] },
      'input[1]: at most 20 characters',
      'input[1]',
    ],
    ['an empty input', { input: '' }, 'input must not be empty', 'input'],
    ['an empty input in an array', { input: ['a', ''] }, 'input[1] must not be empty', 'input[1]'],
    ['no inputs', { input: [] }, 'input must not be empty', 'input'],
    ['an input that is no string', { input: [{}] }, 'input[0] must be a string', 'input[0]'],
    [
      'an unknown encoding',
      { input: 'a', encoding_format: 'int8' },
      'encoding_format',
      'encoding_format',
    ],
    [
      'dimensions on a model without them',
      { model: 'fixed-embedding', input: 'a', dimensions: 4 },
      'dimensions is not supported by fixed-embedding',
      'dimensions',
    ],
    [
      'dimensions above the model',
      { input: 'a', dimensions: 9 },
      'dimensions must be at most 8',
      'dimensions',
    ],
    [
      'negative dimensions (the field named once, not "dimensions: dimensions ...")',
      { input: 'a', dimensions: -1 },
      /^dimensions must be positive$/,
      'dimensions',
    ],
    ['no model', { model: undefined, input: 'a' }, 'model', 'model'],
    [
      'an unknown parameter, as OpenAI answers',
      { input: 'a', foo_bar: 1 },
      'Unrecognized request argument supplied: foo_bar',
      'foo_bar',
    ],
  ])('%s', async (_, fields, message, param) => {
    const response = await embed({ model: 'text-embedding-3-small', ...fields });
    expect(response.status).toBe(400);
    const body = (await response.json()) as {
      error: { message: string; param?: string };
      request_id: string;
    };
    expect(body.error.message).toMatch(message);
    expect(body.error.param).toBe(param);
    expect(body.request_id).toEqual(expect.any(String));
    expect(fixture.openAi.requests).toHaveLength(0);
    expect(await fixture.availableMicros('alice')).toBe(startingMicros);
  });

  test('an unknown embedding model (or a chat model) is a 404', async () => {
    for (const model of ['no-such-embedding', 'fake-gpt']) {
      const response = await embed({ model, input: 'a' });
      expect(response.status).toBe(404);
      expect(await response.json()).toMatchObject({ error: { code: 'model_not_found' } });
    }
  });
});
