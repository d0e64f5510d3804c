import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { geminiAnswer, geminiError, openAiAnswer } from '../../support/fake-providers';
import { startProxyFixture, type ProxyFixture } from '../../support/proxy';

let fixture: ProxyFixture;
beforeEach(async () => {
  fixture = await startProxyFixture();
  await fixture.topUp('alice', '10.00');
});
afterEach(() => fixture.close());

type Json = Record<string, unknown>;
const chat = (
  body: Json,
  options: { key?: string | null; headers?: Record<string, string>; signal?: AbortSignal } = {},
) => fixture.request('POST', '/v1/chat/completions', { body, ...options });
const hello = {
  model: 'gemini-2.5-flash',
  messages: [{ role: 'user', content: 'Say hello' }],
  max_tokens: 100,
};

describe('AUTH: API keys', () => {
  test('AUTH-01: a missing or wrong key gets 401 JSON, the provider is not called and nothing is charged', async () => {
    for (const key of [null, 'sk-not-a-key']) {
      const response = await chat(hello, { key });
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({
        error: { type: 'authentication_error', code: 'invalid_api_key' },
        request_id: expect.any(String),
      });
    }
    expect(fixture.gemini.requests).toHaveLength(0);
    expect(await fixture.availableMicros('alice')).toBe(10_000_000n);
  });

  test('AUTH-06: the key is accepted as Authorization: Bearer and as X-API-Key', async () => {
    expect((await fixture.request('GET', '/v1/models')).status).toBe(200);
    const viaHeader = await fixture.request('GET', '/v1/models', {
      key: null,
      headers: { 'x-api-key': fixture.keys.alice },
    });
    expect(viaHeader.status).toBe(200);
  });

  test('AUTH-04: an expired key and a revoked key get 401s that say so, without echoing the key', async () => {
    const expired = await fixture.request('GET', '/v1/models', { key: fixture.keys.expired });
    expect(expired.status).toBe(401);
    const expiredBody = await expired.text();
    expect(expiredBody).toContain('expired');
    expect(expiredBody).not.toContain(fixture.keys.expired);
    const revoked = await fixture.request('GET', '/v1/models', { key: fixture.keys.revoked });
    expect(await revoked.json()).toMatchObject({
      error: { code: 'revoked_api_key', message: 'This API key was revoked' },
    });
  });

  test('LOG-04 / LOG-05: an authentication failure is an audit record that holds no key', async () => {
    await fixture.request('GET', '/v1/models', { key: 'sk-guessed-value-9876543210' });
    expect(fixture.logger.auditEvents('auth_failure')).toHaveLength(1);
    expect(fixture.logger.text()).not.toContain('sk-guessed-value-9876543210');
  });
});

describe('NET: transport and browser rules', () => {
  test('NET-02: a preflight from an allowed origin echoes it; an unknown origin gets no CORS grant (NET-01)', async () => {
    const preflight = (origin: string) =>
      fixture.request('OPTIONS', '/v1/chat/completions', {
        key: null,
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type',
        },
      });
    const allowed = await preflight('https://app.example.com');
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(allowed.headers.get('access-control-allow-headers')?.split(',')).toEqual(
      expect.arrayContaining(['authorization', 'content-type', 'idempotency-key']),
    );
    const unknown = await preflight('https://evil.example.net');
    expect(unknown.headers.get('access-control-allow-origin')).toBeNull();
    const simple = await fixture.request('GET', '/v1/models', {
      headers: { origin: 'https://evil.example.net' },
    });
    expect(simple.headers.get('access-control-allow-origin')).toBeNull();
  });

  test('NET-02: the preflight admits every header the official openai SDK sends from a browser', async () => {
    // The names the SDK itself writes, read from the installed package (not copied by hand).
    const sdkSource = [
      'client.js',
      'internal/detect-platform.js',
      'resources/chat/completions/completions.js',
      'resources/beta/threads/runs/runs.js',
    ]
      .map((file) => join(dirname(require.resolve('openai')), file))
      .map((file) => readFileSync(file, 'utf8'))
      .join('\n');
    const sdkHeaders = new Set(
      [...sdkSource.matchAll(/'((?:X-Stainless|OpenAI)-[A-Za-z-]+)'/g)].map((match) =>
        match[1].toLowerCase(),
      ),
    );
    expect([...sdkHeaders]).toEqual(
      expect.arrayContaining(['x-stainless-retry-count', 'x-stainless-os', 'openai-project']),
    );
    const requested = [...sdkHeaders, 'idempotency-key', 'authorization', 'content-type'];
    const preflight = await fixture.request('OPTIONS', '/v1/embeddings', {
      key: null,
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': requested.join(','),
      },
    });
    expect(preflight.status).toBe(204);
    const admitted = (preflight.headers.get('access-control-allow-headers') ?? '').split(',');
    expect(admitted).toEqual(expect.arrayContaining(requested));
  });

  test('NET-05: security headers on every response, errors included, and no server banner', async () => {
    for (const response of [
      await fixture.request('GET', '/health', { key: null }),
      await chat(hello, { key: null }),
      await fixture.request('GET', '/nowhere'),
    ]) {
      expect(response.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
      expect(response.headers.get('x-powered-by')).toBeNull();
      expect(response.headers.get('server')).toBeNull();
    }
  });

  test('NET-08: /metrics and internal paths are not served', async () => {
    for (const path of ['/metrics', '/api/v1/balance/alice', '/internal/debug']) {
      expect((await fixture.request('GET', path)).status).toBe(404);
    }
  });

  test('NET-12: a body over the limit is a 413 and reaches neither the ledger nor the provider', async () => {
    const response = await chat({
      ...hello,
      messages: [{ role: 'user', content: 'x'.repeat(70 * 1024) }],
    });
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: { code: 'request_too_large' } });
    expect(fixture.gemini.requests).toHaveLength(0);
  });
});

