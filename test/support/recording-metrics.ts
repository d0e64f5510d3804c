import type { AppMetrics, MetricDimensions, MetricName } from '../../lambda/shared/metrics';

export interface MetricRecord {
  readonly name: MetricName;
  readonly value: number;
  readonly dimensions: Readonly<Record<string, string>>;
}

/** An AppMetrics that keeps what it is told, so tests can read the metrics a request produced. */
export class RecordingMetrics implements AppMetrics {
  readonly records: MetricRecord[] = [];
  flushes = 0;

  record<N extends MetricName>(name: N, value: number, dimensions: MetricDimensions<N>): void {
    this.records.push({ name, value, dimensions });
  }

  flush(): void {
    this.flushes += 1;
  }

  /** The records of one metric whose dimensions include `dimensions`. */
  find(name: MetricName, dimensions: Record<string, string> = {}): MetricRecord[] {
    return this.records.filter(
      (record) =>
        record.name === name &&
        Object.entries(dimensions).every(([key, value]) => record.dimensions[key] === value),
    );
  }

  /** The sum of one metric's values over the records that match. */
  total(name: MetricName, dimensions: Record<string, string> = {}): number {
    return this.find(name, dimensions).reduce((sum, record) => sum + record.value, 0);
  }
}
