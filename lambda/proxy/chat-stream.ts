import type { Context, ExecutionContext } from 'hono';
import type { ModelConfig } from '../../lib/config/schema';
import { formatMicros } from '../shared/money';
import { audit } from '../../runtime/logger';
import type { ChatOutcome } from '../shared/metrics';
import type { ProxyAppDependencies, ProxyEnv } from './context';
import { costMicros, imagePromptTokensHeld, promptInputSize, usageFields } from './pricing';
import { Deadline } from './deadline';
import {
  contentChunk,
  finishChunk,
  roleChunk,
  toolCallChunk,
  usageChunk,
  type StreamIdentity,
} from './openai';
import {
  AttemptsFailed,
  answeringFields,
  attemptsOf,
  mayTryNext,
  recordNextAttempt,
  type Candidate,
} from './fallbacks';
import {
  ProviderError,
  type ChatProvider,
  type FinishReason,
  type ProviderRequest,
  type StreamDelta,
  type TokenUsage,
} from './providers/types';
import { sseData, sseDone, sseEvent, sseKeepAlive } from './sse';

/**
 * A billed chat completion streamed as it is produced (`"stream": true`). The hold is already placed
 * (402 came before any provider call). Until the provider's first delta, nothing is sent: a provider
 * that fails at once is retried once, or the model's fallbacks are tried in order; when none answers,
 * the billed path's JSON error, and the hold is released. The stream is billed at the price of the
 * model that answered, and every chunk names it. From the first delta (or from the first keep-alive, when the provider is slow to start)
 * the response is committed: chunks in OpenAI's format as the deltas arrive, keep-alive comments
 * through silences, and any later failure as an SSE `error` event in OpenAI's error shape.
 *
 * Billing: the provider's reported usage is settled (capped at the hold). A stream that ends
 * without usage (the client left, the provider cut, a deadline) is stopped upstream at once and
 * settled from an estimate of what was streamed, logged as an estimate: never zero when text was
 * delivered, never more than the hold. A response over the byte cap is a runaway: its hold is
 * released. What was charged and what remains go in the usage chunk (`x_credits_charged`,
 * `x_credits_remaining`); the headers left long before.
 */

type ProxyContext = Context<ProxyEnv>;
type SettleOutcome = { chargedMicros: bigint; availableMicros: bigint } | undefined;

export interface StreamPlan {
  /** The model the client asked for. */
  readonly model: ModelConfig;
  /** Who may answer, in order: the model, then its servable fallbacks (fallbacks.ts). */
  readonly candidates: readonly Candidate[];
  /** What every chunk shares, naming the model that answered. */
  readonly identity: (answering: ModelConfig) => StreamIdentity;
  readonly includeUsage: boolean;
  readonly heldMicros: bigint;
  readonly logFields: Record<string, unknown>;
  /** Settles the hold for this charge (capped at the hold); undefined releases it. */
  readonly settle: (
    chargeMicros: bigint | undefined,
    logFields: Record<string, unknown>,
  ) => Promise<SettleOutcome>;
  /** The billed path's answer to a provider failure before anything was sent (releases the hold, throws the API error). */
  readonly failBeforeFirstByte: (error: unknown) => Promise<Response>;
  /** A failure after the first byte, in OpenAI's error shape, for the `error` event. */
  readonly errorBody: (error: ProviderError) => unknown;
}

/** The stream once a candidate sent its first delta (or stayed silent past the first keep-alive): it bills and names that model. */
interface StreamRun {
  readonly model: ModelConfig;
  readonly provider: ChatProvider;
  readonly request: ProviderRequest;
  readonly identity: StreamIdentity;
  readonly includeUsage: boolean;
  readonly heldMicros: bigint;
  readonly logFields: Record<string, unknown>;
  readonly settle: (chargeMicros: bigint | undefined) => Promise<SettleOutcome>;
  readonly errorBody: (error: ProviderError) => unknown;
}

