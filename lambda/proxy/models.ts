import type { Hono } from 'hono';
import type { EmbeddingModelConfig, ModelConfig } from '../../lib/config/schema';
import { ApiError } from '../../runtime/http';
import type { ProxyEnv } from './context';
import type { ProxyConfig } from './config';

/**
 * `GET /v1/models` and `GET /v1/models/{id}`: OpenAI's model objects (`id`, `object`, `created`,
 * `owned_by`) for the configured chat and embedding models, with their prices as extra fields. An
 * id may hold `/` (`meta-llama/Llama-3.1-8B`), sent as is or percent-encoded (the SDKs encode it).
 */

function chatModelObject(model: ModelConfig, currency: string) {
  return {
    id: model.id,
    object: 'model',
    created: 0,
    owned_by: model.provider,
    pricing: {
      currency,
      input_micros_per_million_tokens: model.inputMicrosPerMillionTokens,
      output_micros_per_million_tokens: model.outputMicrosPerMillionTokens,
      // The cache and reasoning prices as billed: the input or output price unless configured.
      cached_input_micros_per_million_tokens:
        model.cachedInputMicrosPerMillionTokens ?? model.inputMicrosPerMillionTokens,
      cache_creation_input_micros_per_million_tokens:
        model.cacheCreationInputMicrosPerMillionTokens ?? model.inputMicrosPerMillionTokens,
      reasoning_micros_per_million_tokens:
        model.reasoningMicrosPerMillionTokens ?? model.outputMicrosPerMillionTokens,
    },
    max_output_tokens: model.outputTokensMax,
    fallbacks: model.fallbacks ?? [],
  };
}

function embeddingModelObject(model: EmbeddingModelConfig, currency: string) {
  return {
    id: model.id,
    object: 'model',
    created: 0,
    owned_by: model.provider,
    pricing: { currency, input_micros_per_million_tokens: model.inputMicrosPerMillionTokens },
    dimensions: model.dimensions,
  };
}

function modelObjects(config: ProxyConfig) {
  return [
    ...config.models.map((model) => chatModelObject(model, config.currency)),
    ...config.embeddingModels.map((model) => embeddingModelObject(model, config.currency)),
  ];
}

export function registerModelRoutes(app: Hono<ProxyEnv>, config: ProxyConfig): void {
  const objects = modelObjects(config);
  const byId = new Map(objects.map((object) => [object.id, object]));
  app.get('/v1/models', (c) => c.json({ object: 'list', data: objects }));
  app.get('/v1/models/:id{.+}', (c) => {
    const found = byId.get(c.req.param('id'));
    if (!found)
      throw new ApiError(
        404,
        'not_found_error',
        'model_not_found',
        'Unknown model; GET /v1/models lists the available models',
      );
    return c.json(found);
  });
}
