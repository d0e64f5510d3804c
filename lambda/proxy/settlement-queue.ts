import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import * as z from '../../runtime/zod-mini';
import { AwsCallError, awsJsonClient, type AwsCredentials } from '../../runtime/aws-json-client';
import { settlementEnqueueTimeoutMilliseconds } from './config';
import type { AppLogger } from '../../runtime/logger';
import { audit } from '../../runtime/logger';
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
  hold_id: z.string().check(z.regex(/^[1-9][0-9]{0,38}$/)),
  user_id: z.string().check(z.minLength(1), z.maxLength(128)),
  action: z.enum(['settle', 'release']),
  amount_micros: z.string().check(z.regex(/^(0|[1-9][0-9]{0,38})$/)),
  request_id: z.string().check(z.maxLength(128)),
  /** When the hold expires: after that nothing can be charged. */
  expires_at_milliseconds: z.number().check(z.int(), z.positive()),
});
export type SettlementJob = z.infer<typeof settlementJobSchema>;

export interface SettlementQueue {
  readonly description: string;
  enqueue(job: SettlementJob): Promise<void>;
}

export type SettlementOutcome = 'settled' | 'retry_later' | 'unsettled';

/** Applies one job; idempotent (settle and release are), so a job delivered twice is harmless. */
export async function applySettlementJob(
  credits: CreditsClient,
  job: SettlementJob,
  nowMilliseconds: number,
  logger: AppLogger,
  metrics: AppMetrics,
): Promise<SettlementOutcome> {
  const fields = { request_id: job.request_id, hold_id: job.hold_id, action: job.action };
  if (nowMilliseconds >= job.expires_at_milliseconds) {
    // An expired hold has released itself: a release job is done, a settle job lost its revenue.
    if (job.action === 'release') return releasedByExpiry(logger, fields);
    return unsettled(logger, metrics, fields, 'hold_expired');
  }
  try {
    const scope = { userId: job.user_id, requestId: job.request_id };
    if (job.action === 'settle')
      await credits.settle(job.hold_id, BigInt(job.amount_micros), scope);
    else await credits.release(job.hold_id, scope);
  } catch (error) {
    if (error instanceof CreditsUnavailableError) return 'retry_later';
    // The credits service refused it (expired, already resolved otherwise): no retry changes that.
    if (job.action === 'release')
      return releasedByExpiry(logger, { ...fields, error_message: (error as Error).message });
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
export function unsettled(
  logger: AppLogger,
  metrics: AppMetrics,
  fields: Record<string, unknown>,
  reason: string,
): 'unsettled' {
  metrics.record('UnsettledHolds', 1, {});
  audit(logger, 'unsettled_hold', { ...fields, reason });
  return 'unsettled';
}

interface SendMessageOutput {
  readonly MessageId?: string;
  readonly MD5OfMessageBody?: string;
}

/**
 * SendMessage over SQS's JSON protocol (x-amz-json-1.0), SigV4-signed with the execution role's
 * credentials, to the queue URL's own host (as the SDK does). The MD5 SQS computes of the body it
 * stored is checked, as the SDK checks it: a job altered in transit must not be settled.
 */
export function sqsSettlementQueue(options: {
  region: string;
  queueUrl: string;
  credentials?: () => AwsCredentials;
  random?: () => number;
}): SettlementQueue {
  const client = awsJsonClient({
    signingName: 'sqs',
    region: options.region,
    endpoint: options.queueUrl,
    targetPrefix: 'AmazonSQS',
    jsonVersion: '1.0',
    credentials: options.credentials,
    random: options.random,
  });
  return {
    description: `SQS queue ${options.queueUrl}`,
    async enqueue(job) {
      // Bounded, so the hand-off fits the function's timeout (proxyRequestMillisecondsMax).
      const body = JSON.stringify(settlementJobSchema.parse(job));
      const answer = await client.call<SendMessageOutput>(
        'SendMessage',
        { QueueUrl: options.queueUrl, MessageBody: body },
        { timeoutMilliseconds: settlementEnqueueTimeoutMilliseconds },
      );
      if (answer.MD5OfMessageBody !== createHash('md5').update(body, 'utf8').digest('hex')) {
        throw new AwsCallError(
          'InvalidChecksumError',
          `AmazonSQS.SendMessage: the MD5 of the stored body does not match the job sent`,
          200,
        );
      }
    },
  };
}

/** The local equivalent: one JSON job per line, appended; drained by the proxy server every few seconds. */
export function fileSettlementQueue(path: string): SettlementQueue & {
  drain(
    credits: CreditsClient,
    logger: AppLogger,
    metrics: AppMetrics,
    nowMilliseconds: number,
  ): Promise<number>;
} {
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
      for (const line of readFileSync(draining, 'utf8')
        .split('\n')
        .filter((text) => text !== '')) {
        const parsed = settlementJobSchema.safeParse(safeJson(line));
        if (!parsed.success) {
          logger.error('settlement file: a line is not a settlement job; dropped', {});
          continue;
        }
        const outcome = await applySettlementJob(
          credits,
          parsed.data,
          nowMilliseconds,
          logger,
          metrics,
        );
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
