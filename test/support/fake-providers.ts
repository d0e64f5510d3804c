import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ProviderError, type StreamDelta } from '../../lambda/proxy/providers/types';

/**
 * Real local HTTP servers that speak the providers' APIs: Gemini's generateContent and
 * streamGenerateContent (SSE), OpenAI's Chat Completions (JSON and SSE), Anthropic's Messages (JSON
 * and SSE). A test scripts their next
 * answers; a streamed answer is a list of raw pieces written one by one, and a promise in the list
 * holds the rest back until it settles (so a test can wait for the client to see chunk 1 before the
 * provider sends chunk 2, without sleeping). The servers record what they were sent and when each
 * answer's connection closed.
 */

export interface JsonAnswer {
  readonly status: number;
  readonly body: unknown;
  /** Wait this long before answering (a slow provider: to test timeouts and client disconnects). */
  readonly delayMilliseconds?: number;
  /** Answer only once this settles: the test's cue, for a test that acts while the request is in flight. */
  readonly heldUntil?: Promise<unknown>;
}

export interface StreamAnswer {
  readonly status: number;
  /** Raw event-stream text, written in order; a promise is awaited before the next piece. */
  readonly pieces: readonly (string | Promise<unknown>)[];
  /** After the pieces: end the response (default), keep it open, or cut the connection. */
  readonly after?: 'end' | 'hang' | 'cut';
}

export type ScriptedAnswer = JsonAnswer | StreamAnswer;

export interface RecordedRequest {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: unknown;
  /** Settles when the answer's connection closes: `completed` false when the client left first. */
  readonly closed: Promise<{ completed: boolean }>;
}

export interface FakeProvider {
  readonly baseUrl: string;
  readonly requests: RecordedRequest[];
  /** Answers for the next requests, in order; after them, the default answer. */
  script(...answers: ScriptedAnswer[]): void;
  /** Settles when the request with this index (0 = the first) has arrived. */
  request(index: number): Promise<RecordedRequest>;
  close(): Promise<void>;
}

async function writeStream(response: ServerResponse, answer: StreamAnswer): Promise<void> {
  response.writeHead(answer.status, { 'content-type': 'text/event-stream' });
  response.flushHeaders();
  for (const piece of answer.pieces) {
    if (typeof piece !== 'string') await piece;
    else if (!response.destroyed) response.write(piece);
  }
  if (response.destroyed) return;
  if (answer.after === 'cut') response.socket?.destroy();
  else if (answer.after !== 'hang') response.end();
}

