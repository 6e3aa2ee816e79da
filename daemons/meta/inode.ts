// The inode record as stored under INOD keys, and its conversion to the attributes callers see.
// Values are MessagePack; a value that does not decode to a sane record is an INTERNAL error (the
// store is ours alone), never silently repaired.
import { Packr } from 'msgpackr';
import { ThreeFsError } from '../common/errors.js';
import type { Layout } from '../common/layout.js';
import type { InodeAttrs, InodeType, QuotaLimits } from '../common/services/meta.js';

export interface InodeRecord {
  id: number;
  type: InodeType;
  /** Permission and special bits (07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Files: dentries naming it (0 once unlinked and waiting for GC). Directories: 1, 0 in GC. */
  nlink: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  /** Files: length in bytes, lazy while write sessions are open (brief §5.4). */
  length: number;
  truncateVer: number;
  /** Length set by the last truncate: storage holds no chunk for a sparse tail, so exact lengths never go below it. */
  truncatedLength?: number | undefined;
  dynStripe: number;
  layout?: Layout | undefined;
  /** Directories: the parent directory (GC_ROOT_ID once removed); files and symlinks: 0. */
  parent: number;
  /** Directories: their own name in `parent`, for paths and debugging. */
  name?: string | undefined;
  target?: string | undefined;
  /** Quota roots this inode is counted in, nearest first (itself excluded). */
  quotaRoots: number[];
  quota?: QuotaLimits | undefined;
}

const packr = new Packr({ useRecords: false, moreTypes: false });

export function encodeInode(inode: InodeRecord): Buffer {
  return packr.pack(inode);
}

export function decodeInode(value: Uint8Array, id: number): InodeRecord {
  let record: unknown;
  try {
    record = packr.unpack(value);
  } catch (err) {
    throw new ThreeFsError(
      'INTERNAL',
      `inode ${id}: undecodable record (${(err as Error).message})`,
    );
  }
  const r = record as Partial<InodeRecord> | null;
  if (
    r === null ||
    typeof r !== 'object' ||
    r.id !== id ||
    (r.type !== 'file' && r.type !== 'dir' && r.type !== 'symlink') ||
    typeof r.mode !== 'number' ||
    !Array.isArray(r.quotaRoots)
  ) {
    throw new ThreeFsError('INTERNAL', `inode ${id}: malformed record`);
  }
  return r as InodeRecord;
}

export function toAttrs(inode: InodeRecord, dirMtimeMs = 0): InodeAttrs {
  const mtimeMs = Math.max(inode.mtimeMs, dirMtimeMs);
  return {
    id: inode.id,
    type: inode.type,
    mode: inode.mode,
    uid: inode.uid,
    gid: inode.gid,
    nlink: inode.nlink,
    length: inode.type === 'symlink' ? Buffer.byteLength(inode.target ?? '') : inode.length,
    atimeMs: inode.atimeMs,
    mtimeMs,
    ctimeMs: Math.max(inode.ctimeMs, dirMtimeMs),
    layout: inode.layout,
    dynStripe: inode.dynStripe,
    truncateVer: inode.truncateVer,
    target: inode.target,
    quota: inode.quota,
  };
}

export const packValue = (value: unknown): Buffer => packr.pack(value);
export const unpackValue = (value: Uint8Array): unknown => packr.unpack(value);
