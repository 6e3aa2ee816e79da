// The zero-copy I/O API for programs (3FS's USRBIO, brief §6.2): a shared region of data
// buffers plus submission/completion rings between this program and the FUSE daemon of a mount.
// Files are opened through the mount as usual (permissions, O_TRUNC, close-to-open stay POSIX)
// and registered by descriptor; then batches of reads and writes at offsets go through the rings,
// and the daemon reads straight into / writes straight from the region. One producer and one
// consumer per ring: use one Usrbio from one place at a time (open several for parallel users).
//
//   const ring = await Usrbio.open('/mnt/3fs', { bytes: 64 << 20, entries: 256 });
//   const fh = await fs.promises.open('/mnt/3fs/data', 'r');
//   const file = await ring.registerFile(fh.fd);
//   const buf = ring.buffer(1 << 20);
//   ring.prepare({ op: 'read', file, offset: 0, buffer: buf, userData: 1 });
//   ring.submit();
//   const [done] = await ring.wait(1, 5_000); // { userData: 1, result: bytes read or -errno }
import { stat } from 'node:fs/promises';
import net from 'node:net';
import { constants } from 'node:os';
import { isStatusCode, ThreeFsError } from '../common/errors.js';
import {
  CQ_DOORBELL,
  DEFAULT_USRBIO_DIR,
  DaemonMessage,
  type ProgramMessage,
  SQ_DOORBELL,
  splitLines,
  usrbioSocketPath,
} from '../common/usrbio-protocol.js';
import {
  type ProgramRing,
  UsrbioOp,
  type UsrbioOpName,
  usrbioAddon,
} from '../common/usrbio-native.js';

export interface UsrbioOptions {
  /** Size of the shared data region (rounded up to 4 KiB). */
  bytes: number;
  /** Ring slots: the most I/Os prepared and not yet reaped (a power of two, ≤ 4096). */
  entries?: number;
  /** Where the daemon's control sockets are (its `usrbio.dir`). */
  socketDir?: string;
  /** Deadline of each control request (open, registerFile, unregisterFile). */
  requestTimeoutMs?: number;
}

export interface UsrbioFile {
  readonly id: number;
  readonly inode: number;
  readonly write: boolean;
}

export interface UsrbioIo {
  op: UsrbioOpName;
  file: UsrbioFile;
  /** Position in the file. */
  offset: number;
  /** A slice of this ring's region (ring.buffer() or ring.data.subarray()); its length is the I/O's. */
  buffer: Buffer;
  /** Echoed in the completion; a safe non-negative integer. */
  userData: number;
}

export interface UsrbioCompletion {
  userData: number;
  /** Bytes read or written (a read past the end of file reads fewer), or -errno. */
  result: number;
  /** The errno name when result < 0 (EINVAL: bad SQE, EFAULT: outside the region, EBADF: file). */
  error?: string;
}

/** A control request as the program writes it, before it gets its `req` number. */
type RequestBody = ProgramMessage extends infer M
  ? M extends { req: number }
    ? Omit<M, 'req'>
    : never
  : never;

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, value]) => [value, name]),
);

export class Usrbio {
  private readonly pendingReplies = new Map<
    number,
    { resolve: (m: DaemonMessage) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  private nextReq = 1;
  private input = '';
  private doorbell: (() => void) | undefined;
  private closedError: Error | undefined;
  /** Prepared and not yet reaped: at most `entries`, so every completion has a slot. */
  private outstanding = 0;
  private prepared = 0;
  private allocated = 0;

  private constructor(
    private readonly native: ProgramRing,
    private readonly socket: net.Socket,
    readonly entries: number,
    private readonly timeoutMs: number,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.shut(err));
    socket.on('close', () =>
      this.shut(new ThreeFsError('UNAVAILABLE', 'usrbio connection closed')),
    );
  }

