// Prometheus metrics for one side (client or server) of the RPC layer. Optional: without a registry
// every method is a no-op. Counts wait in plain numbers until a scrape (PendingCounts below); the
// latency histogram's label children are cached per service/method.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { StatusCode } from '../errors.js';

export type RpcSide = 'client' | 'server';
type Outcome = StatusCode | 'OK';

function shared<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

/**
 * Call, in-flight and byte counts gathered since the last scrape, for every RpcMetrics of one
 * registry. The hot path adds to plain numbers here and prom-client receives them when scraped
 * (each metric's collect hook): a prom-client inc or set hashes its labels on every call, and
 * five of those per call were ~3 µs of a ~60 µs metadata stat.
 */
interface PendingCounts {
  sides: Set<RpcSide>;
  inFlight: Record<RpcSide, number>;
  calls: Map<string, { labels: CallLabels; count: number }>;
  bytes: Record<RpcSide, { in: number; out: number }>;
}

interface CallLabels {
  side: RpcSide;
  service: string;
  method: string;
  code: Outcome;
}

const pendingByRegistry = new WeakMap<Registry, PendingCounts>();

function pendingOf(registry: Registry): PendingCounts {
  let pending = pendingByRegistry.get(registry);
  if (pending === undefined) {
    pending = {
      sides: new Set(),
      inFlight: { client: 0, server: 0 },
      calls: new Map(),
      bytes: { client: { in: 0, out: 0 }, server: { in: 0, out: 0 } },
    };
    pendingByRegistry.set(registry, pending);
  }
  return pending;
}

export class RpcMetrics {
  private readonly latency: Histogram<'side' | 'service' | 'method'>;
  private readonly protocolErrors: Counter<'side'>;
  private readonly pending: PendingCounts;
  private readonly bytes: { in: number; out: number };
  private readonly latencyChildren = new Map<
    string,
    Histogram.Internal<'side' | 'service' | 'method'>
  >();

  constructor(
    registry: Registry,
    private readonly side: RpcSide,
  ) {
    const registers = [registry];
    const pending = pendingOf(registry);
    pending.sides.add(side);
    this.pending = pending;
    this.bytes = pending.bytes[side];
    shared(
      registry,
      'threefs_rpc_calls_total',
      () =>
        new Counter({
          name: 'threefs_rpc_calls_total',
          help: 'RPC calls finished, by outcome code (OK or a ThreeFsError code)',
          labelNames: ['side', 'service', 'method', 'code'],
          registers,
          collect() {
            for (const entry of pending.calls.values()) {
              if (entry.count === 0) continue;
              this.inc({ ...entry.labels }, entry.count);
              entry.count = 0;
            }
          },
        }),
    );
    shared(
      registry,
      'threefs_rpc_in_flight',
      () =>
        new Gauge({
          name: 'threefs_rpc_in_flight',
          help: 'RPC calls in flight',
          labelNames: ['side'],
          registers,
          collect() {
            for (const s of pending.sides) this.set({ side: s }, pending.inFlight[s]);
          },
        }),
    );
    this.latency = shared(
      registry,
      'threefs_rpc_call_duration_seconds',
      () =>
        new Histogram({
          name: 'threefs_rpc_call_duration_seconds',
          help: 'RPC call latency',
          labelNames: ['side', 'service', 'method'],
          buckets: [
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5,
          ],
          registers,
        }),
    );
    shared(
      registry,
      'threefs_rpc_bytes_total',
      () =>
        new Counter({
          name: 'threefs_rpc_bytes_total',
          help: 'Bytes of RPC frames sent (out) and received (in)',
          labelNames: ['side', 'direction'],
          registers,
          collect() {
            for (const s of pending.sides) {
              const counts = pending.bytes[s];
              this.inc({ side: s, direction: 'in' }, counts.in);
              this.inc({ side: s, direction: 'out' }, counts.out);
              counts.in = 0;
              counts.out = 0;
            }
          },
        }),
    );
    this.protocolErrors = shared(
      registry,
      'threefs_rpc_protocol_errors_total',
      () =>
        new Counter({
          name: 'threefs_rpc_protocol_errors_total',
          help: 'Connections closed for breaking the wire protocol',
          labelNames: ['side'],
          registers,
        }),
    );
  }

  callStarted(): void {
    this.pending.inFlight[this.side]++;
  }

  callFinished(service: string, method: string, code: Outcome, seconds: number): void {
    this.pending.inFlight[this.side]--;
    const key = `${service}\0${method}`;
    const codeKey = `${this.side}\0${key}\0${code}`;
    const calls = this.pending.calls.get(codeKey);
    if (calls === undefined) {
      this.pending.calls.set(codeKey, {
        labels: { side: this.side, service, method, code },
        count: 1,
      });
    } else {
      calls.count++;
    }
    let histogram = this.latencyChildren.get(key);
    if (histogram === undefined) {
      histogram = this.latency.labels(this.side, service, method);
      this.latencyChildren.set(key, histogram);
    }
    histogram.observe(seconds);
  }

  received(bytes: number): void {
    this.bytes.in += bytes;
  }

  sent(bytes: number): void {
    this.bytes.out += bytes;
  }

  protocolError(): void {
    this.protocolErrors.labels(this.side).inc();
  }
}
