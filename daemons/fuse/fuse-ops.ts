// The FUSE operations: each request from the native bridge becomes a FileApi call with the
// caller's identity (uid, gid, supplementary groups), and its answer goes back by request id.
// Every failure becomes an errno reply, so a request is always answered and a bad request never
// takes the daemon down. Open files and directories live in bounded handle tables.
import type { FileApi, FileHandle, MetaUser } from '../client/file-api.js';
import { hasCode, ThreeFsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { CallerGroups } from './caller-groups.js';
import { DirHandle } from './dir-handle.js';
import type { FuseOpMetrics } from './op-metrics.js';
import { ReplyBuffers, type SharedSlots } from './reply-buffers.js';
import { errno, errnoOf } from './errno.js';
import {
  attrRow,
  isDirectIo,
  isReadOnly,
  openFlagsOf,
  statfsFields,
  writeAttrRow,
} from './fuse-attrs.js';
import {
  ATTR_FIELDS,
  type FuseRequest,
  type NativeFuseSession,
  Op,
  opName,
  SetAttr,
} from './native-fuse.js';
import { constants } from 'node:fs';

export interface FuseOpsOptions {
  api: FileApi;
  groups: CallerGroups;
  log: Logger;
  /** Kernel cache lifetimes in seconds. */
  attrTimeoutS: number;
  entryTimeoutS: number;
  negativeTimeoutS: number;
  maxHandles: number;
  /** Reply memory storage on this host may read straight into (see reply-buffers.ts). */
  sharedReplies?: SharedSlots;
  /** Per-request counts and latencies (the daemon's /metrics). */
  metrics?: FuseOpMetrics;
}

const RENAME_NOREPLACE = 1;

/** Open flags for the file API; the kernel itself places O_APPEND writes at its file size. */
function kernelPlaced(flags: number) {
  return { ...openFlagsOf(flags), append: false };
}

export class FuseOps {
  private session: NativeFuseSession | undefined;
  private readonly files = new Map<number, FileHandle>();
  private readonly dirs = new Map<number, DirHandle>();
  private nextFh = 1;
  /** Requests being handled now (tests and /healthz read it). */
  active = 0;
  /** Called once when the kernel ended the session (unmounted from outside). */
  onEnded: (() => void) | undefined;

  private readonly replyBuffers: ReplyBuffers;

  constructor(private readonly o: FuseOpsOptions) {
    this.replyBuffers = new ReplyBuffers(64, o.sharedReplies);
  }

  attach(session: NativeFuseSession): void {
    this.session = session;
  }

  get openFiles(): number {
    return this.files.size;
  }

  /** Entry point of the bridge's thread-safe function: never throws. */
  dispatch(batch: FuseRequest[]): void {
    for (const request of batch) {
      if (request.op === Op.interrupt) {
        this.s.replyErr(request.id, errno.EINTR);
        continue;
      }
      if (request.op === Op.ended) {
        this.onEnded?.();
        continue;
      }
      this.active++;
      const started = performance.now();
      this.handle(request)
        .then(
          () => this.o.metrics?.finished(request.op, 0, (performance.now() - started) / 1000),
          (err: unknown) => {
            const code = errnoOf(err);
            this.o.metrics?.finished(request.op, code, (performance.now() - started) / 1000);
            if (code === errno.EIO)
              this.o.log.warn(
                { err, op: opName.get(request.op), ino: request.ino },
                'FUSE op failed',
              );
            this.s.replyErr(request.id, code);
          },
        )
        .finally(() => {
          this.active--;
        });
    }
  }

  /** Closes every handle the kernel did not release (at unmount). */
  async closeAll(): Promise<void> {
    const files = [...this.files.values()];
    this.files.clear();
    this.dirs.clear();
    await Promise.allSettled(files.map((f) => f.close()));
  }

  private get s(): NativeFuseSession {
    if (!this.session) throw new ThreeFsError('INTERNAL', 'FUSE ops used before attach');
    return this.session;
  }

  private async user(r: FuseRequest): Promise<MetaUser> {
    return { uid: r.uid, gid: r.gid, groups: await this.o.groups.of(r.pid) };
  }

  private name(r: FuseRequest): string {
    if (r.name === undefined) throw new ThreeFsError('EINVAL', 'request without a name');
    return r.name;
  }

  private newFh(): number {
    if (this.files.size + this.dirs.size >= this.o.maxHandles)
      throw new ThreeFsError('RESOURCE_EXHAUSTED', 'too many open handles');
    return this.nextFh++;
  }

  private file(r: FuseRequest): FileHandle {
    const handle = this.files.get(r.fh);
    if (!handle) throw new ThreeFsError('EBADF', `no open file ${r.fh}`);
    return handle;
  }

  private entry(r: FuseRequest, attrs: Parameters<typeof attrRow>[0]): void {
    this.s.replyEntry(r.id, attrRow(attrs), this.o.attrTimeoutS, this.o.entryTimeoutS);
  }

  private async handle(r: FuseRequest): Promise<void> {
    const api = this.o.api;
    switch (r.op) {
      case Op.lookup: {
        try {
          this.entry(r, await api.lookup(r.ino, this.name(r), await this.user(r)));
        } catch (err) {
          if (!hasCode(err, 'ENOENT') || this.o.negativeTimeoutS <= 0) throw err;
          this.s.replyEntry(r.id, null, 0, this.o.negativeTimeoutS); // cached "no such name"
        }
        return;
      }
      case Op.getattr:
        this.s.replyAttr(
          r.id,
          attrRow(await api.stat(r.ino, await this.user(r))),
          this.o.attrTimeoutS,
        );
        return;
      case Op.setattr: {
        const f = r.flags;
        const now = Date.now();
        const attrs = await api.setAttr(
          r.ino,
          {
            mode: f & SetAttr.mode ? r.mode : undefined,
            uid: f & SetAttr.uid ? r.setUid : undefined,
            gid: f & SetAttr.gid ? r.setGid : undefined,
            size: f & SetAttr.size ? r.setSize : undefined,
            atimeMs: f & SetAttr.atimeNow ? now : f & SetAttr.atime ? r.setAtimeMs : undefined,
            mtimeMs: f & SetAttr.mtimeNow ? now : f & SetAttr.mtime ? r.setMtimeMs : undefined,
          },
          await this.user(r),
        );
        this.s.replyAttr(r.id, attrRow(attrs), this.o.attrTimeoutS);
        return;
      }
      case Op.readlink:
        this.s.replyReadlink(r.id, await api.readlink(r.ino, await this.user(r)));
        return;
      case Op.mknod: {
        if ((r.mode & constants.S_IFMT) !== constants.S_IFREG)
          throw new ThreeFsError('EPERM', 'only regular files can be made with mknod');
        const handle = await api.create(
          { parent: r.ino, path: this.name(r) },
          r.mode & 0o7777,
          { read: false, exclusive: true },
          await this.user(r),
        );
        await handle.close();
        this.entry(r, handle.attrs);
        return;
      }
      case Op.mkdir:
        this.entry(
          r,
          await api.mkdir({ parent: r.ino, path: this.name(r) }, r.mode, await this.user(r)),
        );
        return;
      case Op.unlink:
        await api.unlink({ parent: r.ino, path: this.name(r) }, await this.user(r));
        this.s.replyErr(r.id, 0);
        return;
      case Op.rmdir:
        await api.rmdir({ parent: r.ino, path: this.name(r) }, await this.user(r));
        this.s.replyErr(r.id, 0);
        return;
      case Op.symlink:
        this.entry(
          r,
          await api.symlink(
            { parent: r.ino, path: this.name(r) },
            r.name2 ?? '',
            await this.user(r),
          ),
        );
        return;
      case Op.rename: {
        if ((r.flags & ~RENAME_NOREPLACE) !== 0)
          throw new ThreeFsError('EINVAL', 'RENAME_EXCHANGE and RENAME_WHITEOUT are not supported');
        if (r.ino2 === undefined || r.name2 === undefined)
          throw new ThreeFsError('EINVAL', 'rename without a destination');
        await api.rename(
          { parent: r.ino, path: this.name(r) },
          { parent: r.ino2, path: r.name2 },
          await this.user(r),
          (r.flags & RENAME_NOREPLACE) !== 0,
        );
        this.s.replyErr(r.id, 0);
        return;
      }
      case Op.link: {
        if (r.ino2 === undefined) throw new ThreeFsError('EINVAL', 'link without a directory');
        this.entry(
          r,
          await api.link(r.ino, { parent: r.ino2, path: this.name(r) }, await this.user(r)),
        );
        return;
      }
      case Op.open: {
        const fh = this.newFh();
        const handle = await api.open(r.ino, kernelPlaced(r.flags), await this.user(r));
        this.files.set(fh, handle);
        if (!this.s.replyOpen(r.id, fh, isDirectIo(r.flags), false, isReadOnly(r.flags))) {
          // Interrupted: the kernel never learns this handle, so it will never release it.
          this.files.delete(fh);
          await handle.close();
        }
        return;
      }
      case Op.create: {
        const fh = this.newFh();
        const handle = await api.create(
          { parent: r.ino, path: this.name(r) },
          r.mode,
          kernelPlaced(r.flags),
          await this.user(r),
        );
        this.files.set(fh, handle);
        const ok = this.s.replyCreate(
          r.id,
          attrRow(handle.attrs),
          this.o.attrTimeoutS,
          this.o.entryTimeoutS,
          fh,
          isDirectIo(r.flags),
        );
        if (!ok) {
          // Interrupted: the kernel never learns this handle, so it will never release it.
          this.files.delete(fh);
          await handle.close();
        }
        return;
      }
      case Op.read: {
        const handle = this.file(r);
        const want = Math.max(0, Math.min(r.size, handle.length - r.offset));
        const memory = this.replyBuffers.take(want);
        try {
          const target = memory.buffer.subarray(0, want);
          const got = want > 0 ? await handle.read(target, r.offset, memory.shared) : 0;
          this.s.replyBuf(r.id, target.subarray(0, got));
        } finally {
          this.replyBuffers.give(memory);
        }
        return;
      }
      case Op.write: {
        const data = r.data;
        if (!data) throw new ThreeFsError('EINVAL', 'write without data');
        // The bytes sit in a recycled slab (native/src/fuse/write_slabs.h): hand it back once
        // the client no longer needs them, so the next write reuses warm memory. Releasing a
        // detached Buffer again does nothing.
        const release = () => this.s.releaseWriteData(data);
        let handle;
        try {
          handle = this.file(r);
        } catch (err) {
          release();
          throw err;
        }
        this.s.replyWrite(r.id, await handle.write(data, r.offset, release));
        return;
      }
      case Op.flush:
        await this.file(r).flush();
        this.s.replyErr(r.id, 0);
        return;
      case Op.release: {
        const handle = this.file(r);
        this.files.delete(r.fh);
        try {
          await handle.close();
        } finally {
          this.s.replyErr(r.id, 0); // the kernel ignores release errors; close(2) saw flush's
        }
        return;
      }
      case Op.fsync:
        await this.file(r).fsync();
        this.s.replyErr(r.id, 0);
        return;
      case Op.opendir: {
        const user = await this.user(r);
        const self = await api.stat(r.ino, user);
        if (self.type !== 'dir')
          throw new ThreeFsError('ENOTDIR', `inode ${r.ino} is not a directory`);
        const dir = new DirHandle(self, (after, limit) =>
          api.list(r.ino, user, { after, limit, withAttrs: true }),
        );
        await dir.from(0, 2); // the first page: permission errors surface at opendir
        const fh = this.newFh();
        this.dirs.set(fh, dir);
        this.s.replyOpen(r.id, fh, false, false, false);
        return;
      }
      case Op.readdir:
      case Op.readdirplus: {
        const dir = this.dirs.get(r.fh);
        if (!dir) throw new ThreeFsError('EBADF', `no open directory ${r.fh}`);
        const plus = r.op === Op.readdirplus;
        // Enough entries to fill the kernel's buffer (plain entries are ≥ 24 bytes, plus ≥ 152).
        const count = Math.max(1, Math.ceil(r.size / (plus ? 152 : 24)));
        const { first, items } = await dir.from(r.offset, count);
        const attrs = new Float64Array(items.length * ATTR_FIELDS);
        items.forEach((item, i) => writeAttrRow(attrs, i, item.attrs));
        this.s.replyDir(
          r.id,
          r.size,
          plus,
          items.map((i) => i.name),
          attrs,
          first,
          this.o.attrTimeoutS,
          this.o.entryTimeoutS,
        );
        return;
      }
      case Op.releasedir:
        this.dirs.delete(r.fh);
        this.s.replyErr(r.id, 0);
        return;
      case Op.statfs:
        this.s.replyStatfs(r.id, statfsFields(await api.statFs(r.ino, await this.user(r))));
        return;
      default:
        throw new ThreeFsError('UNIMPLEMENTED', `FUSE op ${r.op} is not handled`);
    }
  }
}
