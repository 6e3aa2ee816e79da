// Truncate inside a transaction (ftruncate, O_TRUNC, setattr size): the new length takes effect
// at once, the truncate version moves so older length hints are ignored, quota usage follows, and
// chunks past the new end become a GC item removed through storage (at once when possible).
// Meta's length is lazy while a write session is open (writers report it by hints and at close),
// so a length below the stored bytes is normal then: the GC item cannot wait for meta to know.
import { ThreeFsError } from '../common/errors.js';
import type { InodeRecord } from './inode.js';
import { enqueueGc } from './gc-queue.js';
import type { MetaTxn } from './meta-txn.js';
import { type Caller, modeAfterWrite } from './permissions.js';
import { enforceQuota } from './context.js';
import { countsInQuota } from './quota-rules.js';
import { hasOpenSessions } from './sessions.js';

export const MAX_FILE_LENGTH = Number.MAX_SAFE_INTEGER;

/** First chunk index that lies wholly at or past `length`. */
export function firstChunkPast(length: number, chunkSize: number): number {
  return Math.ceil(length / chunkSize);
}

/**
 * Whether storage may hold bytes of the file at or past `length`: past meta's length only when
 * some writer may not have reported its writes yet (an open write session; a closed file's length
 * was measured from storage at its last close).
 */
export async function mayHoldBytesPast(
  mt: MetaTxn,
  inode: InodeRecord,
  length: number,
): Promise<boolean> {
  return length < inode.length || (await hasOpenSessions(mt, inode.id));
}

/** Returns the updated inode (already stored) and whether chunks must be removed. */
export async function applyTruncate(
  mt: MetaTxn,
  caller: Caller,
  inode: InodeRecord,
  length: number,
): Promise<{ inode: InodeRecord; removeFromChunk: number | undefined }> {
  if (inode.type === 'dir') throw new ThreeFsError('EISDIR', `inode ${inode.id} is a directory`);
  if (inode.type !== 'file')
    throw new ThreeFsError('EINVAL', `inode ${inode.id} is not a regular file`);
  if (!Number.isSafeInteger(length) || length < 0 || length > MAX_FILE_LENGTH) {
    throw new ThreeFsError('EFBIG', `length ${length} is out of range`);
  }
  const counted = countsInQuota(inode);
  if (counted) {
    await enforceQuota(mt, inode.quotaRoots, length - inode.length, 0);
    mt.addUsage(inode.quotaRoots, length - inode.length, 0);
  }
  const layout = inode.layout;
  if (!layout) throw new ThreeFsError('INTERNAL', `file ${inode.id} has no layout`);
  let removeFromChunk: number | undefined;
  if (await mayHoldBytesPast(mt, inode, length)) {
    removeFromChunk = firstChunkPast(length, layout.chunkSize);
    enqueueGc(mt, mt.now, 't', inode.id, { fromChunk: removeFromChunk });
  }
  const next: InodeRecord = {
    ...inode,
    length,
    truncateVer: inode.truncateVer + 1,
    truncatedLength: length,
    // A truncate clears them for anyone but root, the owner too (Linux's do_truncate).
    mode: modeAfterWrite(inode.mode, caller),
    mtimeMs: mt.now,
    ctimeMs: mt.now,
  };
  mt.putInode(next);
  return { inode: next, removeFromChunk };
}
