// The server side of one accepted connection: handshake first, then requests dispatched to
// handlers with at most `maxConcurrent` running at once. When that many are running, or the
// socket's write buffer is full, it stops reading (backpressure reaches the client through TCP).
// Bad requests get an error reply and the connection lives on; a broken stream closes it.
import { ThreeFsError } from '../errors.js';
import type { Logger } from '../log.js';
import { decodeBody, encodeBody } from './body-codec.js';
import { ServerCall } from './call-context.js';
import { encodeErrorBody } from './error-body.js';
import { type Frame, FrameKind } from './frame.js';
import type { FrameSocket, FrameSocketEvents } from './frame-socket.js';
import { checkHandshake, type ClusterIdentity, HandshakeRequest } from './handshake.js';
import type { RpcMetrics } from './metrics.js';
import type { ConnectionScope, Handler, Method } from './service.js';

export interface RegisteredMethod {
  method: Method;
  handler: Handler<Method>;
}

export interface ServerConnectionOptions {
  identity: ClusterIdentity;
  serverName: string;
  maxFrameBytes: number;
  maxConcurrent: number;
  handshakeTimeoutMs: number;
  lookup(serviceId: number, methodId: number): RegisteredMethod | undefined;
  describeMissing(serviceId: number, methodId: number): string;
  log: Logger;
  metrics: RpcMetrics | undefined;
  onClose(connection: ServerConnection): void;
}

let nextConnectionId = 1;

export class ServerConnection {
  /** What handlers see of this connection (ctx.connection). */
  readonly scope: ConnectionScope;
  private readonly cleanups: Array<() => void> = [];
  private closed = false;
  private readonly frames: FrameSocket;
  private readonly active = new Map<number, ServerCall>();
  private handshaken = false;
  private draining = false;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private readonly idleWaiters: (() => void)[] = [];
  /** Highest number of handlers seen running at once; tests check it never passes the limit. */
  peakActive = 0;

  constructor(
    readonly peer: string,
    open: (events: FrameSocketEvents) => FrameSocket,
    private readonly options: ServerConnectionOptions,
  ) {
    if (!(options.maxConcurrent >= 1))
      throw new ThreeFsError('INTERNAL', 'maxConcurrent must be >= 1');
    this.scope = {
      id: nextConnectionId++,
      local: peer.startsWith('unix:'),
      onClose: (cleanup) => {
        if (this.closed) cleanup();
        else this.cleanups.push(cleanup);
      },
    };
    this.frames = open({
      onFrame: (frame) => this.onFrame(frame),
      onProtocolError: (err) => this.onProtocolError(err),
      onClose: () => this.onClose(),
    });
    this.handshakeTimer = setTimeout(() => {
      this.options.log.warn({ peer }, 'closing connection: no handshake in time');
      this.frames.destroy();
    }, options.handshakeTimeoutMs);
    this.handshakeTimer.unref();
  }

  get activeCalls(): number {
    return this.active.size;
  }

