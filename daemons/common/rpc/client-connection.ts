// One client socket: connect, handshake, then match response and error frames to the calls
// waiting for them by request id. Everything here ends when the socket does; reconnecting is the
// RpcClient's job.
import { lookup } from 'node:dns/promises';
import { connect, isIP, type NetConnectOpts } from 'node:net';
import { ThreeFsError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RpcAddress } from './address.js';
import { decodeBody, encodeBody } from './body-codec.js';
import { decodeErrorBody } from './error-body.js';
import { type Frame, FrameKind } from './frame.js';
import type {
  FrameSocket,
  FrameSocketEvents,
  OutgoingFrame,
  RpcTransportKind,
} from './frame-socket.js';
import { NativeFrameSocket } from './native-frame-socket.js';
import { nativeTransport } from './native-transport.js';
import { NodeFrameSocket } from './node-frame-socket.js';
import { checkHandshakeReply, HandshakeResponse } from './handshake.js';
import type { RpcMetrics } from './metrics.js';

/** What a connection needs from a call waiting for its reply. */
export interface AwaitingReply {
  readonly requestId: number;
  onReply(frame: Frame): void;
  onError(err: ThreeFsError): void;
}

export interface ClientConnectionOptions {
  address: RpcAddress;
  peer: string;
  clusterId: string;
  token: string | undefined;
  clientName: string;
  maxFrameBytes: number;
  writeHighWaterMark: number;
  connectTimeoutMs: number;
  transport: RpcTransportKind;
  log: Logger;
  metrics: RpcMetrics | undefined;
  /** Called once when the connection is gone, after every awaiting call has been failed. */
  onClose(connection: ClientConnection): void;
}

export class ClientConnection {
  private readonly awaiting = new Map<number, AwaitingReply>();
  private readonly frames: FrameSocket;
  private handshake:
    { resolve: () => void; reject: (err: ThreeFsError) => void; timer: NodeJS.Timeout } | undefined;
  private failure: ThreeFsError | undefined;

  private constructor(
    private readonly options: ClientConnectionOptions,
    open: (events: FrameSocketEvents) => FrameSocket,
  ) {
    this.frames = open({
      onFrame: (frame) => this.onFrame(frame),
      onProtocolError: (err) => {
        this.failure ??= err;
        options.log.warn(
          { peer: options.peer, code: err.code },
          `closing connection: ${err.message}`,
        );
      },
      onClose: (reason) => this.onClose(reason),
    });
  }

  /** Connects and handshakes; rejects with UNAVAILABLE or HANDSHAKE_REFUSED. */
  static async open(options: ClientConnectionOptions): Promise<ClientConnection> {
    const connection =
      options.transport === 'native'
        ? await ClientConnection.openNative(options)
        : new ClientConnection(options, (events) => ClientConnection.openNode(options, events));
    return connection.handshakeOnConnect();
  }

  private static openNode(
    options: ClientConnectionOptions,
    events: FrameSocketEvents,
  ): FrameSocket {
    const { address } = options;
    // Node passes writableHighWaterMark through to the stream; its typings do not list it.
    const buffering = { writableHighWaterMark: options.writeHighWaterMark };
    const target: NetConnectOpts =
      address.kind === 'tcp'
        ? { host: address.host, port: address.port, noDelay: true, ...buffering }
        : { path: address.path, ...buffering };
    const socket = connect(target);
    socket.once('connect', () => {
      if (address.kind === 'tcp') socket.setKeepAlive(true, 30_000);
    });
    return new NodeFrameSocket(
      socket,
      options.peer,
      options.maxFrameBytes,
      events,
      options.metrics,
    );
  }

  private static async openNative(options: ClientConnectionOptions): Promise<ClientConnection> {
    const { address } = options;
    let ip: string | undefined;
    if (address.kind === 'tcp') {
      try {
        ip = isIP(address.host) !== 0 ? address.host : (await lookup(address.host)).address;
      } catch (err) {
        throw new ThreeFsError(
          'UNAVAILABLE',
          `connection to ${options.peer} failed: ${(err as Error).message}`,
        );
      }
    }
    const transport = nativeTransport();
    return new ClientConnection(options, (events) => {
      const socket = new NativeFrameSocket(transport, {
        peer: options.peer,
        maxFrameBytes: options.maxFrameBytes,
        writeHighWaterMark: options.writeHighWaterMark,
        events,
        metrics: options.metrics,
      });
      try {
        const conn =
          ip !== undefined && address.kind === 'tcp'
            ? transport.connectTcp(ip, address.port, options.maxFrameBytes, socket)
            : transport.connectUnix(
                address.kind === 'unix' ? address.path : '',
                options.maxFrameBytes,
                socket,
              );
        return socket.bind(conn);
      } catch (err) {
        throw new ThreeFsError(
          'UNAVAILABLE',
          `connection to ${options.peer} failed: ${(err as Error).message}`,
        );
      }
    });
  }

