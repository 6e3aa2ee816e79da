// The process-wide native transport (native/src/transport_addon.cc): owns the sockets of RPC
// connections as libuv poll handles on this thread's loop, reads frames straight into their final
// Buffers, checks both CRCs and hands complete frames here in batches. This module routes each
// batch to the per-connection and per-listener handlers. Open sockets keep the process alive, as
// Node's own sockets do.
import { ThreeFsError } from '../errors.js';
import { loadAddon } from '../native.js';
import { PooledViews } from '../pooled-views.js';

interface TransportHandle {
  listenTcp(host: string, port: number, maxFrameBytes: number): [number, number];
  listenUnix(path: string, maxFrameBytes: number): number;
  closeListener(listener: number): void;
  connectTcp(ip: string, port: number, maxFrameBytes: number): number;
  connectUnix(path: string, maxFrameBytes: number): number;
  send(conn: number, head: Uint8Array, payload?: Uint8Array): boolean;
  flush(conn: number): number;
  openSockets(): number;
  releaseBlock(block: number): void;
  poolStats(): [number, number, number];
  pause(conn: number): void;
  resume(conn: number): void;
  close(conn: number): void;
  destroy(conn: number): void;
  stop(): void;
}

interface TransportAddon {
  Transport: new (
    onEvents: (batch: unknown[]) => void,
    payloadPoolBytes: number,
  ) => TransportHandle;
}

/** What the I/O thread reports about one connection, in order. */
export interface NativeConnectionEvents {
  onConnected(): void;
  /** header + body in one Buffer; payload when the frame has one; whether the data CRC matched. */
  onFrame(headBody: Buffer, payload: Buffer | undefined, crcOk: boolean): void;
  /** A header the native side rejected; the connection now drops its input. */
  onBadHeader(header: Buffer): void;
  onWritten(bytes: number): void;
  /** The peer closed its side; `unfinished` bytes of a frame had arrived. */
  onEnd(unfinished: number): void;
  /** The socket is gone: `code` is an errno name ('' for a clean close) from `syscall`. */
  onClosed(code: string, syscall: string): void;
}

export type AcceptHandler = (conn: number, peer: string) => void;

const EventType = {
  Accepted: 1,
  Connected: 2,
  Frame: 3,
  BadHeader: 4,
  Written: 5,
  End: 6,
  Closed: 7,
} as const;
const STRIDE = 7;

/**
 * Default cap on recycled payload memory per process (THREEFS_RPC_PAYLOAD_POOL_MB overrides).
 * Payloads past it are one-off allocations, which V8 counts as external memory (see
 * native/src/payload_pool.h for why that matters).
 */
const DEFAULT_PAYLOAD_POOL_MB = 128;

function payloadPoolBytes(): number {
  const text = process.env.THREEFS_RPC_PAYLOAD_POOL_MB;
  const mb = text === undefined || text === '' ? DEFAULT_PAYLOAD_POOL_MB : Number(text);
  if (!Number.isInteger(mb) || mb < 0 || mb > 65536) {
    throw new ThreeFsError(
      'INVALID_ARGUMENT',
      `THREEFS_RPC_PAYLOAD_POOL_MB must be an integer 0..65536, got '${text}'`,
    );
  }
  return mb * 1024 * 1024;
}

export interface PayloadPoolStats {
  totalBytes: number;
  inUseBytes: number;
  badReleases: number;
}

export class NativeTransport {
  private readonly handle: TransportHandle;
  private readonly conns = new Map<number, NativeConnectionEvents>();
  private readonly listeners = new Map<number, AcceptHandler>();
  private stopped = false;
  /** Payload Buffers viewing pool blocks; a block returns once JS has collected its views. */
  private readonly blockViews = new PooledViews((block) => {
    if (!this.stopped) this.handle.releaseBlock(block);
  });

  constructor() {
    const addon = loadAddon<TransportAddon>('threefs_transport');
    this.handle = new addon.Transport((batch) => this.dispatch(batch), payloadPoolBytes());
  }

  get payloadPool(): PayloadPoolStats {
    if (this.stopped) return { totalBytes: 0, inUseBytes: 0, badReleases: 0 };
    const [totalBytes, inUseBytes, badReleases] = this.handle.poolStats();
    return { totalBytes, inUseBytes, badReleases };
  }

  /** Sockets the native side holds (listeners and connections, closing ones included). */
  get openSockets(): number {
    return this.stopped ? 0 : this.handle.openSockets();
  }

  listenTcp(
    host: string,
    port: number,
    maxFrameBytes: number,
    onAccept: AcceptHandler,
  ): [number, number] {
    const [id, bound] = this.live().listenTcp(host, port, maxFrameBytes);
    this.listeners.set(id, onAccept);
    return [id, bound];
  }

