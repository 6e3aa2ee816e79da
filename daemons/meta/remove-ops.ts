// unlink, rmdir and the O(1) recursive remove (brief §5.6). A file's last link going away puts it
// in the GC queue, its chunks removed after a delay; a non-empty directory removed recursively is
// moved under the GC root as one unit and walked later by the GC worker. Retries of the same
// request id get the first attempt's answer (idempotency records).
import type { z } from 'zod';
import { ThreeFsError } from '../common/errors.js';
import type { MetaMethods, MetaRequestHeader } from '../common/services/meta.js';
import { callerOf, inTxn, type NamespaceContext } from './context.js';
import { enqueueGc } from './gc-queue.js';
import { previousResult, recordResult } from './idempotency.js';
import type { InodeRecord } from './inode.js';
import { dirTimesKey, GC_ROOT_ID, quotaBytesKey, quotaInodesKey } from './keys.js';
import type { MetaTxn } from './meta-txn.js';
import { type Caller, mayAccess, mayRemoveEntry, W_OK, X_OK } from './permissions.js';
import { countsInQuota } from './quota-rules.js';
import { resolveEntryName } from './resolve.js';

type Req<K extends keyof MetaMethods> = z.output<MetaMethods[K]['request']>;

/** EACCES without write+search on the directory; EPERM when only the sticky bit forbids it. */
export function checkMayRemove(dir: InodeRecord, entry: InodeRecord, caller: Caller): void {
  if (mayRemoveEntry(dir, entry, caller)) return;
  const code = mayAccess(dir, caller, W_OK | X_OK, true) ? 'EPERM' : 'EACCES';
  throw new ThreeFsError(code, `may not remove inode ${entry.id} from directory ${dir.id}`);
}

/** Drops one link of a file or symlink; the last one sends a file to GC after `gcDelayMs`. */
export function unlinkInode(mt: MetaTxn, inode: InodeRecord, gcDelayMs: number): void {
  if (inode.type === 'dir') throw new ThreeFsError('INTERNAL', 'unlinkInode called on a directory');
  if (inode.nlink > 1) {
    mt.putInode({ ...inode, nlink: inode.nlink - 1, ctimeMs: mt.now });
    return;
  }
  if (countsInQuota(inode)) mt.addUsage(inode.quotaRoots, -inode.length, -1);
  if (inode.type === 'symlink') {
    mt.deleteInode(inode.id);
    return;
  }
  mt.putInode({ ...inode, nlink: 0, ctimeMs: mt.now });
  enqueueGc(mt, mt.now + gcDelayMs, 'f', inode.id);
}

/** Deletes an empty directory's inode and everything kept beside it. */
export function deleteEmptyDir(mt: MetaTxn, dir: InodeRecord): void {
  mt.deleteInode(dir.id);
  mt.tx.clear(dirTimesKey(dir.id));
  mt.tx.clear(quotaBytesKey(dir.id));
  mt.tx.clear(quotaInodesKey(dir.id));
  if (dir.nlink > 0) mt.addUsage(dir.quotaRoots, 0, -1);
}

/** Moves a non-empty directory under the GC root; its contents are walked later. */
export function detachSubtree(mt: MetaTxn, dir: InodeRecord): void {
  mt.putInode({ ...dir, parent: GC_ROOT_ID, nlink: 0, ctimeMs: mt.now });
  mt.addUsage(dir.quotaRoots, 0, -1);
  // The subtree's inodes still count in these roots until the walk reaches them.
  const quotaRoots = dir.quota ? [dir.id, ...dir.quotaRoots] : dir.quotaRoots;
  enqueueGc(mt, mt.now, 'd', dir.id, { quotaRoots });
}

export async function remove(ctx: NamespaceContext, h: MetaRequestHeader, req: Req<'remove'>) {
  const caller = callerOf(h);
  return inTxn(ctx, async (mt) => {
    if (await previousResult(mt, h.clientId, h.requestId, 'remove')) return {};
    const { dir, name } = await resolveEntryName(mt, caller, req.at, 'EINVAL');
    const entry = await mt.dentry(dir.id, name);
    if (!entry) throw new ThreeFsError('ENOENT', `no entry "${name}" in directory ${dir.id}`);
    const inode = await mt.requireInode(entry.id);
    checkMayRemove(dir, inode, caller);
    if (inode.type === 'dir') {
      if (req.kind === 'file') throw new ThreeFsError('EISDIR', `"${name}" is a directory`);
      const empty = await mt.isEmptyDir(inode.id);
      if (!empty && !req.recursive)
        throw new ThreeFsError('ENOTEMPTY', `directory "${name}" is not empty`);
      if (empty) deleteEmptyDir(mt, inode);
      else detachSubtree(mt, inode);
    } else {
      if (req.kind === 'dir') throw new ThreeFsError('ENOTDIR', `"${name}" is not a directory`);
      unlinkInode(mt, inode, ctx.gcDelayMs);
    }
    mt.clearDentry(dir.id, name);
    mt.touchDir(dir.id);
    recordResult(mt, h.clientId, h.requestId, 'remove', {}, ctx.idempotencyTtlMs);
    return {};
  });
}