function answerRequest(response: ServerResponse, answer: ScriptedAnswer): void {
  if ('pieces' in answer) {
    void writeStream(response, answer).catch(() => response.destroy());
    return;
  }
  const send = () => {
    if (response.destroyed) return;
    response.writeHead(answer.status, { 'content-type': 'application/json' });
    response.end(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
  };
  if (answer.heldUntil) void answer.heldUntil.then(send, send);
  else if (answer.delayMilliseconds) setTimeout(send, answer.delayMilliseconds);
  else send();
}

async function startFake(
  defaultAnswer: (path: string, body: unknown) => ScriptedAnswer,
): Promise<FakeProvider> {
  const requests: RecordedRequest[] = [];
  const arrivals: ((request: RecordedRequest) => void)[] = [];
  const arrived: Promise<RecordedRequest>[] = [];
  const arrival = (index: number) => {
    while (arrived.length <= index) arrived.push(new Promise((resolve) => arrivals.push(resolve)));
    return arrived[index];
  };
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
      const closed = new Promise<{ completed: boolean }>((resolve) =>
        response.once('close', () => resolve({ completed: response.writableFinished })),
      );
      const recorded: RecordedRequest = { path, headers: request.headers, body, closed };
      requests.push(recorded);
      arrival(requests.length - 1);
      arrivals[requests.length - 1](recorded);
      answerRequest(response, queue.shift() ?? defaultAnswer(path, body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    script: (...answers) => queue.push(...answers),
    request: arrival,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function geminiAnswer(
  text: string,
  usage = { promptTokenCount: 12, candidatesTokenCount: 7 },
  finishReason = 'STOP',
): ScriptedAnswer {
  return {
    status: 200,
    body: {
      candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason, index: 0 }],
      usageMetadata: {
        ...usage,
        totalTokenCount: usage.promptTokenCount + usage.candidatesTokenCount,
      },
      modelVersion: 'fake',
    },
  };
}

export function geminiError(
  status: number,
  message: string,
  grpcStatus = 'INTERNAL',
): ScriptedAnswer {
  return { status, body: { error: { code: status, message, status: grpcStatus } } };
}

/** A piece of a scripted stream: a text delta, or a promise the stand-in waits for before going on. */
export type StreamStep = string | Promise<unknown>;

/**
 * A Gemini stream (streamGenerateContent?alt=sse): one chunk per text, each with the cumulative
 * usageMetadata so far (as Gemini sends it), the last with the finish reason and the final usage.
 * Events end in CRLF pairs, as Gemini's do.
 */
export function geminiStream(
  steps: readonly StreamStep[],
  usage = { promptTokenCount: 12, candidatesTokenCount: 7 },
  finishReason = 'STOP',
): StreamAnswer {
  const texts = steps.filter((step): step is string => typeof step === 'string');
  let sent = 0;
  const pieces = steps.map((step) => {
    if (typeof step !== 'string') return step;
    sent += 1;
    const last = sent === texts.length;
    const candidates = Math.ceil((usage.candidatesTokenCount * sent) / texts.length);
    const chunk = {
      candidates: [
        {
          content: { role: 'model', parts: [{ text: step }] },
          index: 0,
          ...(last ? { finishReason } : {}),
        },
      ],
      usageMetadata: {
        promptTokenCount: usage.promptTokenCount,
        candidatesTokenCount: candidates,
        totalTokenCount: usage.promptTokenCount + candidates,
      },
      modelVersion: 'fake',
    };
    return `data: ${JSON.stringify(chunk)}\r\n\r\n`;
  });
  return { status: 200, pieces };
}

/** A vector of `dimensions` numbers that says which input it was for: [index + 1, 0.5, 0.5, ...]. */
export function fakeVector(index: number, dimensions: number): number[] {
  return Array.from({ length: dimensions }, (_, position) => (position === 0 ? index + 1 : 0.5));
}

/** Vector length of the stand-ins' embeddings when a request names none. */
export const fakeEmbeddingDimensions = 8;

/** Gemini's batchEmbedContents answer: one `values` per request (`outputDimensionality` honoured). */
export function geminiEmbeddingsAnswer(body: unknown): ScriptedAnswer {
  const requests = (body as { requests?: { outputDimensionality?: number }[] }).requests ?? [];
  return {
    status: 200,
    body: {
      embeddings: requests.map((request, index) => ({
        values: fakeVector(index, request.outputDimensionality ?? fakeEmbeddingDimensions),
      })),
    },
  };
}

/**
 * A Gemini stand-in: POST /v1beta/models/{model}:generateContent (JSON),
 * :streamGenerateContent?alt=sse and :batchEmbedContents, with x-goog-api-key.
 */
export function startFakeGemini(): Promise<FakeProvider> {
  return startFake((path, body) => {
    if (path.includes(':batchEmbedContents')) return geminiEmbeddingsAnswer(body);
    return path.includes(':streamGenerateContent')
      ? geminiStream(['Hello from ', 'the fake Gemini.'])
      : geminiAnswer('Hello from the fake Gemini.');
  });
}

export function openAiAnswer(
  text: string,
  usage = { prompt_tokens: 20, completion_tokens: 5 },
  finishReason = 'stop',
): ScriptedAnswer {
  return {
    status: 200,
    body: {
      id: 'chatcmpl-fake',
      object: 'chat.completion',
      created: 1,
      model: 'fake-model',
      choices: [
        { index: 0, message: { role: 'assistant', content: text }, finish_reason: finishReason },
      ],
      usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
    },
  };
}

const openAiChunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1, model: 'fake-model', choices, ...extra })}\n\n`;

/**
 * An OpenAI Chat Completions stream: a role chunk, one chunk per text, the finish chunk, then (unless
 * `usage` is null) the usage chunk with `choices: []`, then [DONE]. Keep-alive comments between
 * events, as real servers send them.
 */
export function openAiStream(
  steps: readonly StreamStep[],
  usage: { prompt_tokens: number; completion_tokens: number } | null = {
    prompt_tokens: 20,
    completion_tokens: 5,
  },
  finishReason = 'stop',
): StreamAnswer {
  const pieces: StreamStep[] = [
    openAiChunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]),
    ': keep-alive\n\n',
  ];
  for (const step of steps)
    pieces.push(
      typeof step === 'string'
        ? openAiChunk([{ index: 0, delta: { content: step }, finish_reason: null }])
        : step,
    );
  pieces.push(openAiChunk([{ index: 0, delta: {}, finish_reason: finishReason }]));
  if (usage)
    pieces.push(
      openAiChunk([], {
        usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
      }),
    );
  pieces.push('data: [DONE]\n\n');
  return { status: 200, pieces };
}

/** An OpenAI-compatible stand-in: POST /chat/completions with a bearer key; streams when asked to. */
/**
 * OpenAI's /embeddings answer in floats, `data` in reverse order (its `index` is what counts), with
 * `promptTokensPerInput` tokens reported per input.
 */
export function openAiEmbeddingsAnswer(body: unknown, promptTokensPerInput = 3): ScriptedAnswer {
  const request = body as { input?: string | string[]; dimensions?: number; model?: string };
  const inputs = typeof request.input === 'string' ? [request.input] : (request.input ?? []);
  const tokens = inputs.length * promptTokensPerInput;
  return {
    status: 200,
    body: {
      object: 'list',
      data: inputs
        .map((_, index) => ({
          object: 'embedding',
          index,
          embedding: fakeVector(index, request.dimensions ?? fakeEmbeddingDimensions),
        }))
        .reverse(),
      model: request.model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    },
  };
}

/** An OpenAI-compatible stand-in: POST /chat/completions (JSON and SSE) and /embeddings. */
export function startFakeOpenAi(): Promise<FakeProvider> {
  return startFake((path, body) => {
    if (path.endsWith('/embeddings')) return openAiEmbeddingsAnswer(body);
    return (body as { stream?: boolean }).stream
      ? openAiStream(['Hello from ', 'the fake ', 'OpenAI-compatible server.'])
      : openAiAnswer('Hello from the fake OpenAI-compatible server.');
  });
}

export interface AnthropicUsage {
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly cache_read_input_tokens?: number;
  readonly cache_creation_input_tokens?: number;
}

/** A block of an Anthropic answer: text, or a tool call with its input object. */
export type AnthropicBlock =
  | string
  | {
      readonly type: 'tool_use';
      readonly id: string;
      readonly name: string;
      readonly input: unknown;
    };

const anthropicUsageDefault: AnthropicUsage = { input_tokens: 25, output_tokens: 9 };

function anthropicContent(block: AnthropicBlock) {
  return typeof block === 'string' ? { type: 'text', text: block } : block;
}

/** An Anthropic Messages answer (POST /v1/messages), as the API sends it. */
export function anthropicAnswer(
  blocks: readonly AnthropicBlock[],
  usage: AnthropicUsage = anthropicUsageDefault,
  stopReason = 'end_turn',
): ScriptedAnswer {
  return {
    status: 200,
    body: {
      id: 'msg_fake',
      type: 'message',
      role: 'assistant',
      model: 'claude-fake',
      content: blocks.map(anthropicContent),
      stop_reason: stopReason,
      stop_sequence: null,
      usage: { cache_read_input_tokens: 0, cache_creation_input_tokens: 0, ...usage },
    },
  };
}

/** Anthropic's error shape; 429 rate_limit_error, 529 overloaded_error, 500 api_error, 400 invalid_request_error. */
export function anthropicError(status: number, type: string, message: string): ScriptedAnswer {
  return { status, body: { type: 'error', error: { type, message } } };
}

const anthropicEvent = (type: string, data: Record<string, unknown>) =>
  `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

