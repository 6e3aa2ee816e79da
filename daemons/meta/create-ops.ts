// Operations that add a name: create (open with O_CREAT), mkdir (-p), symlink, hard link. Each is
// one transaction; the new inode id is allocated before it so retries after a conflict reuse it.
import type { z } from 'zod';
import { ThreeFsError } from '../common/errors.js';
import type { Layout } from '../common/layout.js';
import type { MetaMethods, MetaRequestHeader } from '../common/services/meta.js';
import { initialDynStripe } from './chain-allocator.js';
import { callerOf, chainTable, enforceQuota, inTxn, type NamespaceContext } from './context.js';
import { type InodeRecord, toAttrs } from './inode.js';
import type { MetaTxn } from './meta-txn.js';
import { checkName, PATH_MAX_BYTES, splitPath } from './names.js';
import { previousResult, recordResult, type RequestMarks, requestMarks } from './idempotency.js';
import { openExisting } from './open-ops.js';
import {
  type Caller,
  inheritedOwnership,
  mayAccess,
  mayHardLink,
  W_OK,
  X_OK,
} from './permissions.js';
import { childQuotaRoots, sameQuotaRoots } from './quota-rules.js';
import { followForCreate, lookup, resolveEntryName } from './resolve.js';
import { hasSession, openSession } from './sessions.js';

type Req<K extends keyof MetaMethods> = z.output<MetaMethods[K]['request']>;

/** Stores the reply for retries of this request id (exactly-once creates), and returns it. */
function recorded<T>(
  ctx: NamespaceContext,
  mt: MetaTxn,
  h: MetaRequestHeader,
  method: string,
  result: T,
): T {
  recordResult(mt, h.clientId, h.requestId, method, result, ctx.idempotencyTtlMs);
  return result;
}

/** Upper bound on nlink (3FS: 65,535). */
export const MAX_LINKS = 65_535;

function mayAddEntry(dir: InodeRecord, caller: Caller): void {
  if (dir.nlink === 0) throw new ThreeFsError('ENOENT', `directory ${dir.id} has been removed`);
  if (!mayAccess(dir, caller, W_OK | X_OK, true)) {
    throw new ThreeFsError('EACCES', `no write permission on directory ${dir.id}`);
  }
}

function fileLayout(ctx: NamespaceContext, dir: InodeRecord): Layout {
  const dirLayout = dir.layout;
  if (!dirLayout) throw new ThreeFsError('INTERNAL', `directory ${dir.id} has no layout`);
  if (dirLayout.chains.kind === 'list') return dirLayout;
  return ctx.chains.allocate(dirLayout, chainTable(ctx, dirLayout.chainTableId));
}

function stripeOf(layout: Layout): number {
  return layout.chains.kind === 'list' ? layout.chains.chainIds.length : layout.stripeSize;
}

/** Adds a new inode under `dir` with every bookkeeping write (dentry, dir time, quota usage). */
async function addChild(
  mt: MetaTxn,
  dir: InodeRecord,
  name: string,
  inode: InodeRecord,
  tag?: string,
): Promise<void> {
  await enforceQuota(mt, inode.quotaRoots, 0, 1);
  mt.putInode(inode);
  mt.putDentry(dir.id, name, { id: inode.id, type: inode.type, tag });
  mt.touchDir(dir.id);
  mt.addUsage(inode.quotaRoots, 0, 1);
}

function baseInode(
  mt: MetaTxn,
  id: number,
  dir: InodeRecord,
  type: InodeRecord['type'],
  own: { uid: number; gid: number; mode: number },
): InodeRecord {
  return {
    id,
    type,
    mode: own.mode,
    uid: own.uid,
    gid: own.gid,
    nlink: 1,
    atimeMs: mt.now,
    mtimeMs: mt.now,
    ctimeMs: mt.now,
    length: 0,
    truncateVer: 0,
    dynStripe: 0,
    parent: 0,
    quotaRoots: childQuotaRoots(dir),
  };
}

type CreateReply = z.output<MetaMethods['create']['response']>;

