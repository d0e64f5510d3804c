import { toGeminiSchema, type GeminiSchema } from './gemini-schema';
import {
  messageText,
  type ChatMessage,
  type ContentPart,
  type JsonSchema,
  type GenerationOptions,
  type ProviderRequest,
} from './types';

type ReasoningEffort = NonNullable<GenerationOptions['reasoningEffort']>;

/**
 * A contract request as Gemini's generateContent body, field by field:
 * - system messages: `systemInstruction`; user and tool turns: role `user`; assistant: `model`
 *   (consecutive turns of one role merged: Gemini wants them to alternate);
 * - text parts: `text`; images sent as data: `inlineData` (https URLs never reach here: Gemini
 *   would need the proxy to fetch them, and the proxy never fetches URLs);
 * - assistant tool calls: `functionCall` parts (`args` the arguments' JSON object); tool messages:
 *   `functionResponse` parts, named by the call they answer (found by its id in the history), the
 *   result a JSON object as is, anything else as `{ "result": ... }`;
 * - tools: `functionDeclarations` with the parameters in Gemini's Schema (gemini-schema.ts);
 *   tool_choice: `toolConfig.functionCallingConfig` (auto AUTO, or VALIDATED when a tool is
 *   strict; none NONE; required ANY; named ANY with `allowedFunctionNames`);
 * - response_format: `responseMimeType: application/json`, with `responseSchema` for json_schema;
 * - seed, presence_penalty, frequency_penalty: `generationConfig`; reasoning_effort:
 *   `thinkingConfig.thinkingBudget` (the budgets Google's own OpenAI layer uses, the lowest one
 *   every 2.5 model accepts for minimal).
 * What Gemini cannot take is `geminiUnsupported`'s answer, before admission.
 */

type GeminiPart =
  | { text: string }
  | { inlineData: { mimeType: string; data: string } }
  | { functionCall: { name: string; args: Record<string, unknown> } }
  | { functionResponse: { name: string; response: Record<string, unknown> } };

export interface GeminiContent {
  role: 'user' | 'model';
  parts: GeminiPart[];
}

/** Thinking tokens per reasoning effort. */
export const thinkingBudgetTokens: Record<ReasoningEffort, number> = {
  minimal: 512,
  low: 1024,
  medium: 8192,
  high: 24576,
};