  listenUnix(path: string, maxFrameBytes: number, onAccept: AcceptHandler): number {
    const id = this.live().listenUnix(path, maxFrameBytes);
    this.listeners.set(id, onAccept);
    return id;
  }

  closeListener(listener: number): void {
    if (!this.listeners.delete(listener) || this.stopped) return;
    this.handle.closeListener(listener);
  }

  connectTcp(
    ip: string,
    port: number,
    maxFrameBytes: number,
    events: NativeConnectionEvents,
  ): number {
    return this.attach(this.live().connectTcp(ip, port, maxFrameBytes), events);
  }

  connectUnix(path: string, maxFrameBytes: number, events: NativeConnectionEvents): number {
    return this.attach(this.live().connectUnix(path, maxFrameBytes), events);
  }

  /** Claims an accepted connection's events. */
  attach(conn: number, events: NativeConnectionEvents): number {
    if (this.conns.has(conn))
      throw new ThreeFsError('INTERNAL', `connection ${conn} attached twice`);
    this.conns.set(conn, events);
    return conn;
  }

  /** Queues one frame; false when the connection is closed or closing. */
  send(conn: number, head: Uint8Array, payload: Uint8Array | undefined): boolean {
    return this.live().send(conn, head, payload);
  }
  /** Writes queued frames now; returns the bytes written (the rest goes when the socket is writable). */
  flush(conn: number): number {
    return this.live().flush(conn);
  }
  pause(conn: number): void {
    this.live().pause(conn);
  }
  resume(conn: number): void {
    this.live().resume(conn);
  }
  close(conn: number): void {
    this.live().close(conn);
  }
  destroy(conn: number): void {
    this.live().destroy(conn);
  }

  /** Closes every socket at once and joins the I/O thread. The transport is unusable afterwards. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.blockViews.close();
    this.handle.stop();
    const orphans = [...this.conns.values()];
    this.conns.clear();
    this.listeners.clear();
    for (const events of orphans) events.onClosed('', '');
  }

  private live(): TransportHandle {
    if (this.stopped) throw new ThreeFsError('UNAVAILABLE', 'the native RPC transport is stopped');
    return this.handle;
  }

  private dispatch(batch: unknown[]): void {
    if (batch.length % STRIDE !== 0) {
      throw new ThreeFsError('INTERNAL', `native transport batch of ${batch.length} slots`);
    }
    let failure: unknown;
    for (let i = 0; i < batch.length; i += STRIDE) {
      try {
        this.dispatchOne(batch[i] as number, batch[i + 1] as number, batch, i);
      } catch (err) {
        failure ??= err; // deliver the rest of the batch before surfacing it
      }
    }
    if (failure !== undefined) throw failure;
  }

  private dispatchOne(type: number, conn: number, batch: unknown[], i: number): void {
    const aux = batch[i + 2] as number;
    const [a, b, c, block] = [batch[i + 3], batch[i + 4], batch[i + 5], batch[i + 6] as number];
    if (type === EventType.Frame && block > 0) {
      const events = this.conns.get(conn);
      if (events === undefined) {
        this.handle.releaseBlock(block);
        return;
      }
      events.onFrame(
        a as Buffer,
        this.blockViews.view(block, b as ArrayBuffer, 0, aux),
        c as boolean,
      );
      return;
    }
    if (type === EventType.Accepted) {
      const onAccept = this.listeners.get(aux);
      if (onAccept === undefined)
        this.handle.destroy(conn); // the listener closed meanwhile
      else onAccept(conn, a as string);
      return;
    }
    const events = this.conns.get(conn);
    if (events === undefined) return; // late events of a connection already reported closed
    switch (type) {
      case EventType.Connected:
        events.onConnected();
        return;
      case EventType.Frame:
        events.onFrame(a as Buffer, b as Buffer | undefined, c as boolean);
        return;
      case EventType.BadHeader:
        events.onBadHeader(a as Buffer);
        return;
      case EventType.Written:
        events.onWritten(aux);
        return;
      case EventType.End:
        events.onEnd(aux);
        return;
      case EventType.Closed:
        this.conns.delete(conn);
        events.onClosed(a as string, b as string);
        return;
      default:
        throw new ThreeFsError('INTERNAL', `native transport event type ${type}`);
    }
  }
}

let shared: NativeTransport | undefined;

/** The process's native transport, started on first use. */
export function nativeTransport(): NativeTransport {
  shared ??= new NativeTransport();
  return shared;
}

/** The process's native transport if something started it (metrics read it without starting it). */
export function runningNativeTransport(): NativeTransport | undefined {
  return shared;
}

/** Stops the process's native transport (if started): every socket closes, the thread is joined. */
export function stopNativeTransport(): void {
  shared?.stop();
  shared = undefined;
}
