import { appendFileSync, existsSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { settlementEnqueueTimeoutMilliseconds } from './config';
import * as z from 'zod';
import type { AppLogger } from '../shared/logger';
import { audit } from '../shared/logger';
import type { AppMetrics } from '../shared/metrics';
import { CreditsUnavailableError, type CreditsClient } from './credits-client';

/**
 * The durable retry path of settlement. A completion was delivered, but the credits service could
 * not settle (or release) its hold even after the inline retries: the job goes here and is settled
 * later, before the hold expires (in AWS: an SQS queue drained by the settle function; in
 * `npm run dev`: an append-only file drained by the proxy server). What cannot be settled before
 * the hold expires is counted (`UnsettledHolds`) and alarmed: that completion went unbilled.
 */

export const settlementJobSchema = z.strictObject({
  hold_id: z.string().regex(/^[1-9][0-9]{0,38}$/),
  user_id: z.string().min(1).max(128),
  action: z.enum(['settle', 'release']),
  amount_micros: z.string().regex(/^(0|[1-9][0-9]{0,38})$/),
  request_id: z.string().max(128),
  /** When the hold expires: after that nothing can be charged. */
  expires_at_milliseconds: z.number().int().positive(),
});
export type SettlementJob = z.infer<typeof settlementJobSchema>;

export interface SettlementQueue {
  readonly description: string;
  enqueue(job: SettlementJob): Promise<void>;
}

export type SettlementOutcome = 'settled' | 'retry_later' | 'unsettled';

/** Applies one job; idempotent (settle and release are), so a job delivered twice is harmless. */
export async function applySettlementJob(credits: CreditsClient, job: SettlementJob, nowMilliseconds: number, logger: AppLogger, metrics: AppMetrics): Promise<SettlementOutcome> {
  const fields = { request_id: job.request_id, hold_id: job.hold_id, action: job.action };
  if (nowMilliseconds >= job.expires_at_milliseconds) {
    // An expired hold has released itself: a release job is done, a settle job lost its revenue.
    if (job.action === 'release') return releasedByExpiry(logger, fields);
    return unsettled(logger, metrics, fields, 'hold_expired');
  }
  try {
    const scope = { userId: job.user_id, requestId: job.request_id };
    if (job.action === 'settle') await credits.settle(job.hold_id, BigInt(job.amount_micros), scope);
    else await credits.release(job.hold_id, scope);
  } catch (error) {
    if (error instanceof CreditsUnavailableError) return 'retry_later';
    // The credits service refused it (expired, already resolved otherwise): no retry changes that.
    if (job.action === 'release') return releasedByExpiry(logger, { ...fields, error_message: (error as Error).message });
    return unsettled(logger, metrics, fields, (error as Error).message);
  }
  metrics.record('SettlementsRecovered', 1, {});
  audit(logger, 'settlement_recovered', fields);
  return 'settled';
}

/** A release the ledger no longer needs: the hold expired (voided itself), so nothing is owed or lost. */
function releasedByExpiry(logger: AppLogger, fields: Record<string, unknown>): 'settled' {
  audit(logger, 'release_by_expiry', fields);
  return 'settled';
}

/** Counts and logs a settlement given up: a completion delivered and never billed. */
export function unsettled(logger: AppLogger, metrics: AppMetrics, fields: Record<string, unknown>, reason: string): 'unsettled' {
  metrics.record('UnsettledHolds', 1, {});
  audit(logger, 'unsettled_hold', { ...fields, reason });
  return 'unsettled';
}

export function sqsSettlementQueue(client: SQSClient, queueUrl: string): SettlementQueue {
  return {
    description: `SQS queue ${queueUrl}`,
    async enqueue(job) {
      // Bounded, so the hand-off fits the function's timeout (proxyRequestMillisecondsMax).
      const deadline = AbortSignal.timeout(settlementEnqueueTimeoutMilliseconds);
      await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(settlementJobSchema.parse(job)) }), { abortSignal: deadline });
    },
  };
}

/** The local equivalent: one JSON job per line, appended; drained by the proxy server every few seconds. */
export function fileSettlementQueue(path: string): SettlementQueue & { drain(credits: CreditsClient, logger: AppLogger, metrics: AppMetrics, nowMilliseconds: number): Promise<number> } {
  return {
    description: `the file ${path}`,
    async enqueue(job) {
      appendFileSync(path, `${JSON.stringify(settlementJobSchema.parse(job))}\n`, { mode: 0o600 });
    },
    /** Applies every job in the file; those to retry later go back. Returns how many were applied or given up. */
    async drain(credits, logger, metrics, nowMilliseconds) {
      if (!existsSync(path)) return 0;
      // Taken aside first, so jobs appended meanwhile land in a fresh file and none is lost.
      const draining = `${path}.draining`;
      renameSync(path, draining);
      let done = 0;
      for (const line of readFileSync(draining, 'utf8').split('\n').filter((text) => text !== '')) {
        const parsed = settlementJobSchema.safeParse(safeJson(line));
        if (!parsed.success) {
          logger.error('settlement file: a line is not a settlement job; dropped', {});
          continue;
        }
        const outcome = await applySettlementJob(credits, parsed.data, nowMilliseconds, logger, metrics);
        if (outcome === 'retry_later') appendFileSync(path, `${line}\n`, { mode: 0o600 });
        else done += 1;
      }
      unlinkSync(draining);
      return done;
    },
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
