// Per-request metrics of the FUSE daemon: how many requests of each kind the kernel sent and how
// each ended (ok, or the errno the kernel got), and how long the daemon took to answer. As in the
// RPC layer (docs/rpc.md, "Metrics"), a request adds to plain numbers that reach prom-client at
// scrape time (common/deferred-counter.ts, common/latency-histogram.ts), each op's entries found
// by one map lookup on its number.
import { constants } from 'node:os';
import type { Registry } from 'prom-client';
import { type CountEntry, DeferredCounter } from '../common/deferred-counter.js';
import { LatencyHistogram, type LatencySeries } from '../common/latency-histogram.js';
import { opName } from './native-fuse.js';

const errnoName = new Map<number, string>(
  Object.entries(constants.errno).map(([name, value]) => [value, name]),
);

/** Upper bounds in seconds of the request duration histogram. */
export const FUSE_DURATION_BUCKETS: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5, 30,
];

interface OpEntry {
  duration: LatencySeries;
  results: Map<number, CountEntry>;
}

export class FuseOpMetrics {
  private readonly requests: DeferredCounter<'op' | 'result'>;
  private readonly duration: LatencyHistogram;
  private readonly ops = new Map<number, OpEntry>();

  constructor(registry: Registry) {
    this.requests = DeferredCounter.of<'op' | 'result'>(
      registry,
      'threefs_fuse_requests_total',
      'FUSE requests answered in JS, by operation and result (ok or the errno returned)',
      ['op', 'result'],
    );
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
    let count = entry.results.get(errno);
    if (count === undefined) {
      const result = errno === 0 ? 'ok' : (errnoName.get(errno) ?? `errno ${errno}`);
      count = this.requests.entry({ op: this.nameOf(op), result });
      entry.results.set(errno, count);
    }
    count.count++;
    entry.duration.observe(seconds);
  }

  private nameOf(op: number): string {
    return opName.get(op) ?? `op ${op}`;
  }
}