  /** Graceful close: read no more requests, resolve when running handlers have replied. */
  drain(): Promise<void> {
    this.draining = true;
    this.frames.pauseReading();
    if (this.active.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Closes after flushing replies already written; resolves once the socket is gone. */
  end(): Promise<void> {
    this.frames.close();
    return this.frames.whenClosed();
  }

  destroy(): Promise<void> {
    this.frames.destroy();
    return this.frames.whenClosed();
  }

  private onFrame(frame: Frame): void {
    const { kind } = frame.header;
    if (!this.handshaken) {
      if (kind !== FrameKind.Handshake) {
        throw new ThreeFsError(
          'PROTOCOL_ERROR',
          `expected a handshake frame first, got kind ${kind}`,
        );
      }
      this.onHandshake(frame);
      return;
    }
    switch (kind) {
      case FrameKind.Request:
        this.onRequest(frame);
        return;
      case FrameKind.Cancel:
        this.active
          .get(frame.header.requestId)
          ?.abort(
            new ThreeFsError(
              'CANCELLED',
              `request ${frame.header.requestId} cancelled by the client`,
            ),
          );
        return;
      default:
        throw new ThreeFsError('PROTOCOL_ERROR', `a client may not send frame kind ${kind} here`);
    }
  }

  private onHandshake(frame: Frame): void {
    if (this.handshakeTimer !== undefined) clearTimeout(this.handshakeTimer);
    let hello: HandshakeRequest;
    try {
      hello = decodeBody(HandshakeRequest, frame.body, 'handshake');
      checkHandshake(this.options.identity, hello);
    } catch (err) {
      const refusal =
        err instanceof ThreeFsError && err.code === 'HANDSHAKE_REFUSED'
          ? err
          : new ThreeFsError('HANDSHAKE_REFUSED', (err as Error).message);
      this.options.log.warn(
        { peer: this.peer, code: refusal.code },
        `handshake refused: ${refusal.message}`,
      );
      this.sendError(0, refusal);
      this.frames.close(refusal);
      return;
    }
    this.handshaken = true;
    this.frames.send(
      { kind: FrameKind.Handshake, serviceId: 0, methodId: 0, requestId: 0, timeoutMs: 0 },
      encodeBody({
        clusterId: this.options.identity.clusterId,
        serverName: this.options.serverName,
      }),
    );
    this.options.log.debug({ peer: this.peer, client: hello.clientName }, 'connection handshaken');
  }

  private onRequest(frame: Frame): void {
    const { header } = frame;
    if (this.active.has(header.requestId)) {
      throw new ThreeFsError(
        'PROTOCOL_ERROR',
        `request id ${header.requestId} is already in flight`,
      );
    }
    const entry = this.options.lookup(header.serviceId, header.methodId);
    if (entry === undefined) {
      this.sendError(
        header.requestId,
        new ThreeFsError(
          'UNIMPLEMENTED',
          this.options.describeMissing(header.serviceId, header.methodId),
        ),
      );
      return;
    }
    const { method, handler } = entry;
    let request: unknown;
    try {
      request = decodeBody(
        method.request,
        frame.body,
        `request of ${method.serviceName}.${method.name}`,
      );
    } catch (err) {
      this.options.metrics?.callStarted();
      this.options.metrics?.callFinished(
        method.serviceName,
        method.name,
        (err as ThreeFsError).code,
        0,
      );
      this.sendError(header.requestId, err as ThreeFsError);
      return;
    }
    const call = new ServerCall(
      this.peer,
      this.scope,
      header.requestId,
      frame,
      header.timeoutMs,
      performance.now(),
      this.options.log,
      { service: method.serviceName, method: method.name },
    );
    this.active.set(header.requestId, call);
    if (this.active.size > this.peakActive) this.peakActive = this.active.size;
    if (this.active.size > this.options.maxConcurrent) {
      throw new ThreeFsError(
        'INTERNAL',
        `${this.active.size} handlers running, limit ${this.options.maxConcurrent}`,
      );
    }
    if (this.active.size === this.options.maxConcurrent) this.frames.pauseReading();
    this.options.metrics?.callStarted();
    let result;
    try {
      result = handler(request, call);
    } catch (err) {
      this.finishCall(method, call, undefined, err);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (reply) => this.finishCall(method, call, reply, undefined),
        (err: unknown) => this.finishCall(method, call, undefined, err),
      );
    } else {
      this.finishCall(method, call, result, undefined);
    }
  }

  private finishCall(
    method: Method,
    call: ServerCall,
    reply:
      { body: unknown; payload?: Buffer | undefined; payloadCrc?: number | undefined } | undefined,
    thrown: unknown,
  ): void {
    call.finish();
    this.active.delete(call.requestId);
    let code: ThreeFsError['code'] | 'OK' = 'OK';
    if (reply !== undefined) {
      let body: Buffer | undefined;
      try {
        body = encodeBody(reply.body);
      } catch (err) {
        thrown = err;
      }
      if (body !== undefined) {
        this.frames.send(
          {
            kind: FrameKind.Response,
            serviceId: method.serviceId,
            methodId: method.id,
            requestId: call.requestId,
            timeoutMs: 0,
            payloadCrc: reply.payloadCrc,
          },
          body,
          reply.payload,
        );
      }
    }
    if (thrown !== undefined) {
      const err = this.toReplyError(method, call, thrown);
      code = err.code;
      this.sendError(call.requestId, err);
    }
    this.options.metrics?.callFinished(
      method.serviceName,
      method.name,
      code,
      (performance.now() - call.startedAt) / 1000,
    );
    this.afterCall();
  }

  private toReplyError(method: Method, call: ServerCall, thrown: unknown): ThreeFsError {
    if (thrown instanceof ThreeFsError) return thrown;
    // An abort raised by our own signal carries the ThreeFsError reason.
    if (call.aborted !== undefined && thrown === call.aborted) return call.aborted;
    const error = thrown instanceof Error ? thrown : new Error(String(thrown));
    call.log.error({ err: error }, `handler ${method.serviceName}.${method.name} threw`);
    return new ThreeFsError(
      'INTERNAL',
      `handler ${method.serviceName}.${method.name} failed: ${error.message}`,
    );
  }

  private afterCall(): void {
    if (this.draining) {
      if (this.active.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      return;
    }
    if (this.active.size >= this.options.maxConcurrent) return;
    if (!this.frames.needsDrain) {
      this.frames.resumeReading();
      return;
    }
    // Replies are piling up in the write buffer: read no more requests until the client takes them.
    this.frames.pauseReading();
    void this.frames.waitDrain().then(() => {
      if (!this.draining && this.active.size < this.options.maxConcurrent)
        this.frames.resumeReading();
    });
  }

  private sendError(requestId: number, err: ThreeFsError): void {
    this.frames.send(
      { kind: FrameKind.Error, serviceId: 0, methodId: 0, requestId, timeoutMs: 0 },
      encodeErrorBody(err),
    );
  }

  private onProtocolError(err: ThreeFsError): void {
    this.options.log.warn(
      { peer: this.peer, code: err.code, details: err.details },
      `closing connection: ${err.message}`,
    );
    // Best effort: tell the peer why before closing (it may be gone or be garbage itself).
    this.sendError(0, err);
  }

  private onClose(): void {
    if (this.handshakeTimer !== undefined) clearTimeout(this.handshakeTimer);
    const gone = new ThreeFsError('UNAVAILABLE', `connection from ${this.peer} closed`);
    for (const call of this.active.values()) call.abort(gone);
    this.closed = true;
    for (const cleanup of this.cleanups.splice(0)) {
      try {
        cleanup();
      } catch (err) {
        this.options.log.error({ err, peer: this.peer }, 'connection cleanup failed');
      }
    }
    this.options.onClose(this);
    if (this.active.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }
}
