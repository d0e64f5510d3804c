import * as z from '../shared/zod-mini';
import type { ChatMessage, FinishReason } from './providers/types';

/**
 * OpenAI's Chat Completions request and response shapes, as clients' existing tools speak them.
 * Unknown request fields are ignored (SDKs send many); features this proxy does not offer (tools,
 * images, several choices) are refused with a clear 400.
 */

/** Messages per request and characters per message: generous, but bounded. */
export const messagesMax = 512;

const textPart = z.object({ type: z.literal('text'), text: z.string() });
const messageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant'], {
    message: 'messages[].role must be system, developer, user or assistant',
  }),
  content: z.union([z.string(), z.array(textPart).check(z.minLength(1))], {
    message: 'messages[].content must be a string or an array of text parts',
  }),
  name: z.optional(z.string().check(z.maxLength(64))),
});

export const chatRequestSchema = z
  .object({
    model: z.string({ message: 'model is required' }).check(z.minLength(1), z.maxLength(128)),
    messages: z
      .array(messageSchema, { message: 'messages must be an array' })
      .check(z.minLength(1, 'messages must not be empty'), z.maxLength(messagesMax)),
    max_tokens: z.optional(z.number().check(z.int('max_tokens must be an integer'), z.positive())),
    max_completion_tokens: z.optional(
      z.number().check(z.int('max_completion_tokens must be an integer'), z.positive()),
    ),
    temperature: z.optional(z.number().check(z.gte(0), z.lte(2))),
    top_p: z.optional(z.number().check(z.gte(0), z.lte(1))),
    stop: z.optional(z.union([z.string(), z.array(z.string()).check(z.maxLength(4))])),
    n: z.optional(z.literal(1, { message: 'only n=1 is supported' })),
    stream: z.optional(z.boolean()),
    stream_options: z.optional(z.object({ include_usage: z.optional(z.boolean()) })),
    user: z.optional(z.string().check(z.maxLength(256))),
    tools: z.optional(z.undefined({ message: 'tools are not supported by this proxy' })),
    functions: z.optional(z.undefined({ message: 'functions are not supported by this proxy' })),
  })
  .check(
    z.refine(
      (request) =>
        request.max_tokens === undefined ||
        request.max_completion_tokens === undefined ||
        request.max_tokens === request.max_completion_tokens,
      {
        message: 'max_tokens and max_completion_tokens disagree; send one',
      },
    ),
  );
export type ChatRequest = z.infer<typeof chatRequestSchema>;

export function normalizeMessages(messages: ChatRequest['messages']): ChatMessage[] {
  return messages.map((message): ChatMessage => {
    const text =
      typeof message.content === 'string'
        ? message.content
        : message.content.map((part) => part.text).join('');
    if (message.role === 'user') return { role: 'user', content: [{ type: 'text', text }] };
    if (message.role === 'assistant') return { role: 'assistant', content: text };
    return { role: 'system', content: text };
  });
}

export function stopSequences(stop: ChatRequest['stop']): string[] | undefined {
  if (stop === undefined) return undefined;
  return typeof stop === 'string' ? [stop] : stop;
}

export interface Completion {
  readonly id: string;
  readonly created: number;
  readonly model: string;
  readonly text: string;
  readonly finishReason: FinishReason;
  readonly promptTokens: number;
  readonly completionTokens: number;
}

export function completionBody(completion: Completion) {
  return {
    id: completion.id,
    object: 'chat.completion',
    created: completion.created,
    model: completion.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: completion.text, refusal: null },
        logprobs: null,
        finish_reason: completion.finishReason,
      },
    ],
    usage: usageBody(completion),
    system_fingerprint: null,
  };
}

function usageBody(completion: Pick<Completion, 'promptTokens' | 'completionTokens'>) {
  return {
    prompt_tokens: completion.promptTokens,
    completion_tokens: completion.completionTokens,
    total_tokens: completion.promptTokens + completion.completionTokens,
  };
}

/** What every chunk of one stream shares: OpenAI clients check that id, created and model stay the same. */
export interface StreamIdentity {
  readonly id: string;
  readonly created: number;
  readonly model: string;
}

type ChunkChoice = {
  index: 0;
  delta: { role?: 'assistant'; content?: string };
  logprobs: null;
  finish_reason: FinishReason | null;
};

function chunkBody(
  identity: StreamIdentity,
  choices: ChunkChoice[],
  extra: Record<string, unknown> = {},
) {
  return {
    id: identity.id,
    object: 'chat.completion.chunk',
    created: identity.created,
    model: identity.model,
    system_fingerprint: null,
    choices,
    ...extra,
  };
}

/** The first chunk: the assistant's role, no content yet. */
export function roleChunk(identity: StreamIdentity) {
  return chunkBody(identity, [
    { index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null },
  ]);
}

export function contentChunk(identity: StreamIdentity, text: string) {
  return chunkBody(identity, [
    { index: 0, delta: { content: text }, logprobs: null, finish_reason: null },
  ]);
}

export function finishChunk(identity: StreamIdentity, finishReason: FinishReason) {
  return chunkBody(identity, [
    { index: 0, delta: {}, logprobs: null, finish_reason: finishReason },
  ]);
}

/**
 * The usage chunk (`stream_options.include_usage`): no choices, the usage, and what was charged and
 * remains (the headers are long gone when it is known), as extra fields OpenAI clients ignore.
 */
export function usageChunk(
  identity: StreamIdentity,
  usage: { promptTokens: number; completionTokens: number },
  credits?: { charged: string; remaining: string },
) {
  const extra: Record<string, unknown> = {
    usage: usageBody({
      promptTokens: usage.promptTokens,
      completionTokens: usage.completionTokens,
    }),
  };
  if (credits) {
    extra.x_credits_charged = credits.charged;
    extra.x_credits_remaining = credits.remaining;
  }
  return chunkBody(identity, [], extra);
}
