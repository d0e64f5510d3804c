import { createHash } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';

/**
 * Structured JSON logs (Powertools) behind a small interface, so services take a logger as a
 * dependency and tests can read what was logged. Personal data never reaches a log line: user ids
 * are pseudonymized, keys and tokens are never passed in (LOG-04).
 */

export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
export type LogFields = Record<string, unknown>;

export interface AppLogger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export function createLogger(serviceName: string, logLevel: LogLevel): AppLogger {
  const logger = new Logger({ serviceName, logLevel });
  return {
    debug: (message, fields = {}) => logger.debug(message, fields),
    info: (message, fields = {}) => logger.info(message, fields),
    warn: (message, fields = {}) => logger.warn(message, fields),
    error: (message, fields = {}) => logger.error(message, fields),
  };
}

/** A stable pseudonym of a user id for logs: the first 16 hex digits of its SHA-256. */
export function pseudonymize(userId: string): string {
  return createHash('sha256').update(`user:${userId}`, 'utf8').digest('hex').slice(0, 16);
}

/** Security and money events are audit records: one shape, one message, easy to query (LOG-05). */
export function audit(logger: AppLogger, event: string, fields: LogFields): void {
  logger.info('audit', { audit_event: event, ...fields });
}