/** A step of a scripted Anthropic stream: text, a tool call (its input streamed in fragments), or a cue. */
export type AnthropicStreamStep =
  | string
  | Promise<unknown>
  | {
      readonly toolUse: {
        readonly id: string;
        readonly name: string;
        readonly inputJson: readonly string[];
      };
    };

/**
 * An Anthropic Messages stream as the API sends it: message_start with the input usage (and
 * output_tokens 1), a ping, one content block per text (content_block_start with empty text, then a
 * text_delta) or tool call (content_block_start with `input: {}`, then input_json_delta fragments),
 * message_delta with the stop reason and the cumulative output usage, message_stop. Unless `ending`
 * says otherwise: `none` stops after the last block (a cut stream), `error` sends an error event.
 */
export function anthropicStream(
  steps: readonly AnthropicStreamStep[],
  usage: AnthropicUsage = anthropicUsageDefault,
  stopReason = 'end_turn',
  ending: 'complete' | 'none' = 'complete',
): StreamAnswer {
  const { output_tokens: outputTokens, ...input } = usage;
  const pieces: StreamStep[] = [
    anthropicEvent('message_start', {
      message: {
        id: 'msg_fake',
        type: 'message',
        role: 'assistant',
        model: 'claude-fake',
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: {
          cache_read_input_tokens: 0,
          cache_creation_input_tokens: 0,
          ...input,
          output_tokens: 1,
        },
      },
    }),
    anthropicEvent('ping', {}),
  ];
  let index = 0;
  for (const step of steps) {
    if (typeof step === 'string') {
      pieces.push(
        anthropicEvent('content_block_start', { index, content_block: { type: 'text', text: '' } }),
        anthropicEvent('content_block_delta', { index, delta: { type: 'text_delta', text: step } }),
        anthropicEvent('content_block_stop', { index }),
      );
    } else if ('toolUse' in step) {
      const { id, name, inputJson } = step.toolUse;
      pieces.push(
        anthropicEvent('content_block_start', {
          index,
          content_block: { type: 'tool_use', id, name, input: {} },
        }),
        ...inputJson.map((partial_json) =>
          anthropicEvent('content_block_delta', {
            index,
            delta: { type: 'input_json_delta', partial_json },
          }),
        ),
        anthropicEvent('content_block_stop', { index }),
      );
    } else {
      pieces.push(step);
      continue;
    }
    index += 1;
  }
  if (ending === 'complete')
    pieces.push(
      anthropicEvent('message_delta', {
        delta: { stop_reason: stopReason, stop_sequence: null },
        usage: { output_tokens: outputTokens },
      }),
      anthropicEvent('message_stop', {}),
    );
  return { status: 200, pieces };
}

