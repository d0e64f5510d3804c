import type { JsonSchema } from './types';

/**
 * JSON Schema (what OpenAI clients send for tool parameters and structured output) to Gemini's
 * Schema object (an OpenAPI 3.0 subset). What Gemini can express is converted keyword by keyword;
 * what it cannot is a problem naming the field, which the proxy answers with a 400 before any hold:
 * never a schema silently loosened. Pure annotations (`$schema`, `$id`, `$comment`, `examples`,
 * `readOnly`, `writeOnly`, `deprecated`) and string formats Gemini does not know (`email`, `uri`,
 * ...: JSON Schema does not validate formats by default either) are left out; so is
 * `additionalProperties: false`, which Gemini's objects already mean. Local `$ref`s
 * (`#/$defs/...`, `#/definitions/...`) are inlined; a recursive one is a problem.
 */

export type GeminiSchema = { [keyword: string]: unknown };

class SchemaProblem extends Error {}

/** The nesting of inlined `$ref`s; past it the schema is taken as recursive. */
export const referenceDepthMax = 8;

const geminiTypes: Record<string, string> = {
  string: 'STRING',
  number: 'NUMBER',
  integer: 'INTEGER',
  boolean: 'BOOLEAN',
  object: 'OBJECT',
  array: 'ARRAY',
};
/** Keywords copied as they are (same name and meaning in Gemini's Schema). */
const copiedKeywords = [
  'title',
  'description',
  'default',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
] as const;
const annotationKeywords = new Set([
  '$schema',
  '$id',
  '$comment',
  'examples',
  'readOnly',
  'writeOnly',
  'deprecated',
  '$defs',
  'definitions',
]);
/** The formats Gemini's Schema knows, by type. */
const geminiFormats: Record<string, readonly string[]> = {
  STRING: ['date-time', 'enum'],
  NUMBER: ['float', 'double'],
  INTEGER: ['int32', 'int64'],
};
const handledKeywords = new Set([
  ...copiedKeywords,
  'type',
  'enum',
  'const',
  'format',
  'properties',
  'required',
  'items',
  'anyOf',
  'additionalProperties',
  '$ref',
]);

function isObject(value: unknown): value is JsonSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

interface Walk {
  readonly root: JsonSchema;
  readonly references: number;
}

function resolveReference(reference: string, walk: Walk, path: string): JsonSchema {
  const match = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(reference);
  const definitions = match ? walk.root[match[1]] : undefined;
  const target = isObject(definitions) && match ? definitions[match[2]] : undefined;
  if (!isObject(target))
    throw new SchemaProblem(`${path}.$ref: only local references to $defs are supported`);
  if (walk.references >= referenceDepthMax)
    throw new SchemaProblem(`${path}.$ref: Gemini cannot express a recursive schema`);
  return target;
}

/** `type`, with a nullable union (`["string", "null"]`) as Gemini's `nullable`. */
function convertType(schema: JsonSchema, path: string, out: GeminiSchema): void {
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  const concrete = types.filter((type) => type !== 'null');
  if (concrete.length !== types.length) out.nullable = true;
  if (concrete.length > 1)
    throw new SchemaProblem(`${path}.type: Gemini takes one type per schema (use anyOf)`);
  if (concrete.length === 1) out.type = geminiTypes[concrete[0] as string];
}

function convertEnum(values: unknown[], path: string, out: GeminiSchema): void {
  if (!values.every((value) => typeof value === 'string'))
    throw new SchemaProblem(`${path}: Gemini's enum takes strings only`);
  out.type ??= 'STRING';
  out.enum = values;
}

function convertObject(schema: JsonSchema, path: string, walk: Walk, out: GeminiSchema): void {
  if (isObject(schema.properties)) {
    const properties: Record<string, GeminiSchema> = {};
    for (const [name, property] of Object.entries(schema.properties))
      properties[name] = convert(property, `${path}.properties.${name}`, walk);
    out.properties = properties;
    out.propertyOrdering = Object.keys(properties);
  }
  if (Array.isArray(schema.required)) out.required = schema.required;
  const extra = schema.additionalProperties;
  if (extra !== undefined && extra !== false)
    throw new SchemaProblem(`${path}.additionalProperties: Gemini cannot express open objects`);
}

function convert(schema: unknown, path: string, walk: Walk): GeminiSchema {
  if (schema === true || (isObject(schema) && Object.keys(schema).length === 0))
    throw new SchemaProblem(`${path}: Gemini needs a type for every value`);
  if (!isObject(schema)) throw new SchemaProblem(`${path}: Gemini cannot express this schema`);
  if (typeof schema.$ref === 'string')
    return convert(resolveReference(schema.$ref, walk, path), path, {
      ...walk,
      references: walk.references + 1,
    });
  for (const keyword of Object.keys(schema)) {
    if (!handledKeywords.has(keyword) && !annotationKeywords.has(keyword))
      throw new SchemaProblem(`${path}.${keyword}: Gemini cannot express this keyword`);
  }
  const out: GeminiSchema = {};
  if (schema.type !== undefined) convertType(schema, path, out);
  for (const keyword of copiedKeywords)
    if (schema[keyword] !== undefined) out[keyword] = schema[keyword];
  if (schema.const !== undefined) convertEnum([schema.const], `${path}.const`, out);
  if (Array.isArray(schema.enum)) convertEnum(schema.enum, `${path}.enum`, out);
  const formats = geminiFormats[(out.type as string) ?? ''] ?? [];
  if (typeof schema.format === 'string' && formats.includes(schema.format))
    out.format = schema.format;
  if (out.type === 'OBJECT' || isObject(schema.properties)) {
    out.type ??= 'OBJECT';
    convertObject(schema, path, walk, out);
  }
  if (schema.items !== undefined) {
    out.type ??= 'ARRAY';
    out.items = convert(schema.items, `${path}.items`, walk);
  }
  if (Array.isArray(schema.anyOf))
    out.anyOf = schema.anyOf.map((entry, index) => convert(entry, `${path}.anyOf[${index}]`, walk));
  if (out.type === undefined && out.anyOf === undefined)
    throw new SchemaProblem(`${path}: Gemini needs a type for every value`);
  return out;
}

/** The schema in Gemini's terms, or the problem naming the field (`path` is where it sits in the request). */
export function toGeminiSchema(
  schema: JsonSchema,
  path: string,
): { schema: GeminiSchema } | { problem: string } {
  try {
    return { schema: convert(schema, path, { root: schema, references: 0 }) };
  } catch (error) {
    if (error instanceof SchemaProblem) return { problem: error.message };
    throw error;
  }
}