function runOf(plan: StreamPlan, candidate: Candidate): StreamRun {
  const logFields = answeringFields(plan.logFields, plan.model, candidate);
  return {
    model: candidate.model,
    provider: candidate.provider,
    request: candidate.request,
    identity: plan.identity(candidate.model),
    includeUsage: plan.includeUsage,
    heldMicros: plan.heldMicros,
    logFields,
    settle: (chargeMicros) => plan.settle(chargeMicros, logFields),
    errorBody: plan.errorBody,
  };
}

/** Why the stream ended. */
type Ending =
  { kind: 'completed' } | { kind: 'client_left' } | { kind: 'failed'; error: ProviderError };

/** Tokens of framing per message, tool call or tool offered in the estimate (role, separators). */
const estimateMessageOverheadTokens = 4;

/** Rough tokens of a text: about four UTF-8 bytes per token. Only for a stream that ended without usage. */
function estimatedTokens(bytes: number): number {
  return Math.ceil(bytes / 4);
}

/**
 * What an unfinished stream used: the provider's last (cumulative) count when it sent one, else the
 * prompt (its text, tool definitions and calls; each image at its hold bound, since the proxy never
 * decodes one) and the streamed output (text and tool calls) estimated. At least one completion
 * token once anything was delivered.
 */
export function estimateStreamUsage(
  request: ProviderRequest,
  streamedBytes: number,
  reported: TokenUsage | undefined,
): TokenUsage {
  const prompt = promptInputSize(request);
  const promptTokens =
    reported?.promptTokens ??
    estimatedTokens(prompt.bytes) +
      prompt.items * estimateMessageOverheadTokens +
      prompt.images * imagePromptTokensHeld;
  const streamedTokens = streamedBytes === 0 ? 0 : Math.max(1, estimatedTokens(streamedBytes));
  return {
    // The cache and reasoning parts the provider reported stay billed at their own prices.
    ...reported,
    promptTokens,
    completionTokens: Math.max(reported?.completionTokens ?? 0, streamedTokens),
  };
}

/**
 * Writes events to the response body; a comment goes out whenever the stream was silent for the
 * keep-alive interval. Events are queued as the provider sends them: what a slow reader leaves
 * queued is bounded by the provider's own output, which the response cap bounds.
 */
class EventSink {
  private readonly encoder = new TextEncoder();
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private keepAlive: NodeJS.Timeout | undefined;
  closed = false;
  readonly body: ReadableStream<Uint8Array>;

  constructor(
    private readonly keepAliveMilliseconds: number,
    onCancel: () => void,
  ) {
    this.body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.controller = controller;
      },
      // The consumer went away (the Node server does this when the client's socket closes).
      cancel: () => {
        this.stop();
        onCancel();
      },
    });
    this.armKeepAlive();
  }

  write(text: string): void {
    if (this.closed) return;
    this.controller.enqueue(this.encoder.encode(text));
    this.armKeepAlive();
  }

  end(): void {
    if (this.closed) return;
    this.stop();
    this.controller.close();
  }

  private stop(): void {
    this.closed = true;
    clearTimeout(this.keepAlive);
  }

  private armKeepAlive(): void {
    clearTimeout(this.keepAlive);
    if (!this.closed)
      this.keepAlive = setTimeout(() => this.write(sseKeepAlive), this.keepAliveMilliseconds);
  }
}

interface OpenedStream {
  readonly iterator: AsyncIterator<StreamDelta>;
  /** The first delta, or its promise when the provider stayed silent past the first keep-alive. */
  readonly first: IteratorResult<StreamDelta> | Promise<IteratorResult<StreamDelta>>;
  /** Bounds the wait for the first delta; cleared once it came. */
  readonly attemptDeadline: Deadline;
}

