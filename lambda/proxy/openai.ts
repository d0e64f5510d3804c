import * as z from '../../runtime/zod-mini';
import type { FinishReason, ToolCall } from './providers/types';

/**
 * OpenAI's Chat Completions request and response shapes, as clients' existing tools speak them.
 * An unknown top-level parameter is a 400 naming it, as OpenAI answers (never a silent drop);
 * unknown fields inside a message are ignored (a message the SDK handed back carries fields such
 * as `parsed` or `annotations`). OpenAI's own parameters this proxy does not offer are refused
 * with a 400 naming them, never dropped. `null` for any optional field means absent (the
 * SDKs and Python callers send it). What the schema cannot say (a data: URL's bytes, a tool message
 * without its call) is checked in chat-request.ts, which maps the request onto the provider contract.
 */

/** Messages per request: generous, but bounded. */
export const messagesMax = 512;
/** Tools offered in one request: OpenAI's own limit. */
export const toolsMax = 128;
/** Stop sequences per request: OpenAI's own limit. */
export const stopSequencesMax = 4;
/** Entries of `logit_bias`: OpenAI's own limit. */
export const logitBiasEntriesMax = 300;
/** Entries of `metadata` and the lengths of its keys and values: OpenAI's own limits. */
export const metadataEntriesMax = 16;
export const metadataKeyCharactersMax = 64;
export const metadataValueCharactersMax = 512;
/** `top_logprobs`: OpenAI's own range. */
export const topLogprobsMax = 20;
/** Characters of a tool call id the client sends back. */
export const toolCallIdCharactersMax = 256;

/** An optional field: absent, or null (which means absent). */
function optional<T extends z.ZodMiniType>(schema: T) {
  return z.optional(z.nullable(schema));
}

/** A function name as OpenAI accepts it (tools, named tool_choice, response_format's schema name). */
const functionName = z
  .string()
  .check(
    z.regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 letters, digits, underscores or hyphens'),
  );

const textPart = z.object({ type: z.literal('text'), text: z.string() });
const imagePart = z.object({
  type: z.literal('image_url'),
  image_url: z.object({
    url: z.string({ message: 'image_url.url must be a data: URL or an https URL' }),
    detail: optional(z.enum(['auto', 'low', 'high'])),
  }),
});
const textContent = z.union([z.string(), z.array(textPart).check(z.minLength(1))], {
  message: 'content must be a string or an array of text parts',
});
const userContent = z.union(
  [z.string(), z.array(z.union([textPart, imagePart])).check(z.minLength(1))],
  { message: 'content must be a string or an array of text and image_url parts' },
);

const toolCallSchema = z.object({
  id: z.string().check(z.minLength(1), z.maxLength(toolCallIdCharactersMax)),
  type: z.literal('function', { message: 'tool_calls[].type must be function' }),
  function: z.object({ name: functionName, arguments: z.string() }),
});

const messageSchema = z.discriminatedUnion(
  'role',
  [
    z.object({
      role: z.enum(['system', 'developer']),
      content: textContent,
      name: optional(z.string().check(z.maxLength(64))),
    }),
    z.object({
      role: z.literal('user'),
      content: userContent,
      name: optional(z.string().check(z.maxLength(64))),
    }),
    z
      .object({
        role: z.literal('assistant'),
        content: optional(textContent),
        tool_calls: optional(z.array(toolCallSchema).check(z.minLength(1))),
        name: optional(z.string().check(z.maxLength(64))),
      })
      .check(
        z.refine((message) => (message.content ?? message.tool_calls ?? undefined) !== undefined, {
          message: 'an assistant message needs content or tool_calls',
        }),
      ),
    z.object({
      role: z.literal('tool'),
      tool_call_id: z.string({ message: 'tool_call_id is required' }).check(z.minLength(1)),
      content: textContent,
    }),
  ],
  { message: 'messages[].role must be system, developer, user, assistant or tool' },
);

const toolSchema = z.object({
  type: z.literal('function', { message: 'tools[].type must be function' }),
  function: z.object({
    name: functionName,
    description: optional(z.string()),
    // Its structure (a JSON Schema object) is checked in chat-request.ts, which names the field.
    parameters: optional(z.record(z.string(), z.unknown())),
    strict: optional(z.boolean()),
  }),
});

