import { createHash } from 'node:crypto';
import { schemaExample } from './schema-example';
import type {
  ChatMessage,
  ChatProvider,
  ProviderCall,
  ProviderRequest,
  ProviderResponse,
  StreamDelta,
  ToolCall,
  ToolDefinition,
} from './types';
import { ProviderError, messageText, type ProviderCapabilities } from './types';

/**
 * A deterministic provider with no network: it answers with the last user message. It lets dev and
 * tests exercise the whole billed path without a provider key. Token counts are estimated the same
 * way as the hold (about 4 characters per token), so its usage is plausible. It streams word by
 * word, waiting `chunkDelayMilliseconds` before each word after the first, so streaming can be seen.
 *
 * Tools, so the agent loop runs without a provider. The trigger: when tools are offered and the last
 * message is the user's, each `call NAME` in its text (NAME an offered tool), optionally followed by
 * a JSON object, is a tool call with that object as its arguments (without one, arguments generated
 * from the tool's schema). Several are parallel calls (only the first with `parallel_tool_calls:
 * false`). `tool_choice: "required"` calls the first offered tool when the text names none; a named
 * tool_choice calls that tool; `none` never calls. When the last messages are tool results, the
 * answer is `echo: ` and each result as `NAME: CONTENT` (the name read from the call in the history).
 * Call ids are derived from the conversation, so the same request gets the same ids.
 *
 * Structured output: `json_object` answers `{"echo": TEXT}`; `json_schema` a value satisfying the
 * schema (schema-example.ts). Images are counted in the answer (`[2 images]`), never read. The
 * answer ends before the first `stop` sequence in it.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

export interface EchoOptions {
  /** Wait before each chunk after the first. Default: 0 (no wait). */
  readonly chunkDelayMilliseconds?: number;
}

/** Arguments' fragments streamed per delta. */
const argumentsFragmentCharacters = 8;

interface EchoAnswer extends ProviderResponse {
  readonly toolCalls: readonly ToolCall[];
}