describe('billing: reserve, then settle or release', () => {
  test('DATA-06: success settles the actual cost from the provider usage, and the headers say so', async () => {
    fixture.gemini.script(
      geminiAnswer('Hello!', { promptTokenCount: 12, candidatesTokenCount: 7 }),
    );
    const response = await chat(hello);
    expect(response.status).toBe(200);
    // ceil((12 x 300,000 + 7 x 2,500,000) / 1,000,000) = 22 micros
    expect(response.headers.get('x-credits-charged-micros')).toBe('22');
    expect(response.headers.get('x-credits-charged')).toBe('0.000022');
    expect(response.headers.get('x-credits-remaining-micros')).toBe('9999978');
    expect(await fixture.availableMicros('alice')).toBe(9_999_978n);
  });

  test("DATA-06: a client reusing its x-request-id pays for every request (the hold key is never the client's)", async () => {
    for (let index = 0; index < 3; index += 1) {
      fixture.gemini.script(
        geminiAnswer(`answer ${index}`, { promptTokenCount: 12, candidatesTokenCount: 7 }),
      );
      const response = await chat(
        { ...hello, messages: [{ role: 'user', content: `question ${index}` }] },
        { headers: { 'x-request-id': 'fixed-id-123' } },
      );
      expect(response.status).toBe(200);
      expect(response.headers.get('x-credits-charged-micros')).toBe('22');
    }
    expect(await fixture.availableMicros('alice')).toBe(10_000_000n - 3n * 22n);
    expect(fixture.logger.auditEvents('billing_failure')).toHaveLength(0);
    // A short client request id (valid for the request id, too short for a key) changes nothing either.
    fixture.gemini.script(geminiAnswer('ok', { promptTokenCount: 12, candidatesTokenCount: 7 }));
    expect((await chat(hello, { headers: { 'x-request-id': 'abc' } })).status).toBe(200);
  });

  test('the hold covers a prompt in any script: one token per UTF-8 byte', async () => {
    // 3,000 CJK characters are 9,000 UTF-8 bytes: the hold must cover 9,000 prompt tokens, not 1,000.
    const prompt = '\u4e2d'.repeat(3000);
    await fixture.topUp('bob', '0.002700'); // 2,700 micros: covers 9,000 tokens at 0.30 per million... only just not
    const response = await chat(
      { ...hello, messages: [{ role: 'user', content: prompt }], max_tokens: 1 },
      { key: fixture.keys.bob },
    );
    expect(response.status).toBe(402); // ceil((9,008 x 300,000 + 2,500,000) / 1,000,000) = 2,706 micros are needed
    expect(fixture.gemini.requests).toHaveLength(0);
  });

  test('the response follows the OpenAI shape, field by field', async () => {
    fixture.gemini.script(
      geminiAnswer('Hello!', { promptTokenCount: 12, candidatesTokenCount: 7 }),
    );
    const response = await chat(hello);
    const body = (await response.json()) as Json;
    expect(body).toEqual({
      id: expect.stringMatching(/^chatcmpl-/),
      object: 'chat.completion',
      created: expect.any(Number),
      model: 'gemini-2.5-flash',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Hello!', refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 },
      system_fingerprint: null,
    });
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  });

  test('402 with the available balance before any provider call when credits do not cover the hold', async () => {
    const response = await chat({ ...hello, max_tokens: 8000 }, { key: fixture.keys.bob }); // bob has no credits
    expect(response.status).toBe(402);
    expect(await response.json()).toMatchObject({
      error: {
        type: 'insufficient_credits',
        available_micros: '0',
        required_micros: expect.any(String),
      },
    });
    expect(fixture.gemini.requests).toHaveLength(0);
    expect(fixture.logger.auditEvents('insufficient_balance')).toHaveLength(1);
  });

  test('a provider error releases the hold after one retry: 503, nothing charged', async () => {
    fixture.gemini.script(
      geminiError(500, 'internal at 10.0.3.7:8080 trace=abc'),
      geminiError(503, 'overloaded'),
    );
    const response = await chat(hello);
    expect(response.status).toBe(503);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('provider_unavailable');
    expect(fixture.gemini.requests).toHaveLength(2);
    expect(await fixture.availableMicros('alice')).toBe(10_000_000n);
    expect(fixture.logger.auditEvents('provider_failure')).toHaveLength(1);
  });

  test('a retryable error followed by a success bills once', async () => {
    fixture.gemini.script(
      geminiError(429, 'rate limited'),
      geminiAnswer('Second time lucky', { promptTokenCount: 10, candidatesTokenCount: 10 }),
    );
    const response = await chat(hello);
    expect(response.status).toBe(200);
    expect(fixture.gemini.requests).toHaveLength(2);
    expect(await fixture.availableMicros('alice')).toBe(10_000_000n - 28n); // ceil(3 + 25) = 28
  });

  test('LOG-02: a provider 4xx is a 502 with a sanitized message: no internal hosts, no provider body', async () => {
    fixture.gemini.script(
      geminiError(
        400,
        'Invalid argument; see https://internal.example/x?key=AIzaSyD-0123456789abcdefghijklmnopqrstuvw',
        'INVALID_ARGUMENT',
      ),
    );
    const response = await chat(hello);
    expect(response.status).toBe(502);
    const text = await response.text();
    expect(text).not.toContain('internal.example');
    expect(text).not.toContain('AIzaSy');
    expect(await fixture.availableMicros('alice')).toBe(10_000_000n);
  });

  test('DR-03: a provider that does not answer in time is a 504 and the hold is released', async () => {
    fixture.gemini.script({ status: 200, body: {}, delayMilliseconds: 5_000 });
    const response = await chat(hello);
    expect(response.status).toBe(504);
    expect(await fixture.availableMicros('alice')).toBe(10_000_000n);
  });

  test('a client that disconnects mid-request stops the provider call and gets its hold released', async () => {
    fixture.gemini.script({ status: 200, pieces: [new Promise(() => undefined)] });
    const controller = new AbortController();
    const pending = chat(hello, { signal: controller.signal }).catch(() => undefined);
    await fixture.gemini.request(0);
    controller.abort();
    await pending;
    expect(await fixture.gemini.requests[0].closed).toEqual({ completed: false });
    expect(await fixture.logger.nextAudit('provider_failure')).toMatchObject({
      charged_micros: '0',
    });
    expect(await fixture.availableMicros('alice')).toBe(10_000_000n);
  });

  test('a safety block is a clear 400, and the prompt tokens the provider reports are billed', async () => {
    fixture.gemini.script({
      status: 200,
      body: { promptFeedback: { blockReason: 'SAFETY' }, usageMetadata: { promptTokenCount: 10 } },
    });
    const response = await chat(hello);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({
      error: {
        code: 'content_blocked',
        message: expect.stringContaining('safety filter (SAFETY)'),
      },
    });
    expect(await fixture.availableMicros('alice')).toBe(10_000_000n - 3n);
  });

  test('DR-03: the credits service down gives 503 and no provider call (fail closed)', async () => {
    await fixture.creditsServer.close();
    const response = await chat(hello);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ error: { code: 'credits_unavailable' } });
    expect(fixture.gemini.requests).toHaveLength(0);
    expect((await fixture.request('GET', '/ready', { key: null })).status).toBe(503);
  });
});

