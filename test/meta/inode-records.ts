// Inode records for tests that write the namespace's keys directly (through MetaTxn) rather
// than through meta's operations: every field an InodeRecord needs, with `extra` for the rest.
import type { InodeRecord } from '../../daemons/meta/inode.js';

export function inodeRecord(
  id: number,
  type: InodeRecord['type'],
  mode: number,
  extra: Partial<InodeRecord> = {},
): InodeRecord {
  return {
    id,
    type,
    mode,
    uid: 0,
    gid: 0,
    nlink: 1,
    atimeMs: 1,
    mtimeMs: 1,
    ctimeMs: 1,
    length: 0,
    truncateVer: 0,
    dynStripe: 0,
    parent: 0,
    quotaRoots: [],
    ...extra,
  };
}
