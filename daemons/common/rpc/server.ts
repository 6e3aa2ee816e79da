// RpcServer: listens on TCP (and optionally a unix socket for peers on the same host), keeps a
// table of registered services, and runs one ServerConnection per accepted socket. Closing is
// graceful: stop accepting, let running handlers reply (up to a timeout), then drop connections.
import { lookup } from 'node:dns/promises';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Registry } from 'prom-client';
import { ThreeFsError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { DEFAULT_MAX_FRAME_BYTES, DEFAULT_WRITE_HIGH_WATER_MARK } from './frame.js';
import { defaultTransport, type FrameSocketEvents, type RpcTransportKind } from './frame-socket.js';
import { RpcMetrics } from './metrics.js';
import { NativeFrameSocket } from './native-frame-socket.js';
import { type NativeTransport, nativeTransport } from './native-transport.js';
import { NodeFrameSocket } from './node-frame-socket.js';
import { type RegisteredMethod, ServerConnection } from './server-connection.js';
import type { Handler, Handlers, Method, Service } from './service.js';

export interface RpcServerOptions {
  clusterId: string;
  /** Shared secret every client must present; unset means the cluster has none. */
  token?: string | undefined;
  /** Names this server in handshake replies and logs. */
  name?: string;
  /** TCP host; defaults to 127.0.0.1. Set `port: null` to serve only the unix socket. */
  host?: string;
  /** TCP port; 0 (default) picks a free one, null disables TCP. */
  port?: number | null;
  /** Also listen on this unix socket path (its directory is made; a stale socket is replaced). */
  unixPath?: string;
  maxFrameBytes?: number;
  /** Handlers running at once per connection; reaching it stops reading that socket. */
  maxConcurrentPerConnection?: number;
  maxConnections?: number;
  /** Bytes of replies buffered per connection before it stops reading requests until drain. */
  writeHighWaterMark?: number;
  handshakeTimeoutMs?: number;
  /** The socket layer: 'native' (default: frames read straight into their Buffers) or 'node' (net.Server). */
  transport?: RpcTransportKind;
  log?: Logger;
  registry?: Registry;
}

export const SERVER_DEFAULTS = {
  maxConcurrentPerConnection: 64,
  maxConnections: 4096,
  handshakeTimeoutMs: 5000,
} as const;

function methodKey(serviceId: number, methodId: number): number {
  return serviceId * 0x10000 + methodId;
}

export class RpcServer {
  private readonly methods = new Map<number, RegisteredMethod>();
  private readonly services = new Map<number, Service>();
  private readonly listeners: Server[] = [];
  /** Listener ids on the native transport. */
  private readonly nativeListeners: number[] = [];
  /** The native transport the listeners live on (set by listen). */
  private native: NativeTransport | undefined;
  private readonly transport: RpcTransportKind;
  private readonly connections = new Set<ServerConnection>();
  private readonly log: Logger;
  private readonly metrics: RpcMetrics | undefined;
  private tcpAddress: string | undefined;
  private closing = false;

  constructor(private readonly options: RpcServerOptions) {
    if (options.clusterId === '')
      throw new ThreeFsError('INVALID_ARGUMENT', 'clusterId must not be empty');
    this.log = (options.log ?? createLogger({ role: 'rpc' })).child({ component: 'rpc-server' });
    this.metrics = options.registry ? new RpcMetrics(options.registry, 'server') : undefined;
    this.transport = options.transport ?? defaultTransport();
  }

  /** Adds a service's handlers; every method of the service must have one. */
  register<S extends Service>(service: S, handlers: Handlers<S>): this {
    if (this.services.has(service.id)) {
      throw new ThreeFsError(
        'ALREADY_EXISTS',
        `service id ${service.id} (${service.name}) is already registered`,
      );
    }
    const table = handlers as Record<string, Handler<Method> | undefined>;
    for (const [name, method] of Object.entries(service.methods as Record<string, Method>)) {
      const handler = table[name];
      if (typeof handler !== 'function') {
        throw new ThreeFsError('INVALID_ARGUMENT', `no handler for ${service.name}.${name}`);
      }
      this.methods.set(methodKey(service.id, method.id), { method, handler });
    }
    this.services.set(service.id, service);
    return this;
  }

  async listen(): Promise<void> {
    if (this.transport === 'native') return this.listenNative();
    const { port = 0, host = '127.0.0.1', unixPath } = this.options;
    if (port !== null) {
      const server = await this.listenOn((s, done) => s.listen(port, host, done));
      const address = server.address();
      if (address === null || typeof address === 'string') {
        throw new ThreeFsError('INTERNAL', 'TCP listener has no port');
      }
      this.tcpAddress =
        address.family === 'IPv6'
          ? `[${address.address}]:${address.port}`
          : `${address.address}:${address.port}`;
    }
    if (unixPath !== undefined) {
      prepareUnixPath(unixPath);
      await this.listenOn((s, done) => s.listen(unixPath, done));
    }
    if (this.listeners.length === 0)
      throw new ThreeFsError('INVALID_ARGUMENT', 'no TCP port and no unix path to listen on');
  }

  private async listenNative(): Promise<void> {
    const { port = 0, host = '127.0.0.1', unixPath } = this.options;
    const transport = nativeTransport();
    this.native = transport;
    const maxFrameBytes = this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (port !== null) {
      const ip = isIP(host) !== 0 ? host : (await lookup(host)).address;
      const [id, bound] = transport.listenTcp(ip, port, maxFrameBytes, (conn, peer) =>
        this.acceptNative(conn, peer),
      );
      this.nativeListeners.push(id);
      this.tcpAddress = isIP(ip) === 6 ? `[${ip}]:${bound}` : `${ip}:${bound}`;
    }
    if (unixPath !== undefined) {
      prepareUnixPath(unixPath);
      const id = transport.listenUnix(unixPath, maxFrameBytes, (conn) =>
        this.acceptNative(conn, `unix:${unixPath}`),
      );
      this.nativeListeners.push(id);
    }
    if (this.nativeListeners.length === 0)
      throw new ThreeFsError('INVALID_ARGUMENT', 'no TCP port and no unix path to listen on');
  }

  /** "host:port" of the TCP listener. */
  get address(): string {
    if (this.tcpAddress === undefined)
      throw new ThreeFsError('FAILED_PRECONDITION', 'server is not listening on TCP');
    return this.tcpAddress;
  }

  get unixAddress(): string {
    if (this.options.unixPath === undefined)
      throw new ThreeFsError('FAILED_PRECONDITION', 'no unix socket configured');
    return `unix:${this.options.unixPath}`;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** The highest number of handlers any live connection has run at once. */
  get peakConcurrency(): number {
    let peak = 0;
    for (const connection of this.connections) peak = Math.max(peak, connection.peakActive);
    return peak;
  }

  /** Stops accepting, waits up to `graceMs` for running handlers to reply, then closes every connection. */
  async close(graceMs = 5000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const stopped = Promise.all(
      this.listeners.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
    if (this.nativeListeners.length > 0) {
      for (const id of this.nativeListeners.splice(0)) this.native?.closeListener(id);
      if (this.options.unixPath !== undefined) rmSync(this.options.unixPath, { force: true });
    }
    const drained = Promise.all([...this.connections].map((connection) => connection.drain()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      drained,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
    ]);
    clearTimeout(timer);
    // Idle connections flush their last replies; ones still running handlers are cut off.
    await Promise.all(
      [...this.connections].map((connection) =>
        connection.activeCalls === 0 ? connection.end() : connection.destroy(),
      ),
    );
    await stopped;
  }

  private async listenOn(start: (server: Server, done: () => void) => void): Promise<Server> {
    const server = createServer(
      {
        noDelay: true,
        highWaterMark: this.options.writeHighWaterMark ?? DEFAULT_WRITE_HIGH_WATER_MARK,
      },
      (socket) => this.accept(socket),
    );
    server.maxConnections = this.options.maxConnections ?? SERVER_DEFAULTS.maxConnections;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      start(server, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error({ err }, 'listener error'));
    this.listeners.push(server);
    return server;
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const peer =
      socket.remoteAddress !== undefined
        ? `${socket.remoteAddress}:${socket.remotePort}`
        : `unix:${this.options.unixPath}`;
    if (socket.remoteAddress !== undefined) socket.setKeepAlive(true, 30_000);
    const maxFrameBytes = this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.startConnection(
      peer,
      (events) => new NodeFrameSocket(socket, peer, maxFrameBytes, events, this.metrics),
    );
  }

  private acceptNative(conn: number, peer: string): void {
    const transport = this.native;
    if (transport === undefined) throw new ThreeFsError('INTERNAL', 'accepted before listening');
    const maxConnections = this.options.maxConnections ?? SERVER_DEFAULTS.maxConnections;
    if (this.closing || this.connections.size >= maxConnections) {
      transport.destroy(conn);
      return;
    }
    this.startConnection(peer, (events) => {
      const socket = new NativeFrameSocket(transport, {
        peer,
        maxFrameBytes: this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
        writeHighWaterMark: this.options.writeHighWaterMark ?? DEFAULT_WRITE_HIGH_WATER_MARK,
        events,
        metrics: this.metrics,
      });
      transport.attach(conn, socket);
      return socket.bind(conn);
    });
  }

  private startConnection(
    peer: string,
    open: (events: FrameSocketEvents) => NodeFrameSocket | NativeFrameSocket,
  ): void {
    const connection = new ServerConnection(peer, open, {
      identity: { clusterId: this.options.clusterId, token: this.options.token },
      serverName: this.options.name ?? '',
      maxFrameBytes: this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      maxConcurrent:
        this.options.maxConcurrentPerConnection ?? SERVER_DEFAULTS.maxConcurrentPerConnection,
      handshakeTimeoutMs: this.options.handshakeTimeoutMs ?? SERVER_DEFAULTS.handshakeTimeoutMs,
      lookup: (serviceId, methodId) => this.methods.get(methodKey(serviceId, methodId)),
      describeMissing: (serviceId, methodId) => this.describeMissing(serviceId, methodId),
      log: this.log,
      metrics: this.metrics,
      onClose: (closed) => this.connections.delete(closed),
    });
    this.connections.add(connection);
  }

  private describeMissing(serviceId: number, methodId: number): string {
    const service = this.services.get(serviceId);
    if (service === undefined) return `unknown service id ${serviceId} (method ${methodId})`;
    return `service ${service.name} (id ${serviceId}) has no method id ${methodId}`;
  }
}

/** Where a unix listener binds: its directory made, a socket left by an earlier process removed. */
function prepareUnixPath(unixPath: string): void {
  mkdirSync(path.dirname(unixPath), { recursive: true });
  rmSync(unixPath, { force: true });
}
