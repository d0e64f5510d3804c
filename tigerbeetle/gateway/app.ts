import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { routePath } from 'hono/route';
import type { z } from 'zod';
import {
  ApiError,
  errorHandler,
  notFoundHandler,
  readJsonBody,
  requestIdMiddleware,
  type RequestIdVariables,
} from '../../runtime/http';
import { presentedKey } from '../../runtime/keys';
import { audit, type AppLogger } from '../../runtime/logger';
import {
  clusterRequestTimeoutMillisecondsDefault,
  tigerbeetleErrorCode,
  tigerbeetleErrorCodes,
  withDeadline,
  type LedgerClient,
  type TigerBeetleErrorCode,
} from '../ledger';
import {
  accountToWire,
  balanceToWire,
  createResultToWire,
  gatewayBatchEventsMax,
  gatewayOperations,
  operationsRequestSchema,
  requestSchemas,
  transferToWire,
  type GatewayOperation,
} from './protocol';
import { u128Max } from '../limits';

/**
 * The ledger gateway: the only holder of a TigerBeetle session in production. It exposes exactly
 * the ledger operations the credits service needs, as JSON over HTTP, behind a bearer token.
 * Concurrent requests share one client, so TigerBeetle's client batches them together.
 */

/**
 * A full batch of 8189 accounts with every field at its maximum is about 4.2 MB of JSON (u128s
 * as 39-digit strings); the limit leaves room for that and refuses anything larger.
 */
export const gatewayBodyBytesMaxDefault = 6 * 1024 * 1024;
/** Requests slower than this are logged as warnings (LOG-06). */
export const gatewaySlowRequestMillisecondsDefault = 1_000;
/** Errors listed in one 400 message; the rest are counted, so a bad batch cannot make a huge body. */
export const validationIssuesReportedMax = 5;
/** /ready looks up this id: TigerBeetle refuses it as an account id (`id_must_not_be_int_max`), so it never matches data. */
export const readinessProbeAccountId = u128Max;

export interface GatewayLimits {
  readonly bodyBytesMax: number;
  /** Every ledger call races this deadline; a late answer becomes 503 (DR-03). */
  readonly ledgerRequestTimeoutMilliseconds: number;
  readonly slowRequestMilliseconds: number;
}

export const gatewayLimitsDefault: GatewayLimits = {
  bodyBytesMax: gatewayBodyBytesMaxDefault,
  ledgerRequestTimeoutMilliseconds: clusterRequestTimeoutMillisecondsDefault,
  slowRequestMilliseconds: gatewaySlowRequestMillisecondsDefault,
};

/** Which of the accepted tokens a request presented; logged, so a rotation's progress is visible. */
export type GatewayTokenVersion = 'current' | 'previous';

/** Verifies a bearer token (by hash, in constant time): a `Keyring`, or a token source that refreshes one. */
export interface GatewayTokenVerifier {
  verify(
    presentedToken: string,
  ): GatewayTokenVersion | undefined | Promise<GatewayTokenVersion | undefined>;
}

export interface GatewayDependencies {
  readonly ledger: LedgerClient;
  readonly tokens: GatewayTokenVerifier;
  readonly logger: AppLogger;
  readonly limits?: Partial<GatewayLimits>;
  /** While true, /ready answers 503 so the load balancer stops sending new connections. */
  readonly isDraining?: () => boolean;
}

type GatewayEnv = {
  Variables: RequestIdVariables & { eventCount?: number; tokenVersion?: GatewayTokenVersion };
};

export function createGatewayApp(dependencies: GatewayDependencies): Hono<GatewayEnv> {
  const limits = checkLimits({ ...gatewayLimitsDefault, ...dependencies.limits });
  // Applied whatever the ledger passed in: a second deadline on a cluster client is harmless.
  const ledger = withDeadline(dependencies.ledger, limits.ledgerRequestTimeoutMilliseconds);
  const { logger } = dependencies;
  const isDraining = dependencies.isDraining ?? (() => false);
  const clientHealth = new ClientHealth();

  const app = new Hono<GatewayEnv>();
  app.use(requestIdMiddleware());
  app.use(requestLog(logger, limits.slowRequestMilliseconds));
  app.use(closeWhileDraining(isDraining));
  app.onError(errorHandler(logger));
  app.notFound(notFoundHandler);

  app.get('/health', (c) => c.json({ status: 'ok' }));
  app.get('/ready', async (c) => {
    if (isDraining()) throw unavailable('shutting_down', 'The gateway is shutting down');
    clientHealth.assertUsable();
    await callLedger(logger, clientHealth, c, 'lookupAccounts', () =>
      ledger.lookupAccounts([readinessProbeAccountId]),
    );
    return c.json({ status: 'ready' });
  });

  app.use('/v1/*', bearerAuth(dependencies.tokens, logger));
  app.use('/v1/*', bodyLimit({ maxSize: limits.bodyBytesMax }));
  for (const operation of gatewayOperations) {
    app.post(`/v1/${operation}`, async (c) => {
      const body = await readOperationBody(c, operation);
      return c.json(await runOperation(ledger, logger, clientHealth, c, body));
    });
  }
  app.post('/v1/operations', async (c) =>
    c.json({ results: await runOperations(ledger, logger, clientHealth, c) }),
  );
  return app;
}

