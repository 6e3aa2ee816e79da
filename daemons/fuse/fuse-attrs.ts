// Pure conversions between meta's view and the kernel's: attributes to the bridge's attrs rows
// (type bits, sizes), open(2) flags to meta's open flags, and statfs fields.
import { constants } from 'node:fs';
import type { Attrs } from '../client/file-api.js';
import type { OpenFlags } from '../common/services/meta.js';
import { ATTR_FIELDS } from './native-fuse.js';

/** Linux open(2): the two access-mode bits (node:fs has no constant for the mask). */
const O_ACCMODE = 3;

const typeBits = { file: constants.S_IFREG, dir: constants.S_IFDIR, symlink: constants.S_IFLNK };

/** st_blksize: what `cp` and friends use as their I/O size. */
export const BLOCK_SIZE = 1024 * 1024;

/** Writes one attrs row for `a` at `row` of `out`. */
export function writeAttrRow(out: Float64Array, row: number, a: Attrs): void {
  const at = row * ATTR_FIELDS;
  out[at] = a.id;
  out[at + 1] = typeBits[a.type] | (a.mode & 0o7777);
  out[at + 2] = a.nlink;
  out[at + 3] = a.uid;
  out[at + 4] = a.gid;
  out[at + 5] =
    a.type === 'symlink' ? Buffer.byteLength(a.target ?? '') : a.type === 'dir' ? 4096 : a.length;
  out[at + 6] = a.atimeMs;
  out[at + 7] = a.mtimeMs;
  out[at + 8] = a.ctimeMs;
  out[at + 9] = BLOCK_SIZE;
}

export function attrRow(a: Attrs): Float64Array {
  const out = new Float64Array(ATTR_FIELDS);
  writeAttrRow(out, 0, a);
  return out;
}

/** open(2) flags → meta's flags (O_CREAT is the create operation itself). */
export function openFlagsOf(flags: number): Required<OpenFlags> {
  const access = flags & O_ACCMODE;
  return {
    read: access === constants.O_RDONLY || access === constants.O_RDWR,
    write: access === constants.O_WRONLY || access === constants.O_RDWR,
    truncate: (flags & constants.O_TRUNC) !== 0,
    append: (flags & constants.O_APPEND) !== 0,
    exclusive: (flags & constants.O_EXCL) !== 0,
  };
}

export function isDirectIo(flags: number): boolean {
  return (flags & constants.O_DIRECT) !== 0;
}

/**
 * Whether a handle opened with `flags` can never write. Its close needs no FLUSH: the daemon's
 * write buffer only holds bytes of handles that can write, and each of those is flushed by its
 * own close (or fsync, a read of the inode, the timer).
 */
export function isReadOnly(flags: number): boolean {
  return (flags & (constants.O_WRONLY | constants.O_RDWR)) === 0; // O_RDONLY is 0
}

export interface SpaceReport {
  totalBytes: number;
  usedBytes: number;
  freeBytes: number;
  totalInodes: number;
  usedInodes: number;
}

/** statvfs fields [bsize, frsize, blocks, bfree, bavail, files, ffree, favail, namemax]. */
export function statfsFields(s: SpaceReport, blockSize = 4096): Float64Array {
  const blocks = Math.floor(s.totalBytes / blockSize);
  const free = Math.min(blocks, Math.floor(Math.max(0, s.freeBytes) / blockSize));
  // No inode limit: report plenty free, as file systems with dynamic inodes do.
  const files = s.totalInodes > 0 ? s.totalInodes : s.usedInodes + 2 ** 32;
  const ffree = Math.max(0, files - s.usedInodes);
  return Float64Array.from([blockSize, blockSize, blocks, free, free, files, ffree, ffree, 255]);
}