const toolChoiceSchema = z.union(
  [
    z.enum(['none', 'auto', 'required']),
    z.object({ type: z.literal('function'), function: z.object({ name: functionName }) }),
  ],
  {
    message:
      'tool_choice must be none, auto, required or { "type": "function", "function": { "name" } }',
  },
);

const responseFormatSchema = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('text') }),
    z.object({ type: z.literal('json_object') }),
    z.object({
      type: z.literal('json_schema'),
      json_schema: z.object({
        name: functionName,
        description: optional(z.string()),
        schema: z.record(z.string(), z.unknown(), {
          message: 'json_schema.schema must be a JSON Schema object',
        }),
        strict: optional(z.boolean()),
      }),
    }),
  ],
  { message: 'response_format.type must be text, json_object or json_schema' },
);

const penalty = z.number().check(z.gte(-2), z.lte(2));

/**
 * OpenAI parameters this proxy offers no provider for: a 400 naming each, never a silent drop. The
 * value each may take that asks for nothing (the default) is accepted.
 */
export const unofferedParameters = {
  functions: undefined,
  function_call: undefined,
  audio: undefined,
  modalities: ['text'],
  prediction: undefined,
  web_search_options: undefined,
  service_tier: 'auto',
  store: false,
  verbosity: 'medium',
  prompt_cache_key: undefined,
  prompt_cache_retention: 'in-memory',
  safety_identifier: undefined,
} as const;

/** OpenAI's message for top-level parameters it does not know, naming each. */
export function unrecognizedArgumentsMessage(names: readonly string[]): string {
  const noun = names.length === 1 ? 'argument' : 'arguments';
  return `Unrecognized request ${noun} supplied: ${names.join(', ')}`;
}

export const chatRequestSchema = z
  .strictObject({
    model: z.string({ message: 'model is required' }).check(z.minLength(1), z.maxLength(128)),
    messages: z
      .array(messageSchema, { message: 'messages must be an array' })
      .check(z.minLength(1, 'messages must not be empty'), z.maxLength(messagesMax)),
    max_tokens: optional(z.number().check(z.int('max_tokens must be an integer'), z.positive())),
    max_completion_tokens: optional(
      z.number().check(z.int('max_completion_tokens must be an integer'), z.positive()),
    ),
    temperature: optional(z.number().check(z.gte(0), z.lte(2))),
    top_p: optional(z.number().check(z.gte(0), z.lte(1))),
    stop: optional(z.union([z.string(), z.array(z.string()).check(z.maxLength(stopSequencesMax))])),
    n: optional(z.literal(1, { message: 'only n=1 is supported' })),
    stream: optional(z.boolean()),
    stream_options: optional(z.object({ include_usage: optional(z.boolean()) })),
    tools: optional(z.array(toolSchema).check(z.maxLength(toolsMax))),
    tool_choice: optional(toolChoiceSchema),
    parallel_tool_calls: optional(z.boolean()),
    response_format: optional(responseFormatSchema),
    seed: optional(z.number().check(z.int('seed must be an integer'))),
    presence_penalty: optional(penalty),
    frequency_penalty: optional(penalty),
    logit_bias: optional(
      z.record(z.string(), z.number().check(z.gte(-100), z.lte(100))).check(
        z.refine((bias) => Object.keys(bias).every((key) => /^\d+$/.test(key)), {
          message: 'logit_bias keys must be token ids',
        }),
        z.refine((bias) => Object.keys(bias).length <= logitBiasEntriesMax, {
          message: `logit_bias takes at most ${logitBiasEntriesMax} entries`,
        }),
      ),
    ),
    logprobs: optional(z.boolean()),
    top_logprobs: optional(z.number().check(z.int(), z.gte(0), z.lte(topLogprobsMax))),
    reasoning_effort: optional(z.enum(['minimal', 'low', 'medium', 'high'])),
    user: optional(z.string().check(z.maxLength(256))),
    metadata: optional(
      z
        .record(
          z.string().check(z.maxLength(metadataKeyCharactersMax)),
          z.string().check(z.maxLength(metadataValueCharactersMax)),
        )
        .check(
          z.refine((metadata) => Object.keys(metadata).length <= metadataEntriesMax, {
            message: `metadata takes at most ${metadataEntriesMax} entries`,
          }),
        ),
    ),
    // Refused in chat-request.ts unless they ask for the default (unofferedParameters).
    functions: optional(z.unknown()),
    function_call: optional(z.unknown()),
    audio: optional(z.unknown()),
    modalities: optional(z.unknown()),
    prediction: optional(z.unknown()),
    web_search_options: optional(z.unknown()),
    service_tier: optional(z.unknown()),
    store: optional(z.unknown()),
    verbosity: optional(z.unknown()),
    prompt_cache_key: optional(z.unknown()),
    prompt_cache_retention: optional(z.unknown()),
    safety_identifier: optional(z.unknown()),
  })
  .check(
    z.refine(
      (request) =>
        (request.max_tokens ?? undefined) === undefined ||
        (request.max_completion_tokens ?? undefined) === undefined ||
        request.max_tokens === request.max_completion_tokens,
      {
        message: 'max_tokens and max_completion_tokens disagree; send one',
        path: ['max_tokens'],
      },
    ),
  );
