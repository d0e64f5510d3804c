import { invalidParameter } from '../../runtime/http';
import { pseudonymize } from '../../runtime/logger';
import { jsonSchemaProblem } from './json-schema';
import { unofferedParameters, type ChatRequest } from './openai';
import type {
  ChatMessage,
  ContentPart,
  GenerationOptions,
  ImageMediaType,
  ProviderRequest,
  ResponseFormat,
  ToolChoice,
  ToolDefinition,
} from './providers/types';

/**
 * A parsed OpenAI request mapped onto the provider contract, with what the schema cannot check:
 * data: URLs decoded far enough to check their type and size, tool messages matched to the calls
 * they answer, a named tool_choice matched to a tool, JSON Schemas checked. Every problem is a 400
 * naming the field (`param`, as OpenAI's errors do), before any hold is placed.
 */

/** The largest image sent as a data: URL, decoded. The request body limit bounds the total too. */
export const imageBytesMax = 5 * 1024 * 1024;
/** Images in one request (each is held at its token bound, billing.ts). */
export const imagesPerRequestMax = 100;

/** What the request asks of the provider, less the model and the output bound (chat.ts adds them). */
export type NormalizedRequest = Omit<ProviderRequest, 'model' | 'maxOutputTokens'>;

/** Null or undefined: an optional field the client left out or sent as null. */
export function absent<T>(value: T | null | undefined): value is null | undefined {
  return value === null || value === undefined;
}

/** The leading bytes each image type starts with: a data: URL's declared type must match them. */
const imageSignatures: Record<ImageMediaType, (bytes: Buffer) => boolean> = {
  'image/png': (bytes) => bytes.subarray(0, 8).equals(Buffer.from('89504e470d0a1a0a', 'hex')),
  'image/jpeg': (bytes) => bytes.subarray(0, 3).equals(Buffer.from('ffd8ff', 'hex')),
  'image/gif': (bytes) => /^GIF8[79]a/.test(bytes.subarray(0, 6).toString('latin1')),
  'image/webp': (bytes) =>
    bytes.subarray(0, 4).toString('latin1') === 'RIFF' &&
    bytes.subarray(8, 12).toString('latin1') === 'WEBP',
};
const mediaTypeAliases: Record<string, ImageMediaType> = {
  'image/png': 'image/png',
  'image/jpeg': 'image/jpeg',
  'image/jpg': 'image/jpeg',
  'image/gif': 'image/gif',
  'image/webp': 'image/webp',
};

/** Decoded size of base64 text, without decoding it. */
function base64Bytes(data: string): number {
  const padding = data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0;
  return (data.length / 4) * 3 - padding;
}

/** An image part: a data: URL checked (type, base64, size), an https URL kept as it is (never fetched here). */
function imagePart(url: string, detail: 'auto' | 'low' | 'high' | undefined, param: string) {
  if (url.startsWith('https://')) {
    if (!URL.canParse(url)) throw invalidParameter(param, `${param} is not a valid URL`);
    return { type: 'image_url', url, detail } satisfies ContentPart;
  }
  const match = /^data:([^;,]+);base64,/i.exec(url);
  if (!match) throw invalidParameter(param, `${param} must be a base64 data: URL or an https URL`);
  const mediaType = mediaTypeAliases[match[1].toLowerCase()];
  if (!mediaType)
    throw invalidParameter(
      param,
      `${param}: image type ${match[1].slice(0, 40)} is not one of png, jpeg, webp, gif`,
    );
  const data = url.slice(match[0].length);
  // The size first: an oversized image is refused without scanning it.
  if (base64Bytes(data) > imageBytesMax)
    throw invalidParameter(param, `${param}: the image is over ${imageBytesMax} bytes`);
  if (data.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(data))
    throw invalidParameter(param, `${param} is not valid base64`);
  if (!imageSignatures[mediaType](Buffer.from(data.slice(0, 16), 'base64')))
    throw invalidParameter(param, `${param}: the data is not a ${mediaType} image`);
  return { type: 'image', mediaType, data, detail } satisfies ContentPart;
}

type RequestMessage = ChatRequest['messages'][number];

function joinedText(content: string | readonly { text: string }[]): string {
  return typeof content === 'string' ? content : content.map((part) => part.text).join('');
}

function userContent(
  content: Extract<RequestMessage, { role: 'user' }>['content'],
  param: string,
): ContentPart[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  return content.map((part, index): ContentPart => {
    if (part.type === 'text') return { type: 'text', text: part.text };
    const where = `${param}[${index}].image_url.url`;
    return imagePart(part.image_url.url, part.image_url.detail ?? undefined, where);
  });
}

/**
 * The messages in the contract's shape. Every tool message must answer a call an earlier assistant
 * message made (by its id): a provider that names calls by function (Gemini) finds the name there.
 */
export function normalizeMessages(messages: ChatRequest['messages']): ChatMessage[] {
  const calls = new Set<string>();
  let images = 0;
  return messages.map((message, index): ChatMessage => {
    const param = `messages[${index}]`;
    switch (message.role) {
      case 'system':
      case 'developer':
        return { role: 'system', content: joinedText(message.content) };
      case 'user': {
        const content = userContent(message.content, `${param}.content`);
        images += content.filter((part) => part.type !== 'text').length;
        if (images > imagesPerRequestMax)
          throw invalidParameter(
            `${param}.content`,
            `a request takes at most ${imagesPerRequestMax} images`,
          );
        return { role: 'user', content };
      }
      case 'assistant': {
        const toolCalls = (message.tool_calls ?? []).map((call) => ({
          id: call.id,
          name: call.function.name,
          arguments: call.function.arguments,
        }));
        for (const call of toolCalls) calls.add(call.id);
        const content = absent(message.content) ? null : joinedText(message.content);
        return toolCalls.length > 0
          ? { role: 'assistant', content, toolCalls }
          : { role: 'assistant', content };
      }
      case 'tool':
        if (!calls.has(message.tool_call_id))
          throw invalidParameter(
            `${param}.tool_call_id`,
            `${param}.tool_call_id answers no tool call of an earlier assistant message`,
          );
        return {
          role: 'tool',
          toolCallId: message.tool_call_id,
          content: joinedText(message.content),
        };
    }
  });
}