/** Resolves to 'silent' if the promise has not settled within the interval. */
async function within<T>(
  promise: Promise<T>,
  milliseconds: number,
): Promise<{ value: T } | 'silent'> {
  let timer: NodeJS.Timeout | undefined;
  const silence = new Promise<'silent'>(
    (resolve) => (timer = setTimeout(() => resolve('silent'), milliseconds)),
  );
  try {
    return await Promise.race([promise.then((value) => ({ value })), silence]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Opens the candidates' streams in turn (fallbacks.ts: each once, or the model alone twice) until one
 * sends its first delta, while nothing has been sent. Each attempt's deadline bounds the wait for
 * the first delta; the budget bounds the whole stream. A candidate silent past the first keep-alive
 * commits the response (a thinking model is not cut off): from then on, no other candidate is tried.
 */
async function openStream(
  plan: StreamPlan,
  dependencies: ProxyAppDependencies,
  upstream: AbortSignal,
  budget: Deadline,
): Promise<{ opened: OpenedStream; candidate: Candidate }> {
  const { config, metrics } = dependencies;
  const attempts = attemptsOf(plan.candidates);
  for (let index = 0; ; index += 1) {
    const candidate = attempts[index];
    const attempt = new Deadline(config.providerAttemptTimeoutMilliseconds);
    const signal = AbortSignal.any([upstream, budget.signal, attempt.signal]);
    const call = { signal, responseBytesMax: config.providerResponseBytesMax };
    const iterator = candidate.provider.stream(candidate.request, call)[Symbol.asyncIterator]();
    const started = performance.now();
    const next = iterator.next();
    try {
      const first = await within(next, config.streamKeepAliveIntervalMilliseconds);
      metrics.record('ProviderLatency', Math.round(performance.now() - started), {
        provider: candidate.provider.name,
      });
      if (first !== 'silent') attempt.clear();
      const opened = {
        iterator,
        first: first === 'silent' ? next : first.value,
        attemptDeadline: attempt,
      };
      return { opened, candidate };
    } catch (error) {
      attempt.clear();
      metrics.record('ProviderErrors', 1, {
        provider: candidate.provider.name,
        kind: error instanceof ProviderError ? error.kind : 'bad_gateway',
      });
      const following = attempts[index + 1];
      if (!mayTryNext(error, candidate, following, { budget, attempt, client: upstream }))
        throw new AttemptsFailed(error, candidate);
      recordNextAttempt(dependencies, error as ProviderError, candidate, following, plan.logFields);
    }
  }
}

/**
 * The Node server's stop waits for the pump (its settlement included) even after the connection was
 * cut (runtime/node-server.ts). Lambda and `app.request` give no execution context: there the
 * response stream, which ends only after the settlement, keeps the invocation alive.
 */
function keepServerWaitingFor(c: ProxyContext, work: Promise<void>): void {
  let executionContext: ExecutionContext;
  try {
    executionContext = c.executionCtx; // hono throws when the runtime gave none
  } catch {
    return;
  }
  executionContext.waitUntil(work);
}

export async function streamChatCompletion(
  c: ProxyContext,
  dependencies: ProxyAppDependencies,
  plan: StreamPlan,
): Promise<Response> {
  // Aborted when the client leaves or when we stop the provider; every provider call listens to it.
  const upstream = new AbortController();
  const clientSignal = c.req.raw.signal;
  const onClientAbort = () => upstream.abort(new DOMException('the client left', 'AbortError'));
  clientSignal.addEventListener('abort', onClientAbort, { once: true });
  if (clientSignal.aborted) onClientAbort(); // left while the hold was placed
  const budget = new Deadline(dependencies.config.providerBudgetMilliseconds);
  let opened: OpenedStream;
  let run: StreamRun;
  try {
    const answered = await openStream(plan, dependencies, upstream.signal, budget);
    opened = answered.opened;
    run = runOf(plan, answered.candidate);
  } catch (error) {
    budget.clear();
    clientSignal.removeEventListener('abort', onClientAbort);
    return plan.failBeforeFirstByte(error);
  }
  const sink = new EventSink(
    dependencies.config.streamKeepAliveIntervalMilliseconds,
    onClientAbort,
  );
  sink.write(sseData(roleChunk(run.identity)));
  const pumping = pump(dependencies, run, opened, sink, upstream).finally(() => {
    budget.clear();
    clientSignal.removeEventListener('abort', onClientAbort);
  });
  keepServerWaitingFor(c, pumping);
  c.header('content-type', 'text/event-stream; charset=utf-8');
  c.header('cache-control', 'no-cache');
  // Tells buffering reverse proxies (nginx and its kin) to pass events through as they come.
  c.header('x-accel-buffering', 'no');
  return c.body(sink.body);
}

interface StreamProgress {
  /** UTF-8 bytes delivered: text, tool call names and argument fragments (for an estimate). */
  streamedBytes: number;
  /** Tool calls started, by index: a delta for an index not started, or a start without id and name, is a bad stream. */
  toolCallsStarted: number;
  finishReason: FinishReason | undefined;
  usage: TokenUsage | undefined;
}

/**
 * A tool call delta must follow the contract, or clients would assemble a wrong call: calls start in
 * index order with an id and a name, only when tools were offered; later deltas extend a started call.
 */
function checkToolCallDelta(
  plan: StreamRun,
  progress: StreamProgress,
  delta: Extract<StreamDelta, { kind: 'tool_call' }>,
): void {
  const fail = (what: string) =>
    new ProviderError('bad_gateway', `${plan.provider.name} sent ${what}`, false);
  if (!plan.request.tools) throw fail('an unrequested tool call');
  if (delta.index === progress.toolCallsStarted) {
    if (delta.id === undefined || delta.name === undefined)
      throw fail('a tool call without its id and name');
    progress.toolCallsStarted += 1;
  } else if (delta.index > progress.toolCallsStarted || delta.index < 0) {
    throw fail('a tool call delta out of order');
  }
}

/** Forwards every delta; returns how the stream ended. Never throws. */
async function forward(
  plan: StreamRun,
  opened: OpenedStream,
  sink: EventSink,
  upstream: AbortSignal,
  progress: StreamProgress,
): Promise<Ending> {
  try {
    let result = await opened.first;
    opened.attemptDeadline.clear();
    while (!result.done) {
      const delta = result.value;
      if (delta.kind === 'text') {
        progress.streamedBytes += Buffer.byteLength(delta.text, 'utf8');
        sink.write(sseData(contentChunk(plan.identity, delta.text)));
      } else if (delta.kind === 'tool_call') {
        checkToolCallDelta(plan, progress, delta);
        progress.streamedBytes += Buffer.byteLength((delta.name ?? '') + delta.argumentsDelta);
        sink.write(sseData(toolCallChunk(plan.identity, delta)));
      } else if (delta.kind === 'finish') {
        progress.finishReason = delta.finishReason;
        sink.write(sseData(finishChunk(plan.identity, delta.finishReason)));
      } else {
        progress.usage = delta.usage;
      }
      if (sink.closed || upstream.aborted) return { kind: 'client_left' };
      result = await opened.iterator.next();
    }
    return { kind: 'completed' };
  } catch (error) {
    opened.attemptDeadline.clear();
    if (sink.closed || upstream.aborted) return { kind: 'client_left' };
    return {
      kind: 'failed',
      error:
        error instanceof ProviderError
          ? error
          : new ProviderError('bad_gateway', 'the provider stream failed', false),
    };
  }
}

async function pump(
  dependencies: ProxyAppDependencies,
  plan: StreamRun,
  opened: OpenedStream,
  sink: EventSink,
  upstream: AbortController,
): Promise<void> {
  const progress: StreamProgress = {
    streamedBytes: 0,
    toolCallsStarted: 0,
    finishReason: undefined,
    usage: undefined,
  };
  const ending = await forward(plan, opened, sink, upstream.signal, progress);
  if (ending.kind !== 'completed') {
    // Stop the provider at once: no billed tokens nobody reads.
    upstream.abort(new DOMException('the stream ended', 'AbortError'));
    await opened.iterator.return?.().catch(() => undefined);
  }
  try {
    await settleStream(dependencies, plan, sink, ending, progress);
  } catch (error) {
    dependencies.logger.error('stream settlement failed', {
      ...plan.logFields,
      error_message: (error as Error).message,
    });
  } finally {
    sink.end();
  }
}

function countCompletion(
  dependencies: ProxyAppDependencies,
  model: ModelConfig,
  outcome: ChatOutcome,
): void {
  dependencies.metrics.record('ChatCompletions', 1, { model: model.id, outcome });
}

/** Settles what the stream used, then sends the usage chunk and [DONE], or the error event. */
async function settleStream(
  dependencies: ProxyAppDependencies,
  plan: StreamRun,
  sink: EventSink,
  ending: Ending,
  progress: StreamProgress,
): Promise<void> {
  const { model } = plan;
  const reported =
    ending.kind === 'failed' ? (ending.error.usage ?? progress.usage) : progress.usage;
  const runaway = ending.kind === 'failed' && ending.error.kind === 'too_large';
  const delivered = progress.streamedBytes > 0;
  // Reported usage is the bill; without it, an estimate once anything was delivered; a runaway answer is not billed.
  const usageSource = runaway
    ? 'none'
    : reported && ending.kind === 'completed'
      ? 'provider'
      : delivered || reported
        ? 'estimate'
        : 'none';
  const usage =
    usageSource === 'provider'
      ? reported
      : usageSource === 'estimate'
        ? estimateStreamUsage(plan.request, progress.streamedBytes, reported)
        : undefined;
  const outcome = await plan.settle(usage ? costMicros(model, usage) : undefined);
  countCompletion(
    dependencies,
    model,
    ending.kind === 'completed'
      ? 'completed'
      : ending.kind === 'client_left'
        ? 'client_disconnected'
        : 'provider_error',
  );
  if (usage) {
    dependencies.metrics.record('PromptTokens', usage.promptTokens, { model: model.id });
    dependencies.metrics.record('CompletionTokens', usage.completionTokens, { model: model.id });
    if (outcome)
      dependencies.metrics.record('CostChargedMicros', Number(outcome.chargedMicros), {
        model: model.id,
      });
  }
  const fields = {
    ...plan.logFields,
    stream: true,
    ending: ending.kind,
    usage_source: usageSource,
    ...(usage ? usageFields(usage) : {}),
    held_micros: plan.heldMicros.toString(),
    charged_micros: outcome?.chargedMicros.toString(),
    finish_reason: progress.finishReason,
  };
  if (usageSource === 'estimate')
    dependencies.logger.warn(
      'stream settled from an estimate: the provider reported no final usage',
      fields,
    );
  if (ending.kind === 'failed') {
    dependencies.metrics.record('ProviderErrors', 1, {
      provider: plan.provider.name,
      kind: ending.error.kind,
    });
    audit(dependencies.logger, 'provider_failure', { ...fields, error_kind: ending.error.kind });
    sink.write(sseEvent('error', plan.errorBody(ending.error)));
    return;
  }
  audit(dependencies.logger, 'chat_completion', fields);
  if (ending.kind === 'client_left') return;
  if (progress.finishReason === undefined) sink.write(sseData(finishChunk(plan.identity, 'stop')));
  if (plan.includeUsage && usage) {
    const credits = outcome
      ? {
          charged: formatMicros(outcome.chargedMicros),
          remaining: formatMicros(outcome.availableMicros),
        }
      : undefined;
    sink.write(sseData(usageChunk(plan.identity, usage, credits)));
  }
  sink.write(sseDone);
}
