import type { Context } from 'hono';
import type { ModelConfig } from '../../lib/config/schema';
import { formatMicros } from '../shared/money';
import { audit } from '../shared/logger';
import type { ChatOutcome } from '../shared/metrics';
import type { ProxyAppDependencies, ProxyEnv } from './context';
import { costMicros } from './pricing';
import { Deadline } from './deadline';
import { contentChunk, finishChunk, roleChunk, usageChunk, type StreamIdentity } from './openai';
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
 * that fails at once gets the billed path's JSON error (with its one retry), and the hold is
 * released. From the first delta (or from the first keep-alive, when the provider is slow to start)
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
  readonly model: ModelConfig;
  readonly provider: ChatProvider;
  readonly request: ProviderRequest;
  readonly identity: StreamIdentity;
  readonly includeUsage: boolean;
  readonly heldMicros: bigint;
  readonly logFields: Record<string, unknown>;
  /** Settles the hold for this charge (capped at the hold); undefined releases it. */
  readonly settle: (chargeMicros: bigint | undefined) => Promise<SettleOutcome>;
  /** The billed path's answer to a provider failure before anything was sent (releases the hold, throws the API error). */
  readonly failBeforeFirstByte: (error: unknown) => Promise<Response>;
  /** A failure after the first byte, in OpenAI's error shape, for the `error` event. */
  readonly errorBody: (error: ProviderError) => unknown;
}

/** Why the stream ended. */
type Ending =
  { kind: 'completed' } | { kind: 'client_left' } | { kind: 'failed'; error: ProviderError };

/** Tokens of framing per message in the estimate (role, separators). */
const estimateMessageOverheadTokens = 4;

/** Rough tokens of a text: about four UTF-8 bytes per token. Only for a stream that ended without usage. */
function estimatedTokens(text: string): number {
  return Math.ceil(Buffer.byteLength(text, 'utf8') / 4);
}

/**
 * What an unfinished stream used: the provider's last (cumulative) count when it sent one, else the
 * prompt and the streamed text estimated. At least one completion token once text was delivered.
 */
export function estimateStreamUsage(
  request: ProviderRequest,
  streamedText: string,
  reported: TokenUsage | undefined,
): TokenUsage {
  const promptTokens =
    reported?.promptTokens ??
    request.messages.reduce(
      (sum, message) => sum + estimatedTokens(message.content) + estimateMessageOverheadTokens,
      0,
    );
  const streamedTokens = streamedText === '' ? 0 : Math.max(1, estimatedTokens(streamedText));
  return {
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
 * Opens the provider stream and waits for its first delta, one retry on a retryable failure while
 * nothing has been sent. Each attempt's deadline bounds the wait for the first delta; the budget
 * bounds the whole stream.
 */
async function openStream(
  plan: StreamPlan,
  dependencies: ProxyAppDependencies,
  upstream: AbortSignal,
  budget: Deadline,
): Promise<OpenedStream> {
  const { config, metrics } = dependencies;
  for (let attempt = 1; ; attempt += 1) {
    const attemptDeadline = new Deadline(config.providerAttemptTimeoutMilliseconds);
    const signal = AbortSignal.any([upstream, budget.signal, attemptDeadline.signal]);
    const call = { signal, responseBytesMax: config.providerResponseBytesMax };
    const iterator = plan.provider.stream(plan.request, call)[Symbol.asyncIterator]();
    const started = performance.now();
    const next = iterator.next();
    try {
      const first = await within(next, config.streamKeepAliveIntervalMilliseconds);
      metrics.record('ProviderLatency', Math.round(performance.now() - started), {
        provider: plan.provider.name,
      });
      if (first !== 'silent') attemptDeadline.clear();
      return { iterator, first: first === 'silent' ? next : first.value, attemptDeadline };
    } catch (error) {
      attemptDeadline.clear();
      metrics.record('ProviderErrors', 1, {
        provider: plan.provider.name,
        kind: error instanceof ProviderError ? error.kind : 'bad_gateway',
      });
      const retry =
        error instanceof ProviderError &&
        error.retryable &&
        attempt === 1 &&
        !budget.passed &&
        !upstream.aborted;
      if (!retry) throw error;
      dependencies.logger.warn('provider error; retrying once', {
        provider: plan.provider.name,
        error_kind: error.kind,
      });
    }
  }
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
  try {
    opened = await openStream(plan, dependencies, upstream.signal, budget);
  } catch (error) {
    budget.clear();
    clientSignal.removeEventListener('abort', onClientAbort);
    return plan.failBeforeFirstByte(error);
  }
  const sink = new EventSink(
    dependencies.config.streamKeepAliveIntervalMilliseconds,
    onClientAbort,
  );
  sink.write(sseData(roleChunk(plan.identity)));
  void pump(dependencies, plan, opened, sink, upstream).finally(() => {
    budget.clear();
    clientSignal.removeEventListener('abort', onClientAbort);
  });
  c.header('content-type', 'text/event-stream; charset=utf-8');
  c.header('cache-control', 'no-cache');
  // Tells buffering reverse proxies (nginx and its kin) to pass events through as they come.
  c.header('x-accel-buffering', 'no');
  return c.body(sink.body);
}

interface StreamProgress {
  text: string;
  finishReason: FinishReason | undefined;
  usage: TokenUsage | undefined;
}

/** Forwards every delta; returns how the stream ended. Never throws. */
async function forward(
  plan: StreamPlan,
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
        progress.text += delta.text;
        sink.write(sseData(contentChunk(plan.identity, delta.text)));
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
  plan: StreamPlan,
  opened: OpenedStream,
  sink: EventSink,
  upstream: AbortController,
): Promise<void> {
  const progress: StreamProgress = { text: '', finishReason: undefined, usage: undefined };
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
  plan: StreamPlan,
  sink: EventSink,
  ending: Ending,
  progress: StreamProgress,
): Promise<void> {
  const { model } = plan;
  const reported =
    ending.kind === 'failed' ? (ending.error.usage ?? progress.usage) : progress.usage;
  const runaway = ending.kind === 'failed' && ending.error.kind === 'too_large';
  const delivered = progress.text !== '';
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
        ? estimateStreamUsage(plan.request, progress.text, reported)
        : undefined;
  const outcome = await plan.settle(
    usage ? costMicros(model, usage.promptTokens, usage.completionTokens) : undefined,
  );
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
    prompt_tokens: usage?.promptTokens,
    completion_tokens: usage?.completionTokens,
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