export async function create(ctx: NamespaceContext, h: MetaRequestHeader, req: Req<'create'>) {
  const caller = callerOf(h);
  const id = await ctx.ids.allocate();
  const marks = requestMarks(h.clientId, h.requestId);
  const result = await inTxn(ctx, async (mt): Promise<CreateReply> => {
    const named = await resolveEntryName(mt, caller, req.at, 'EEXIST');
    checkName(named.name);
    const first = { ...named, entry: await mt.dentry(named.dir.id, named.name) };
    // With O_EXCL a symlink is an existing name (EEXIST); without, the file is made where it leads.
    const { dir, name, entry } = req.flags.exclusive
      ? first
      : await followForCreate(mt, caller, first);
    if (entry) {
      // A retry of this very request (its reply was lost): the file it made, as it is now.
      if (entry.tag === marks.tag) return retriedCreate(mt, entry.id, h.clientId, req, marks);
      // An earlier attempt that opened the existing file kept its reply (and session) here.
      const previous = await previousResult(mt, h.clientId, h.requestId, 'create');
      if (previous) return previous.result as CreateReply;
      if (req.flags.exclusive) throw new ThreeFsError('EEXIST', `"${name}" exists`);
      const existing = await mt.requireInode(entry.id);
      // open(O_CREAT) of a directory, read-only or not, is EISDIR on Linux.
      if (existing.type === 'dir') throw new ThreeFsError('EISDIR', `"${name}" is a directory`);
      const opened = await openExisting(ctx, mt, caller, h.clientId, existing, req.flags);
      return recorded(ctx, mt, h, 'create', { ...opened, created: false });
    }
    mayAddEntry(dir, caller);
    const layout = fileLayout(ctx, dir);
    const inode: InodeRecord = {
      ...baseInode(
        mt,
        id,
        dir,
        'file',
        inheritedOwnership(dir, caller, req.mode, req.umask, false),
      ),
      layout,
      dynStripe: initialDynStripe(stripeOf(layout)),
    };
    await addChild(mt, dir, name, inode, marks.tag);
    const session = req.flags.write
      ? { sessionId: openSession(mt, id, h.clientId, marks.sessionId) }
      : undefined;
    return { attrs: toAttrs(inode), created: true, session };
  });
  // O_TRUNC of an existing file: the chunks past the end go before the caller may write again.
  if (!result.created && req.flags.truncate) await ctx.kickGc();
  return result;
}

/**
 * The reply to a create whose earlier attempt made the file: created, with the write session that
 * attempt opened (opened again if the session pruner closed it meanwhile).
 */
async function retriedCreate(
  mt: MetaTxn,
  inodeId: number,
  clientId: string,
  req: Req<'create'>,
  marks: RequestMarks,
): Promise<CreateReply> {
  const inode = await mt.requireInode(inodeId);
  let session: CreateReply['session'];
  if (req.flags.write) {
    if (!(await hasSession(mt, inodeId, marks.sessionId)))
      openSession(mt, inodeId, clientId, marks.sessionId);
    session = { sessionId: marks.sessionId };
  }
  return { attrs: toAttrs(inode), created: true, session };
}

function dirLayoutFor(parent: InodeRecord, override: Req<'mkdirs'>['layout']): Layout {
  const inherited = parent.layout;
  if (!inherited) throw new ThreeFsError('INTERNAL', `directory ${parent.id} has no layout`);
  return {
    chainTableId: override?.chainTableId ?? inherited.chainTableId,
    chainTableVersion: 0,
    chunkSize: override?.chunkSize ?? inherited.chunkSize,
    stripeSize: override?.stripeSize ?? inherited.stripeSize,
    chains:
      inherited.chains.kind === 'list' && !override?.chainTableId
        ? inherited.chains
        : { kind: 'empty' },
  };
}

function newDir(
  mt: MetaTxn,
  id: number,
  parent: InodeRecord,
  name: string,
  caller: Caller,
  req: Req<'mkdirs'>,
): InodeRecord {
  return {
    ...baseInode(
      mt,
      id,
      parent,
      'dir',
      inheritedOwnership(parent, caller, req.mode, req.umask, true),
    ),
    parent: parent.id,
    name,
    layout: dirLayoutFor(parent, req.layout),
  };
}

