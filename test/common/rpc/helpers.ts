// Shared fixtures for the RPC tests: a server on 127.0.0.1 with the Core service and a test
// service, a logger whose lines the test can read, and a raw socket for speaking bad bytes.
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { z } from 'zod';
import { ThreeFsError } from '../../../daemons/common/errors.js';
import { createLogger, type Logger } from '../../../daemons/common/log.js';
import { encodeBody } from '../../../daemons/common/rpc/body-codec.js';
import {
  encodeFrame,
  type Frame,
  FrameKind,
  HEADER_BYTES,
} from '../../../daemons/common/rpc/frame.js';
import { FrameDecoder } from '../../../daemons/common/rpc/frame-decoder.js';
import {
  CoreService,
  coreHandlers,
  defineService,
  RpcClient,
  type RpcClientOptions,
  RpcServer,
  type RpcServerOptions,
} from '../../../daemons/common/rpc/index.js';

export const CLUSTER = 'test-cluster';

export interface CapturedLog {
  log: Logger;
  lines: Record<string, unknown>[];
}

export function captureLog(): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { log: createLogger({ role: 'test', level: 'debug', destination: sink }), lines };
}

/** A service exercising errors, slowness, signals and payloads. */
export const TestService = defineService({
  id: 100,
  name: 'Test',
  methods: {
    sleep: {
      id: 1,
      request: z.object({ ms: z.number().int().min(0).max(60_000), tag: z.number().default(0) }),
      response: z.object({ tag: z.number(), aborted: z.string().optional() }),
    },
    fail: {
      id: 2,
      request: z.object({
        code: z.string(),
        message: z.string(),
        plain: z.boolean().default(false),
      }),
      response: z.object({}),
    },
    /** Waits until its signal aborts and records why. */
    hang: { id: 3, request: z.object({ key: z.string() }), response: z.object({}) },
    sum: {
      id: 4,
      request: z.object({
        values: z.array(z.number()).max(1000),
        limits: z.object({ max: z.number().positive() }),
      }),
      response: z.object({ total: z.number() }),
    },
    /** Reports ctx.payloadCrc and echoes the payload, replying with `replyCrc` as its CRC. */
    checksum: {
      id: 5,
      request: z.object({ replyCrc: z.number().optional() }),
      response: z.object({ payloadCrc: z.number() }),
    },
  },
});

export interface TestServer {
  server: RpcServer;
  logs: CapturedLog;
  /** Abort reasons seen by `hang` handlers, by key. */
  aborts: Map<string, string>;
  close(): Promise<void>;
}

export async function startServer(options: Partial<RpcServerOptions> = {}): Promise<TestServer> {
  const logs = captureLog();
  const aborts = new Map<string, string>();
  const server = new RpcServer({ clusterId: CLUSTER, log: logs.log, ...options });
  server.register(CoreService, coreHandlers);
  server.register(TestService, {
    sleep: async ({ ms, tag }, ctx) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return {
        body: {
          tag,
          aborted: ctx.signal.aborted ? String((ctx.signal.reason as Error).message) : undefined,
        },
      };
    },
    fail: ({ code, message, plain }) => {
      if (plain) throw new TypeError(message);
      throw new ThreeFsError(code as ThreeFsError['code'], message, { where: 'test' });
    },
    hang: ({ key }, ctx) =>
      new Promise((_resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('hang handler was never aborted')), 10_000);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          const reason = ctx.signal.reason as ThreeFsError;
          aborts.set(key, reason.code);
          reject(reason);
        });
      }),
    sum: ({ values }) => ({ body: { total: values.reduce((a, b) => a + b, 0) } }),
    checksum: ({ replyCrc }, ctx) => ({
      body: { payloadCrc: ctx.payloadCrc },
      payload: ctx.payload,
      payloadCrc: replyCrc,
    }),
  });
  await server.listen();
  return { server, logs, aborts, close: () => server.close(1000) };
}

export function newClient(address: string, options: Partial<RpcClientOptions> = {}): RpcClient {
  return new RpcClient({ address, clusterId: CLUSTER, log: captureLog().log, ...options });
}

/** A raw TCP socket for sending arbitrary bytes and reading whatever comes back until close. */
export interface RawPeer {
  socket: Socket;
  /** Resolves with every frame received (decodable ones) once the server closes the socket. */
  closed: Promise<{ frames: Frame[]; bytes: number }>;
  /** Resolves with the next frame received. */
  nextFrame(): Promise<Frame>;
}

export async function rawConnect(address: string): Promise<RawPeer> {
  const [host, port] = [
    address.slice(0, address.lastIndexOf(':')),
    Number(address.slice(address.lastIndexOf(':') + 1)),
  ];
  const socket = connect({ host, port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const decoder = new FrameDecoder(1 << 20);
  const frames: Frame[] = [];
  let bytes = 0;
  let waiters: ((frame: Frame) => void)[] = [];
  let broken = false;
  socket.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    decoder.push(chunk);
    if (broken) return;
    try {
      for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) {
        frames.push(frame);
        const waiter = waiters.shift();
        waiter?.(frame);
      }
    } catch {
      broken = true;
    }
  });
  socket.on('error', () => undefined);
  const closed = new Promise<{ frames: Frame[]; bytes: number }>((resolve) =>
    socket.once('close', () => {
      waiters = [];
      resolve({ frames, bytes });
    }),
  );
  let seen = 0;
  return {
    socket,
    closed,
    nextFrame: () => {
      const ready = frames[seen];
      if (ready !== undefined) {
        seen++;
        return Promise.resolve(ready);
      }
      return new Promise<Frame>((resolve) =>
        waiters.push((frame) => {
          seen++;
          resolve(frame);
        }),
      );
    },
  };
}

export function handshakeFrame(clusterId = CLUSTER, version?: number): Buffer {
  const [head] = encodeFrame(
    { kind: FrameKind.Handshake, serviceId: 0, methodId: 0, requestId: 0, timeoutMs: 0, version },
    encodeBody({ clusterId }),
  );
  return head;
}

export function requestFrame(
  serviceId: number,
  methodId: number,
  requestId: number,
  body: unknown,
  payload?: Buffer,
): Buffer {
  const [head, tail] = encodeFrame(
    { kind: FrameKind.Request, serviceId, methodId, requestId, timeoutMs: 0 },
    encodeBody(body),
    payload,
  );
  return tail === undefined ? head : Buffer.concat([head, tail]);
}

export { HEADER_BYTES };

/** Resolves when `predicate` holds, polling; fails after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean,
  timeoutMs = 5000,
  what = 'condition',
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
