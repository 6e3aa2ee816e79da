// FrameSocket over a Node net.Socket: decodes incoming chunks into frames and hands them out one at
// a time while reading is not paused; sends frames with all writes of one tick batched into a
// single writev (cork, uncork on the next tick), payload Buffers passed through untouched.
import type { Socket } from 'node:net';
import { ThreeFsError } from '../errors.js';
import { encodeFrame } from './frame.js';
import { FrameDecoder } from './frame-decoder.js';
import {
  type FrameSocket,
  type FrameSocketEvents,
  LINGER_MS,
  type OutgoingFrame,
} from './frame-socket.js';
import type { RpcMetrics } from './metrics.js';

export class NodeFrameSocket implements FrameSocket {
  private readonly decoder: FrameDecoder;
  private paused = false;
  private pumping = false;
  private corked = false;
  private closed = false;
  /** close() was called: bytes still arriving are read and dropped so the peer's FIN is seen. */
  private closing = false;
  private closeReason: ThreeFsError | undefined;
  private readonly drainWaiters: (() => void)[] = [];
  private readonly closeWaiters: (() => void)[] = [];

  constructor(
    readonly socket: Socket,
    readonly peer: string,
    maxFrameBytes: number,
    private readonly events: FrameSocketEvents,
    private readonly metrics: RpcMetrics | undefined,
  ) {
    this.decoder = new FrameDecoder(maxFrameBytes);
    socket.on('data', (chunk: Buffer) => {
      this.metrics?.received(chunk.length);
      if (this.closing) return;
      this.decoder.push(chunk);
      this.pump();
    });
    socket.on('end', () => {
      if (this.decoder.midFrame && !this.closed) {
        this.fail(
          new ThreeFsError(
            'PROTOCOL_ERROR',
            `connection ended inside a frame (${this.decoder.bufferedBytes} bytes of a truncated frame)`,
          ),
        );
      }
      socket.end();
    });
    socket.on('drain', () => this.wakeDrainWaiters());
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.closeReason ??= new ThreeFsError(
        'UNAVAILABLE',
        `connection to ${peer} failed: ${err.message}`,
        {
          errno: err.code,
        },
      );
    });
    socket.on('close', () => {
      this.closed = true;
      this.wakeDrainWaiters();
      this.events.onClose(this.closeReason);
      for (const wake of this.closeWaiters.splice(0)) wake();
    });
  }

  onceConnected(callback: () => void): void {
    this.socket.once('connect', callback);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Resolves once the socket has closed. */
  whenClosed(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  /** Whether the socket's write buffer is over its high-water mark: wait for drain before sending more. */
  get needsDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  /** Resolves when the write buffer has drained (or the socket closed). */
  waitDrain(): Promise<void> {
    if (!this.needsDrain || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Sends one frame; returns false when the caller should wait for drain before the next. */
  send(frame: OutgoingFrame, body: Uint8Array, payload?: Uint8Array): boolean {
    if (this.closed || this.socket.destroyed) return false;
    const [head, tail] = encodeFrame(frame, body, payload);
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(head);
    let bytes = head.length;
    if (tail !== undefined && tail.length > 0) {
      this.socket.write(tail);
      bytes += tail.length;
    }
    this.metrics?.sent(bytes);
    return !this.socket.writableNeedDrain;
  }

  /** Stops handing out frames and stops reading the socket (backpressure on the peer). */
  pauseReading(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.paused || this.closed) return;
    this.paused = false;
    this.socket.resume();
    // Frames already buffered would otherwise wait for the next chunk.
    setImmediate(() => this.pump());
  }

  /** Closes after flushing what was written; destroys the socket if the peer does not let it flush. */
  close(reason?: ThreeFsError): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    this.closeReason ??= reason;
    this.socket.resume();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), LINGER_MS).unref();
  }

  /** Closes at once, dropping unsent frames. */
  destroy(reason?: ThreeFsError): void {
    this.closeReason ??= reason;
    this.socket.destroy();
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.paused && !this.closed && !this.closing) {
        const frame = this.decoder.next();
        if (frame === undefined) break;
        this.events.onFrame(frame);
      }
    } catch (err) {
      this.fail(
        err instanceof ThreeFsError
          ? err
          : new ThreeFsError('INTERNAL', `frame handling: ${String(err)}`),
      );
    } finally {
      this.pumping = false;
    }
  }

  private fail(err: ThreeFsError): void {
    this.metrics?.protocolError();
    this.closeReason ??= err;
    this.events.onProtocolError(err);
    this.close(err);
  }

  private wakeDrainWaiters(): void {
    for (const wake of this.drainWaiters.splice(0)) wake();
  }
}
