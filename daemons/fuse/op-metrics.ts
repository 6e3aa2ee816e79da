// Per-request metrics of the FUSE daemon: how many requests of each kind the kernel sent and how
// each ended (ok, or the errno the kernel got), and how long the daemon took to answer. Label
// children are cached, so the hot path (reads and writes that reach JS) pays a map lookup and
// two additions, not prom-client's label hashing.
import { constants } from 'node:os';
import { Counter, Histogram, type Registry } from 'prom-client';
import { opName } from './native-fuse.js';

const errnoName = new Map<number, string>(
  Object.entries(constants.errno).map(([name, value]) => [value, name]),
);

interface OpChildren {
  duration: Histogram.Internal<'op'>;
  results: Map<number, Counter.Internal>;
}

export class FuseOpMetrics {
  private readonly requests: Counter<'op' | 'result'>;
  private readonly duration: Histogram<'op'>;
  private readonly children = new Map<number, OpChildren>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'threefs_fuse_requests_total',
      help: 'FUSE requests answered in JS, by operation and result (ok or the errno returned)',
      labelNames: ['op', 'result'],
      registers,
    });
    this.duration = new Histogram({
      name: 'threefs_fuse_request_duration_seconds',
      help: 'Time from a FUSE request reaching JS to its answer, by operation',
      labelNames: ['op'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5, 30],
      registers,
    });
  }

  /** One request of kind `op` answered with `errno` (0: success) after `seconds`. */
  finished(op: number, errno: number, seconds: number): void {
    let children = this.children.get(op);
    if (children === undefined) {
      children = { duration: this.duration.labels(this.nameOf(op)), results: new Map() };
      this.children.set(op, children);
    }
    let counter = children.results.get(errno);
    if (counter === undefined) {
      const result = errno === 0 ? 'ok' : (errnoName.get(errno) ?? `errno ${errno}`);
      counter = this.requests.labels(this.nameOf(op), result);
      children.results.set(errno, counter);
    }
    counter.inc();
    children.duration.observe(seconds);
  }

  private nameOf(op: number): string {
    return opName.get(op) ?? `op ${op}`;
  }
}