/** An Anthropic error event (as sent mid-stream, e.g. overloaded_error). */
export function anthropicStreamError(type: string, message: string): string {
  return anthropicEvent('error', { error: { type, message } });
}

/** An Anthropic stand-in: POST /v1/messages with x-api-key and anthropic-version; streams when asked to. */
export function startFakeAnthropic(): Promise<FakeProvider> {
  return startFake((_path, body) =>
    (body as { stream?: boolean }).stream
      ? anthropicStream(['Hello from ', 'the fake Claude.'])
      : anthropicAnswer(['Hello from the fake Claude.']),
  );
}

/** A promise and the function that settles it: a gate a test opens when an event happened. */
export function gate(): { readonly opened: Promise<void>; open(): void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** A tool call a stand-in answers with: its name and its arguments' JSON text. */
export interface ScriptedToolCall {
  readonly id: string;
  readonly name: string;
  readonly arguments: string;
}

/** A Chat Completions answer that is only tool calls (content null, finish_reason tool_calls). */
export function openAiToolCallAnswer(
  calls: readonly ScriptedToolCall[],
  usage = { prompt_tokens: 40, completion_tokens: 12 },
): ScriptedAnswer {
  return {
    status: 200,
    body: {
      id: 'chatcmpl-fake',
      object: 'chat.completion',
      created: 1,
      model: 'fake-model',
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: null,
            tool_calls: calls.map((call) => ({
              id: call.id,
              type: 'function',
              function: { name: call.name, arguments: call.arguments },
            })),
          },
          finish_reason: 'tool_calls',
        },
      ],
      usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
    },
  };
}

