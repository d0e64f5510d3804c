import * as z from '../../shared/zod-mini';

/**
 * Provider credentials: one secret the operator fills (in AWS), or environment variables (locally).
 * Until a provider's key is there, calls to it answer 503 "provider not configured"; nothing crashes.
 */

export interface ProviderCredentials {
  readonly gemini?: { readonly apiKey: string; readonly baseUrl: string };
  readonly openaiCompatible?: { readonly apiKey: string; readonly baseUrl: string };
}

export const geminiBaseUrlDefault = 'https://generativelanguage.googleapis.com';

const secretSchema = z.object({
  gemini_api_key: z.optional(z.string().check(z.minLength(1))),
  gemini_base_url: z.optional(z.url()),
  openai_compatible_base_url: z.optional(z.url()),
  openai_compatible_api_key: z.optional(z.string().check(z.minLength(1))),
});

function withoutTrailingSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/**
 * The provider secret's JSON: `{ "gemini_api_key": "...", "openai_compatible_base_url": "...",
 * "openai_compatible_api_key": "..." }`; every field optional. The placeholder the stack creates
 * (`{}`) means "nothing configured yet". Errors never quote a value.
 */
export function credentialsFromSecretString(secretString: string): ProviderCredentials {
  let json: unknown;
  try {
    json = JSON.parse(secretString);
  } catch {
    throw new Error('the provider secret is not JSON');
  }
  const parsed = secretSchema.safeParse(json);
  if (!parsed.success)
    throw new Error(
      `the provider secret is invalid: ${parsed.error.issues.map((issue) => issue.path.join('.')).join(', ')}`,
    );
  return providerCredentials({
    geminiApiKey: parsed.data.gemini_api_key,
    geminiBaseUrl: parsed.data.gemini_base_url,
    openaiBaseUrl: parsed.data.openai_compatible_base_url,
    openaiApiKey: parsed.data.openai_compatible_api_key,
  });
}

/** Credentials from their parts (the provider secret in AWS, the local server's environment); a provider without a key is absent. */
export function providerCredentials(input: {
  geminiApiKey?: string;
  geminiBaseUrl?: string;
  openaiBaseUrl?: string;
  openaiApiKey?: string;
}): ProviderCredentials {
  return {
    gemini: input.geminiApiKey
      ? {
          apiKey: input.geminiApiKey,
          baseUrl: withoutTrailingSlash(input.geminiBaseUrl ?? geminiBaseUrlDefault),
        }
      : undefined,
    openaiCompatible:
      input.openaiBaseUrl && input.openaiApiKey
        ? { apiKey: input.openaiApiKey, baseUrl: withoutTrailingSlash(input.openaiBaseUrl) }
        : undefined,
  };
}
