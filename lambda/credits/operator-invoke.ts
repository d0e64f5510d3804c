import { randomUUID } from 'node:crypto';
import * as z from 'zod';
import type { LambdaHandler } from '../shared/lambda-handler';

/**
 * Operators reach the credits service through the Lambda API (`lambda:Invoke` with their own IAM
 * identity, recorded by CloudTrail), with no network route to the internal ALB: `npm run credits`
 * (scripts/credits.ts). An operator event names one admin operation; it is translated into the HTTP
 * request the internal ALB would deliver and handed to the same hono app, so authentication (the
 * admin key from Secrets Manager, as on the HTTP path), validation, idempotency, audit records and
 * metrics are exactly those of the HTTP API (docs/credits-api.md). Only admin operations exist here:
 * holds and rate limits stay the proxy's, over the ALB.
 */

/** Marks an event as an operator invocation (and its version); ALB events carry `requestContext.elb`. */
export const operatorInvocationVersion = 1;
/** The largest admin key accepted in an event (service keys are 64 characters). */
const adminKeyLengthMax = 512;
/** Field sizes: generous bounds above the app's own rules, which give the precise 400 messages. */
const fieldLengthMax = 256;
const historyLimitMax = 10_000;

const field = z.string().min(1).max(fieldLengthMax);
const operationSchema = z.discriminatedUnion('action', [
  z.strictObject({
    action: z.literal('topup'),
    userId: field,
    amount: field,
    idempotencyKey: field,
  }),
  z.strictObject({
    action: z.literal('adjust'),
    userId: field,
    amount: field,
    direction: z.enum(['credit', 'debit']),
    reason: field,
    idempotencyKey: field,
  }),
  z.strictObject({ action: z.literal('balance'), userId: field }),
  z.strictObject({
    action: z.literal('history'),
    userId: field,
    limit: z.number().int().min(1).max(historyLimitMax).optional(),
    before: field.optional(),
  }),
  z.strictObject({
    action: z.literal('usage'),
    from: field,
    to: field,
    limit: z.number().int().min(1).max(historyLimitMax).optional(),
  }),
]);

export const operatorEventSchema = z.strictObject({
  operatorInvocation: z.literal(operatorInvocationVersion),
  /** The credits admin key (the api stack's `CreditsAdminKeySecretArn`), checked by the app. */
  adminKey: z.string().min(1).max(adminKeyLengthMax),
  /** The operator's reference: logged beside the request id the service gives (client_request_id). */
  requestId: field.optional(),
  operation: operationSchema,
});
export type OperatorEvent = z.infer<typeof operatorEventSchema>;
export type OperatorOperation = z.infer<typeof operationSchema>;

/** What an operator invocation returns: the HTTP API's status and JSON body. */
export interface OperatorResult {
  readonly status: number;
  readonly body: unknown;
  readonly requestId: string;
  /** True when an idempotent write was already applied (the `idempotent-replayed` header). */
  readonly replayed: boolean;
}

export interface HttpRequest {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly query: Record<string, string>;
  readonly body?: unknown;
  readonly idempotencyKey?: string;
}

/** The HTTP request an operation is served as (also what `npm run credits -- --local` sends to `npm run dev`). */
export function httpRequestOf(operation: OperatorOperation): HttpRequest {
  if (operation.action === 'usage') {
    const query: Record<string, string> = {
      from: encodeURIComponent(operation.from),
      to: encodeURIComponent(operation.to),
    };
    if (operation.limit !== undefined) query.limit = String(operation.limit);
    return { method: 'GET', path: '/api/v1/charges', query };
  }
  const user = encodeURIComponent(operation.userId);
  switch (operation.action) {
    case 'topup':
      return {
        method: 'POST',
        path: '/api/v1/topup',
        query: {},
        body: { user_id: operation.userId, amount: operation.amount },
        idempotencyKey: operation.idempotencyKey,
      };
    case 'adjust':
      return {
        method: 'POST',
        path: '/api/v1/adjustments',
        query: {},
        body: {
          user_id: operation.userId,
          amount: operation.amount,
          direction: operation.direction,
          reason: operation.reason,
        },
        idempotencyKey: operation.idempotencyKey,
      };
    case 'balance':
      return { method: 'GET', path: `/api/v1/balance/${user}`, query: {} };
    case 'history': {
      const query: Record<string, string> = {};
      if (operation.limit !== undefined) query.limit = String(operation.limit);
      if (operation.before !== undefined) query.before = encodeURIComponent(operation.before);
      return { method: 'GET', path: `/api/v1/transfers/${user}`, query };
    }
  }
}

/** The event the internal ALB would deliver for this request (the shape hono's adapter reads). */
function albEventOf(event: OperatorEvent, requestId: string) {
  const request = httpRequestOf(event.operation);
  const headers: Record<string, string> = {
    host: 'credits.operator-invoke',
    authorization: `Bearer ${event.adminKey}`,
    'x-request-id': requestId,
  };
  if (request.body !== undefined) headers['content-type'] = 'application/json';
  if (request.idempotencyKey !== undefined) headers['idempotency-key'] = request.idempotencyKey;
  return {
    requestContext: { elb: { targetGroupArn: 'operator-invoke' } },
    httpMethod: request.method,
    path: request.path,
    queryStringParameters: request.query,
    headers,
    body: request.body === undefined ? '' : JSON.stringify(request.body),
    isBase64Encoded: false,
  };
}

const albResultSchema = z.object({
  statusCode: z.number().int(),
  headers: z.record(z.string(), z.string()).optional(),
  body: z.string(),
});

function parsedBody(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function invalidEvent(message: string, requestId: string): OperatorResult {
  return {
    status: 400,
    body: {
      error: {
        message: `Invalid operator invocation: ${message}`,
        type: 'invalid_request_error',
        code: 'invalid_operator_event',
      },
      request_id: requestId,
    },
    requestId,
    replayed: false,
  };
}

function issueText(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.join('.') || '(event)'}: ${issue.message}`)
    .join('; ');
}

/** Runs one operator event through the app's Lambda handler (the ALB path) and returns its answer. */
export async function invokeAsOperator(
  albHandler: LambdaHandler,
  event: unknown,
  context?: unknown,
): Promise<OperatorResult> {
  const parsed = operatorEventSchema.safeParse(event);
  const fallbackRequestId = randomUUID();
  if (!parsed.success) return invalidEvent(issueText(parsed.error), fallbackRequestId);
  const requestId = parsed.data.requestId ?? fallbackRequestId;
  const result = albResultSchema.parse(
    await albHandler(albEventOf(parsed.data, requestId) as Parameters<LambdaHandler>[0], context),
  );
  const headers = Object.fromEntries(
    Object.entries(result.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]),
  );
  return {
    status: result.statusCode,
    body: parsedBody(result.body),
    requestId: headers['x-request-id'] ?? requestId,
    replayed: headers['idempotent-replayed'] === 'true',
  };
}

function isLoadBalancerEvent(event: unknown): boolean {
  return typeof event === 'object' && event !== null && 'requestContext' in event;
}

/**
 * The credits function's entry point: load balancer events go to the app as before; any other event
 * is an operator invocation, validated here (400 when it is not one) and then served by the same app.
 */
export function acceptOperatorInvocations(
  albHandler: LambdaHandler,
): (event: unknown, context?: unknown) => Promise<unknown> {
  return (event, context) => {
    if (isLoadBalancerEvent(event))
      return albHandler(event as Parameters<LambdaHandler>[0], context);
    return invokeAsOperator(albHandler, event, context);
  };
}
