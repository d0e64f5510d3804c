import type { JsonSchema } from './providers/types';

/**
 * The structural check of a JSON Schema a client sends (tool parameters, structured output), before
 * any provider sees it: a malformed schema is a 400 naming the field, never a provider's 4xx (a 502
 * to the client) or a crash in a converter. It checks the keywords every provider reads, not the
 * whole of JSON Schema; what a provider cannot express is its own `unsupported` answer.
 */

/** Nesting of the schema as JSON (objects and arrays): bounds every recursive walk of it. */
export const jsonSchemaDepthMax = 32;
/** A schema's size as JSON text: a tool's parameters or a response format, not a document. */
export const jsonSchemaBytesMax = 64 * 1024;

const jsonTypes = new Set(['string', 'number', 'integer', 'boolean', 'object', 'array', 'null']);
/** Keywords whose value is one schema. */
const schemaKeywords = ['items', 'additionalProperties', 'not', 'contains'] as const;
/** Keywords whose value is a list of schemas. */
const schemaListKeywords = ['anyOf', 'oneOf', 'allOf', 'prefixItems'] as const;
/** Keywords whose value maps names to schemas. */
const schemaMapKeywords = ['properties', '$defs', 'definitions', 'patternProperties'] as const;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** How deep the JSON nests; stops counting past the maximum. */
function depthOf(value: unknown, depth = 0): number {
  if (depth > jsonSchemaDepthMax || typeof value !== 'object' || value === null) return depth;
  let deepest = depth + 1;
  for (const child of Object.values(value)) deepest = Math.max(deepest, depthOf(child, depth + 1));
  return deepest;
}

/** Why a (sub)schema is malformed, naming the field under `path`; undefined when it is not. */
function subschemaProblem(schema: unknown, path: string): string | undefined {
  if (typeof schema === 'boolean') return undefined; // true/false are schemas too
  if (!isObject(schema)) return `${path} must be a JSON Schema object`;
  const type = schema.type;
  const types = Array.isArray(type) ? type : type === undefined ? [] : [type];
  if (types.some((entry) => typeof entry !== 'string' || !jsonTypes.has(entry)))
    return `${path}.type must be one of ${[...jsonTypes].join(', ')} (or a list of them)`;
  if (
    schema.required !== undefined &&
    !(Array.isArray(schema.required) && schema.required.every((name) => typeof name === 'string'))
  )
    return `${path}.required must be a list of property names`;
  if (schema.enum !== undefined && !Array.isArray(schema.enum))
    return `${path}.enum must be a list`;
  for (const keyword of schemaKeywords) {
    if (schema[keyword] === undefined) continue;
    const problem = subschemaProblem(schema[keyword], `${path}.${keyword}`);
    if (problem) return problem;
  }
  for (const keyword of schemaListKeywords) {
    const list = schema[keyword];
    if (list === undefined) continue;
    if (!Array.isArray(list)) return `${path}.${keyword} must be a list of schemas`;
    for (const [index, entry] of list.entries()) {
      const problem = subschemaProblem(entry, `${path}.${keyword}[${index}]`);
      if (problem) return problem;
    }
  }
  for (const keyword of schemaMapKeywords) {
    const map = schema[keyword];
    if (map === undefined) continue;
    if (!isObject(map)) return `${path}.${keyword} must map names to schemas`;
    for (const [name, entry] of Object.entries(map)) {
      const problem = subschemaProblem(entry, `${path}.${keyword}.${name}`);
      if (problem) return problem;
    }
  }
  return undefined;
}

/**
 * Why a schema is malformed or too large, naming the field (`path` is where it sits in the
 * request); undefined when it is fine. `objectRequired`: the schema must describe an object (tool
 * parameters and structured output both must).
 */
export function jsonSchemaProblem(
  schema: JsonSchema,
  path: string,
  objectRequired: boolean,
): string | undefined {
  if (Buffer.byteLength(JSON.stringify(schema), 'utf8') > jsonSchemaBytesMax)
    return `${path} is over ${jsonSchemaBytesMax} bytes as JSON`;
  if (depthOf(schema) > jsonSchemaDepthMax)
    return `${path} nests deeper than ${jsonSchemaDepthMax} levels`;
  const problem = subschemaProblem(schema, path);
  if (problem) return problem;
  if (objectRequired && schema.type !== undefined && schema.type !== 'object')
    return `${path}.type must be object`;
  return undefined;
}
