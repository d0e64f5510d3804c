import type { LogLevel } from './logger';
import * as z from './zod-mini';

/**
 * The one reader of the environment for every entry point (the proxy's and the credits service's
 * Lambda handlers and Node servers, the settle function, the rotation function, the ledger
 * gateway). Each entry declares its variables as a schema, one per variable; `readEnvironment`
 * reads them all at once, so a failed start lists every problem, each naming its variable. A
 * variable that is unset or blank is missing: required ones are listed as missing configuration.
 * On zod/mini, so it adds nothing to the proxy's bundle.
 */

/** One variable: its text (undefined when unset or blank) in, its value out. */
export type VariableSchema = z.ZodMiniType<unknown, string | undefined>;
export type EnvironmentSchema = Readonly<Record<string, VariableSchema>>;
export type EnvironmentValues<S extends EnvironmentSchema> = { [K in keyof S]: z.output<S[K]> };

export type EnvironmentReading<S extends EnvironmentSchema> =
  | { readonly values: EnvironmentValues<S>; readonly missing: []; readonly problems: [] }
  | {
      readonly values?: undefined;
      /** Required variables that are unset or blank, in the schema's order. */
      readonly missing: string[];
      /** Each one names its variable: `PORT must be an integer from 0 to 65535, got "x"`. */
      readonly problems: string[];
    };

export function readEnvironment<S extends EnvironmentSchema>(
  schema: S,
  environment: NodeJS.ProcessEnv,
): EnvironmentReading<S> {
  const values: Record<string, unknown> = {};
  const missing: string[] = [];
  const problems: string[] = [];
  for (const [name, variable] of Object.entries(schema)) {
    const text = environment[name];
    const input = text === undefined || text.trim() === '' ? undefined : text;
    const parsed = variable.safeParse(input);
    if (parsed.success) values[name] = parsed.data;
    else if (input === undefined && parsed.error.issues[0].code === 'invalid_type')
      missing.push(name);
    else problems.push(`${name} ${parsed.error.issues[0].message}`);
  }
  if (missing.length > 0 || problems.length > 0) return { missing, problems };
  return { values: values as EnvironmentValues<S>, missing: [], problems: [] };
}

/**
 * The values, or the error a Lambda function's start fails with (every invocation fails loudly
 * until the configuration is fixed, AUTH-08): the missing variables first, then the malformed ones.
 */
export function environmentOrRefuse<S extends EnvironmentSchema>(
  service: string,
  schema: S,
  environment: NodeJS.ProcessEnv,
): EnvironmentValues<S> {
  const reading = readEnvironment(schema, environment);
  if (reading.values !== undefined) return reading.values;
  if (reading.missing.length > 0)
    throw new Error(
      `${service}: refusing to start, missing configuration: ${reading.missing.join(', ')}`,
    );
  throw new Error(`${service}: refusing to start, ${reading.problems.join('; ')}`);
}

/** The problems of a reading as lines, the missing variables included (a Node server's refusal). */
export function environmentProblems(reading: EnvironmentReading<EnvironmentSchema>): string[] {
  return [...reading.missing.map((name) => `${name} is required`), ...reading.problems];
}

const custom = (ctx: z.core.ParsePayload, message: string) => {
  ctx.issues.push({ code: 'custom', message, input: ctx.value });
  return z.NEVER;
};

/** Builders of variables; their messages follow the variable's name. */
export const variable = {
  /** Required text. */
  required: () => z.string(),
  /** Optional text. */
  optional: () => z.optional(z.string()),
  /** Text, `fallback` when unset. */
  withDefault: (fallback: string) =>
    z.pipe(
      z.optional(z.string()),
      z.transform((text): string => text ?? fallback),
    ),
  /** Required text matching `pattern`; `rule` says what it must be. */
  matching: (pattern: RegExp, rule: string) =>
    z.string().check(z.refine((text) => pattern.test(text), { error: () => rule })),
  /** An integer from `minimum` to `maximum`; `fallback` when unset (required without one). */
  integer: (minimum: number, maximum: number, fallback?: number) =>
    z.pipe(
      fallback === undefined ? z.string() : z.optional(z.string()),
      z.transform((text, ctx): number => {
        if (text === undefined) return fallback as number;
        const trimmed = text.trim();
        const parsed = /^[0-9]+$/.test(trimmed) ? Number(trimmed) : NaN;
        if (parsed >= minimum && parsed <= maximum) return parsed;
        return custom(ctx, `must be an integer from ${minimum} to ${maximum}, got "${trimmed}"`);
      }),
    ),
  /** One of `values`, case-insensitively (written as listed); `fallback` when unset. */
  oneOf: <const V extends string>(values: readonly V[], fallback?: V) =>
    z.pipe(
      z.optional(z.string()),
      z.transform((text, ctx): V => {
        const wanted = text?.trim().toUpperCase();
        const found = values.find((value) => value.toUpperCase() === wanted);
        if (found !== undefined) return found;
        if (text === undefined && fallback !== undefined) return fallback;
        return custom(
          ctx,
          `must be one of ${values.join(', ')}, got ${text === undefined ? 'nothing' : `"${text.trim()}"`}`,
        );
      }),
    ),
  /** JSON that `schema` accepts; the first problem is named with its path. */
  json: <T>(schema: z.ZodMiniType<T>, what: string) =>
    z.pipe(
      z.string(),
      z.transform((text, ctx): T => {
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          return custom(ctx, 'is not JSON');
        }
        const parsed = schema.safeParse(value);
        if (parsed.success) return parsed.data;
        const issue = parsed.error.issues[0];
        const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
        return custom(ctx, `is not ${what}: ${where}${issue.message}`);
      }),
    ),
};

export const logLevels: readonly LogLevel[] = ['DEBUG', 'INFO', 'WARN', 'ERROR'];
/** LOG_LEVEL of every entry point: INFO unless set. */
export const logLevelVariable = () => variable.oneOf(logLevels, 'INFO');

/**
 * Set to `true` by scripts/local-services.ts only, which gives each local service a stdin pipe:
 * the pipe ends when the supervisor is gone, however it went (SIGKILL, the OOM killer, a crash),
 * and the service then stops as on SIGTERM. Unset elsewhere (the gateway container and Lambda have
 * no such pipe), so nothing there watches stdin.
 */
export const supervisorEnvironment = {
  STOP_WHEN_STDIN_ENDS: variable.oneOf(['true', 'false'], 'false'),
};