export async function mkdirs(ctx: NamespaceContext, h: MetaRequestHeader, req: Req<'mkdirs'>) {
  const caller = callerOf(h);
  const parts = splitPath(req.at.path).parts;
  const wanted = req.recursive ? Math.max(1, parts.length) : 1;
  const ids: number[] = [];
  for (let i = 0; i < wanted; i++) ids.push(await ctx.ids.allocate());
  return inTxn(ctx, async (mt) => {
    const previous = await previousResult(mt, h.clientId, h.requestId, 'mkdirs');
    if (previous) return previous.result as { attrs: ReturnType<typeof toAttrs> };
    if (!req.recursive) {
      const { dir, name } = await resolveEntryName(mt, caller, req.at, 'EEXIST');
      checkName(name);
      if (await mt.dentry(dir.id, name)) throw new ThreeFsError('EEXIST', `"${name}" exists`);
      mayAddEntry(dir, caller);
      const inode = newDir(mt, ids[0] as number, dir, name, caller, req);
      await addChild(mt, dir, name, inode);
      return recorded(ctx, mt, h, 'mkdirs', { attrs: toAttrs(inode) });
    }
    // mkdir -p: walk the path, creating what is missing; an existing directory is fine.
    const absolute = req.at.path.startsWith('/');
    let dir = absolute
      ? await lookup(mt, caller, { parent: 1, path: '/' }, true)
      : await mt.requireInode(req.at.parent ?? 1);
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as string;
      const prefix = { parent: dir.id, path: part };
      if (part === '..') {
        dir = await lookup(mt, caller, prefix, true);
        continue;
      }
      checkName(part);
      if (dir.type !== 'dir')
        throw new ThreeFsError('ENOTDIR', `inode ${dir.id} is not a directory`);
      if (!mayAccess(dir, caller, X_OK, true))
        throw new ThreeFsError('EACCES', `no search permission on ${dir.id}`);
      if (await mt.dentry(dir.id, part)) {
        const existing = await lookup(mt, caller, prefix, true);
        if (existing.type !== 'dir')
          throw new ThreeFsError(
            i === parts.length - 1 ? 'EEXIST' : 'ENOTDIR',
            `"${part}" is not a directory`,
          );
        dir = existing;
        continue;
      }
      mayAddEntry(dir, caller);
      const inode = newDir(mt, ids[i] as number, dir, part, caller, req);
      await addChild(mt, dir, part, inode);
      dir = inode;
    }
    return recorded(ctx, mt, h, 'mkdirs', { attrs: toAttrs(dir) });
  });
}

export async function symlink(ctx: NamespaceContext, h: MetaRequestHeader, req: Req<'symlink'>) {
  const caller = callerOf(h);
  if (req.target.length === 0) throw new ThreeFsError('ENOENT', 'empty symlink target');
  if (Buffer.byteLength(req.target) > PATH_MAX_BYTES) {
    throw new ThreeFsError('ENAMETOOLONG', 'symlink target is longer than PATH_MAX');
  }
  const id = await ctx.ids.allocate();
  return inTxn(ctx, async (mt) => {
    const previous = await previousResult(mt, h.clientId, h.requestId, 'symlink');
    if (previous) return previous.result as { attrs: ReturnType<typeof toAttrs> };
    const { dir, name } = await resolveEntryName(mt, caller, req.at, 'EEXIST');
    checkName(name);
    if (await mt.dentry(dir.id, name)) throw new ThreeFsError('EEXIST', `"${name}" exists`);
    mayAddEntry(dir, caller);
    const inode: InodeRecord = {
      // 0777 always; the group from a setgid directory, as for files.
      ...baseInode(mt, id, dir, 'symlink', inheritedOwnership(dir, caller, 0o777, 0, false)),
      target: req.target,
    };
    await addChild(mt, dir, name, inode);
    return recorded(ctx, mt, h, 'symlink', { attrs: toAttrs(inode) });
  });
}

export async function hardLink(ctx: NamespaceContext, h: MetaRequestHeader, req: Req<'hardLink'>) {
  const caller = callerOf(h);
  return inTxn(ctx, async (mt) => {
    const previous = await previousResult(mt, h.clientId, h.requestId, 'hardLink');
    if (previous) return previous.result as { attrs: ReturnType<typeof toAttrs> };
    const inode = await mt.requireInode(req.inode);
    // Linux's order: the new name first (ENOENT, ENOTDIR, EEXIST, EACCES), then the file.
    const { dir, name } = await resolveEntryName(mt, caller, req.at, 'EEXIST');
    checkName(name);
    if (await mt.dentry(dir.id, name)) throw new ThreeFsError('EEXIST', `"${name}" exists`);
    if (!mayHardLink(inode, caller))
      throw new ThreeFsError('EPERM', `may not hard link inode ${inode.id}, owned by another user`);
    mayAddEntry(dir, caller);
    if (inode.type === 'dir')
      throw new ThreeFsError('EPERM', 'hard links to directories are not allowed');
    if (inode.nlink === 0) throw new ThreeFsError('ENOENT', `inode ${inode.id} has been removed`);
    if (!sameQuotaRoots(childQuotaRoots(dir), inode.quotaRoots)) {
      throw new ThreeFsError('EXDEV', 'a hard link may not cross a quota directory boundary');
    }
    if (inode.nlink >= MAX_LINKS)
      throw new ThreeFsError('EMLINK', `inode ${inode.id} has ${inode.nlink} links`);
    const next = { ...inode, nlink: inode.nlink + 1, ctimeMs: mt.now };
    mt.putInode(next);
    mt.putDentry(dir.id, name, { id: inode.id, type: inode.type });
    mt.touchDir(dir.id);
    return recorded(ctx, mt, h, 'hardLink', { attrs: toAttrs(next) });
  });
}
