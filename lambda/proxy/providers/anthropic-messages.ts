import {
  messageText,
  type ChatMessage,
  type ContentPart,
  type ProviderRequest,
  type ToolChoice,
} from './types';

/**
 * The request side of Anthropic's Messages API (POST /v1/messages, version 2023-06-01): our
 * contract's messages, tools and options as Anthropic's JSON. System messages (wherever they stand)
 * become the top-level `system`; a tool's answer becomes a `tool_result` block in a user turn;
 * consecutive turns of one role are merged into one (every `tool_result` answering an assistant
 * turn must come in the user turn right after it, so parallel tool answers share one turn).
 */

export const anthropicVersion = '2023-06-01';
/** Anthropic's temperature range is 0 to 1 (OpenAI's is 0 to 2): above it, a 400 naming the field. */
export const anthropicTemperatureMax = 1;

type AnthropicBlock =
  | { type: 'text'; text: string }
  | {
      type: 'image';
      source: { type: 'base64'; media_type: string; data: string } | { type: 'url'; url: string };
    }
  | { type: 'tool_use'; id: string; name: string; input: unknown }
  | { type: 'tool_result'; tool_use_id: string; content: string };

interface AnthropicMessage {
  role: 'user' | 'assistant';
  content: AnthropicBlock[];
}

function partBlock(part: ContentPart): AnthropicBlock | undefined {
  if (part.type === 'text') return part.text === '' ? undefined : { type: 'text', text: part.text };
  if (part.type === 'image')
    return {
      type: 'image',
      source: { type: 'base64', media_type: part.mediaType, data: part.data },
    };
  // Anthropic fetches https images itself; the proxy never does (no SSRF from here).
  return { type: 'image', source: { type: 'url', url: part.url } };
}

/** The blocks of one non-system message; empty text is left out (Anthropic refuses empty text blocks). */
function messageBlocks(message: Exclude<ChatMessage, { role: 'system' }>): AnthropicBlock[] {
  if (message.role === 'user') return message.content.flatMap((part) => partBlock(part) ?? []);
  if (message.role === 'tool')
    return [{ type: 'tool_result', tool_use_id: message.toolCallId, content: message.content }];
  const blocks: AnthropicBlock[] = [];
  if (message.content) blocks.push({ type: 'text', text: message.content });
  for (const call of message.toolCalls ?? [])
    blocks.push({
      type: 'tool_use',
      id: call.id,
      name: call.name,
      input: toolInput(call.arguments),
    });
  return blocks;
}

/** A tool call's arguments as the object Anthropic wants; `unsupported` refused anything else before. */
function toolInput(argumentsText: string): unknown {
  return argumentsText.trim() === '' ? {} : JSON.parse(argumentsText);
}

export function toAnthropicMessages(messages: readonly ChatMessage[]): {
  system?: string;
  messages: AnthropicMessage[];
} {
  const system = messages
    .filter((message) => message.role === 'system')
    .map((message) => messageText(message));
  const turns: AnthropicMessage[] = [];
  for (const message of messages) {
    if (message.role === 'system') continue;
    const blocks = messageBlocks(message);
    if (blocks.length === 0) continue;
    const role = message.role === 'assistant' ? 'assistant' : 'user';
    const last = turns.at(-1);
    if (last && last.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  }
  for (const turn of turns) {
    // Anthropic wants a turn's tool answers before anything else in it.
    turn.content.sort(
      (a, b) => Number(b.type === 'tool_result') - Number(a.type === 'tool_result'),
    );
  }
  return { system: system.length > 0 ? system.join('\n\n') : undefined, messages: turns };
}

function toolChoiceOf(
  choice: ToolChoice | undefined,
  parallelToolCalls: boolean | undefined,
): Record<string, unknown> | undefined {
  const disableParallel = parallelToolCalls === false ? { disable_parallel_tool_use: true } : {};
  if (choice === undefined)
    return parallelToolCalls === false ? { type: 'auto', ...disableParallel } : undefined;
  if (choice.type === 'none') return { type: 'none' };
  if (choice.type === 'auto') return { type: 'auto', ...disableParallel };
  if (choice.type === 'required') return { type: 'any', ...disableParallel };
  return { type: 'tool', name: choice.name, ...disableParallel };
}

export function anthropicRequestBody(request: ProviderRequest, stream: boolean) {
  const { system, messages } = toAnthropicMessages(request.messages);
  const tools = request.tools?.map((tool) => ({
    name: tool.name,
    description: tool.description,
    input_schema: tool.parameters,
  }));
  return {
    model: request.model,
    system,
    messages,
    max_tokens: request.maxOutputTokens,
    temperature: request.temperature,
    top_p: request.topP,
    stop_sequences: request.stop && request.stop.length > 0 ? request.stop : undefined,
    tools: tools && tools.length > 0 ? tools : undefined,
    tool_choice:
      tools && tools.length > 0
        ? toolChoiceOf(request.toolChoice, request.parallelToolCalls)
        : undefined,
    // The proxy passes a pseudonym of the end user, never the raw value (abuse monitoring).
    metadata: request.options?.user ? { user_id: request.options.user } : undefined,
    stream: stream || undefined,
  };
}

function isJsonObject(text: string): boolean {
  if (text.trim() === '') return true;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

/**
 * What Anthropic cannot take that the capabilities admit, named by the client's field: a
 * temperature above 1, temperature and top_p together (Claude 4.5 models take one or the other),
 * tool-call arguments that are not a JSON object (Anthropic stores them as an object), strict tool
 * schemas (not enforced here: refused rather than silently loosened).
 */
export function anthropicUnsupported(request: ProviderRequest): string | undefined {
  if (request.temperature !== undefined && request.temperature > anthropicTemperatureMax)
    return `temperature: anthropic accepts 0 to ${anthropicTemperatureMax}`;
  if (request.temperature !== undefined && request.topP !== undefined)
    return 'top_p: anthropic accepts temperature or top_p, not both';
  const strict = request.tools?.findIndex((tool) => tool.strict === true) ?? -1;
  if (strict >= 0)
    return `tools[${strict}].function.strict: anthropic does not enforce strict schemas`;
  for (const [index, message] of request.messages.entries()) {
    if (message.role !== 'assistant') continue;
    const call =
      message.toolCalls?.findIndex((toolCall) => !isJsonObject(toolCall.arguments)) ?? -1;
    if (call >= 0)
      return `messages[${index}].tool_calls[${call}].function.arguments: anthropic needs a JSON object`;
  }
  return undefined;
}