/**
 * A Chat Completions stream of tool calls as OpenAI sends them: per call, a first delta with its
 * index, id, type and name (arguments empty), then its arguments in fragments of `fragmentLength`
 * characters; then finish_reason tool_calls, the usage chunk and [DONE].
 */
export function openAiToolCallStream(
  calls: readonly ScriptedToolCall[],
  usage = { prompt_tokens: 40, completion_tokens: 12 },
  fragmentLength = 5,
): StreamAnswer {
  const pieces: StreamStep[] = [
    openAiChunk([{ index: 0, delta: { role: 'assistant', content: null }, finish_reason: null }]),
  ];
  const delta = (toolCall: Record<string, unknown>) =>
    openAiChunk([{ index: 0, delta: { tool_calls: [toolCall] }, finish_reason: null }]);
  for (const [index, call] of calls.entries()) {
    pieces.push(
      delta({ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }),
    );
    for (let start = 0; start < call.arguments.length; start += fragmentLength)
      pieces.push(
        delta({
          index,
          function: { arguments: call.arguments.slice(start, start + fragmentLength) },
        }),
      );
  }
  pieces.push(openAiChunk([{ index: 0, delta: {}, finish_reason: 'tool_calls' }]));
  pieces.push(
    openAiChunk([], {
      usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
    }),
  );
  pieces.push('data: [DONE]\n\n');
  return { status: 200, pieces };
}

/** A Gemini answer whose parts are function calls (Gemini names calls by function, gives no id). */
export function geminiFunctionCallAnswer(
  calls: readonly { name: string; args: Record<string, unknown> }[],
  usage = { promptTokenCount: 30, candidatesTokenCount: 10 },
): ScriptedAnswer {
  return {
    status: 200,
    body: {
      candidates: [
        {
          content: { role: 'model', parts: calls.map((call) => ({ functionCall: call })) },
          finishReason: 'STOP',
          index: 0,
        },
      ],
      usageMetadata: {
        ...usage,
        totalTokenCount: usage.promptTokenCount + usage.candidatesTokenCount,
      },
      modelVersion: 'fake',
    },
  };
}

/** A Gemini stream of function calls, as Gemini streams them: each call whole in its own chunk, the last with STOP. */
export function geminiFunctionCallStream(
  calls: readonly { name: string; args: Record<string, unknown> }[],
  usage = { promptTokenCount: 30, candidatesTokenCount: 10 },
): StreamAnswer {
  const pieces = calls.map((call, index) => {
    const last = index === calls.length - 1;
    const chunk = {
      candidates: [
        {
          content: { role: 'model', parts: [{ functionCall: call }] },
          index: 0,
          ...(last ? { finishReason: 'STOP' } : {}),
        },
      ],
      usageMetadata: {
        ...usage,
        totalTokenCount: usage.promptTokenCount + usage.candidatesTokenCount,
      },
    };
    return `data: ${JSON.stringify(chunk)}\r\n\r\n`;
  });
  return { status: 200, pieces };
}

/** Every delta a provider's stream yields, in order. */
export async function collectDeltas(stream: AsyncIterable<StreamDelta>): Promise<StreamDelta[]> {
  const deltas: StreamDelta[] = [];
  for await (const delta of stream) deltas.push(delta);
  return deltas;
}

/** The ProviderError a call fails with; any other outcome fails the test. */
export async function providerFailure(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ProviderError) return error;
    throw error;
  }
  throw new Error('expected a ProviderError');
}
