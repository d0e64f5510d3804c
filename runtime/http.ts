import { randomUUID } from 'node:crypto';
import type { Context, Env, ErrorHandler, MiddlewareHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/**
 * The HTTP conventions every service shares: a request id on every request and response, and
 * errors as JSON in the OpenAI shape `{ error: { message, type, code }, request_id }`, never a
 * stack trace or an upstream body (LOG-02).
 */

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'conflict_error'
  | 'insufficient_credits'
  | 'rate_limit_error'
  | 'service_unavailable'
  | 'api_error';

/** An error the client should see, with its status and a stable machine-readable code. */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly type: ErrorType,
    readonly code: string,
    message: string,
    /** Extra fields for the error object (e.g. the available balance on a 402). */
    readonly details: Record<string, string | number | boolean> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/**
 * A 400 for the request as sent, in OpenAI's error shape: `param` names the field at fault (the
 * SDKs show it), and is left out when no one field is (a header, a rule across two fields).
 */
export function invalidParameter(
  param: string | undefined,
  message: string,
  code = 'invalid_request',
): ApiError {
  return new ApiError(
    400,
    'invalid_request_error',
    code,
    message,
    param === undefined ? {} : { param },
  );
}

/** What a schema's refusal carries per problem (zod's issues have this shape). */
export interface SchemaIssue {
  readonly code: string;
  readonly path: readonly PropertyKey[];
  readonly message: string;
  /** The unknown fields, for an `unrecognized_keys` issue. */
  readonly keys?: readonly string[];
}

/** A field's path as OpenAI names parameters: `messages[1].content[0].image_url.url`. */
export function parameterPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, index) =>
      typeof key === 'number' ? `[${key}]` : index === 0 ? String(key) : `.${String(key)}`,
    )
    .join('');
}

/**
 * The first problem of a request its schema refused, as a 400 naming the field in `param`: an
 * unknown field by its own name (worded by `unknownFields`, else by the schema), any other problem
 * by its path, the message starting with that path (unless it already does).
 */
export function invalidRequestFromSchema(
  issues: readonly SchemaIssue[],
  unknownFields?: (names: readonly string[]) => string,
): ApiError {
  const issue = issues[0];
  const where = parameterPath(issue.path);
  if (issue.code === 'unrecognized_keys' && issue.keys !== undefined && issue.keys.length > 0) {
    const param = where === '' ? issue.keys[0] : `${where}.${issue.keys[0]}`;
    return invalidParameter(param, unknownFields?.(issue.keys) ?? issue.message);
  }
  if (where === '') return invalidParameter(undefined, issue.message);
  const message = issue.message.startsWith(where) ? issue.message : `${where}: ${issue.message}`;
  return invalidParameter(where, message);
}

export const requestIdHeader = 'x-request-id';
/** Longest client-supplied request id we log; longer ones are dropped. */
export const requestIdLengthMax = 128;
/** What a caller's request id may contain to be logged: nothing that could forge a log field. */
const clientRequestIdPattern = new RegExp(`^[A-Za-z0-9._:@/+=-]{1,${requestIdLengthMax}}$`);

/** `requestId` is always ours; `clientRequestId` is the caller's x-request-id, for correlation only. */
export type RequestIdVariables = { requestId: string; clientRequestId?: string };

/**
 * Every request gets an id of our own (answered in x-request-id and in every error body); a
 * caller's x-request-id is never trusted as ours (it would let a client pick the id its requests
 * are logged and correlated under), only kept as `clientRequestId` when it is harmless to log.
 */
export function requestIdMiddleware<E extends Env>(): MiddlewareHandler<E> {
  return async (c, next) => {
    const presented = c.req.header(requestIdHeader);
    const id = randomUUID();
    c.set('requestId' as never, id as never);
    if (presented !== undefined && clientRequestIdPattern.test(presented))
      c.set('clientRequestId' as never, presented as never);
    c.header(requestIdHeader, id);
    await next();
  };
}

export function errorResponse(c: Context, error: ApiError): Response {
  const requestIdValue = (c.get('requestId') as string | undefined) ?? 'unknown';
  return c.json(
    {
      error: { message: error.message, type: error.type, code: error.code, ...error.details },
      request_id: requestIdValue,
    },
    error.status,
  );
}

/** Maps hono's own HTTP exceptions (body limit, malformed input) to the API error shape. */
function fromHttpException(exception: HTTPException): ApiError {
  switch (exception.status) {
    case 413:
      return new ApiError(
        413,
        'invalid_request_error',
        'request_too_large',
        'Request body too large',
      );
    case 401:
      return new ApiError(
        401,
        'authentication_error',
        'invalid_api_key',
        'Missing or invalid API key',
      );
    default:
      return new ApiError(
        exception.status as ContentfulStatusCode,
        'invalid_request_error',
        'bad_request',
        'Bad request',
      );
  }
}

export interface ErrorLogger {
  error(message: string, fields: Record<string, unknown>): void;
}

/**
 * The last line of defence: known errors keep their status; anything else is logged with its
 * error id (the request id) and answered as a bare 500 that leaks nothing.
 */
export function errorHandler(logger: ErrorLogger): ErrorHandler {
  return (error, c) => {
    if (error instanceof ApiError) return errorResponse(c, error);
    if (error instanceof HTTPException) return errorResponse(c, fromHttpException(error));
    logger.error('unhandled error', {
      request_id: c.get('requestId') as string | undefined,
      error_name: error.name,
      error_message: error.message,
      stack: error.stack,
    });
    return errorResponse(
      c,
      new ApiError(
        500,
        'api_error',
        'internal_error',
        'Internal error; quote the request id when reporting it',
      ),
    );
  };
}

export const notFoundHandler: NotFoundHandler = (c) =>
  errorResponse(
    c,
    new ApiError(404, 'not_found_error', 'not_found', `No route for ${c.req.method} ${c.req.path}`),
  );

/** Parses a JSON request body; anything else is a 400 that says what was wrong. */
export async function readJsonBody(c: Context): Promise<unknown> {
  const contentType = c.req.header('content-type') ?? '';
  if (!/^application\/json\b/i.test(contentType)) {
    throw new ApiError(
      400,
      'invalid_request_error',
      'unsupported_media_type',
      'Send the body as application/json',
    );
  }
  const text = await readBodyText(c);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ApiError(
      400,
      'invalid_request_error',
      'invalid_json',
      'The request body is not valid JSON',
    );
  }
}

/**
 * The body as text. A body the client did not finish (it hung up, or the server's request timeout
 * cut it) is the client's fault: a 400, never an unhandled 500. A body over the limit keeps its 413.
 */
async function readBodyText(c: Context): Promise<string> {
  try {
    return await c.req.text();
  } catch (error) {
    if (error instanceof HTTPException || error instanceof ApiError) throw error;
    throw new ApiError(
      400,
      'invalid_request_error',
      'incomplete_body',
      'The request body was not received completely',
    );
  }
}
