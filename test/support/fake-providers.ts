import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Real local HTTP servers that speak the providers' APIs: Gemini's generateContent and OpenAI's Chat
 * Completions. A test scripts their next answers; the servers record what they were sent.
 */

export interface ScriptedAnswer {
  readonly status: number;
  readonly body: unknown;
  /** Wait this long before answering (to test timeouts and client disconnects). */
  readonly delayMilliseconds?: number;
}

export interface FakeProvider {
  readonly baseUrl: string;
  readonly requests: { path: string; headers: IncomingMessage['headers']; body: unknown }[];
  /** Answers for the next requests, in order; after them, the default answer. */
  script(...answers: ScriptedAnswer[]): void;
  close(): Promise<void>;
}

async function startFake(defaultAnswer: (path: string, body: unknown) => ScriptedAnswer): Promise<FakeProvider> {
  const requests: FakeProvider['requests'] = [];
  const queue: ScriptedAnswer[] = [];
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // keep the text
      }
      const path = request.url ?? '/';
      requests.push({ path, headers: request.headers, body });
      const answer = queue.shift() ?? defaultAnswer(path, body);
      const send = () => {
        if (response.destroyed) return;
        response.writeHead(answer.status, { 'content-type': 'application/json' });
        response.end(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
      };
      if (answer.delayMilliseconds) setTimeout(send, answer.delayMilliseconds);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    script: (...answers) => queue.push(...answers),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function geminiAnswer(text: string, usage = { promptTokenCount: 12, candidatesTokenCount: 7 }, finishReason = 'STOP'): ScriptedAnswer {
  return {
    status: 200,
    body: { candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason, index: 0 }], usageMetadata: { ...usage, totalTokenCount: usage.promptTokenCount + usage.candidatesTokenCount }, modelVersion: 'fake' },
  };
}

export function geminiError(status: number, message: string, grpcStatus = 'INTERNAL'): ScriptedAnswer {
  return { status, body: { error: { code: status, message, status: grpcStatus } } };
}

/** A Gemini stand-in: POST /v1beta/models/{model}:generateContent with x-goog-api-key. */
export function startFakeGemini(): Promise<FakeProvider> {
  return startFake(() => geminiAnswer('Hello from the fake Gemini.'));
}

export function openAiAnswer(text: string, usage = { prompt_tokens: 20, completion_tokens: 5 }, finishReason = 'stop'): ScriptedAnswer {
  return {
    status: 200,
    body: {
      id: 'chatcmpl-fake',
      object: 'chat.completion',
      created: 1,
      model: 'fake-model',
      choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: finishReason }],
      usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
    },
  };
}

/** An OpenAI-compatible stand-in: POST /chat/completions with a bearer key. */
export function startFakeOpenAi(): Promise<FakeProvider> {
  return startFake(() => openAiAnswer('Hello from the fake OpenAI-compatible server.'));
}
