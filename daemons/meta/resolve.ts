// Path resolution inside a transaction: walk dentries from a directory, checking search (x)
// permission on every directory passed, following symlinks (at most MAX_SYMLINK_FOLLOWS, then
// ELOOP). Every dentry and inode read is conflict-tracked, so a concurrent rename or remove of
// anything on the path makes the transaction retry instead of acting on a stale path.
import { ThreeFsError } from '../common/errors.js';
import type { Dentry } from './meta-txn.js';
import type { PathAt } from '../common/services/meta.js';
import type { InodeRecord } from './inode.js';
import { ROOT_ID } from './keys.js';
import type { MetaTxn } from './meta-txn.js';
import { MAX_SYMLINK_FOLLOWS, splitPath } from './names.js';
import { type Caller, mayAccess, X_OK } from './permissions.js';

interface Budget {
  follows: number;
}

export interface ParentAndName {
  dir: InodeRecord;
  /** The last component; undefined when the path names `dir` itself ("" or "/"). */
  name: string | undefined;
}

/** EACCES unless the caller may look names up in `dir` (x on a directory). */
function search(dir: InodeRecord, caller: Caller): void {
  if (!mayAccess(dir, caller, X_OK, true)) {
    throw new ThreeFsError('EACCES', `no search permission on directory ${dir.id}`);
  }
}

async function parentOf(mt: MetaTxn, dir: InodeRecord): Promise<InodeRecord> {
  return dir.id === ROOT_ID ? dir : mt.requireDir(dir.parent);
}

async function follow(
  mt: MetaTxn,
  caller: Caller,
  from: InodeRecord,
  link: InodeRecord,
  budget: Budget,
): Promise<InodeRecord> {
  if (++budget.follows > MAX_SYMLINK_FOLLOWS) {
    throw new ThreeFsError('ELOOP', `more than ${MAX_SYMLINK_FOLLOWS} symlinks on the path`);
  }
  return lookupFrom(mt, caller, from, link.target ?? '', true, budget);
}

/** One step down from `dir` by `part`, which must end at a directory. */
async function stepDir(
  mt: MetaTxn,
  caller: Caller,
  dir: InodeRecord,
  part: string,
  budget: Budget,
): Promise<InodeRecord> {
  search(dir, caller);
  if (part === '..') return parentOf(mt, dir);
  const entry = await mt.dentry(dir.id, part);
  if (!entry) throw new ThreeFsError('ENOENT', `no entry "${part}" in directory ${dir.id}`);
  let inode = await mt.requireInode(entry.id);
  if (inode.type === 'symlink') inode = await follow(mt, caller, dir, inode, budget);
  if (inode.type !== 'dir') throw new ThreeFsError('ENOTDIR', `"${part}" is not a directory`);
  return inode;
}

async function parentAndNameFrom(
  mt: MetaTxn,
  caller: Caller,
  start: InodeRecord,
  path: string,
  budget: Budget,
): Promise<ParentAndName> {
  const { absolute, parts } = splitPath(path);
  let dir = absolute ? await mt.requireDir(ROOT_ID) : start;
  if (dir.type !== 'dir') {
    if (parts.length === 0) return { dir, name: undefined };
    throw new ThreeFsError('ENOTDIR', `inode ${dir.id} is not a directory`);
  }
  for (let i = 0; i < parts.length - 1; i++)
    dir = await stepDir(mt, caller, dir, parts[i] as string, budget);
  return { dir, name: parts[parts.length - 1] };
}

async function lookupFrom(
  mt: MetaTxn,
  caller: Caller,
  start: InodeRecord,
  path: string,
  followLast: boolean,
  budget: Budget,
): Promise<InodeRecord> {
  const { dir, name } = await parentAndNameFrom(mt, caller, start, path, budget);
  if (name === undefined) return dir;
  search(dir, caller);
  if (name === '..') return parentOf(mt, dir);
  const entry = await mt.dentry(dir.id, name);
  if (!entry) throw new ThreeFsError('ENOENT', `no entry "${name}" in directory ${dir.id}`);
  const inode = await mt.requireInode(entry.id);
  if (inode.type === 'symlink' && followLast) return follow(mt, caller, dir, inode, budget);
  return inode;
}

async function startOf(mt: MetaTxn, at: PathAt): Promise<InodeRecord> {
  return mt.requireInode(at.parent ?? ROOT_ID);
}

/** The directory that holds the last component and that component (not followed). */
export async function resolveParent(
  mt: MetaTxn,
  caller: Caller,
  at: PathAt,
): Promise<ParentAndName> {
  return parentAndNameFrom(mt, caller, await startOf(mt, at), at.path, { follows: 0 });
}

/** The inode a path names; the last component's symlink followed when `followLast`. */
export async function lookup(
  mt: MetaTxn,
  caller: Caller,
  at: PathAt,
  followLast: boolean,
): Promise<InodeRecord> {
  return lookupFrom(mt, caller, await startOf(mt, at), at.path, followLast, { follows: 0 });
}

/** resolveParent for operations that add or remove a name: "", "." and ".." are refused. */
export async function resolveEntryName(
  mt: MetaTxn,
  caller: Caller,
  at: PathAt,
  ifSelf: 'EEXIST' | 'EINVAL' | 'EBUSY',
): Promise<{ dir: InodeRecord; name: string }> {
  const { dir, name } = await resolveParent(mt, caller, at);
  if (name === undefined || name === '..') {
    throw new ThreeFsError(
      ifSelf === 'EBUSY' ? 'EINVAL' : ifSelf,
      `path "${at.path}" names no entry`,
    );
  }
  if (dir.type !== 'dir') throw new ThreeFsError('ENOTDIR', `inode ${dir.id} is not a directory`);
  // Looking the name up needs search permission on its directory, whatever the operation does
  // next (Linux: EACCES before ENOENT or EEXIST).
  search(dir, caller);
  return { dir, name };
}

export interface CreateTarget {
  dir: InodeRecord;
  name: string;
  entry: Dentry | undefined;
}

/**
 * Where open(O_CREAT) without O_EXCL acts when its name is a symlink: Linux follows trailing
 * symlinks, through a chain of them, and creates the file the last one names when it is missing
 * (a dangling link gets its target made). Returns the last name, its directory and its entry.
 */
export async function followForCreate(
  mt: MetaTxn,
  caller: Caller,
  start: CreateTarget,
): Promise<CreateTarget> {
  const budget: Budget = { follows: 0 };
  let at = start;
  while (at.entry?.type === 'symlink') {
    if (++budget.follows > MAX_SYMLINK_FOLLOWS) {
      throw new ThreeFsError('ELOOP', `more than ${MAX_SYMLINK_FOLLOWS} symlinks on the path`);
    }
    const link = await mt.requireInode(at.entry.id);
    const next = await parentAndNameFrom(mt, caller, at.dir, link.target ?? '', budget);
    // A name came back, so the walk ended in a directory (parentAndNameFrom refuses the rest).
    if (next.name === undefined || next.name === '..') {
      throw new ThreeFsError('EISDIR', `symlink "${at.name}" names a directory`);
    }
    search(next.dir, caller);
    at = { dir: next.dir, name: next.name, entry: await mt.dentry(next.dir.id, next.name) };
  }
  return at;
}
