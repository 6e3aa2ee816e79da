// Prometheus metrics for one side (client or server) of the RPC layer. Optional: without a registry
// every method is a no-op. The hot path adds to plain numbers that reach prom-client when /metrics
// is scraped: counts (deferred-counter.ts), latencies (latency-histogram.ts) and calls in flight
// (a number per side, shared by the registry's RpcMetrics). A call finds its method's entry
// through two map lookups by the strings it already has, building no key.
import { Counter, Gauge, type Registry } from 'prom-client';
import { type CountEntry, DeferredCounter } from '../deferred-counter.js';
import type { StatusCode } from '../errors.js';
import { LatencyHistogram, type LatencySeries, RPC_LATENCY_BUCKETS } from '../latency-histogram.js';
import { runningNativeTransport } from './native-transport.js';

export type RpcSide = 'client' | 'server';
type Outcome = StatusCode | 'OK';
type CallLabel = 'side' | 'service' | 'method' | 'code';

function shared<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

/** Calls in flight per side, for every RpcMetrics of one registry (the gauge sets them at scrape). */
interface InFlight {
  sides: Set<RpcSide>;
  counts: Record<RpcSide, number>;
}

const inFlightByRegistry = new WeakMap<Registry, InFlight>();

function inFlightOf(registry: Registry): InFlight {
  let inFlight = inFlightByRegistry.get(registry);
  if (inFlight === undefined) {
    inFlight = { sides: new Set(), counts: { client: 0, server: 0 } };
    inFlightByRegistry.set(registry, inFlight);
  }
  return inFlight;
}

/** What one side keeps per method: its latency series and its call counts by outcome. */
interface MethodEntry {
  latency: LatencySeries;
  outcomes: Map<Outcome, CountEntry>;
}

export class RpcMetrics {
  private readonly calls: DeferredCounter<CallLabel>;
  private readonly latency: LatencyHistogram;
  private readonly protocolErrors: Counter<'side'>;
  private readonly inFlight: InFlight;
  private readonly bytesIn: CountEntry;
  private readonly bytesOut: CountEntry;
  /** By service, then method. */
  private readonly methods = new Map<string, Map<string, MethodEntry>>();

  constructor(
    registry: Registry,
    private readonly side: RpcSide,
  ) {
    const registers = [registry];
    this.calls = DeferredCounter.of<CallLabel>(
      registry,
      'threefs_rpc_calls_total',
      'RPC calls finished, by outcome code (OK or a ThreeFsError code)',
      ['side', 'service', 'method', 'code'],
    );
    const inFlight = inFlightOf(registry);
    inFlight.sides.add(side);
    this.inFlight = inFlight;
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
            for (const s of inFlight.sides) this.set({ side: s }, inFlight.counts[s]);
          },
        }),
    );
    this.latency = LatencyHistogram.of(
      registry,
      'threefs_rpc_call_duration_seconds',
      'RPC call latency',
      RPC_LATENCY_BUCKETS,
    );
    const bytes = DeferredCounter.of<'side' | 'direction'>(
      registry,
      'threefs_rpc_bytes_total',
      'Bytes of RPC frames sent (out) and received (in)',
      ['side', 'direction'],
    );
    this.bytesIn = bytes.entry({ side, direction: 'in' });
    this.bytesOut = bytes.entry({ side, direction: 'out' });
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
    this.inFlight.counts[this.side]++;
  }

  callFinished(service: string, method: string, code: Outcome, seconds: number): void {
    this.inFlight.counts[this.side]--;
    const entry = this.entryOf(service, method);
    let calls = entry.outcomes.get(code);
    if (calls === undefined) {
      calls = this.calls.entry({ side: this.side, service, method, code });
      entry.outcomes.set(code, calls);
    }
    calls.count++;
    entry.latency.observe(seconds);
  }

  received(bytes: number): void {
    this.bytesIn.count += bytes;
  }

  sent(bytes: number): void {
    this.bytesOut.count += bytes;
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
