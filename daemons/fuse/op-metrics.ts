// Per-request metrics of the FUSE daemon: how many requests of each kind the kernel sent and how
// each ended (ok, or the errno the kernel got), and how long the daemon took to answer. As in the
// RPC layer (docs/rpc.md, "Metrics"), a request adds to plain numbers: counts wait until a scrape
// (the counter's collect hook) and durations go to plain buckets (common/latency-histogram.ts),
// each op's entry found by one map lookup on its number.
import { constants } from 'node:os';
import { Counter, type Registry } from 'prom-client';
import { LatencyHistogram, type LatencySeries } from '../common/latency-histogram.js';
import { opName } from './native-fuse.js';

const errnoName = new Map<number, string>(
  Object.entries(constants.errno).map(([name, value]) => [value, name]),
);

/** Upper bounds in seconds of the request duration histogram. */
export const FUSE_DURATION_BUCKETS: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5, 30,
];

interface ResultCount {
  labels: { op: string; result: string };
  count: number;
}

interface OpEntry {
  duration: LatencySeries;
  results: Map<number, ResultCount>;
}

export class FuseOpMetrics {
  private readonly duration: LatencyHistogram;
  private readonly ops = new Map<number, OpEntry>();
  /** Every result count, for the counter's collect hook. */
  private readonly counts: ResultCount[] = [];

  constructor(registry: Registry) {
    const counts = this.counts;
    new Counter({
      name: 'threefs_fuse_requests_total',
      help: 'FUSE requests answered in JS, by operation and result (ok or the errno returned)',
      labelNames: ['op', 'result'],
      registers: [registry],
      collect() {
        for (const c of counts) {
          if (c.count === 0) continue;
          this.inc({ ...c.labels }, c.count);
          c.count = 0;
        }
      },
    });
    this.duration = LatencyHistogram.of(
      registry,
      'threefs_fuse_request_duration_seconds',
      'Time from a FUSE request reaching JS to its answer, by operation',
      FUSE_DURATION_BUCKETS,
    );
  }

  /** One request of kind `op` answered with `errno` (0: success) after `seconds`. */
  finished(op: number, errno: number, seconds: number): void {
    let entry = this.ops.get(op);
    if (entry === undefined) {
      entry = { duration: this.duration.seriesOf({ op: this.nameOf(op) }), results: new Map() };
      this.ops.set(op, entry);
    }
    const count = entry.results.get(errno);
    if (count === undefined) {
      const result = errno === 0 ? 'ok' : (errnoName.get(errno) ?? `errno ${errno}`);
      const created = { labels: { op: this.nameOf(op), result }, count: 1 };
      entry.results.set(errno, created);
      this.counts.push(created);
    } else {
      count.count++;
    }
    entry.duration.observe(seconds);
  }

  private nameOf(op: number): string {
    return opName.get(op) ?? `op ${op}`;
  }
}
