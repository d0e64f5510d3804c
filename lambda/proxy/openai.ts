import * as z from 'zod';
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
  role: z.enum(['system', 'developer', 'user', 'assistant'], { message: 'messages[].role must be system, developer, user or assistant' }),
  content: z.union([z.string(), z.array(textPart).min(1)], { message: 'messages[].content must be a string or an array of text parts' }),
  name: z.string().max(64).optional(),
});

export const chatRequestSchema = z
  .object({
    model: z.string({ message: 'model is required' }).min(1).max(128),
    messages: z.array(messageSchema, { message: 'messages must be an array' }).min(1, 'messages must not be empty').max(messagesMax),
    max_tokens: z.number().int('max_tokens must be an integer').positive().optional(),
    max_completion_tokens: z.number().int('max_completion_tokens must be an integer').positive().optional(),
    temperature: z.number().min(0).max(2).optional(),
    top_p: z.number().min(0).max(1).optional(),
    stop: z.union([z.string(), z.array(z.string()).max(4)]).optional(),
    n: z.literal(1, { message: 'only n=1 is supported' }).optional(),
    stream: z.boolean().optional(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).optional(),
    user: z.string().max(256).optional(),
    tools: z.undefined({ message: 'tools are not supported by this proxy' }).optional(),
    functions: z.undefined({ message: 'functions are not supported by this proxy' }).optional(),
  })
  .refine((request) => request.max_tokens === undefined || request.max_completion_tokens === undefined || request.max_tokens === request.max_completion_tokens, {
    message: 'max_tokens and max_completion_tokens disagree; send one',
  });
export type ChatRequest = z.infer<typeof chatRequestSchema>;

export function normalizeMessages(messages: ChatRequest['messages']): ChatMessage[] {
  return messages.map((message) => ({
    role: message.role === 'developer' ? 'system' : message.role,
    content: typeof message.content === 'string' ? message.content : message.content.map((part) => part.text).join(''),
  }));
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
    choices: [{ index: 0, message: { role: 'assistant', content: completion.text, refusal: null }, logprobs: null, finish_reason: completion.finishReason }],
    usage: usageBody(completion),
    system_fingerprint: null,
  };
}

function usageBody(completion: Completion) {
  return { prompt_tokens: completion.promptTokens, completion_tokens: completion.completionTokens, total_tokens: completion.promptTokens + completion.completionTokens };
}

/**
 * The completion as server-sent events. Behind ALB + Lambda the body is buffered, so the chunks
 * arrive together; the format is what streaming clients parse.
 */
export function completionEventStream(completion: Completion, includeUsage: boolean): string {
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
    `data: ${JSON.stringify({ id: completion.id, object: 'chat.completion.chunk', created: completion.created, model: completion.model, system_fingerprint: null, choices, ...extra })}\n\n`;
  const events = [
    chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]),
    chunk([{ index: 0, delta: { content: completion.text }, logprobs: null, finish_reason: null }]),
    chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: completion.finishReason }]),
  ];
  if (includeUsage) events.push(chunk([], { usage: usageBody(completion) }));
  events.push('data: [DONE]\n\n');
  return events.join('');
}
