import {
  environmentProblems,
  readEnvironment,
  variable,
  type EnvironmentValues,
} from '../../../runtime/environment';
import * as z from '../../../runtime/zod-mini';

/**
 * Provider credentials: one secret the operator fills (in AWS), or environment variables (locally).
 * Until a provider's key is there, calls to it answer 503 "provider not configured"; nothing crashes.
 */

export interface ProviderCredentials {
  readonly gemini?: { readonly apiKey: string; readonly baseUrl: string };
  readonly openaiCompatible?: { readonly apiKey: string; readonly baseUrl: string };
  readonly anthropic?: { readonly apiKey: string; readonly baseUrl: string };
}

export const geminiBaseUrlDefault = 'https://generativelanguage.googleapis.com';
export const anthropicBaseUrlDefault = 'https://api.anthropic.com';

const secretSchema = z.object({
  gemini_api_key: z.optional(z.string().check(z.minLength(1))),
  gemini_base_url: z.optional(z.url()),
  openai_compatible_base_url: z.optional(z.url()),
  openai_compatible_api_key: z.optional(z.string().check(z.minLength(1))),
  anthropic_api_key: z.optional(z.string().check(z.minLength(1))),
  anthropic_base_url: z.optional(z.url()),
});

function withoutTrailingSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/**
 * The provider secret's JSON: `{ "gemini_api_key": "...", "openai_compatible_base_url": "...",
 * "openai_compatible_api_key": "...", "anthropic_api_key": "..." }`; every field optional (the base
 * URLs of Gemini and Anthropic default to their public endpoints). The placeholder the stack creates
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
    anthropicApiKey: parsed.data.anthropic_api_key,
    anthropicBaseUrl: parsed.data.anthropic_base_url,
  });
}

/**
 * The local server's provider variables (echo needs none; bedrock signs with the environment's AWS
 * credentials): GEMINI_API_KEY (and GEMINI_BASE_URL), OPENAI_COMPATIBLE_BASE_URL and
 * OPENAI_COMPATIBLE_API_KEY, ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL).
 */
export const providerCredentialVariables = {
  GEMINI_API_KEY: variable.optional(),
  GEMINI_BASE_URL: variable.optional(),
  OPENAI_COMPATIBLE_BASE_URL: variable.optional(),
  OPENAI_COMPATIBLE_API_KEY: variable.optional(),
  ANTHROPIC_API_KEY: variable.optional(),
  ANTHROPIC_BASE_URL: variable.optional(),
};

/** Credentials from the values of `providerCredentialVariables` (read with the shared reader). */
export function credentialsFromVariables(
  values: EnvironmentValues<typeof providerCredentialVariables>,
): ProviderCredentials {
  return providerCredentials({
    geminiApiKey: values.GEMINI_API_KEY,
    geminiBaseUrl: values.GEMINI_BASE_URL,
    openaiBaseUrl: values.OPENAI_COMPATIBLE_BASE_URL,
    openaiApiKey: values.OPENAI_COMPATIBLE_API_KEY,
    anthropicApiKey: values.ANTHROPIC_API_KEY,
    anthropicBaseUrl: values.ANTHROPIC_BASE_URL,
  });
}

/** Locally: the provider variables of an environment (none of them is required). */
export function credentialsFromEnvironment(environment: NodeJS.ProcessEnv): ProviderCredentials {
  const reading = readEnvironment(providerCredentialVariables, environment);
  if (reading.values === undefined) throw new Error(environmentProblems(reading).join('; '));
  return credentialsFromVariables(reading.values);
}

/** Credentials from their parts (the provider secret in AWS, the local server's environment); a provider without a key is absent. */
export function providerCredentials(input: {
  geminiApiKey?: string;
  geminiBaseUrl?: string;
  openaiBaseUrl?: string;
  openaiApiKey?: string;
  anthropicApiKey?: string;
  anthropicBaseUrl?: string;
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
    anthropic: input.anthropicApiKey
      ? {
          apiKey: input.anthropicApiKey,
          baseUrl: withoutTrailingSlash(input.anthropicBaseUrl ?? anthropicBaseUrlDefault),
        }
      : undefined,
  };
}
