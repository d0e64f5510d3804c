import { startServer, type RunningServer } from '../../runtime/node-server';
import { startProxyFixture, type ProxyFixture } from '../support/proxy';

/**
 * Stopping the Node server: a stream that outlives the drain is cut at its end as a client
 * disconnect is, and the stop waits for its handler to settle (bill from the estimate) and audit it
 * before it resolves, so a process that exits right after never leaves a hold pending unbilled.
 */

let fixture: ProxyFixture;
let server: RunningServer;
/** Short, so the stream below (one word per chunk, delayed) is still running when it ends. */
const drainMillisecondsMax = 100;
const streamedPromptWords = 500;

afterEach(async () => {
  await fixture.close();
});

it('a stream still running when the drain ends is cut, then settled from the estimate and audited before close resolves', async () => {
  fixture = await startProxyFixture({ echoChunkDelayMilliseconds: 20 });
  await fixture.topUp('alice', '1.00');
  const before = await fixture.availableMicros('alice');
  server = await startServer({
    fetch: fixture.app.fetch,
    hostname: '127.0.0.1',
    port: 0,
    drainMillisecondsMax,
  });
  const response = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${fixture.keys.alice}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'echo',
      stream: true,
      max_tokens: 1000,
      messages: [{ role: 'user', content: Array(streamedPromptWords).fill('word').join(' ') }],
    }),
  });
  expect(response.status).toBe(200);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  await reader.read(); // the stream is under way
  const rest = (async () => {
    for (;;) if ((await reader.read().catch(() => ({ done: true }))).done) return;
  })();

  const stopped = await server.close();

  expect(stopped).toEqual({ drained: false, cutRequests: 1, unsettledRequests: 0 });
  // Already audited and billed when close resolved: nothing is left for a process about to exit.
  const audited = fixture.logger.records.find(
    (record) => record.message === 'audit' && record.fields.audit_event === 'chat_completion',
  );
  expect(audited?.fields).toMatchObject({ ending: 'client_left', usage_source: 'estimate' });
  const charged = BigInt(audited?.fields.charged_micros as string);
  expect(charged).toBeGreaterThan(0n);
  expect(await fixture.availableMicros('alice')).toBe(before - charged);
  await rest;
});

it('a drain that finishes in time reports nothing cut', async () => {
  fixture = await startProxyFixture();
  server = await startServer({ fetch: fixture.app.fetch, hostname: '127.0.0.1', port: 0 });
  expect((await fetch(`${server.url}/ready`)).status).toBe(200);
  expect(await server.close()).toEqual({ drained: true, cutRequests: 0, unsettledRequests: 0 });
});