export type ChatRequest = z.infer<typeof chatRequestSchema>;

export interface Completion {
  readonly id: string;
  readonly created: number;
  readonly model: string;
  readonly text: string;
  /** Absent or empty: the answer is text only. */
  readonly toolCalls?: readonly ToolCall[];
  readonly finishReason: FinishReason;
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** The parts of the counts the provider reported (billed at their own prices). */
  readonly cachedPromptTokens?: number;
  readonly reasoningTokens?: number;
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
        message: messageBody(completion),
        logprobs: null,
        finish_reason: completion.finishReason,
      },
    ],
    usage: usageBody(completion),
    system_fingerprint: null,
  };
}

/** OpenAI's tool call object. */
function toolCallBody(call: ToolCall) {
  return {
    id: call.id,
    type: 'function',
    function: { name: call.name, arguments: call.arguments },
  };
}

/** The assistant's message; as OpenAI's, its content is null when the turn is only tool calls. */
function messageBody(completion: Completion) {
  const toolCalls = completion.toolCalls ?? [];
  if (toolCalls.length === 0) return { role: 'assistant', content: completion.text, refusal: null };
  return {
    role: 'assistant',
    content: completion.text === '' ? null : completion.text,
    refusal: null,
    tool_calls: toolCalls.map(toolCallBody),
  };
}

type UsageCounts = Pick<
  Completion,
  'promptTokens' | 'completionTokens' | 'cachedPromptTokens' | 'reasoningTokens'
>;

/** OpenAI's usage object; the cached and reasoning details only when the provider reported them. */
function usageBody(usage: UsageCounts) {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
    ...(usage.cachedPromptTokens
      ? { prompt_tokens_details: { cached_tokens: usage.cachedPromptTokens } }
      : {}),
    ...(usage.reasoningTokens
      ? { completion_tokens_details: { reasoning_tokens: usage.reasoningTokens } }
      : {}),
  };
}

/** What every chunk of one stream shares: OpenAI clients check that id, created and model stay the same. */
export interface StreamIdentity {
  readonly id: string;
  readonly created: number;
  readonly model: string;
}

/** One tool call's part of a chunk, as OpenAI streams it: id, type and name first, then argument fragments. */
type ToolCallDeltaBody = {
  index: number;
  id?: string;
  type?: 'function';
  function: { name?: string; arguments: string };
};

type ChunkChoice = {
  index: 0;
  delta: { role?: 'assistant'; content?: string; tool_calls?: ToolCallDeltaBody[] };
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

/**
 * A tool call delta. The first of a call (its index counted from 0 in the order calls start) names
 * it: id, type and function name, with the arguments so far; the later ones carry argument fragments.
 */
export function toolCallChunk(
  identity: StreamIdentity,
  delta: { index: number; id?: string; name?: string; argumentsDelta: string },
) {
  const body: ToolCallDeltaBody = {
    index: delta.index,
    function: { arguments: delta.argumentsDelta },
  };
  if (delta.id !== undefined) {
    body.id = delta.id;
    body.type = 'function';
  }
  if (delta.name !== undefined) body.function.name = delta.name;
  return chunkBody(identity, [
    { index: 0, delta: { tool_calls: [body] }, logprobs: null, finish_reason: null },
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
  usage: UsageCounts,
  credits?: { charged: string; remaining: string },
) {
  const extra: Record<string, unknown> = { usage: usageBody(usage) };
  if (credits) {
    extra.x_credits_charged = credits.charged;
    extra.x_credits_remaining = credits.remaining;
  }
  return chunkBody(identity, [], extra);
}
