import type { AppLogger, LogFields } from '../../runtime/logger';

export interface LogRecord {
  readonly level: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  readonly message: string;
  readonly fields: LogFields;
}

/** An AppLogger that keeps what it is told, so tests can read the log lines a request produced. */
export class RecordingLogger implements AppLogger {
  readonly records: LogRecord[] = [];
  private readonly waiters: {
    matches: (record: LogRecord) => boolean;
    resolve: (fields: LogFields) => void;
  }[] = [];

  private push(record: LogRecord): void {
    this.records.push(record);
    for (const waiter of [...this.waiters]) {
      if (!waiter.matches(record)) continue;
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.resolve(record.fields);
    }
  }

  /** Settles with the fields of the first audit record of this event (of this request, if given), already logged or when it is. */
  nextAudit(event: string, requestId?: string): Promise<LogFields> {
    const matches = (record: LogRecord) =>
      record.message === 'audit' &&
      record.fields.audit_event === event &&
      (requestId === undefined || record.fields.request_id === requestId);
    const logged = this.records.find(matches);
    if (logged) return Promise.resolve(logged.fields);
    return new Promise((resolve) => this.waiters.push({ matches, resolve }));
  }

  debug(message: string, fields: LogFields = {}): void {
    this.push({ level: 'DEBUG', message, fields });
  }
  info(message: string, fields: LogFields = {}): void {
    this.push({ level: 'INFO', message, fields });
  }
  warn(message: string, fields: LogFields = {}): void {
    this.push({ level: 'WARN', message, fields });
  }
  error(message: string, fields: LogFields = {}): void {
    this.push({ level: 'ERROR', message, fields });
  }

  auditEvents(event?: string): LogFields[] {
    return this.records
      .filter(
        (record) =>
          record.message === 'audit' &&
          (event === undefined || record.fields.audit_event === event),
      )
      .map((record) => record.fields);
  }

  /** Everything logged, as one string: for "never appears in a log" assertions. */
  text(): string {
    return this.lines().join('\n');
  }

  /** Every record as one JSON line, as it would reach CloudWatch. */
  lines(): string[] {
    return this.records.map((record) =>
      JSON.stringify(
        { level: record.level, message: record.message, ...record.fields },
        (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value),
      ),
    );
  }
}
