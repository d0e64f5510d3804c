/**
 * Lambda refuses to create or update a function whose environment variables, keys and values
 * together, exceed 4 KB (4,096 bytes of UTF-8): the deploy fails ("exceeded the 4KB limit").
 */
export const lambdaEnvironmentBytesMax = 4096;

/**
 * What one CloudFormation reference in an environment value is counted as before deploy resolves
 * it: a bound above every reference the stacks put there (a Secrets Manager ARN with its generated
 * name is about 100 bytes, an SQS queue URL at most about 130, an internal ALB's DNS name about 80).
 */
export const cloudFormationReferenceBytesMax = 256;

/**
 * Room the shipped stages keep below the limit (the template test asserts it): a quarter of it, so
 * a new setting or a longer reference never meets the limit at a platform team's first deploy.
 */
export const lambdaEnvironmentHeadroomBytes = 1024;

/** Bytes of one resolved template value: strings as UTF-8, each reference at its bound. */
function valueBytes(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value, 'utf8');
  if (typeof value === 'number' || typeof value === 'boolean') return String(value).length;
  if (Array.isArray(value)) return value.reduce((sum: number, item) => sum + valueBytes(item), 0);
  if (typeof value === 'object' && value !== null) {
    // Fn::Join's literal parts count as written; its separator is at most a few bytes per part.
    const join = (value as Record<string, unknown>)['Fn::Join'];
    if (Array.isArray(join) && typeof join[0] === 'string' && Array.isArray(join[1])) {
      const parts = join[1] as unknown[];
      return (
        parts.reduce((sum: number, part) => sum + valueBytes(part), 0) +
        Buffer.byteLength(join[0], 'utf8') * Math.max(parts.length - 1, 0)
      );
    }
    return cloudFormationReferenceBytesMax;
  }
  return 0;
}

/**
 * The size Lambda counts for an environment as the template writes it (`Environment.Variables`, or
 * the resolved construct's `variables`): every key and value in UTF-8 bytes, references at their bound.
 */
export function environmentBytes(variables: Record<string, unknown>): number {
  return Object.entries(variables).reduce(
    (sum, [key, value]) => sum + Buffer.byteLength(key, 'utf8') + valueBytes(value),
    0,
  );
}