  private handshakeOnConnect(): Promise<ClientConnection> {
    const options = this.options;
    return new Promise<ClientConnection>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.frames.destroy(
          new ThreeFsError(
            'UNAVAILABLE',
            `connecting to ${options.peer} took over ${options.connectTimeoutMs} ms`,
          ),
        );
      }, options.connectTimeoutMs);
      this.handshake = { resolve: () => resolve(this), reject, timer };
      this.frames.onceConnected(() => {
        this.frames.send(
          { kind: FrameKind.Handshake, serviceId: 0, methodId: 0, requestId: 0, timeoutMs: 0 },
          encodeBody({
            clusterId: options.clusterId,
            token: options.token,
            clientName: options.clientName,
          }),
        );
      });
    });
  }

  get isClosed(): boolean {
    return this.frames.isClosed;
  }

  get needsDrain(): boolean {
    return this.frames.needsDrain;
  }

  waitDrain(): Promise<void> {
    return this.frames.waitDrain();
  }

  get awaitingCount(): number {
    return this.awaiting.size;
  }

  /** Sends a request and routes its reply to `call`. Returns false when the caller should wait for drain. */
  send(call: AwaitingReply, frame: OutgoingFrame, body: Uint8Array, payload?: Uint8Array): boolean {
    if (this.awaiting.has(call.requestId)) {
      throw new ThreeFsError('INTERNAL', `request id ${call.requestId} reused while in flight`);
    }
    this.awaiting.set(call.requestId, call);
    return this.frames.send(frame, body, payload);
  }

  /** Stops routing a reply (the call gave up) and asks the server to abort the handler. */
  cancel(requestId: number): void {
    if (!this.awaiting.delete(requestId)) return;
    this.frames.send(
      { kind: FrameKind.Cancel, serviceId: 0, methodId: 0, requestId, timeoutMs: 0 },
      Buffer.alloc(0),
    );
  }

  /** Closes after flushing; resolves once the socket is gone. */
  close(): Promise<void> {
    this.frames.close(
      new ThreeFsError('UNAVAILABLE', `connection to ${this.options.peer} closed by the client`),
    );
    return this.frames.whenClosed();
  }

  private onFrame(frame: Frame): void {
    const { kind, requestId } = frame.header;
    if (this.handshake !== undefined) {
      this.onHandshakeReply(frame);
      return;
    }
    if (kind !== FrameKind.Response && kind !== FrameKind.Error) {
      throw new ThreeFsError('PROTOCOL_ERROR', `a server may not send frame kind ${kind} here`);
    }
    if (requestId === 0 && kind === FrameKind.Error) {
      // A connection-level error: the server is about to close and says why.
      this.failure ??= decodeErrorBody(frame.body);
      return;
    }
    const call = this.awaiting.get(requestId);
    if (call === undefined) return; // a reply to a call that already timed out or was cancelled
    this.awaiting.delete(requestId);
    if (kind === FrameKind.Error) call.onError(decodeErrorBody(frame.body));
    else call.onReply(frame);
  }

  private onHandshakeReply(frame: Frame): void {
    const pending = this.handshake;
    if (pending === undefined) return;
    this.handshake = undefined;
    clearTimeout(pending.timer);
    try {
      if (frame.header.kind === FrameKind.Error) throw decodeErrorBody(frame.body);
      if (frame.header.kind !== FrameKind.Handshake) {
        throw new ThreeFsError(
          'PROTOCOL_ERROR',
          `expected a handshake reply, got frame kind ${frame.header.kind}`,
        );
      }
      checkHandshakeReply(
        this.options.clusterId,
        decodeBody(HandshakeResponse, frame.body, 'handshake reply'),
      );
    } catch (err) {
      const error =
        err instanceof ThreeFsError ? err : new ThreeFsError('PROTOCOL_ERROR', String(err));
      this.failure = error;
      this.frames.destroy(error);
      pending.reject(error);
      return;
    }
    pending.resolve();
  }

  private onClose(reason: ThreeFsError | undefined): void {
    const failure = this.failure ?? reason;
    const lost =
      failure?.code === 'UNAVAILABLE' || failure?.code === 'HANDSHAKE_REFUSED'
        ? failure
        : new ThreeFsError(
            'UNAVAILABLE',
            failure !== undefined
              ? `connection to ${this.options.peer} lost: ${failure.message}`
              : `connection to ${this.options.peer} closed`,
            failure?.details,
          );
    if (this.handshake !== undefined) {
      clearTimeout(this.handshake.timer);
      this.handshake.reject(lost);
      this.handshake = undefined;
    }
    const calls = [...this.awaiting.values()];
    this.awaiting.clear();
    for (const call of calls) call.onError(lost);
    this.options.onClose(this);
  }
}