/** A function name as Gemini accepts it. */
const geminiFunctionName = /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The arguments' JSON object, or undefined when the text is not one. */
function argumentsObject(text: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function toolResponse(content: string): Record<string, unknown> {
  const parsed = argumentsObject(content);
  return parsed ?? { result: content };
}

/** Adjacent text parts joined into one (as the client's text reads), images as inlineData. */
function userParts(content: readonly ContentPart[]): GeminiPart[] {
  const parts: GeminiPart[] = [];
  for (const part of content) {
    const last = parts.at(-1);
    if (part.type === 'text' && last && 'text' in last) last.text += part.text;
    else if (part.type === 'text') parts.push({ text: part.text });
    else if (part.type === 'image')
      parts.push({ inlineData: { mimeType: part.mediaType, data: part.data } });
    // image_url parts never get here: the capabilities refuse them for Gemini.
  }
  return parts;
}

function partsOf(message: Exclude<ChatMessage, { role: 'system' }>, names: Map<string, string>) {
  switch (message.role) {
    case 'user':
      return userParts(message.content);
    case 'assistant': {
      const parts: GeminiPart[] = message.content ? [{ text: message.content }] : [];
      for (const call of message.toolCalls ?? [])
        parts.push({
          functionCall: { name: call.name, args: argumentsObject(call.arguments) ?? {} },
        });
      return parts;
    }
    case 'tool':
      return [
        {
          functionResponse: {
            name: names.get(message.toolCallId) ?? '',
            response: toolResponse(message.content),
          },
        },
      ];
  }
}

export function toGeminiContents(messages: readonly ChatMessage[]): {
  contents: GeminiContent[];
  systemInstruction?: { parts: { text: string }[] };
} {
  const system = messages
    .filter((message) => message.role === 'system')
    .map((message) => messageText(message));
  // A tool message names its call by id; Gemini names it by function: the call is in the history.
  const names = new Map<string, string>();
  const contents: GeminiContent[] = [];
  for (const message of messages) {
    if (message.role === 'system') continue;
    if (message.role === 'assistant')
      for (const call of message.toolCalls ?? []) names.set(call.id, call.name);
    const role = message.role === 'assistant' ? 'model' : 'user';
    const parts = partsOf(message, names);
    const last = contents.at(-1);
    if (last && last.role === role) last.parts.push(...parts);
    else contents.push({ role, parts });
  }
  return {
    contents,
    systemInstruction: system.length > 0 ? { parts: [{ text: system.join('\n\n') }] } : undefined,
  };
}

/** A schema converted; the request was checked by geminiUnsupported, so a problem here is a bug. */
function converted(schema: JsonSchema, path: string): GeminiSchema {
  const result = toGeminiSchema(schema, path);
  if ('problem' in result) throw new Error(`unchecked Gemini schema: ${result.problem}`);
  return result.schema;
}

/** An object schema without properties: a function that takes no arguments (Gemini wants none then). */
function takesNoArguments(schema: JsonSchema): boolean {
  return !isObject(schema.properties) || Object.keys(schema.properties).length === 0;
}

function toolsOf(request: ProviderRequest) {
  if (!request.tools) return {};
  const functionDeclarations = request.tools.map((tool, index) => ({
    name: tool.name,
    description: tool.description,
    parameters: takesNoArguments(tool.parameters)
      ? undefined
      : converted(tool.parameters, `tools[${index}].function.parameters`),
  }));
  const choice = request.toolChoice ?? { type: 'auto' };
  const strict = request.tools.some((tool) => tool.strict === true);
  const functionCallingConfig =
    choice.type === 'none'
      ? { mode: 'NONE' }
      : choice.type === 'required'
        ? { mode: 'ANY' }
        : choice.type === 'function'
          ? { mode: 'ANY', allowedFunctionNames: [choice.name] }
          : { mode: strict ? 'VALIDATED' : 'AUTO' };
  return { tools: [{ functionDeclarations }], toolConfig: { functionCallingConfig } };
}

function generationConfigOf(request: ProviderRequest) {
  const format = request.responseFormat;
  const options = request.options ?? {};
  const json = format?.type === 'json_object' || format?.type === 'json_schema';
  return {
    candidateCount: 1,
    maxOutputTokens: request.maxOutputTokens,
    temperature: request.temperature,
    topP: request.topP,
    stopSequences: request.stop && request.stop.length > 0 ? request.stop : undefined,
    responseMimeType: json ? 'application/json' : undefined,
    responseSchema:
      format?.type === 'json_schema'
        ? converted(format.schema, 'response_format.json_schema.schema')
        : undefined,
    seed: options.seed,
    presencePenalty: options.presencePenalty,
    frequencyPenalty: options.frequencyPenalty,
    thinkingConfig: options.reasoningEffort
      ? { thinkingBudget: thinkingBudgetTokens[options.reasoningEffort] }
      : undefined,
  };
}

export function geminiRequestBody(request: ProviderRequest) {
  const { contents, systemInstruction } = toGeminiContents(request.messages);
  return {
    contents,
    systemInstruction,
    ...toolsOf(request),
    generationConfig: generationConfigOf(request),
  };
}

/** What of a request Gemini cannot take, naming the field; undefined when it can take it all. */
export function geminiUnsupported(request: ProviderRequest): string | undefined {
  for (const [index, tool] of (request.tools ?? []).entries()) {
    const path = `tools[${index}].function`;
    if (!geminiFunctionName.test(tool.name))
      return `${path}.name: Gemini wants a function name that starts with a letter or an underscore`;
    if (takesNoArguments(tool.parameters)) continue;
    const result = toGeminiSchema(tool.parameters, `${path}.parameters`);
    if ('problem' in result) return result.problem;
  }
  const format = request.responseFormat;
  if (format?.type === 'json_schema') {
    const result = toGeminiSchema(format.schema, 'response_format.json_schema.schema');
    if ('problem' in result) return result.problem;
  }
  for (const [index, message] of request.messages.entries()) {
    if (message.role !== 'assistant') continue;
    for (const [callIndex, call] of (message.toolCalls ?? []).entries())
      if (!argumentsObject(call.arguments))
        return `messages[${index}].tool_calls[${callIndex}].function.arguments: Gemini takes a call's arguments as a JSON object`;
  }
  return undefined;
}