function checkLimits(limits: GatewayLimits): GatewayLimits {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0)
      throw new Error(`gateway limit ${name} must be a positive integer, got ${value}`);
  }
  return limits;
}

/** During a shutdown, answers tell keep-alive clients to reconnect (to another gateway). */
function closeWhileDraining(isDraining: () => boolean): MiddlewareHandler<GatewayEnv> {
  return async (c, next) => {
    await next();
    if (isDraining()) c.header('connection', 'close');
  };
}

/** One log line per request: never a body, never a header value (LOG-04). */
function requestLog(
  logger: AppLogger,
  slowRequestMilliseconds: number,
): MiddlewareHandler<GatewayEnv> {
  return async (c, next) => {
    const started = performance.now();
    await next();
    const durationMilliseconds = Math.round(performance.now() - started);
    const slow = durationMilliseconds > slowRequestMilliseconds;
    const fields = {
      request_id: c.get('requestId'),
      client_request_id: c.get('clientRequestId'),
      method: c.req.method,
      route: routePath(c, -1),
      status: c.res.status,
      duration_milliseconds: durationMilliseconds,
      event_count: c.get('eventCount') ?? 0,
      token_version: c.get('tokenVersion'),
      slow,
    };
    if (slow) logger.warn('request', fields);
    else logger.info('request', fields);
  };
}

function bearerAuth(
  tokens: GatewayTokenVerifier,
  logger: AppLogger,
): MiddlewareHandler<GatewayEnv> {
  return async (c, next) => {
    const authorization = c.req.header('authorization');
    const token = presentedKey(authorization, undefined);
    const version = token === undefined ? undefined : await tokens.verify(token);
    if (version === undefined) {
      // The audit record says why, never what was presented (LOG-04, LOG-05).
      audit(logger, 'auth_failure', {
        request_id: c.get('requestId'),
        route: c.req.path.slice(0, 64),
        reason:
          authorization === undefined || authorization.trim() === ''
            ? 'missing_token'
            : 'invalid_token',
      });
      throw new ApiError(
        401,
        'authentication_error',
        'invalid_token',
        'Missing or invalid bearer token',
      );
    }
    c.set('tokenVersion', version);
    await next();
  };
}

type OperationBody = {
  [K in GatewayOperation]: { operation: K; input: z.output<(typeof requestSchemas)[K]> };
}[GatewayOperation];

async function readOperationBody(
  c: Context<GatewayEnv>,
  operation: GatewayOperation,
): Promise<OperationBody> {
  const json = await readJsonBody(c);
  checkBatchSize(c, json);
  const parsed = requestSchemas[operation].safeParse(json);
  if (!parsed.success) throw invalidRequest('invalid_request', describeIssues(parsed.error.issues));
  return { operation, input: parsed.data } as OperationBody;
}

/** Refuses an oversized batch before validating it, with a message that says so (not a schema error). */
function checkBatchSize(c: Context<GatewayEnv>, json: unknown): void {
  if (typeof json !== 'object' || json === null) return;
  for (const field of ['accounts', 'transfers', 'ids'] as const) {
    const events = (json as Record<string, unknown>)[field];
    if (!Array.isArray(events)) continue;
    c.set('eventCount', events.length);
    if (events.length > gatewayBatchEventsMax) {
      throw invalidRequest(
        'batch_too_large',
        `${field}: at most ${gatewayBatchEventsMax} events per request, got ${events.length}`,
      );
    }
  }
  if ('filter' in json) c.set('eventCount', 1);
}

function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  const described = issues.slice(0, validationIssuesReportedMax).map(describeIssue);
  const more = issues.length - described.length;
  return described.join('; ') + (more > 0 ? `; and ${more} more` : '');
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path
    .map((segment) => (typeof segment === 'number' ? `[${segment}]` : `.${String(segment)}`))
    .join('');
  if (issue.code === 'unrecognized_keys') {
    const names = issue.keys.map((key) => `${path}.${key}`.replace(/^\./, ''));
    return `${names.join(', ')}: unknown field${names.length > 1 ? 's' : ''}`;
  }
  const field = path.replace(/^\./, '') || 'body';
  return `${field}: ${issue.message}`;
}

/** Several operations in one request, run in order; a failing one fails the request (503) and stops the rest. */
async function runOperations(
  ledger: LedgerClient,
  logger: AppLogger,
  health: ClientHealth,
  c: Context<GatewayEnv>,
): Promise<object[]> {
  const json = await readJsonBody(c);
  const parsed = operationsRequestSchema.safeParse(json);
  if (!parsed.success) throw invalidRequest('invalid_request', describeIssues(parsed.error.issues));
  c.set(
    'eventCount',
    parsed.data.operations.reduce((sum, operation) => sum + eventsOf(operation), 0),
  );
  const results: object[] = [];
  for (const operation of parsed.data.operations) {
    const body = { operation: operation.operation, input: operation } as OperationBody;
    results.push({
      operation: operation.operation,
      ...(await runOperation(ledger, logger, health, c, body)),
    });
  }
  return results;
}