/** A function without parameters takes none: an empty object schema, as OpenAI reads it. */
const noParameters = { type: 'object', properties: {} };

function normalizeTools(tools: NonNullable<ChatRequest['tools']>): ToolDefinition[] {
  const names = new Set<string>();
  return tools.map((tool, index) => {
    const param = `tools[${index}].function`;
    const { name, description, parameters, strict } = tool.function;
    if (names.has(name))
      throw invalidParameter(`${param}.name`, `${param}.name: ${name} is offered twice`);
    names.add(name);
    const schema = parameters ?? noParameters;
    const problem = jsonSchemaProblem(schema, `${param}.parameters`, true);
    if (problem) throw invalidParameter(`${param}.parameters`, problem);
    return {
      name,
      description: description ?? undefined,
      parameters: schema,
      strict: strict ?? undefined,
    };
  });
}

function normalizeToolChoice(
  choice: ChatRequest['tool_choice'],
  tools: readonly ToolDefinition[] | undefined,
): ToolChoice | undefined {
  if (absent(choice)) return undefined;
  if (tools === undefined) {
    // Without tools, `none` and `auto` both mean "answer in text": nothing to forward.
    if (choice === 'none' || choice === 'auto') return undefined;
    throw invalidParameter('tool_choice', 'tool_choice needs tools');
  }
  if (typeof choice === 'string') return { type: choice };
  const name = choice.function.name;
  if (!tools.some((tool) => tool.name === name))
    throw invalidParameter('tool_choice', `tool_choice names ${name}, which is not in tools`);
  return { type: 'function', name };
}

function normalizeResponseFormat(
  format: ChatRequest['response_format'],
): ResponseFormat | undefined {
  if (absent(format) || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json_object' };
  const { name, description, schema, strict } = format.json_schema;
  const problem = jsonSchemaProblem(schema, 'response_format.json_schema.schema', false);
  if (problem) throw invalidParameter('response_format.json_schema.schema', problem);
  return {
    type: 'json_schema',
    name,
    description: description ?? undefined,
    schema,
    strict: strict ?? false,
  };
}

/** The options set; a default-valued `logprobs: false` asks for nothing. */
function normalizeOptions(request: ChatRequest): GenerationOptions | undefined {
  const options: GenerationOptions = {
    seed: request.seed ?? undefined,
    presencePenalty: request.presence_penalty ?? undefined,
    frequencyPenalty: request.frequency_penalty ?? undefined,
    logitBias: request.logit_bias ?? undefined,
    logprobs: request.logprobs === true ? true : undefined,
    topLogprobs: request.top_logprobs ?? undefined,
    reasoningEffort: request.reasoning_effort ?? undefined,
    // The end user as a pseudonym: the provider's abuse monitoring needs a stable id, not a name.
    user: absent(request.user) ? undefined : pseudonymize(request.user),
    metadata: request.metadata ?? undefined,
  };
  const set = Object.entries(options).filter(([, value]) => value !== undefined);
  return set.length > 0 ? (Object.fromEntries(set) as GenerationOptions) : undefined;
}

/** OpenAI parameters no provider here serves: a 400 naming each, unless it asks for the default. */
function refuseUnoffered(request: ChatRequest): void {
  for (const [name, defaultValue] of Object.entries(unofferedParameters)) {
    const value = request[name as keyof typeof unofferedParameters];
    if (absent(value) || JSON.stringify(value) === JSON.stringify(defaultValue)) continue;
    const hint = name === 'functions' || name === 'function_call' ? ' (use tools)' : '';
    throw invalidParameter(name, `${name} is not supported by this proxy${hint}`);
  }
}

/** OpenAI's own answer to `stream_options` without `stream: true`. */
function refuseStreamOptionsWithoutStream(request: ChatRequest): void {
  if (absent(request.stream_options) || request.stream === true) return;
  throw invalidParameter(
    'stream_options',
    "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
  );
}

export function normalizeChatRequest(request: ChatRequest): NormalizedRequest {
  refuseUnoffered(request);
  refuseStreamOptionsWithoutStream(request);
  const tools =
    !absent(request.tools) && request.tools.length > 0 ? normalizeTools(request.tools) : undefined;
  const stop = absent(request.stop)
    ? undefined
    : typeof request.stop === 'string'
      ? [request.stop]
      : request.stop;
  return {
    messages: normalizeMessages(request.messages),
    temperature: request.temperature ?? undefined,
    topP: request.top_p ?? undefined,
    stop: stop && stop.length > 0 ? stop : undefined,
    tools,
    toolChoice: normalizeToolChoice(request.tool_choice, tools),
    parallelToolCalls: tools ? (request.parallel_tool_calls ?? undefined) : undefined,
    responseFormat: normalizeResponseFormat(request.response_format),
    options: normalizeOptions(request),
  };
}
