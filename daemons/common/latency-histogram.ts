// A latency histogram observed with plain array increments (the RPC layer's and the FUSE
// daemon's). prom-client's Histogram validates and hashes its labels and builds a closure on
// every observe, ~0.8 µs a call in a tight loop; a ~60 µs metadata stat pays that on the server
// and again on the client, both on the same two cores. Here each series is found once by its
// caller, and an observation is a bucket search and three additions. The registry reads the
// series when scraped, through the part of prom-client's metric contract it uses: name, help,
// type, aggregator, getForPromString(), get() and reset(). It registers any such object; its
// type union only lists its own classes, hence the cast in of().
import type { Metric, Registry } from 'prom-client';
import { ThreeFsError } from './errors.js';

/** RPC calls' upper bounds in seconds, as when the histogram was a prom-client Histogram. */
export const RPC_LATENCY_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5,
];

/** One label set's observations. */
export class LatencySeries {
  /** Per bucket, then +Inf: observations that fell there (not cumulative). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly buckets: readonly number[],
  ) {
    this.counts = new Float64Array(buckets.length + 1);
  }

  observe(seconds: number): void {
    const buckets = this.buckets;
    let i = 0;
    while (i < buckets.length && seconds > buckets[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/**
 * One exported line. As prom-client's Histogram exports it: `le` (for buckets) in `labels`, the
 * series' labels in `sharedLabels`, so the text has the same label order, le first.
 */
interface ExportedValue {
  value: number;
  labels: Record<string, string | number>;
  sharedLabels: Readonly<Record<string, string>>;
  metricName: string;
}

interface Exported<V> {
  name: string;
  help: string;
  type: string;
  aggregator: string;
  values: V[];
}

export class LatencyHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, LatencySeries>();

  constructor(
    readonly name: string,
    readonly help: string,
    /** Upper bounds in seconds, ascending. */
    readonly buckets: readonly number[],
  ) {
    if (!buckets.every((b, i) => Number.isFinite(b) && (i === 0 || b > buckets[i - 1]!)))
      throw new ThreeFsError('INVALID_ARGUMENT', `histogram ${name}: buckets must ascend`);
  }

  /** The histogram `name` of `registry`, registered on first use. */
  static of(
    registry: Registry,
    name: string,
    help: string,
    buckets: readonly number[],
  ): LatencyHistogram {
    const existing = registry.getSingleMetric(name) as unknown;
    if (existing instanceof LatencyHistogram) return existing;
    const created = new LatencyHistogram(name, help, buckets);
    registry.registerMetric(created as unknown as Metric);
    return created;
  }

  /** The series of `labels` (keep it: finding it is the slow part). */
  seriesOf(labels: Readonly<Record<string, string>>): LatencySeries {
    const key = JSON.stringify(labels);
    let series = this.series.get(key);
    if (series === undefined) {
      series = new LatencySeries({ ...labels }, this.buckets);
      this.series.set(key, series);
    }
    return series;
  }

  /** For the text format (the registry prefers this to get()). */
  getForPromString(): Promise<Exported<ExportedValue>> {
    const values: ExportedValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      const sharedLabels = s.labels;
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i]!;
        values.push({ value: cumulative, labels: { le }, sharedLabels, metricName: bucket });
      });
      values.push({ value: s.count, labels: { le: '+Inf' }, sharedLabels, metricName: bucket });
      values.push({ value: s.sum, labels: {}, sharedLabels, metricName: `${this.name}_sum` });
      values.push({ value: s.count, labels: {}, sharedLabels, metricName: `${this.name}_count` });
    }
    const { name, help, type, aggregator } = this;
    return Promise.resolve({ name, help, type, aggregator, values });
  }

  /** For getMetricsAsJSON: every line's labels in one object. */
  async get(): Promise<Exported<Omit<ExportedValue, 'sharedLabels'>>> {
    const data = await this.getForPromString();
    return {
      ...data,
      values: data.values.map(({ sharedLabels, labels, ...rest }) => ({
        ...rest,
        labels: { ...labels, ...sharedLabels },
      })),
    };
  }

  reset(): void {
    for (const s of this.series.values()) s.reset();
  }
}
