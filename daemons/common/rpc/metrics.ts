// Prometheus metrics for one side (client or server) of the RPC layer. Optional: without a registry
// every method is a no-op. Counts wait in plain numbers until a scrape (PendingCounts below), and
// latencies go to plain buckets (latency-histogram.ts); a call finds its method's entry through two
// map lookups by the strings it already has, building no key.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { StatusCode } from '../errors.js';
import { LatencyHistogram, type LatencySeries, RPC_LATENCY_BUCKETS } from '../latency-histogram.js';
import { runningNativeTransport } from './native-transport.js';

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
  calls: CallCount[];
  bytes: Record<RpcSide, { in: number; out: number }>;
}

interface CallCount {
  labels: CallLabels;
  count: number;
}

/** What one side keeps per method: its latency series and its call counts by outcome. */
interface MethodEntry {
  latency: LatencySeries;
  outcomes: Map<Outcome, CallCount>;
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
      calls: [],
      bytes: { client: { in: 0, out: 0 }, server: { in: 0, out: 0 } },
    };
    pendingByRegistry.set(registry, pending);
  }
  return pending;
}

export class RpcMetrics {
  private readonly latency: LatencyHistogram;
  private readonly protocolErrors: Counter<'side'>;
  private readonly pending: PendingCounts;
  private readonly bytes: { in: number; out: number };
  /** By service, then method. */
  private readonly methods = new Map<string, Map<string, MethodEntry>>();

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
            for (const entry of pending.calls) {
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
    this.latency = LatencyHistogram.of(
      registry,
      'threefs_rpc_call_duration_seconds',
      'RPC call latency',
      RPC_LATENCY_BUCKETS,
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
    shared(
      registry,
      'threefs_rpc_payload_pool_bytes',
      () =>
        new Gauge({
          name: 'threefs_rpc_payload_pool_bytes',
          help:
            'Recycled payload memory of the native transport: its blocks (total) and those a ' +
            'payload still holds (in_use); at the cap (THREEFS_RPC_PAYLOAD_POOL_MB) new ' +
            'payloads are one-off allocations',
          labelNames: ['state'],
          registers,
          collect() {
            const pool = runningNativeTransport()?.payloadPool;
            this.set({ state: 'total' }, pool?.totalBytes ?? 0);
            this.set({ state: 'in_use' }, pool?.inUseBytes ?? 0);
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
    const entry = this.entryOf(service, method);
    const calls = entry.outcomes.get(code);
    if (calls === undefined) {
      const created = { labels: { side: this.side, service, method, code }, count: 1 };
      entry.outcomes.set(code, created);
      this.pending.calls.push(created);
    } else {
      calls.count++;
    }
    entry.latency.observe(seconds);
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

  private entryOf(service: string, method: string): MethodEntry {
    let byMethod = this.methods.get(service);
    if (byMethod === undefined) {
      byMethod = new Map();
      this.methods.set(service, byMethod);
    }
    let entry = byMethod.get(method);
    if (entry === undefined) {
      entry = {
        latency: this.latency.seriesOf({ side: this.side, service, method }),
        outcomes: new Map(),
      };
      byMethod.set(method, entry);
    }
    return entry;
  }
}
