// Atomic rename (brief §12 item 17): across directories, replacing a file or an empty directory,
// never moving a directory into its own subtree. The ancestor walk reads every directory between
// the destination and the root with conflict tracking, so two concurrent renames that together
// would make a cycle cannot both commit. Quotas: a file moving between quota roots takes its
// usage along; a directory may not (EXDEV, as XFS project quotas do), since its usage is unknown
// without walking it.
import type { z } from 'zod';
import { ThreeFsError } from '../common/errors.js';
import type { MetaMethods, MetaRequestHeader } from '../common/services/meta.js';
import { callerOf, enforceQuota, inTxn, type NamespaceContext } from './context.js';
import { previousResult, recordResult } from './idempotency.js';
import type { InodeRecord } from './inode.js';
import { ROOT_ID } from './keys.js';
import type { MetaTxn } from './meta-txn.js';
import { checkName, MAX_DIR_DEPTH } from './names.js';
import { mayAccess, W_OK, X_OK } from './permissions.js';
import { childQuotaRoots, sameQuotaRoots } from './quota-rules.js';
import { checkMayRemove, deleteEmptyDir, unlinkInode } from './remove-ops.js';
import { resolveEntryName } from './resolve.js';

type Req<K extends keyof MetaMethods> = z.output<MetaMethods[K]['request']>;

/** Whether directory `ancestor` is `dir` or one of its ancestors (reads the walk, conflict-tracked). */
async function isAncestorOrSelf(mt: MetaTxn, ancestor: number, dir: InodeRecord): Promise<boolean> {
  let current = dir;
  for (let depth = 0; depth < MAX_DIR_DEPTH; depth++) {
    if (current.id === ancestor) return true;
    if (current.id === ROOT_ID) return false;
    current = await mt.requireDir(current.parent);
  }
  throw new ThreeFsError('INTERNAL', `directory ${dir.id} is deeper than ${MAX_DIR_DEPTH} levels`);
}

/** Moves a file's (or symlink's) quota usage to the roots of its new directory. */
async function moveQuota(mt: MetaTxn, inode: InodeRecord, roots: number[]): Promise<InodeRecord> {
  if (sameQuotaRoots(roots, inode.quotaRoots)) return inode;
  if (inode.nlink > 1)
    throw new ThreeFsError('EXDEV', 'a hard-linked file may not leave its quota directory');
  await enforceQuota(mt, roots, inode.length, 1);
  mt.addUsage(inode.quotaRoots, -inode.length, -1);
  mt.addUsage(roots, inode.length, 1);
  return { ...inode, quotaRoots: roots };
}

export async function rename(ctx: NamespaceContext, h: MetaRequestHeader, req: Req<'rename'>) {
  const caller = callerOf(h);
  return inTxn(ctx, async (mt) => {
    if (await previousResult(mt, h.clientId, h.requestId, 'rename')) return {};
    const src = await resolveEntryName(mt, caller, req.from, 'EBUSY');
    const dst = await resolveEntryName(mt, caller, req.to, 'EBUSY');
    const srcEntry = await mt.dentry(src.dir.id, src.name);
    if (!srcEntry)
      throw new ThreeFsError('ENOENT', `no entry "${src.name}" in directory ${src.dir.id}`);
    checkName(dst.name); // after the source, as Linux looks the two up
    let inode = await mt.requireInode(srcEntry.id);
    const dstEntry = await mt.dentry(dst.dir.id, dst.name);
    if (dstEntry && req.noReplace) throw new ThreeFsError('EEXIST', `"${dst.name}" exists`);
    const movesDir = inode.type === 'dir';
    // Linux's order from here: the two trap checks, "same file: nothing to do", permission to
    // remove the source, to replace the target (then its type) or to add the name, write
    // permission on a directory that changes parent; then what the file system refuses.
    if (movesDir && (await isAncestorOrSelf(mt, inode.id, dst.dir))) {
      throw new ThreeFsError('EINVAL', `cannot move directory ${inode.id} into its own subtree`);
    }
    const target = dstEntry ? await mt.requireInode(dstEntry.id) : undefined;
    // Replacing a directory the source lies inside: Linux answers ENOTEMPTY (it holds the source).
    if (target?.type === 'dir' && (await isAncestorOrSelf(mt, target.id, src.dir))) {
      throw new ThreeFsError('ENOTEMPTY', `"${dst.name}" holds the entry being renamed`);
    }
    // The same name, or two links of one inode: POSIX says do nothing, and Linux checks nothing.
    if (target?.id === inode.id) return {};
    checkMayRemove(src.dir, inode, caller);
    if (target) {
      checkMayRemove(dst.dir, target, caller);
      if (movesDir && target.type !== 'dir')
        throw new ThreeFsError('ENOTDIR', `"${dst.name}" is not a directory`);
      if (!movesDir && target.type === 'dir')
        throw new ThreeFsError('EISDIR', `"${dst.name}" is a directory`);
    } else {
      if (dst.dir.nlink === 0)
        throw new ThreeFsError('ENOENT', `directory ${dst.dir.id} has been removed`);
      if (!mayAccess(dst.dir, caller, W_OK | X_OK, true)) {
        throw new ThreeFsError('EACCES', `no write permission on directory ${dst.dir.id}`);
      }
    }
    if (movesDir && src.dir.id !== dst.dir.id) {
      if (!mayAccess(inode, caller, W_OK, true)) {
        throw new ThreeFsError(
          'EACCES',
          `moving directory ${inode.id} needs write permission on it`,
        );
      }
      if (!sameQuotaRoots(childQuotaRoots(dst.dir), inode.quotaRoots)) {
        throw new ThreeFsError(
          'EXDEV',
          'a directory may not move across a quota directory boundary',
        );
      }
    }
    if (target) {
      if (movesDir) {
        if (!(await mt.isEmptyDir(target.id)))
          throw new ThreeFsError('ENOTEMPTY', `"${dst.name}" is not empty`);
        deleteEmptyDir(mt, target);
      } else {
        unlinkInode(mt, target, ctx.gcDelayMs);
      }
    }
    if (!movesDir) inode = await moveQuota(mt, inode, childQuotaRoots(dst.dir));
    const moved: InodeRecord = movesDir
      ? { ...inode, parent: dst.dir.id, name: dst.name, ctimeMs: mt.now }
      : { ...inode, ctimeMs: mt.now };
    mt.putInode(moved);
    mt.clearDentry(src.dir.id, src.name);
    mt.putDentry(dst.dir.id, dst.name, { id: inode.id, type: inode.type });
    mt.touchDir(src.dir.id);
    mt.touchDir(dst.dir.id);
    recordResult(mt, h.clientId, h.requestId, 'rename', {}, ctx.idempotencyTtlMs);
    return {};
  });
}
