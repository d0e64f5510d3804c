import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { creditsRequestTimeoutMilliseconds } from '../proxy/config';
import { createCreditsClient, type CreditsClient } from '../proxy/credits-client';
import { applySettlementJob, settlementJobSchema, unsettled } from '../proxy/settlement-queue';
import { environmentOrRefuse, logLevelVariable, variable } from '../../runtime/environment';
import { createLogger, type AppLogger } from '../../runtime/logger';
import { createEmfMetrics, type AppMetrics } from '../shared/metrics';
import { cachedCurrentSecret } from '../../runtime/secret-keyring';
import { serviceKeyFromSecretString } from '../shared/service-secret';
import { fetchSecretReader } from '../../runtime/secrets-manager';

/**
 * The settle function: drains the settlement queue (SQS, lib/constructs/settlement-retry.ts). Each
 * message is a settlement the proxy could not apply inline; it is applied through the credits
 * service with the proxy's service key. A message whose credits call fails is reported as a batch
 * item failure and comes back after the visibility timeout; on its last receive, or once its hold
 * has expired, it is counted as unsettled (UnsettledHolds, alarmed) instead of retried.
 */

/**
 * A message is started only with this much of the invocation left: one credits call and the flush.
 * The rest go back to the queue uncounted (they are not failures), so none is cut off mid-call.
 */
export const settlementRemainingMillisecondsMin = creditsRequestTimeoutMilliseconds + 1_000;

export interface SettlementHandlerDependencies {
  readonly credits: CreditsClient;
  readonly logger: AppLogger;
  readonly metrics: AppMetrics;
  /** Receives of one message before it is given up (the queue's maxReceiveCount). */
  readonly receivesMax: number;
  readonly now?: () => number;
}

export function createSettlementHandler(dependencies: SettlementHandlerDependencies) {
  const now = dependencies.now ?? Date.now;
  return async (
    event: SQSEvent,
    context?: Pick<Context, 'getRemainingTimeInMillis'>,
  ): Promise<SQSBatchResponse> => {
    const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
    for (const record of event.Records) {
      if (context && context.getRemainingTimeInMillis() < settlementRemainingMillisecondsMin) {
        batchItemFailures.push({ itemIdentifier: record.messageId });
        continue;
      }
      // Flushed per message: an invocation cut short still reports what it counted.
      await settleOne(record);
      dependencies.metrics.flush();
    }
    return { batchItemFailures };

    async function settleOne(record: SQSEvent['Records'][number]): Promise<void> {
      const parsed = settlementJobSchema.safeParse(safeJson(record.body));
      if (!parsed.success) {
        unsettled(
          dependencies.logger,
          dependencies.metrics,
          { message_id: record.messageId },
          'not_a_settlement_job',
        );
        return;
      }
      const outcome = await applySettlementJob(
        dependencies.credits,
        parsed.data,
        now(),
        dependencies.logger,
        dependencies.metrics,
      );
      if (outcome !== 'retry_later') return;
      if (Number(record.attributes.ApproximateReceiveCount) >= dependencies.receivesMax) {
        unsettled(
          dependencies.logger,
          dependencies.metrics,
          { request_id: parsed.data.request_id, hold_id: parsed.data.hold_id },
          'retries_exhausted',
        );
        return;
      }
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

let built: ReturnType<typeof createSettlementHandler> | undefined;

export async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  built ??= build(process.env);
  return built(event, context);
}

/** The function's environment (lib/constructs/settlement-retry.ts writes it). */
const settlementEnvironment = {
  AWS_REGION: variable.required(),
  CREDITS_URL: variable.required(),
  CREDITS_KEY_SECRET_ARN: variable.required(),
  STAGE: variable.required(),
  SETTLEMENT_RECEIVES_MAX: variable.integer(1, 1_000),
  LOG_LEVEL: logLevelVariable(),
};

function build(environment: NodeJS.ProcessEnv): ReturnType<typeof createSettlementHandler> {
  const values = environmentOrRefuse('settlement', settlementEnvironment, environment);
  const secrets = fetchSecretReader({ region: values.AWS_REGION });
  return createSettlementHandler({
    credits: createCreditsClient({
      baseUrl: values.CREDITS_URL,
      key: cachedCurrentSecret(secrets, values.CREDITS_KEY_SECRET_ARN, (secretString) =>
        serviceKeyFromSecretString(secretString, 'current'),
      ),
      requestTimeoutMilliseconds: creditsRequestTimeoutMilliseconds,
    }),
    logger: createLogger('settlement', values.LOG_LEVEL),
    metrics: createEmfMetrics('proxy', values.STAGE),
    receivesMax: values.SETTLEMENT_RECEIVES_MAX,
  });
}
