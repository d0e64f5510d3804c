import type { JsonSchema } from './types';

/**
 * A deterministic value that satisfies a JSON Schema, for the echo model's structured output and
 * tool arguments. It honours what the schemas of tools and response formats use: type, const, enum,
 * properties (every one is filled, so strict schemas' "all required" holds), items with
 * minItems/maxItems, minimum/maximum, minLength/maxLength, anyOf/oneOf (the first), allOf (merged
 * objects), nullable types and local $refs. `pattern` and `format` are not honoured. Strings take
 * `text` (the echo), cut or padded to fit. The schema was checked for depth at the edge; a recursive
 * $ref stops at `exampleDepthMax` with null.
 */

/** Nesting of generated values; a self-referencing schema ends here. */
export const exampleDepthMax = 16;

type Schema = JsonSchema | boolean;

function isObject(value: unknown): value is JsonSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `#/$defs/name` or `#/definitions/name` within the root schema. */
function resolveReference(reference: string, root: JsonSchema): Schema {
  const match = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(reference);
  const definitions = match ? root[match[1]] : undefined;
  const target = isObject(definitions) && match ? definitions[match[2]] : undefined;
  return isObject(target) || typeof target === 'boolean' ? target : {};
}

function firstType(schema: JsonSchema): string | undefined {
  const type = schema.type;
  if (typeof type === 'string') return type;
  if (Array.isArray(type)) return type.find((entry) => entry !== 'null') ?? type[0];
  if (isObject(schema.properties)) return 'object';
  if (schema.items !== undefined) return 'array';
  return undefined;
}

function stringExample(schema: JsonSchema, text: string): string {
  const minimum = typeof schema.minLength === 'number' ? schema.minLength : 0;
  const maximum = typeof schema.maxLength === 'number' ? schema.maxLength : Infinity;
  return text.padEnd(minimum, '.').slice(0, maximum);
}

function numberExample(schema: JsonSchema, integer: boolean): number {
  const low =
    typeof schema.minimum === 'number'
      ? schema.minimum
      : typeof schema.exclusiveMinimum === 'number'
        ? schema.exclusiveMinimum + (integer ? 1 : 0.5)
        : undefined;
  const high = typeof schema.maximum === 'number' ? schema.maximum : undefined;
  const value = low ?? (high !== undefined && high < 0 ? high : 0);
  return integer ? Math.ceil(value) : value;
}

function objectExample(schema: JsonSchema, root: JsonSchema, text: string, depth: number) {
  const properties: Record<string, unknown> = {};
  const merged = [schema, ...(Array.isArray(schema.allOf) ? schema.allOf : [])];
  for (const part of merged) {
    if (!isObject(part) || !isObject(part.properties)) continue;
    for (const [name, property] of Object.entries(part.properties))
      properties[name] = example(property as Schema, root, text, depth + 1);
  }
  return properties;
}

function example(schema: Schema, root: JsonSchema, text: string, depth: number): unknown {
  if (depth > exampleDepthMax || typeof schema === 'boolean') return null;
  if (typeof schema.$ref === 'string')
    return example(resolveReference(schema.$ref, root), root, text, depth + 1);
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  for (const keyword of ['anyOf', 'oneOf'] as const) {
    const options = schema[keyword];
    if (Array.isArray(options) && options.length > 0)
      return example(options[0] as Schema, root, text, depth + 1);
  }
  switch (firstType(schema)) {
    case 'object':
      return objectExample(schema, root, text, depth);
    case 'array': {
      const minimum = typeof schema.minItems === 'number' ? schema.minItems : 1;
      const maximum = typeof schema.maxItems === 'number' ? schema.maxItems : minimum;
      const count = Math.min(Math.max(minimum, 1), maximum);
      const items = (schema.items ?? {}) as Schema;
      return Array.from({ length: count }, () => example(items, root, text, depth + 1));
    }
    case 'string':
      return stringExample(schema, text);
    case 'integer':
      return numberExample(schema, true);
    case 'number':
      return numberExample(schema, false);
    case 'boolean':
      return false;
    case 'null':
      return null;
    default:
      return Array.isArray(schema.allOf) ? objectExample(schema, root, text, depth) : text;
  }
}

export function schemaExample(schema: JsonSchema, text: string): unknown {
  return example(schema, schema, text, 0);
}
