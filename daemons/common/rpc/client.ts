// RpcClient: typed calls to one server address. Connects lazily, handshakes, and reconnects with
// bounded, jittered backoff after a failure. At most `maxInFlight` calls are on the wire; up to
// `maxQueued` more wait their turn, and beyond that a call fails at once with RESOURCE_EXHAUSTED.
// Every call has a deadline (DEADLINE_EXCEEDED, and a cancel frame so the server aborts the
// handler) and may be cancelled with an AbortSignal (CANCELLED).
import type { Registry } from 'prom-client';
import type { z } from 'zod';
import { ThreeFsError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { formatAddress, parseAddress, type RpcAddress } from './address.js';
import { type BackoffPolicy, backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
import { decodeBody, encodeBody } from './body-codec.js';
import { type AwaitingReply, ClientConnection } from './client-connection.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_WRITE_HIGH_WATER_MARK,
  type Frame,
  FrameKind,
} from './frame.js';
import { defaultTransport, type RpcTransportKind } from './frame-socket.js';
import { RpcMetrics } from './metrics.js';
import type { Method, Reply } from './service.js';

export interface RpcClientOptions {
  /** "host:port", or "unix:/path" for a server on this host. */
  address: string;
  clusterId: string;
  token?: string | undefined;
  /** Names this client in the server's logs. */
  name?: string;
  maxFrameBytes?: number;
  maxInFlight?: number;
  maxQueued?: number;
  connectTimeoutMs?: number;
  /** Bytes of requests buffered in the socket before further calls wait for drain. */
  writeHighWaterMark?: number;
  /** Deadline for calls that set none. */
  defaultTimeoutMs?: number;
  backoff?: BackoffPolicy;
  /** The socket layer: 'native' (default: frames read straight into their Buffers) or 'node' (net.Socket). */
  transport?: RpcTransportKind;
  log?: Logger;
  registry?: Registry;
}

export interface CallOptions {
  payload?: Buffer | undefined;
  /** The payload's CRC32C, when the caller has it: spares checksumming it again for the frame. */
  payloadCrc?: number | undefined;
  /** Milliseconds until DEADLINE_EXCEEDED; 0 means no deadline. */
  timeoutMs?: number;
  signal?: AbortSignal | undefined;
}

export const CLIENT_DEFAULTS = {
  maxInFlight: 256,
  maxQueued: 4096,
  connectTimeoutMs: 5000,
  defaultTimeoutMs: 30_000,
} as const;

const MAX_TIMEOUT_MS = 0xffffffff;

type CallState = 'queued' | 'waiting' | 'sent' | 'done';

/** One call from start to finish; settles its promise exactly once. */
class OutgoingCall implements AwaitingReply {
  state: CallState = 'queued';
  connection: ClientConnection | undefined;
  timer: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;
  readonly startedAt = performance.now();

  constructor(
    readonly client: RpcClient,
    readonly requestId: number,
    readonly method: Method,
    readonly body: Buffer,
    readonly payload: Buffer | undefined,
    readonly payloadCrc: number | undefined,
    readonly timeoutMs: number,
    readonly signal: AbortSignal | undefined,
    readonly resolve: (reply: Reply<unknown>) => void,
    readonly reject: (err: ThreeFsError) => void,
  ) {}

  onReply(frame: Frame): void {
    let body: unknown;
    try {
      body = decodeBody(
        this.method.response,
        frame.body,
        `response of ${this.method.serviceName}.${this.method.name}`,
      );
    } catch (err) {
      const error = err as ThreeFsError;
      this.client.settle(this, new ThreeFsError('INTERNAL', error.message, error.details));
      return;
    }
    this.client.settle(this, undefined, { body, payload: frame.payload });
  }

  onError(err: ThreeFsError): void {
    this.client.settle(this, err);
  }
}

export class RpcClient {
  readonly address: string;
  private readonly target: RpcAddress;
  private readonly log: Logger;
  private readonly metrics: RpcMetrics | undefined;
  private readonly maxInFlight: number;
  private readonly maxQueued: number;
  private readonly defaultTimeoutMs: number;
  private readonly backoff: BackoffPolicy;
  private connection: ClientConnection | undefined;
  private connecting = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private lastFailureAt = 0;
  private nextRequestId = 1;
  private inFlight = 0;
  /** Admitted calls waiting for a connection or for the write buffer to drain, in order. */
  private readonly waiting: OutgoingCall[] = [];
  /** Calls over the in-flight limit, in arrival order. */
  private readonly queue: OutgoingCall[] = [];
  private flushing = false;
  private closed = false;

  constructor(private readonly options: RpcClientOptions) {
    this.target = parseAddress(options.address);
    this.address = formatAddress(this.target);
    this.log = (options.log ?? createLogger({ role: 'rpc' })).child({
      component: 'rpc-client',
      server: this.address,
    });
    this.metrics = options.registry ? new RpcMetrics(options.registry, 'client') : undefined;
    this.maxInFlight = options.maxInFlight ?? CLIENT_DEFAULTS.maxInFlight;
    this.maxQueued = options.maxQueued ?? CLIENT_DEFAULTS.maxQueued;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? CLIENT_DEFAULTS.defaultTimeoutMs;
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    if (!(this.maxInFlight >= 1) || !(this.maxQueued >= 0)) {
      throw new ThreeFsError('INVALID_ARGUMENT', 'maxInFlight must be >= 1 and maxQueued >= 0');
    }
    backoffDelay(this.backoff, 1); // validates the policy now rather than at the first failure
  }

  /** Calls on the wire right now (never above maxInFlight). */
  get inFlightCalls(): number {
    return this.inFlight;
  }

  get queuedCalls(): number {
    return this.queue.length;
  }

  get isConnected(): boolean {
    return this.connection !== undefined && !this.connection.isClosed;
  }

  /** Calls `method` with `request`; resolves to the validated response body and any payload. */
  call<Req extends z.ZodType, Res extends z.ZodType>(
    method: Method<Req, Res>,
    request: z.input<Req>,
    options: CallOptions = {},
  ): Promise<Reply<z.output<Res>>> {
    if (this.closed)
      return Promise.reject(
        new ThreeFsError('UNAVAILABLE', `client for ${this.address} is closed`),
      );
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_TIMEOUT_MS) {
      return Promise.reject(
        new ThreeFsError(
          'INVALID_ARGUMENT',
          `timeoutMs must be an integer in 0..${MAX_TIMEOUT_MS}`,
        ),
      );
    }
    if (options.signal?.aborted)
      return Promise.reject(new ThreeFsError('CANCELLED', 'call cancelled before it started'));
    let body: Buffer;
    try {
      body = encodeBody(request);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const requestId = this.nextRequestId;
    this.nextRequestId = requestId >= Number.MAX_SAFE_INTEGER ? 1 : requestId + 1;
    return new Promise<Reply<z.output<Res>>>((resolve, reject) => {
      const call = new OutgoingCall(
        this,
        requestId,
        method,
        body,
        options.payload,
        options.payloadCrc,
        timeoutMs,
        options.signal,
        resolve as (reply: Reply<unknown>) => void,
        reject,
      );
      this.metrics?.callStarted();
      if (timeoutMs > 0) {
        call.timer = setTimeout(
          () =>
            this.settle(
              call,
              new ThreeFsError(
                'DEADLINE_EXCEEDED',
                `${method.serviceName}.${method.name} to ${this.address} took over ${timeoutMs} ms`,
              ),
            ),
          timeoutMs,
        );
      }
      if (options.signal !== undefined) {
        const signal = options.signal;
        call.onAbort = () =>
          this.settle(
            call,
            new ThreeFsError(
              'CANCELLED',
              `${method.serviceName}.${method.name} cancelled by the caller`,
            ),
          );
        signal.addEventListener('abort', call.onAbort, { once: true });
      }
      this.admit(call);
    });
  }

  /** Fails every waiting call with UNAVAILABLE and closes the connection. */
  close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    const gone = new ThreeFsError('UNAVAILABLE', `client for ${this.address} is closed`);
    for (const call of [...this.queue, ...this.waiting]) this.settle(call, gone);
    const connection = this.connection;
    this.connection = undefined;
    if (connection === undefined) return Promise.resolve();
    return connection.close();
  }

  /** Finishes a call exactly once, wherever it is: queue, waiting for a connection, or on the wire. */
  settle(call: OutgoingCall, err: ThreeFsError | undefined, reply?: Reply<unknown>): void {
    const state = call.state;
    if (state === 'done') return;
    call.state = 'done';
    clearTimeout(call.timer);
    if (call.onAbort !== undefined) call.signal?.removeEventListener('abort', call.onAbort);
    if (state === 'queued') {
      const index = this.queue.indexOf(call);
      if (index >= 0) this.queue.splice(index, 1);
    } else {
      if (state === 'waiting') {
        const index = this.waiting.indexOf(call);
        if (index >= 0) this.waiting.splice(index, 1);
      } else if (err !== undefined) {
        // Gave up while the server may still be working on it: tell the server to stop.
        call.connection?.cancel(call.requestId);
      }
      this.release();
    }
    this.metrics?.callFinished(
      call.method.serviceName,
      call.method.name,
      err === undefined ? 'OK' : err.code,
      (performance.now() - call.startedAt) / 1000,
    );
    if (err !== undefined) call.reject(err);
    else if (reply !== undefined) call.resolve(reply);
    else throw new ThreeFsError('INTERNAL', 'call settled with neither reply nor error');
  }

  private admit(call: OutgoingCall): void {
    if (this.inFlight < this.maxInFlight) {
      this.inFlight++;
      this.dispatch(call);
      return;
    }
    if (this.queue.length >= this.maxQueued) {
      this.settle(
        call,
        new ThreeFsError(
          'RESOURCE_EXHAUSTED',
          `${this.maxInFlight} calls in flight and ${this.queue.length} queued to ${this.address}`,
        ),
      );
      return;
    }
    this.queue.push(call);
  }

  private release(): void {
    this.inFlight--;
    if (this.inFlight < 0) throw new ThreeFsError('INTERNAL', 'in-flight call count went negative');
    const next = this.queue.shift();
    if (next !== undefined) {
      this.inFlight++;
      this.dispatch(next);
    }
  }

  private dispatch(call: OutgoingCall): void {
    const connection = this.connection;
    if (
      connection !== undefined &&
      !connection.isClosed &&
      !connection.needsDrain &&
      this.waiting.length === 0
    ) {
      this.transmit(connection, call);
      return;
    }
    call.state = 'waiting';
    this.waiting.push(call);
    if (connection === undefined || connection.isClosed) this.ensureConnection();
    else this.flushWhenDrained(connection);
  }

  private transmit(connection: ClientConnection, call: OutgoingCall): void {
    call.state = 'sent';
    call.connection = connection;
    connection.send(
      call,
      {
        kind: FrameKind.Request,
        serviceId: call.method.serviceId,
        methodId: call.method.id,
        requestId: call.requestId,
        timeoutMs: call.timeoutMs,
        payloadCrc: call.payloadCrc,
      },
      call.body,
      call.payload,
    );
  }

  /** Sends waiting calls in order until the write buffer fills, then resumes on drain. */
  private flushWaiting(connection: ClientConnection): void {
    while (this.waiting.length > 0 && !connection.isClosed) {
      if (connection.needsDrain) {
        this.flushWhenDrained(connection);
        return;
      }
      const call = this.waiting.shift() as OutgoingCall;
      this.transmit(connection, call);
    }
  }

  private flushWhenDrained(connection: ClientConnection): void {
    if (this.flushing) return;
    this.flushing = true;
    void connection.waitDrain().then(() => {
      this.flushing = false;
      if (connection.isClosed) {
        if (this.waiting.length > 0) this.ensureConnection();
        return;
      }
      this.flushWaiting(connection);
    });
  }

  private ensureConnection(): void {
    if (this.connecting || this.closed) return;
    this.connecting = true;
    const delay = Math.max(
      0,
      this.lastFailureAt + backoffDelay(this.backoff, this.failures) - Date.now(),
    );
    this.reconnectTimer = setTimeout(() => this.connectNow(), delay);
  }

  private connectNow(): void {
    ClientConnection.open({
      address: this.target,
      peer: this.address,
      clusterId: this.options.clusterId,
      token: this.options.token,
      clientName: this.options.name ?? '',
      maxFrameBytes: this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      writeHighWaterMark: this.options.writeHighWaterMark ?? DEFAULT_WRITE_HIGH_WATER_MARK,
      connectTimeoutMs: this.options.connectTimeoutMs ?? CLIENT_DEFAULTS.connectTimeoutMs,
      transport: this.options.transport ?? defaultTransport(),
      log: this.log,
      metrics: this.metrics,
      onClose: (closed) => {
        if (this.connection === closed) this.connection = undefined;
      },
    }).then(
      (connection) => {
        this.connecting = false;
        this.failures = 0;
        if (this.closed) {
          void connection.close();
          return;
        }
        this.connection = connection;
        this.flushWaiting(connection);
      },
      (err: ThreeFsError) => {
        this.connecting = false;
        this.failures++;
        this.lastFailureAt = Date.now();
        this.log.warn(
          { code: err.code, failures: this.failures },
          `cannot connect: ${err.message}`,
        );
        // Calls waiting for this attempt fail now (UNAVAILABLE is retryable); the next call to
        // arrive starts another attempt once the backoff delay has passed.
        for (const call of [...this.waiting]) this.settle(call, err);
      },
    );
  }
}
