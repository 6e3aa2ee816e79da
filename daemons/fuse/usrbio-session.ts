// One program's USRBIO connection inside the FUSE daemon: its identity (SO_PEERCRED), its shared
// region and rings, the files it registered, and the I/O it has in flight. Every SQE is checked
// (by the addon: op, length, region bounds; here: a registered file opened for that access), a bad
// one gets an error completion, and a program that breaks its ring indices or the protocol loses
// its connection — nothing it does reaches past its own session. In flight is bounded by the
// free completion slots, so a completion always has a slot: backpressure, never loss.
import { readFile, stat } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { constants } from 'node:os';
import type { FileApi, FileHandle, MetaUser } from '../client/file-api.js';
import { regionOfDescriptor, type SharedRegion } from '../client/region-reads.js';
import { ThreeFsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import {
  accessOfFdinfo,
  CQ_DOORBELL,
  type DaemonMessage,
  ProgramMessage,
  SQ_DOORBELL,
  splitLines,
} from '../common/usrbio-protocol.js';
import {
  type DaemonRing,
  Posted,
  TAKEN_FIELDS,
  UsrbioOp,
  usrbioAddon,
} from '../common/usrbio-native.js';
import type { CallerGroups } from './caller-groups.js';
import { errnoOf } from './errno.js';

const { errno } = constants;
/** SQEs taken per pump step (one storage batch for the reads among them). */
const MAX_TAKE = 256;
/**
 * Reads taken together go to storage in groups of about this many bytes, each completing on its
 * own: small reads still share storage calls, while large ones complete as they arrive instead of
 * waiting for the slowest read of everything taken at once (which drained the program's queue).
 */
const READ_GROUP_BYTES = 1024 * 1024;
/** Doorbells are hints: past this much unread output the program is not listening anyway. */
const MAX_UNREAD_OUTPUT = 64 * 1024;

export interface UsrbioLimits {
  maxEntries: number;
  maxRegionBytes: number;
  maxIoBytes: number;
  maxFiles: number;
}

interface RegisteredFile {
  handle: FileHandle;
  read: boolean;
  write: boolean;
}

export interface UsrbioSessionOptions {
  api: FileApi;
  /** st_dev of the mount: registered descriptors must be files of this mount. */
  mountDev: number;
  limits: UsrbioLimits;
  /** Let storage servers on this host read straight into the program's region (region-reads.ts). */
  sharedMemoryReads: boolean;
  groups: CallerGroups;
  /** A ring write changed file `inode` (called before its completion is posted). */
  onFileChanged: (inode: number) => void;
  log: Logger;
}

export class UsrbioSession {
  private ring: DaemonRing | undefined;
  /** The ring's memfd as storage servers on this host open it, to read straight into it. */
  private region: SharedRegion | undefined;
  private readonly files = new Map<number, RegisteredFile>();
  private nextFileId = 1;
  private inflight = 0;
  private done: number[] = [];
  /** Files ring writes changed since the last completions were posted. */
  private readonly changed = new Set<number>();
  private flushQueued = false;
  private closed = false;
  private requests: Promise<void> = Promise.resolve();
  private input = '';
  private peer = { pid: 0, uid: 0, gid: 0 };
  private user: MetaUser = { uid: 0, gid: 0 };
  private drained: (() => void) | undefined;
  /** Batches of completions posted, and the doorbells rung for them (the program was waiting). */
  posted = 0;
  doorbells = 0;
  /** Resolves once the connection is gone and every handle is closed. */
  readonly finished: Promise<void>;
  private finish!: () => void;

  constructor(
    private readonly socket: Socket,
    private readonly options: UsrbioSessionOptions,
  ) {
    this.finished = new Promise((resolve) => (this.finish = resolve));
  }

  get inFlight(): number {
    return this.inflight;
  }

  async start(): Promise<void> {
    const fd = (this.socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) {
      this.socket.destroy();
      throw new ThreeFsError('INTERNAL', 'a unix socket without a descriptor');
    }
    this.peer = usrbioAddon().peerCred(fd);
    this.user = {
      uid: this.peer.uid,
      gid: this.peer.gid,
      groups: await this.options.groups.of(this.peer.pid),
    };
    this.socket.setEncoding('utf8');
    this.socket.on('data', (chunk: string) => this.onData(chunk));
    this.socket.on('error', () => this.socket.destroy());
    this.socket.on('close', () => void this.close());
  }

  private onData(chunk: string): void {
    const split = splitLines(this.input, chunk);
    if (split === null) return this.fail('a control line is too long');
    this.input = split.rest;
    for (const line of split.lines) {
      if (line === SQ_DOORBELL) {
        this.pump();
        continue;
      }
      let parsed;
      try {
        parsed = ProgramMessage.safeParse(JSON.parse(line));
      } catch {
        return this.fail('a control line is not JSON');
      }
      if (!parsed.success) return this.fail(`bad control message: ${parsed.error.message}`);
      const msg = parsed.data;
      if (msg.t === 'sq') this.pump();
      else this.requests = this.requests.then(() => this.handle(msg));
    }
  }

  private async handle(msg: Exclude<ProgramMessage, { t: 'sq' }>): Promise<void> {
    if (this.closed) return;
    try {
      const extra = await this.request(msg);
      this.send({ t: 'reply', req: msg.req, ok: true, ...extra });
    } catch (err) {
      const code = err instanceof ThreeFsError ? err.code : 'INTERNAL';
      const message = err instanceof Error ? err.message : String(err);
      this.send({ t: 'reply', req: msg.req, ok: false, code, message });
    }
  }

  private async request(
    msg: Exclude<ProgramMessage, { t: 'sq' }>,
  ): Promise<{ id?: number; inode?: number }> {
    const { limits } = this.options;
    switch (msg.t) {
      case 'hello': {
        if (this.ring) throw new ThreeFsError('FAILED_PRECONDITION', 'the region is registered');
        if (msg.entries > limits.maxEntries)
          throw new ThreeFsError('RESOURCE_EXHAUSTED', `at most ${limits.maxEntries} entries`);
        if (msg.dataBytes > limits.maxRegionBytes)
          throw new ThreeFsError('RESOURCE_EXHAUSTED', `at most ${limits.maxRegionBytes} bytes`);
        try {
          const { DaemonRing } = usrbioAddon();
          this.ring = new DaemonRing(
            this.peer.pid,
            msg.fd,
            msg.entries,
            msg.dataBytes,
            limits.maxIoBytes,
          );
          // Our own descriptor of the region names it for as long as the ring lives.
          if (this.options.sharedMemoryReads)
            this.region = regionOfDescriptor(this.ring.fd, this.ring.regionBytes);
        } catch (err) {
          throw new ThreeFsError('INVALID_ARGUMENT', (err as Error).message);
        }
        return {};
      }
      case 'file': {
        if (this.files.size >= limits.maxFiles)
          throw new ThreeFsError('RESOURCE_EXHAUSTED', `at most ${limits.maxFiles} files`);
        const file = await this.openRegistered(msg.fd, msg.write);
        const id = this.nextFileId++;
        this.files.set(id, file);
        return { id, inode: file.handle.inode };
      }
      case 'unfile': {
        const file = this.files.get(msg.id);
        if (!file) throw new ThreeFsError('EBADF', `file ${msg.id} is not registered`);
        this.files.delete(msg.id);
        await file.handle.close();
        return {};
      }
    }
  }

  /**
   * A descriptor the program holds: it must be a regular file of this mount (so the kernel and
   * meta already checked its open), and the program gets the access its open mode grants. The
   * daemon opens its own handle on the inode as the program's user.
   */
  private async openRegistered(fd: number, write: boolean): Promise<RegisteredFile> {
    const link = `/proc/${this.peer.pid}/fd/${fd}`;
    let st;
    let fdinfo;
    try {
      st = await stat(link);
      fdinfo = await readFile(`/proc/${this.peer.pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      throw new ThreeFsError('EBADF', `descriptor ${fd} is not open in the program`);
    }
    if (st.dev !== this.options.mountDev || !st.isFile())
      throw new ThreeFsError('EINVAL', `descriptor ${fd} is not a regular file of this mount`);
    const access = accessOfFdinfo(fdinfo);
    if (!access) throw new ThreeFsError('EBADF', `descriptor ${fd} has no usable access mode`);
    if (write && !access.write)
      throw new ThreeFsError('EBADF', `descriptor ${fd} is not open for writing`);
    const handle = await this.options.api.open(
      st.ino,
      { read: access.read, write: write && access.write },
      this.user,
    );
    return { handle, read: access.read, write: write && access.write };
  }

  /** Takes SQEs while completion slots are free for them, and starts their I/O. */
  private pump(): void {
    const ring = this.ring;
    if (!ring || this.closed) return;
    for (;;) {
      const space = ring.cqSpace();
      if (space < 0) return this.fail('the completion ring indices are impossible');
      const room = space - this.inflight - this.done.length / 2;
      if (room <= 0) return;
      const rows = ring.take(Math.min(room, MAX_TAKE));
      if (rows === null) return this.fail('the submission ring indices are impossible');
      if (rows.length === 0) return;
      this.run(ring, rows);
    }
  }

  private run(ring: DaemonRing, rows: Float64Array): void {
    const reads: Array<{
      handle: FileHandle;
      target: Buffer;
      position: number;
      regionOffset: number;
    }> = [];
    const readTags: number[] = [];
    for (let i = 0; i < rows.length; i += TAKEN_FIELDS) {
      const [op, fileId, fileOffset, length, bufOffset, userData, error] = rows.subarray(
        i,
        i + TAKEN_FIELDS,
      ) as unknown as number[];
      this.inflight++;
      if (error !== 0) {
        this.complete(userData!, error!);
        continue;
      }
      const file = this.files.get(fileId!);
      const allowed = op === UsrbioOp.read ? file?.read : file?.write;
      if (!file || !allowed) {
        this.complete(userData!, -errno.EBADF);
        continue;
      }
      const target = ring.data.subarray(bufOffset!, bufOffset! + length!);
      if (target.length !== length)
        throw new ThreeFsError('INTERNAL', 'an SQE passed validation outside the region');
      if (op === UsrbioOp.read) {
        reads.push({
          handle: file.handle,
          target,
          position: fileOffset!,
          regionOffset: ring.dataOffset + bufOffset!,
        });
        readTags.push(userData!);
      } else {
        file.handle.writeThrough(target, fileOffset!).then(
          (n) => {
            this.changed.add(file.handle.inode);
            this.complete(userData!, n);
          },
          (err: unknown) => this.complete(userData!, -errnoOf(err)),
        );
      }
    }
    for (let start = 0; start < reads.length;) {
      let end = start + 1;
      let bytes = reads[start]!.target.length;
      while (end < reads.length && bytes + reads[end]!.target.length <= READ_GROUP_BYTES) {
        bytes += reads[end]!.target.length;
        end++;
      }
      this.readGroup(reads.slice(start, end), readTags.slice(start, end));
      start = end;
    }
  }

  private readGroup(
    reads: Array<{ handle: FileHandle; target: Buffer; position: number; regionOffset: number }>,
    tags: number[],
  ): void {
    // Each read completes as its storage node answers, not with the slowest node of the group:
    // the program refills its queue sooner. A batch that resolves has reported every read.
    const reported = new Array<boolean>(tags.length).fill(false);
    this.options.api
      .readMany(reads, this.region, (i, n) => {
        reported[i] = true;
        this.complete(tags[i]!, n);
      })
      .catch((err: unknown) => {
        this.options.log.debug({ err }, 'usrbio read batch failed');
        tags.forEach((tag, i) => reported[i] || this.complete(tag, -errnoOf(err)));
      });
  }

  private complete(userData: number, result: number): void {
    this.inflight--;
    if (this.inflight < 0) throw new ThreeFsError('INTERNAL', 'usrbio in-flight count below 0');
    if (!this.closed) this.done.push(userData, result);
    else if (this.inflight === 0) this.drained?.();
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => this.flushCompletions());
  }

  /** Publishes every finished I/O at once, rings the program's doorbell if it waits, takes more. */
  private flushCompletions(): void {
    this.flushQueued = false;
    // Before the completions: once the program sees a write done, so must a stat through the
    // mount. Once per file per batch, however many of its writes the batch completes.
    for (const inode of this.changed) this.options.onFileChanged(inode);
    this.changed.clear();
    if (this.closed || !this.ring || this.done.length === 0) return;
    const pairs = Float64Array.from(this.done);
    this.done = [];
    const posted = this.ring.complete(pairs);
    if (posted === Posted.noRoom) return this.fail('the completion ring lost free slots');
    this.posted++;
    // A program that is not waiting reaps these on its next wait(): no write, no wake-up.
    if (posted === Posted.wake && this.socket.writableLength < MAX_UNREAD_OUTPUT) {
      this.doorbells++;
      this.socket.write(`${CQ_DOORBELL}\n`);
    }
    this.pump();
  }

  private send(msg: DaemonMessage): void {
    if (!this.socket.destroyed) this.socket.write(`${JSON.stringify(msg)}\n`);
  }

  private fail(reason: string): void {
    this.options.log.warn({ pid: this.peer.pid, reason }, 'usrbio connection dropped');
    this.socket.destroy();
    void this.close();
  }

  /** After the connection: wait for in-flight I/O (bounded by the file API's timeouts), close files. */
  async close(): Promise<void> {
    if (this.closed) return this.finished;
    this.closed = true;
    this.socket.destroy();
    if (this.inflight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    await this.requests;
    const files = [...this.files.values()];
    this.files.clear();
    const results = await Promise.allSettled(files.map((f) => f.handle.close()));
    for (const r of results)
      if (r.status === 'rejected')
        this.options.log.warn({ err: r.reason }, 'closing a usrbio file failed');
    // Storage servers unmap it before our descriptor goes (it closes with the ring's mapping).
    if (this.region) await this.options.api.storage.releaseRegion(this.region);
    this.region = undefined;
    this.ring = undefined; // the mapping goes once no Buffer slice refers to it
    this.finish();
    return this.finished;
  }
}
