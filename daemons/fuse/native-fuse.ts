// Types of the native FUSE bridge (native/src/fuse): the request objects it hands to JS in
// batches and the reply functions. Operation codes and the attrs row layout mirror
// native/src/fuse/fuse_bridge.h; keep both in step.
import { loadAddon } from '../common/native.js';

export const Op = {
  lookup: 1,
  getattr: 2,
  setattr: 3,
  readlink: 4,
  mknod: 5,
  mkdir: 6,
  unlink: 7,
  rmdir: 8,
  symlink: 9,
  rename: 10,
  link: 11,
  open: 12,
  create: 13,
  read: 14,
  write: 15,
  flush: 16,
  release: 17,
  fsync: 18,
  opendir: 19,
  readdir: 20,
  readdirplus: 21,
  releasedir: 22,
  statfs: 23,
  interrupt: 100,
  ended: 101,
} as const;
export type OpCode = (typeof Op)[keyof typeof Op];
export const opName = new Map<number, string>(Object.entries(Op).map(([k, v]) => [v, k]));

/** One row of attributes: [ino, mode, nlink, uid, gid, size, atimeMs, mtimeMs, ctimeMs, blksize]. */
export const ATTR_FIELDS = 10;

/** FUSE_SET_ATTR_* bits of setattr's `flags`. */
export const SetAttr = {
  mode: 1 << 0,
  uid: 1 << 1,
  gid: 1 << 2,
  size: 1 << 3,
  atime: 1 << 4,
  mtime: 1 << 5,
  atimeNow: 1 << 7,
  mtimeNow: 1 << 8,
} as const;

export interface FuseRequest {
  id: number;
  op: number;
  /** The inode, or the parent directory of `name`. */
  ino: number;
  uid: number;
  gid: number;
  pid: number;
  umask: number;
  fh: number;
  offset: number;
  size: number;
  /** Open flags, rename flags, setattr valid bits, or fsync's datasync. */
  flags: number;
  mode: number;
  name?: string;
  /** Rename: the new name; symlink: the target. */
  name2?: string;
  /** Rename and link: the new parent. */
  ino2?: number;
  setSize?: number;
  setUid?: number;
  setGid?: number;
  setAtimeMs?: number;
  setMtimeMs?: number;
  data?: Buffer;
}

export interface MountOptions {
  mountpoint: string;
  fsname: string;
  allowOther: boolean;
  debug: boolean;
  maxWrite: number;
  maxReadahead: number;
  maxBackground: number;
}

/** Every reply returns false when the request was already answered (interrupt, unmount). */
export interface NativeFuseSession {
  mount(options: MountOptions): void;
  unmount(): void;
  stats(): {
    mounted: boolean;
    pending: number;
    forgets: number;
    /** Every FLUSH the kernel sent (one per close(2) of a handle opened with flushes). */
    flushes: number;
    /** FLUSHes answered in native code: no WRITE for the inode since its last flush. */
    flushesAnsweredNatively: number;
    /** Inodes with WRITEs that no successful flush has covered yet. */
    unflushedInodes: number;
  };
  /**
   * JS is done with a write request's `data`: a slab of recycled memory is detached (reads of it
   * see 0 bytes from now on) and goes back for the next write. Returns whether it was a slab.
   */
  releaseWriteData(data: Buffer): boolean;
  /**
   * Marks the kernel's cached attributes of inode `ino` stale (a file changed without a request
   * through the mount); 0 or -errno, -ENOENT when the kernel holds no such inode.
   */
  invalidateAttributes(ino: number): number;
  replyErr(id: number, errno: number): boolean;
  replyEntry(
    id: number,
    attrs: Float64Array | null,
    attrTimeout: number,
    entryTimeout: number,
  ): boolean;
  replyCreate(
    id: number,
    attrs: Float64Array,
    attrTimeout: number,
    entryTimeout: number,
    fh: number,
    directIo: boolean,
  ): boolean;
  replyAttr(id: number, attrs: Float64Array, attrTimeout: number): boolean;
  replyReadlink(id: number, target: string): boolean;
  /** `noFlush`: the kernel sends no FLUSH when the handle is closed (FOPEN_NOFLUSH). */
  replyOpen(
    id: number,
    fh: number,
    directIo: boolean,
    keepCache: boolean,
    noFlush: boolean,
  ): boolean;
  replyWrite(id: number, count: number): boolean;
  replyBuf(id: number, data: Buffer): boolean;
  replyStatfs(id: number, fields: Float64Array): boolean;
  /** Packs entries while they fit in `size`; returns how many (-1 if the request was gone). */
  replyDir(
    id: number,
    size: number,
    plus: boolean,
    names: string[],
    attrs: Float64Array,
    firstOffset: number,
    attrTimeout: number,
    entryTimeout: number,
  ): number;
}

interface FuseAddon {
  FuseSession: new (handler: (batch: FuseRequest[]) => void) => NativeFuseSession;
}

let addon: FuseAddon | undefined;

export function createNativeSession(handler: (batch: FuseRequest[]) => void): NativeFuseSession {
  addon ??= loadAddon<FuseAddon>('threefs_fuse');
  return new addon.FuseSession(handler);
}
