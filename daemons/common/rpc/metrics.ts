// Prometheus metrics for one side (client or server) of the RPC layer. Optional: without a registry
// every method is a no-op. Label children are cached per service/method/code because prom-client's
// label lookup would otherwise hash strings on every call of the hot path.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { StatusCode } from '../errors.js';

export type RpcSide = 'client' | 'server';
type Outcome = StatusCode | 'OK';

function shared<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

export class RpcMetrics {
  private readonly calls: Counter<'side' | 'service' | 'method' | 'code'>;
  private readonly inFlight: Gauge<'side'>;
  private readonly latency: Histogram<'side' | 'service' | 'method'>;
  private readonly bytes: Counter<'side' | 'direction'>;
  private readonly protocolErrors: Counter<'side'>;
  private readonly callChildren = new Map<string, Counter.Internal>();
  private readonly latencyChildren = new Map<
    string,
    Histogram.Internal<'side' | 'service' | 'method'>
  >();
  private readonly bytesIn: Counter.Internal;
  private readonly bytesOut: Counter.Internal;
  private readonly inFlightChild: Gauge.Internal<'side'>;

  constructor(
    registry: Registry,
    private readonly side: RpcSide,
  ) {
    const registers = [registry];
    this.calls = shared(
      registry,
      'threefs_rpc_calls_total',
      () =>
        new Counter({
          name: 'threefs_rpc_calls_total',
          help: 'RPC calls finished, by outcome code (OK or a ThreeFsError code)',
          labelNames: ['side', 'service', 'method', 'code'],
          registers,
        }),
    );
    this.inFlight = shared(
      registry,
      'threefs_rpc_in_flight',
      () =>
        new Gauge({
          name: 'threefs_rpc_in_flight',
          help: 'RPC calls in flight',
          labelNames: ['side'],
          registers,
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
    this.bytes = shared(
      registry,
      'threefs_rpc_bytes_total',
      () =>
        new Counter({
          name: 'threefs_rpc_bytes_total',
          help: 'Bytes of RPC frames sent (out) and received (in)',
          labelNames: ['side', 'direction'],
          registers,
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
    this.bytesIn = this.bytes.labels(side, 'in');
    this.bytesOut = this.bytes.labels(side, 'out');
    this.inFlightChild = this.inFlight.labels(side);
  }

  callStarted(): void {
    this.inFlightChild.inc();
  }

  callFinished(service: string, method: string, code: Outcome, seconds: number): void {
    this.inFlightChild.dec();
    const key = `${service}\0${method}`;
    const codeKey = `${key}\0${code}`;
    let counter = this.callChildren.get(codeKey);
    if (counter === undefined) {
      counter = this.calls.labels(this.side, service, method, code);
      this.callChildren.set(codeKey, counter);
    }
    counter.inc();
    let histogram = this.latencyChildren.get(key);
    if (histogram === undefined) {
      histogram = this.latency.labels(this.side, service, method);
      this.latencyChildren.set(key, histogram);
    }
    histogram.observe(seconds);
  }

  received(bytes: number): void {
    this.bytesIn.inc(bytes);
  }

  sent(bytes: number): void {
    this.bytesOut.inc(bytes);
  }

  protocolError(): void {
    this.protocolErrors.labels(this.side).inc();
  }
}