  /** Connects to the FUSE daemon of `mountPoint` and registers a new region. */
  static async open(mountPoint: string, options: UsrbioOptions): Promise<Usrbio> {
    const entries = options.entries ?? 256;
    const { dev } = await stat(mountPoint);
    const socketPath = usrbioSocketPath(options.socketDir ?? DEFAULT_USRBIO_DIR, dev);
    const native = new (usrbioAddon().ProgramRing)(entries, Math.ceil(options.bytes / 4096) * 4096);
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(socketPath, () => {
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', (err) =>
        reject(
          new ThreeFsError(
            'UNAVAILABLE',
            `no usrbio service for ${mountPoint} at ${socketPath} (${err.message}); is it a threefs mount?`,
          ),
        ),
      );
    });
    const ring = new Usrbio(native, socket, entries, options.requestTimeoutMs ?? 30_000);
    try {
      await ring.request({ t: 'hello', fd: native.fd, entries, dataBytes: native.data.length });
    } catch (err) {
      ring.close();
      throw err;
    }
    return ring;
  }

  /** The whole shared data region. */
  get data(): Buffer {
    return this.native.data;
  }

  /** More I/Os that can be prepared now (0 = reap completions first). */
  get space(): number {
    return this.entries - this.outstanding;
  }

  /** A fresh 4 KiB-aligned slice of the region; throws RESOURCE_EXHAUSTED when it is used up. */
  buffer(size: number): Buffer {
    if (!Number.isSafeInteger(size) || size <= 0)
      throw new ThreeFsError('INVALID_ARGUMENT', `bad buffer size ${size}`);
    const start = Math.ceil(this.allocated / 4096) * 4096;
    if (start + size > this.data.length)
      throw new ThreeFsError('RESOURCE_EXHAUSTED', `the region has no ${size} bytes left`);
    this.allocated = start + size;
    return this.data.subarray(start, start + size);
  }

  /**
   * Registers a descriptor this program opened through the mount; the I/O it allows follows its
   * open mode (`write` asks for writes too and needs O_WRONLY or O_RDWR).
   */
  async registerFile(fd: number, options: { write?: boolean } = {}): Promise<UsrbioFile> {
    const write = options.write ?? false;
    const reply = await this.request({ t: 'file', fd, write });
    if (reply.t !== 'reply' || !reply.ok || reply.id === undefined || reply.inode === undefined)
      throw new ThreeFsError('PROTOCOL_ERROR', 'file registration reply without an id');
    return { id: reply.id, inode: reply.inode, write };
  }

  async unregisterFile(file: UsrbioFile): Promise<void> {
    await this.request({ t: 'unfile', id: file.id });
  }

  /**
   * Queues one I/O (not visible to the daemon until submit()). Returns false when `entries` I/Os
   * are already outstanding: reap with wait() first (backpressure; nothing is dropped).
   */
  prepare(io: UsrbioIo): boolean {
    this.checkOpen();
    const data = this.native.data;
    const bufOffset = io.buffer.byteOffset - data.byteOffset;
    if (
      io.buffer.buffer !== data.buffer ||
      bufOffset < 0 ||
      bufOffset + io.buffer.length > data.length
    )
      throw new ThreeFsError('INVALID_ARGUMENT', "the buffer is not a slice of this ring's region");
    if (this.outstanding >= this.entries) return false;
    if (
      !this.native.prepare(
        UsrbioOp[io.op],
        io.file.id,
        io.offset,
        io.buffer.length,
        bufOffset,
        io.userData,
      )
    )
      throw new ThreeFsError('INTERNAL', 'the submission ring is full below the outstanding limit');
    this.outstanding++;
    this.prepared++;
    return true;
  }

  /** Hands every prepared I/O to the daemon; returns how many. */
  submit(): number {
    this.checkOpen();
    const n = this.native.submit();
    if (n !== this.prepared)
      throw new ThreeFsError('INTERNAL', `submitted ${n} of ${this.prepared}`);
    this.prepared = 0;
    if (n > 0) this.ring();
    return n;
  }

  /** Completions, at least `min` of them unless `timeoutMs` passes first (then what there is). */
  async wait(min: number, timeoutMs: number): Promise<UsrbioCompletion[]> {
    const out: UsrbioCompletion[] = [];
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        this.reapInto(out);
        if (out.length >= min) return out;
        this.checkOpen();
        const left = deadline - Date.now();
        if (left <= 0) return out;
        // The daemon rings only for a program that asked; completions it posted before it could
        // see the request are there already, and nobody will ring for them.
        if (this.native.armWakeup()) continue;
        await this.doorbellOr(left);
      }
    } finally {
      this.native.disarmWakeup();
    }
  }

  /** Resolves at the next completion doorbell (or the connection's end), or after `ms`. */
  private doorbellOr(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.doorbell = undefined;
        resolve();
      }, ms);
      this.doorbell = () => {
        clearTimeout(timer);
        this.doorbell = undefined;
        resolve();
      };
    });
  }

  /** Closes the connection; the daemon finishes in-flight I/O and closes the files. */
  close(): void {
    this.socket.destroy();
    this.shut(new ThreeFsError('CANCELLED', 'usrbio ring closed'));
  }

  private reapInto(out: UsrbioCompletion[]): void {
    const pairs = this.native.reap(this.entries);
    for (let i = 0; i < pairs.length; i += 2) {
      const result = pairs[i + 1]!;
      out.push({
        userData: pairs[i]!,
        result,
        ...(result < 0 ? { error: errnoNames.get(-result) ?? `errno ${-result}` } : {}),
      });
    }
    const n = pairs.length / 2;
    if (n === 0) return;
    this.outstanding -= n;
    if (this.outstanding < 0) throw new ThreeFsError('INTERNAL', 'more completions than I/Os');
    // Freed completion slots let the daemon take SQEs it held back; tell it.
    if (this.native.unconsumed() > 0) this.ring();
  }

  private ring(): void {
    if (!this.socket.destroyed) this.socket.write(`${SQ_DOORBELL}\n`);
  }

  private checkOpen(): void {
    if (this.closedError) throw this.closedError;
  }

  private request(msg: RequestBody): Promise<DaemonMessage> {
    this.checkOpen();
    const req = this.nextReq++;
    return new Promise<DaemonMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingReplies.delete(req);
        reject(new ThreeFsError('DEADLINE_EXCEEDED', `usrbio ${msg.t} got no reply`));
      }, this.timeoutMs);
      this.pendingReplies.set(req, { resolve, reject, timer });
      this.socket.write(`${JSON.stringify({ ...msg, req })}\n`);
    }).then((reply) => {
      if (reply.t === 'reply' && !reply.ok)
        throw new ThreeFsError(isStatusCode(reply.code) ? reply.code : 'INTERNAL', reply.message);
      return reply;
    });
  }

  private onData(chunk: string): void {
    const split = splitLines(this.input, chunk);
    if (split === null) return void this.socket.destroy();
    this.input = split.rest;
    for (const line of split.lines) {
      if (line === CQ_DOORBELL) {
        this.doorbell?.();
        continue;
      }
      let msg: DaemonMessage;
      try {
        msg = DaemonMessage.parse(JSON.parse(line));
      } catch {
        this.socket.destroy();
        return;
      }
      if (msg.t === 'cq') {
        this.doorbell?.();
        continue;
      }
      const waiter = this.pendingReplies.get(msg.req);
      if (!waiter) {
        // req 0: the daemon refused the connection before any request.
        if (!msg.ok) this.shut(new ThreeFsError('UNAVAILABLE', msg.message));
        continue;
      }
      this.pendingReplies.delete(msg.req);
      clearTimeout(waiter.timer);
      waiter.resolve(msg);
    }
  }

  private shut(err: Error): void {
    this.closedError ??= err;
    for (const waiter of this.pendingReplies.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(this.closedError);
    }
    this.pendingReplies.clear();
    this.doorbell?.();
  }
}
