import { createAnthropicProvider } from './anthropic';
import { createBedrockProvider, type BedrockProviderOptions } from './bedrock';
import type { ProviderCredentials } from './credentials';
import { createEchoProvider, type EchoOptions } from './echo';
import { createGeminiProvider } from './gemini';
import { createOpenAiCompatibleProvider } from './openai-compatible';
import type { ChatProvider } from './types';

export interface ProviderOptions {
  readonly echo?: EchoOptions;
  /** Bedrock signs with the execution role, so it needs no credentials secret, only its region. Absent: no bedrock provider. */
  readonly bedrock?: BedrockProviderOptions;
}

/** Every provider by the name the model config uses; credentials are read per call (cached by the caller). */
export function createProviders(
  credentials: () => Promise<ProviderCredentials>,
  options: ProviderOptions = {},
): Map<string, ChatProvider> {
  const providers = new Map<string, ChatProvider>([
    ['gemini', createGeminiProvider(credentials)],
    ['openai-compatible', createOpenAiCompatibleProvider(credentials)],
    ['anthropic', createAnthropicProvider(credentials)],
    ['echo', createEchoProvider(options.echo)],
  ]);
  if (options.bedrock) providers.set('bedrock', createBedrockProvider(options.bedrock));
  return providers;
}
