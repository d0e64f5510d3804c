import { ApiError } from '../../runtime/http';
import type {
  ChatProvider,
  GenerationOption,
  ProviderCapabilities,
  ProviderRequest,
} from './providers/types';

/**
 * The one place a request is checked against what its model's provider can serve, before admission:
 * a feature the provider does not honour is a 400 naming the parameter and the model, with the
 * ledger unchanged; never a silent drop. First the declared capabilities, then the provider's own
 * `unsupported` answer (what it cannot express of a request its capabilities admit).
 */

/** Each option by its name in OpenAI's API, for the error. */
const optionParameters: Record<GenerationOption, string> = {
  seed: 'seed',
  presencePenalty: 'presence_penalty',
  frequencyPenalty: 'frequency_penalty',
  logitBias: 'logit_bias',
  logprobs: 'logprobs',
  topLogprobs: 'top_logprobs',
  reasoningEffort: 'reasoning_effort',
  user: 'user',
  metadata: 'metadata',
};

/** The first parameter of the request the capabilities do not cover, with why; undefined if none. */
function uncoveredParameter(
  request: ProviderRequest,
  capabilities: ProviderCapabilities,
): { param: string; what: string } | undefined {
  if (request.tools && !capabilities.tools) return { param: 'tools', what: 'tools' };
  if (request.parallelToolCalls !== undefined && !capabilities.parallelToolCalls)
    return { param: 'parallel_tool_calls', what: 'parallel_tool_calls' };
  const format = request.responseFormat;
  if (format && format.type !== 'text' && !capabilities.responseFormats.includes(format.type))
    return { param: 'response_format', what: `response_format ${format.type}` };
  for (const [index, message] of request.messages.entries()) {
    const param = `messages[${index}]`;
    if (
      !capabilities.tools &&
      (message.role === 'tool' || (message.role === 'assistant' && message.toolCalls))
    )
      return { param, what: 'tool calls and tool messages' };
    if (message.role !== 'user') continue;
    for (const [partIndex, part] of message.content.entries()) {
      const partParam = `${param}.content[${partIndex}]`;
      if (part.type === 'image' && !capabilities.imageData)
        return { param: partParam, what: 'image input' };
      if (part.type === 'image_url' && !capabilities.imageUrls)
        return {
          param: `${partParam}.image_url.url`,
          what: capabilities.imageData
            ? 'image URLs (send the image as a data: URL; this proxy never fetches URLs)'
            : 'image input',
        };
    }
  }
  for (const option of Object.keys(request.options ?? {}) as GenerationOption[]) {
    if (!capabilities.options.includes(option))
      return { param: optionParameters[option], what: optionParameters[option] };
  }
  return undefined;
}

/** Throws the 400 when the provider cannot serve the request as asked. */
export function assertServable(
  provider: ChatProvider,
  request: ProviderRequest,
  modelId: string,
): void {
  const uncovered = uncoveredParameter(request, provider.capabilities);
  if (uncovered)
    throw new ApiError(
      400,
      'invalid_request_error',
      'unsupported_parameter',
      `${uncovered.param}: model ${modelId} does not support ${uncovered.what}`,
      { param: uncovered.param },
    );
  const reason = provider.unsupported?.(request);
  if (!reason) return;
  // The reason names its field first (`tools[0].function.parameters.oneOf: ...`): that is the param.
  const param = /^([A-Za-z0-9_$.[\]-]+): /.exec(reason)?.[1];
  throw new ApiError(
    400,
    'invalid_request_error',
    'unsupported_parameter',
    `model ${modelId}: ${reason}`,
    param ? { param } : {},
  );
}