function eventsOf(
  operation: z.output<typeof operationsRequestSchema>['operations'][number],
): number {
  if ('accounts' in operation) return operation.accounts.length;
  if ('transfers' in operation) return operation.transfers.length;
  if ('ids' in operation) return operation.ids.length;
  return 1;
}

async function runOperation(
  ledger: LedgerClient,
  logger: AppLogger,
  health: ClientHealth,
  c: Context<GatewayEnv>,
  body: OperationBody,
): Promise<object> {
  switch (body.operation) {
    case 'create_accounts': {
      const results = await callLedger(logger, health, c, 'createAccounts', () =>
        ledger.createAccounts(body.input.accounts),
      );
      return { results: results.map(createResultToWire) };
    }
    case 'create_transfers': {
      const results = await callLedger(logger, health, c, 'createTransfers', () =>
        ledger.createTransfers(body.input.transfers),
      );
      return { results: results.map(createResultToWire) };
    }
    case 'lookup_accounts': {
      const accounts = await callLedger(logger, health, c, 'lookupAccounts', () =>
        ledger.lookupAccounts(body.input.ids),
      );
      return { accounts: accounts.map(accountToWire) };
    }
    case 'lookup_transfers': {
      const transfers = await callLedger(logger, health, c, 'lookupTransfers', () =>
        ledger.lookupTransfers(body.input.ids),
      );
      return { transfers: transfers.map(transferToWire) };
    }
    case 'get_account_transfers': {
      const transfers = await callLedger(logger, health, c, 'getAccountTransfers', () =>
        ledger.getAccountTransfers(body.input.filter),
      );
      return { transfers: transfers.map(transferToWire) };
    }
    case 'get_account_balances': {
      const balances = await callLedger(logger, health, c, 'getAccountBalances', () =>
        ledger.getAccountBalances(body.input.filter),
      );
      return { balances: balances.map(balanceToWire) };
    }
    case 'query_transfers': {
      const transfers = await callLedger(logger, health, c, 'queryTransfers', () =>
        ledger.queryTransfers(body.input.filter),
      );
      return { transfers: transfers.map(transferToWire) };
    }
  }
}

/** A failed ledger call is logged in full; the caller learns only what it can act on (ledgerFailure). */
async function callLedger<T>(
  logger: AppLogger,
  health: ClientHealth,
  c: Context<GatewayEnv>,
  operation: string,
  call: () => Promise<T>,
): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const code = tigerbeetleErrorCode(error);
    logger.error('ledger call failed', {
      request_id: c.get('requestId'),
      operation,
      error_name: error instanceof Error ? error.name : typeof error,
      error_code: code,
      error_message: error instanceof Error ? error.message : String(error),
    });
    health.record(code);
    throw ledgerFailure(code);
  }
}

/**
 * What a failed ledger call answers:
 * - too much data (a batch, or a query limit, beyond one TigerBeetle message): the caller's error, 400;
 * - a client release the cluster refuses (too old or too new, during an upgrade done out of order):
 *   503, and /ready fails from then on, so the load balancer and ECS replace this task;
 * - anything else (a timeout, an eviction, whose client the ledger layer recreates, a closed
 *   client during shutdown): 503, retry later.
 */
function ledgerFailure(code: TigerBeetleErrorCode | undefined): ApiError {
  switch (code) {
    case tigerbeetleErrorCodes.tooMuchData:
      return invalidRequest(
        'too_much_data',
        'The request exceeds what one ledger batch can carry or return; send fewer events or ask for a smaller limit',
      );
    case tigerbeetleErrorCodes.clientReleaseTooLow:
    case tigerbeetleErrorCodes.clientReleaseTooHigh:
      return unavailable(
        'ledger_client_release_mismatch',
        "The ledger refuses this gateway's client release; another gateway will answer, retry later",
      );
    default:
      return unavailable('ledger_unavailable', 'The ledger is unavailable; retry later');
  }
}

/**
 * Remembers a permanent client failure: the cluster refused this process's client release, which
 * no retry or new session can change. From then on /ready fails, so the task is replaced (by one
 * with the client release the cluster accepts; docs/runbooks/ledger-upgrade.md).
 */
class ClientHealth {
  private permanentFailure: TigerBeetleErrorCode | undefined;

  record(code: TigerBeetleErrorCode | undefined): void {
    if (
      code === tigerbeetleErrorCodes.clientReleaseTooLow ||
      code === tigerbeetleErrorCodes.clientReleaseTooHigh
    )
      this.permanentFailure ??= code;
  }

  assertUsable(): void {
    if (this.permanentFailure !== undefined) {
      throw unavailable(
        'ledger_client_unusable',
        `The ledger refused this gateway's client (${this.permanentFailure}); this task must be replaced`,
      );
    }
  }
}

function invalidRequest(code: string, message: string): ApiError {
  return new ApiError(400, 'invalid_request_error', code, message);
}

function unavailable(code: string, message: string): ApiError {
  return new ApiError(503, 'service_unavailable', code, message);
}
