// Path resolution inside a transaction: walk dentries from a directory, checking search (x)
// permission on every directory passed, following symlinks (at most MAX_SYMLINK_FOLLOWS, then
// ELOOP). Every dentry and inode read is conflict-tracked, so a concurrent rename or remove of
// anything on the path makes the transaction retry instead of acting on a stale path.
//
// A directory passed on the way has its inode read only when a rule needs the record: its search
// permission for a caller other than root, "..", or because it is where the walk ends. Root may
// search any directory (as Linux's CAP_DAC_READ_SEARCH), and a dentry already says whether it
// names a directory, so a root caller's walk of /a/b/c reads three dentries and one inode instead
// of three dentries and four inodes. Nothing is lost for conflicts: the dentries passed are read,
// so a rename or rmdir of a directory on the path still makes the transaction retry, and a change
// to a skipped directory's own record (mode, owner, times) could not change a root caller's walk.
import { ThreeFsError } from '../common/errors.js';
import type { Dentry } from './meta-txn.js';
import type { PathAt } from '../common/services/meta.js';
import type { InodeRecord } from './inode.js';
import { ROOT_ID } from './keys.js';
import type { MetaTxn } from './meta-txn.js';
import { MAX_SYMLINK_FOLLOWS, splitPath } from './names.js';
import { type Caller, isRoot, mayAccess, X_OK } from './permissions.js';

interface Budget {
  follows: number;
}

export interface ParentAndName {
  dir: InodeRecord;
  /** The last component; undefined when the path names `dir` itself ("" or "/"). */
  name: string | undefined;
}

/**
 * Where a walk stands: a directory known to exist (the root, or one a dentry names as a
 * directory) whose record is read on first need, or an inode already read (a walk's start, which
 * may be a file when the path is empty).
 */
interface Step {
  id: number;
  record: InodeRecord | undefined;
}

const stepAt = (record: InodeRecord): Step => ({ id: record.id, record });

/** The root directory, which always exists: its record is read only if needed. */
const rootStep = (): Step => ({ id: ROOT_ID, record: undefined });

async function recordOf(mt: MetaTxn, step: Step): Promise<InodeRecord> {
  step.record ??= await mt.requireDir(step.id);
  return step.record;
}

/** EACCES unless the caller may look names up in `dir` (x on a directory). */
function search(dir: InodeRecord, caller: Caller): void {
  if (!mayAccess(dir, caller, X_OK, true)) {
    throw new ThreeFsError('EACCES', `no search permission on directory ${dir.id}`);
  }
}

/** search() on a step; root may search any directory, so its record is not read for root. */
async function searchStep(mt: MetaTxn, step: Step, caller: Caller): Promise<void> {
  if (!isRoot(caller)) search(await recordOf(mt, step), caller);
}

async function parentOf(mt: MetaTxn, dir: InodeRecord): Promise<InodeRecord> {
  return dir.id === ROOT_ID ? dir : mt.requireDir(dir.parent);
}

async function follow(
  mt: MetaTxn,
  caller: Caller,
  from: Step,
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
  dir: Step,
  part: string,
  budget: Budget,
): Promise<Step> {
  await searchStep(mt, dir, caller);
  if (part === '..') return stepAt(await parentOf(mt, await recordOf(mt, dir)));
  const entry = await mt.dentry(dir.id, part);
  if (!entry) throw new ThreeFsError('ENOENT', `no entry "${part}" in directory ${dir.id}`);
  if (entry.type === 'dir') return { id: entry.id, record: undefined };
  if (entry.type !== 'symlink') throw new ThreeFsError('ENOTDIR', `"${part}" is not a directory`);
  const inode = await follow(mt, caller, dir, await mt.requireInode(entry.id), budget);
  if (inode.type !== 'dir') throw new ThreeFsError('ENOTDIR', `"${part}" is not a directory`);
  return stepAt(inode);
}

/** The walk to the last component: the step that holds it, and its name (see ParentAndName). */
async function walkToParent(
  mt: MetaTxn,
  caller: Caller,
  start: Step,
  path: string,
  budget: Budget,
): Promise<{ dir: Step; name: string | undefined }> {
  const { absolute, parts } = splitPath(path);
  let dir = absolute ? rootStep() : start;
  if (dir.record !== undefined && dir.record.type !== 'dir') {
    if (parts.length === 0) return { dir, name: undefined };
    throw new ThreeFsError('ENOTDIR', `inode ${dir.id} is not a directory`);
  }
  for (let i = 0; i < parts.length - 1; i++)
    dir = await stepDir(mt, caller, dir, parts[i] as string, budget);
  return { dir, name: parts[parts.length - 1] };
}

async function parentAndNameFrom(
  mt: MetaTxn,
  caller: Caller,
  start: Step,
  path: string,
  budget: Budget,
): Promise<ParentAndName> {
  const { dir, name } = await walkToParent(mt, caller, start, path, budget);
  return { dir: await recordOf(mt, dir), name };
}

async function lookupFrom(
  mt: MetaTxn,
  caller: Caller,
  start: Step,
  path: string,
  followLast: boolean,
  budget: Budget,
): Promise<InodeRecord> {
  const { dir, name } = await walkToParent(mt, caller, start, path, budget);
  if (name === undefined) return recordOf(mt, dir);
  await searchStep(mt, dir, caller);
  if (name === '..') return parentOf(mt, await recordOf(mt, dir));
  const entry = await mt.dentry(dir.id, name);
  if (!entry) throw new ThreeFsError('ENOENT', `no entry "${name}" in directory ${dir.id}`);
  const inode = await mt.requireInode(entry.id);
  if (inode.type === 'symlink' && followLast) return follow(mt, caller, dir, inode, budget);
  return inode;
}

async function startOf(mt: MetaTxn, at: PathAt): Promise<Step> {
  if (at.parent === undefined || at.parent === ROOT_ID) return rootStep();
  return stepAt(await mt.requireInode(at.parent));
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
    const next = await parentAndNameFrom(mt, caller, stepAt(at.dir), link.target ?? '', budget);
    // A name came back, so the walk ended in a directory (parentAndNameFrom refuses the rest).
    if (next.name === undefined || next.name === '..') {
      throw new ThreeFsError('EISDIR', `symlink "${at.name}" names a directory`);
    }
    search(next.dir, caller);
    at = { dir: next.dir, name: next.name, entry: await mt.dentry(next.dir.id, next.name) };
  }
  return at;
}
