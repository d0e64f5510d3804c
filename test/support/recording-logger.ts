import type { AppLogger, LogFields } from '../../lambda/shared/logger';

export interface LogRecord {
  readonly level: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  readonly message: string;
  readonly fields: LogFields;
}

/** An AppLogger that keeps what it is told, so tests can read the log lines a request produced. */
export class RecordingLogger implements AppLogger {
  readonly records: LogRecord[] = [];

  debug(message: string, fields: LogFields = {}): void {
    this.records.push({ level: 'DEBUG', message, fields });
  }
  info(message: string, fields: LogFields = {}): void {
    this.records.push({ level: 'INFO', message, fields });
  }
  warn(message: string, fields: LogFields = {}): void {
    this.records.push({ level: 'WARN', message, fields });
  }
  error(message: string, fields: LogFields = {}): void {
    this.records.push({ level: 'ERROR', message, fields });
  }

  auditEvents(event?: string): LogFields[] {
    return this.records
      .filter((record) => record.message === 'audit' && (event === undefined || record.fields.audit_event === event))
      .map((record) => record.fields);
  }

  /** Everything logged, as one string: for "never appears in a log" assertions. */
  text(): string {
    return this.lines().join('\n');
  }

  /** Every record as one JSON line, as it would reach CloudWatch. */
  lines(): string[] {
    return this.records.map((record) =>
      JSON.stringify({ level: record.level, message: record.message, ...record.fields }, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value)),
    );
  }
}