/** The JSON object starting at `start` (balanced braces, strings respected), or undefined. */
function jsonObjectAt(text: string, start: number): string | undefined {
  if (text[start] !== '{') return undefined;
  let depth = 0;
  let inString = false;
  for (let index = start; index < text.length; index += 1) {
    const character = text[index];
    if (inString) {
      if (character === '\\') index += 1;
      else if (character === '"') inString = false;
    } else if (character === '"') inString = true;
    else if (character === '{') depth += 1;
    else if (character === '}' && --depth === 0) {
      const candidate = text.slice(start, index + 1);
      try {
        JSON.parse(candidate);
        return candidate;
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** Each `call NAME [{...}]` of the text naming an offered tool, in order. */
function triggeredCalls(
  text: string,
  tools: readonly ToolDefinition[],
): { tool: ToolDefinition; arguments?: string }[] {
  const found: { tool: ToolDefinition; arguments?: string }[] = [];
  for (const match of text.matchAll(/\bcall ([A-Za-z0-9_-]{1,64})/g)) {
    const tool = tools.find((candidate) => candidate.name === match[1]);
    if (!tool) continue;
    const after = match.index + match[0].length;
    const skipped = text.slice(after).match(/^\s*/)?.[0].length ?? 0;
    found.push({ tool, arguments: jsonObjectAt(text, after + skipped) });
  }
  return found;
}

function callId(request: ProviderRequest, index: number): string {
  const digest = createHash('sha256')
    .update(JSON.stringify(request.messages))
    .update(`:${index}`)
    .digest('hex');
  return `call_${digest.slice(0, 24)}`;
}

/** The calls this request makes, by the trigger and tool_choice (see above). */
function toolCallsFor(request: ProviderRequest, lastUserText: string | undefined): ToolCall[] {
  const tools = request.tools ?? [];
  const choice = request.toolChoice ?? { type: 'auto' };
  if (tools.length === 0 || choice.type === 'none') return [];
  let wanted = lastUserText === undefined ? [] : triggeredCalls(lastUserText, tools);
  if (choice.type === 'function')
    wanted = wanted.filter((entry) => entry.tool.name === choice.name);
  if (wanted.length === 0 && choice.type !== 'auto') {
    const tool =
      choice.type === 'function' ? tools.find((entry) => entry.name === choice.name) : tools[0];
    if (tool) wanted = [{ tool }];
  }
  if (request.parallelToolCalls === false) wanted = wanted.slice(0, 1);
  return wanted.map((entry, index) => ({
    id: callId(request, index),
    name: entry.tool.name,
    arguments: entry.arguments ?? JSON.stringify(schemaExample(entry.tool.parameters, 'echo')),
  }));
}

/** The tool results after the last assistant turn, each named by the call it answers. */
function toolResultsText(request: ProviderRequest): string | undefined {
  const messages = request.messages;
  if (messages.at(-1)?.role !== 'tool') return undefined;
  const names = new Map<string, string>();
  for (const message of messages)
    if (message.role === 'assistant')
      for (const call of message.toolCalls ?? []) names.set(call.id, call.name);
  const results: string[] = [];
  for (let index = messages.length - 1; index >= 0; index -= 1) {
    const message = messages[index];
    if (message.role !== 'tool') break;
    results.unshift(`${names.get(message.toolCallId) ?? 'tool'}: ${message.content}`);
  }
  return results.join('; ');
}

function imageCount(message: ChatMessage | undefined): number {
  if (message?.role !== 'user') return 0;
  return message.content.filter((part) => part.type !== 'text').length;
}

/** The text answer: the echo, shaped by the response format. */
function answerText(request: ProviderRequest, echoed: string): string {
  const format = request.responseFormat;
  if (format?.type === 'json_object') return JSON.stringify({ echo: echoed });
  if (format?.type === 'json_schema') return JSON.stringify(schemaExample(format.schema, echoed));
  return `echo: ${echoed}`;
}

/** The text before the first stop sequence, as a model stops there (the sequence itself left out). */
function untilStop(text: string, stop: readonly string[] | undefined): string {
  const cuts = (stop ?? []).map((sequence) => text.indexOf(sequence)).filter((at) => at >= 0);
  return cuts.length > 0 ? text.slice(0, Math.min(...cuts)) : text;
}

function promptTokensOf(request: ProviderRequest): number {
  const tools = request.tools ? estimateTokens(JSON.stringify(request.tools)) : 0;
  return request.messages.reduce((sum, message) => {
    const calls = message.role === 'assistant' ? JSON.stringify(message.toolCalls ?? []) : '';
    return sum + estimateTokens(messageText(message) + calls) + 4;
  }, tools);
}

function answer(request: ProviderRequest): EchoAnswer {
  const last = request.messages.at(-1);
  const lastUser = [...request.messages].reverse().find((message) => message.role === 'user');
  const promptTokens = promptTokensOf(request);
  const toolCalls = toolCallsFor(request, last?.role === 'user' ? messageText(last) : undefined);
  if (toolCalls.length > 0) {
    const completionTokens = estimateTokens(JSON.stringify(toolCalls));
    return {
      text: '',
      toolCalls,
      finishReason: 'tool_calls',
      usage: { promptTokens, completionTokens },
    };
  }
  const images = imageCount(lastUser);
  const echoed =
    toolResultsText(request) ??
    `${lastUser ? messageText(lastUser) : ''}${images > 0 ? ` [${images} image${images === 1 ? '' : 's'}]` : ''}`;
  const full = untilStop(answerText(request, echoed), request.stop);
  const characterBudget = request.maxOutputTokens * 4;
  const text = full.slice(0, characterBudget);
  return {
    text,
    toolCalls: [],
    finishReason: text.length < full.length ? 'length' : 'stop',
    usage: { promptTokens, completionTokens: estimateTokens(text) },
  };
}

/** Each word with the whitespace before it: joined, the words give back the text exactly. */
export function echoChunks(text: string): string[] {
  return text.match(/\s*\S+/g) ?? (text === '' ? [] : [text]);
}

function pause(milliseconds: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new ProviderError('timeout', 'echo was stopped', false));
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, milliseconds);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new ProviderError('timeout', 'echo was stopped', false));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Everything an agent loop needs; images of both kinds are accepted and never read. Of the options,
 * only `seed`, which a deterministic model honours by nature.
 */
export const echoCapabilities: ProviderCapabilities = {
  tools: true,
  parallelToolCalls: true,
  imageData: true,
  imageUrls: true,
  responseFormats: ['text', 'json_object', 'json_schema'],
  options: ['seed'],
};

export function createEchoProvider(options: EchoOptions = {}): ChatProvider {
  const delay = options.chunkDelayMilliseconds ?? 0;
  return {
    name: 'echo',
    capabilities: echoCapabilities,
    async complete(request: ProviderRequest): Promise<ProviderResponse> {
      const { toolCalls, ...rest } = answer(request);
      return toolCalls.length > 0 ? { ...rest, toolCalls } : rest;
    },
    async *stream(request: ProviderRequest, call: ProviderCall): AsyncGenerator<StreamDelta> {
      const { text, toolCalls, finishReason, usage } = answer(request);
      for (const [index, toolCall] of toolCalls.entries()) {
        yield {
          kind: 'tool_call',
          index,
          id: toolCall.id,
          name: toolCall.name,
          argumentsDelta: '',
        };
        for (
          let start = 0;
          start < toolCall.arguments.length;
          start += argumentsFragmentCharacters
        ) {
          if (delay > 0) await pause(delay, call.signal);
          yield {
            kind: 'tool_call',
            index,
            argumentsDelta: toolCall.arguments.slice(start, start + argumentsFragmentCharacters),
          };
        }
      }
      const chunks = echoChunks(text);
      for (const [index, chunk] of chunks.entries()) {
        if (index > 0 && delay > 0) await pause(delay, call.signal);
        if (call.signal.aborted) throw new ProviderError('timeout', 'echo was stopped', false);
        yield { kind: 'text', text: chunk };
      }
      yield { kind: 'finish', finishReason };
      yield { kind: 'usage', usage };
    },
  };
}
