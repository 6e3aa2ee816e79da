// FrameSocket over the native transport. The native side has already split the stream into frames
// and checked both CRCs; this class re-reads each 40-byte header with parseHeader (the one source
// of the protocol rules and their error messages), keeps frames that arrive while reading is
// paused, and tracks bytes queued for writing so backpressure behaves like a net.Socket's.
import { ThreeFsError } from '../errors.js';
import { dataCrcError, encodeFrame, type Frame, HEADER_BYTES, parseHeader } from './frame.js';
import {
  type FrameSocket,
  type FrameSocketEvents,
  LINGER_MS,
  type OutgoingFrame,
} from './frame-socket.js';
import type { RpcMetrics } from './metrics.js';
import type { NativeConnectionEvents, NativeTransport } from './native-transport.js';

/**
 * Frames held while paused: those of the batch being delivered when the pause came, at most one
 * readiness callback's read budget (4 MiB) plus the frame that crossed it.
 */
const MAX_HELD_BYTES = 4 * 1024 * 1024;

export interface NativeFrameSocketOptions {
  peer: string;
  maxFrameBytes: number;
  writeHighWaterMark: number;
  events: FrameSocketEvents;
  metrics: RpcMetrics | undefined;
}

export class NativeFrameSocket implements FrameSocket, NativeConnectionEvents {
  readonly peer: string;
  private conn = 0;
  private paused = false;
  private pumping = false;
  private closed = false;
  private closing = false;
  private closeReason: ThreeFsError | undefined;
  private queuedBytes = 0;
  private flushScheduled = false;
  private readonly held: Frame[] = [];
  private heldBytes = 0;
  private connectedCallback: (() => void) | undefined;
  private readonly drainWaiters: (() => void)[] = [];
  private readonly closeWaiters: (() => void)[] = [];

  constructor(
    private readonly transport: NativeTransport,
    private readonly options: NativeFrameSocketOptions,
  ) {
    this.peer = options.peer;
  }

  /** Binds this socket to its native connection id (from connect or accept). */
  bind(conn: number): this {
    if (this.conn !== 0) throw new ThreeFsError('INTERNAL', 'native frame socket bound twice');
    this.conn = conn;
    return this;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get needsDrain(): boolean {
    return this.queuedBytes >= this.options.writeHighWaterMark;
  }

  onceConnected(callback: () => void): void {
    this.connectedCallback = callback;
  }

  whenClosed(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  waitDrain(): Promise<void> {
    if (!this.needsDrain || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  send(frame: OutgoingFrame, body: Uint8Array, payload?: Uint8Array): boolean {
    if (this.closed || this.closing) return false;
    const [head, tail] = encodeFrame(frame, body, payload);
    if (!this.transport.send(this.conn, head, tail)) return false;
    const bytes = head.length + (tail?.length ?? 0);
    this.queuedBytes += bytes;
    this.options.metrics?.sent(bytes);
    if (!this.flushScheduled) {
      // Frames sent in one tick go out in one sendmsg, as with a corked net.Socket.
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
    return !this.needsDrain;
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.closed) return;
    this.onWritten(this.transport.flush(this.conn));
  }

  pauseReading(): void {
    if (this.paused || this.closed) return;
    this.paused = true;
    this.transport.pause(this.conn);
  }

  resumeReading(): void {
    if (!this.paused || this.closed) return;
    this.paused = false;
    this.transport.resume(this.conn);
    // Frames held while paused would otherwise wait for the next batch.
    setImmediate(() => this.pump());
  }

  close(reason?: ThreeFsError): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    this.closeReason ??= reason;
    this.held.length = 0;
    this.heldBytes = 0;
    this.flushScheduled = false;
    this.transport.close(this.conn); // flushes what is queued first
    setTimeout(() => {
      if (!this.closed) this.transport.destroy(this.conn);
    }, LINGER_MS).unref();
  }

  destroy(reason?: ThreeFsError): void {
    if (this.closed) return;
    this.closeReason ??= reason;
    this.transport.destroy(this.conn);
  }

  // --- events from the native transport ---

  onConnected(): void {
    const callback = this.connectedCallback;
    this.connectedCallback = undefined;
    callback?.();
  }

  onFrame(headBody: Buffer, payload: Buffer | undefined, crcOk: boolean): void {
    this.options.metrics?.received(headBody.length + (payload?.length ?? 0));
    if (this.closing || this.closed) return;
    try {
      const header = parseHeader(headBody.subarray(0, HEADER_BYTES), this.options.maxFrameBytes);
      if (!crcOk) throw dataCrcError(header);
      this.held.push({ header, body: headBody.subarray(HEADER_BYTES), payload });
      this.heldBytes += headBody.length + (payload?.length ?? 0);
      if (this.heldBytes > MAX_HELD_BYTES + 2 * this.options.maxFrameBytes) {
        throw new ThreeFsError('INTERNAL', `${this.heldBytes} bytes of frames held while paused`);
      }
    } catch (err) {
      this.fail(err);
      return;
    }
    this.pump();
  }

  onBadHeader(header: Buffer): void {
    try {
      parseHeader(header, this.options.maxFrameBytes);
      this.fail(
        new ThreeFsError('INTERNAL', 'native transport rejected a header parseHeader accepts'),
      );
    } catch (err) {
      this.fail(err);
    }
  }

  onWritten(bytes: number): void {
    if (bytes === 0) return;
    const before = this.needsDrain;
    this.queuedBytes -= bytes;
    if (this.queuedBytes < 0) {
      throw new ThreeFsError(
        'INTERNAL',
        `native transport wrote ${-this.queuedBytes} bytes more than queued`,
      );
    }
    if (before && !this.needsDrain) this.wakeDrainWaiters();
  }

  onEnd(unfinished: number): void {
    if (unfinished > 0 && !this.closing) {
      this.fail(
        new ThreeFsError(
          'PROTOCOL_ERROR',
          `connection ended inside a frame (${unfinished} bytes of a truncated frame)`,
        ),
      );
      return;
    }
    // The peer is done sending: deliver what is held, flush our side and close (no half-open).
    this.pump();
    this.close();
  }

  onClosed(code: string, syscall: string): void {
    if (this.closed) return;
    this.closed = true;
    if (code !== '') {
      const where = syscall === 'connect' ? ` ${this.peer}` : '';
      this.closeReason ??= new ThreeFsError(
        'UNAVAILABLE',
        `connection to ${this.peer} failed: ${syscall} ${code}${where}`,
        { errno: code },
      );
    }
    this.held.length = 0;
    this.wakeDrainWaiters();
    this.options.events.onClose(this.closeReason);
    for (const wake of this.closeWaiters.splice(0)) wake();
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.paused && !this.closed && !this.closing) {
        const frame = this.held.shift();
        if (frame === undefined) break;
        this.heldBytes -= frame.body.length + HEADER_BYTES + (frame.payload?.length ?? 0);
        this.options.events.onFrame(frame);
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.pumping = false;
    }
  }

  private fail(err: unknown): void {
    const error =
      err instanceof ThreeFsError
        ? err
        : new ThreeFsError('INTERNAL', `frame handling: ${String(err)}`);
    if (this.closing || this.closed) return;
    this.options.metrics?.protocolError();
    this.closeReason ??= error;
    this.options.events.onProtocolError(error);
    this.close(error);
  }

  private wakeDrainWaiters(): void {
    for (const wake of this.drainWaiters.splice(0)) wake();
  }
}