describe('providers', () => {
  test('Gemini gets the system instruction, alternating roles and the generation config, with its key in a header', async () => {
    await chat({
      model: 'gemini-2.5-flash',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'How are ' },
            { type: 'text', text: 'you?' },
          ],
        },
      ],
      max_tokens: 50,
      temperature: 0.2,
      stop: ['END'],
    });
    const [sent] = fixture.gemini.requests;
    expect(sent.path).toBe('/v1beta/models/gemini-2.5-flash:generateContent');
    expect(sent.headers['x-goog-api-key']).toBe('fake-gemini-key-0123456789');
    expect(sent.body).toEqual({
      contents: [
        { role: 'user', parts: [{ text: 'Hi' }] },
        { role: 'model', parts: [{ text: 'Hello' }] },
        { role: 'user', parts: [{ text: 'How are you?' }] },
      ],
      systemInstruction: { parts: [{ text: 'Be brief.' }] },
      generationConfig: {
        candidateCount: 1,
        maxOutputTokens: 50,
        temperature: 0.2,
        stopSequences: ['END'],
      },
    });
  });

  test('an OpenAI-compatible provider gets the upstream model and a bearer key, and its usage is billed', async () => {
    fixture.openAi.script(openAiAnswer('Hi there', { prompt_tokens: 20, completion_tokens: 5 }));
    const response = await chat({ model: 'fake-gpt', messages: [{ role: 'user', content: 'Hi' }] });
    expect(response.status).toBe(200);
    const [sent] = fixture.openAi.requests;
    expect(sent.path).toBe('/chat/completions');
    expect(sent.headers.authorization).toBe('Bearer fake-openai-key-0123456789');
    expect(sent.body).toMatchObject({
      model: 'fake-model',
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 500,
      n: 1,
      stream: false,
    });
    expect(response.headers.get('x-credits-charged-micros')).toBe('40'); // 20 x 1 + 5 x 4
  });

  test('echo needs no network and is billed like any model', async () => {
    const response = await chat({ model: 'echo', messages: [{ role: 'user', content: 'ping' }] });
    expect(response.status).toBe(200);
    expect(
      ((await response.json()) as { choices: { message: { content: string } }[] }).choices[0]
        .message.content,
    ).toBe('echo: ping');
    expect(Number(response.headers.get('x-credits-charged-micros'))).toBeGreaterThan(0);
  });

  test('stream: true answers server-sent events ending in [DONE], with usage when asked', async () => {
    const response = await chat({
      ...hello,
      model: 'echo',
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = (await response.text()).split('\n\n').filter((event) => event !== '');
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events
      .slice(0, -1)
      .map((event) => JSON.parse(event.replace(/^data: /, '')) as Json);
    expect(chunks.every((chunk) => chunk.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks.at(-1)).toMatchObject({
      choices: [],
      usage: { total_tokens: expect.any(Number) },
    });
  });
});

describe('the rest of the API', () => {
  test('GET /v1/models lists the models with their prices', async () => {
    const body = (await (await fixture.request('GET', '/v1/models')).json()) as {
      object: string;
      data: Json[];
    };
    expect(body.object).toBe('list');
    expect(body.data.map((model) => model.id)).toEqual([
      'gemini-2.5-flash',
      'fake-gpt',
      'fake-claude',
      'echo',
      'gemini-embedding-001',
      'text-embedding-3-small',
      'fixed-embedding',
      'echo-embedding',
    ]);
    expect(body.data[0]).toMatchObject({
      object: 'model',
      pricing: {
        currency: 'USD',
        input_micros_per_million_tokens: 300_000,
        // Unconfigured cache and reasoning prices are the input and output prices.
        cached_input_micros_per_million_tokens: 300_000,
        cache_creation_input_micros_per_million_tokens: 300_000,
        reasoning_micros_per_million_tokens: 2_500_000,
      },
      fallbacks: [],
    });
    expect(body.data[2]).toMatchObject({
      pricing: {
        cached_input_micros_per_million_tokens: 300_000,
        cache_creation_input_micros_per_million_tokens: 3_750_000,
      },
    });
  });

  test('MON-05: GET /v1/balance tells the client its credits', async () => {
    expect(await (await fixture.request('GET', '/v1/balance')).json()).toEqual({
      object: 'balance',
      currency: 'USD',
      available: '10.000000',
      available_micros: '10000000',
    });
  });

  test('CFG-03 / MON-01: /health reports the security posture without secrets; /ready checks the credits service', async () => {
    const health = (await (await fixture.request('GET', '/health', { key: null })).json()) as Json;
    expect(health).toEqual({
      status: 'ok',
      service: 'proxy',
      security: {
        auth_required: true,
        https_only: true,
        rate_limiting: { enabled: true, requests_per_minute: 60 },
        pii_masking: true,
        prompts_logged: false,
        cors_allowed_origins: 1,
      },
    });
    expect(JSON.stringify(health)).not.toContain('sk-');
    expect((await fixture.request('GET', '/ready', { key: null })).status).toBe(200);
  });

  test('DATA-07 / LOG-04: the log holds ids, sizes, usage and cost, never the prompt, the completion, the key or the user id', async () => {
    fixture.gemini.script(geminiAnswer('A very private answer'));
    await chat({
      ...hello,
      messages: [{ role: 'user', content: 'my secret prompt about alice@example.com' }],
    });
    const [record] = fixture.logger.auditEvents('chat_completion');
    expect(record).toMatchObject({
      model: 'gemini-2.5-flash',
      prompt_tokens: 12,
      completion_tokens: 7,
      charged_micros: '22',
      user: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
    const text = fixture.logger.text();
    for (const secret of [
      'my secret prompt',
      'A very private answer',
      fixture.keys.alice,
      '"alice"',
    ])
      expect(text).not.toContain(secret);
  });
});

describe('LOG-02: bad input gets a clear 4xx with a JSON body and a request id, never a stack trace', () => {
  const cases: [string, unknown, number, RegExp][] = [
    ['malformed JSON', '{"model":', 400, /not valid JSON/],
    [
      'messages of the wrong type',
      { model: 'echo', messages: 'hi' },
      400,
      /messages must be an array/,
    ],
    ['no messages', { model: 'echo', messages: [] }, 400, /must not be empty/],
    [
      'an unknown role',
      { model: 'echo', messages: [{ role: 'function', content: 'x' }] },
      400,
      /role must be/,
    ],
    [
      'an image part',
      {
        model: 'echo',
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }],
      },
      400,
      /messages\[0\]\.content\[0\]\.image_url\.url must be a base64 data: URL or an https URL/,
    ],
    [
      'an unknown model',
      { model: 'gpt-9', messages: [{ role: 'user', content: 'x' }] },
      404,
      /Unknown model/,
    ],
    [
      'a model name with a header injection',
      { model: 'echo\r\nx-injected: 1', messages: [{ role: 'user', content: 'x' }] },
      404,
      /Unknown model/,
    ],
    [
      'a huge max_tokens',
      { model: 'echo', messages: [{ role: 'user', content: 'x' }], max_tokens: 1_000_000 },
      400,
      /max_tokens must be at most 1000/,
    ],
    [
      'a fractional max_tokens',
      { model: 'echo', messages: [{ role: 'user', content: 'x' }], max_tokens: 1.5 },
      400,
      /max_tokens must be an integer/,
    ],
    [
      'n greater than 1',
      { model: 'echo', messages: [{ role: 'user', content: 'x' }], n: 2 },
      400,
      /only n=1/,
    ],
    [
      'tools',
      { model: 'echo', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function' }] },
      400,
      /^tools\[0\]\.function: /,
    ],
    [
      'a temperature out of range',
      { model: 'echo', messages: [{ role: 'user', content: 'x' }], temperature: 5 },
      400,
      /temperature/,
    ],
  ];

  test.each(cases)('%s', async (_name, body, status, message) => {
    const response = await chat(body as Json);
    expect(response.status).toBe(status);
    expect(response.headers.get('x-injected')).toBeNull();
    const parsed = (await response.json()) as { error: { message: string }; request_id: string };
    expect(parsed.error.message).toMatch(message);
    expect(parsed.request_id).toEqual(expect.any(String));
    expect(JSON.stringify(parsed)).not.toMatch(/\n\s+at |node_modules/);
    expect(await fixture.availableMicros('alice')).toBe(10_000_000n);
  });

  test('an over-long request id from the client is replaced, not echoed', async () => {
    const response = await fixture.request('GET', '/v1/models', {
      headers: { 'x-request-id': 'a'.repeat(500) },
    });
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});
