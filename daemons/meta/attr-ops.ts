// Reading and changing attributes: stat/lookup, batch stat, paged listing with attributes
// (readdirplus), setattr (mode, owner, times), truncate, statfs, quotas and directory layouts.
import type { z } from 'zod';
import { ThreeFsError } from '../common/errors.js';
import { keyAfter } from '../common/kv/index.js';
import type { MetaMethods, MetaRequestHeader } from '../common/services/meta.js';
import { callerOf, inReadTxn, inTxn, type NamespaceContext } from './context.js';
import { type InodeRecord, toAttrs, unpackValue } from './inode.js';
import { dentryKey, dentryRange } from './keys.js';
import type { MetaTxn } from './meta-txn.js';
import { chmodResult, chownResult, isRoot, mayAccess, R_OK, W_OK } from './permissions.js';
import { lookup } from './resolve.js';
import { applyTruncate } from './truncate-rules.js';

type Req<K extends keyof MetaMethods> = z.output<MetaMethods[K]['request']>;

async function attrsOf(mt: MetaTxn, inode: InodeRecord) {
  return toAttrs(inode, inode.type === 'dir' ? await mt.dirMtime(inode.id) : 0);
}

export async function stat(ctx: NamespaceContext, h: MetaRequestHeader, req: Req<'stat'>) {
  const caller = callerOf(h);
  return inReadTxn(ctx, async (mt) => {
    let inode: InodeRecord;
    if (req.at !== undefined) inode = await lookup(mt, caller, req.at, req.follow);
    else if (req.inode !== undefined) inode = await mt.requireInode(req.inode);
    else throw new ThreeFsError('INVALID_ARGUMENT', 'stat needs an inode or a path');
    return { attrs: await attrsOf(mt, inode) };
  });
}

export async function batchStat(
  ctx: NamespaceContext,
  _h: MetaRequestHeader,
  req: Req<'batchStat'>,
) {
  return inReadTxn(ctx, async (mt) => {
    const out = [];
    for (const id of req.inodes) {
      const inode = await mt.inode(id);
      out.push(inode ? await attrsOf(mt, inode) : null);
    }
    return { attrs: out };
  });
}

export async function list(ctx: NamespaceContext, h: MetaRequestHeader, req: Req<'list'>) {
  const caller = callerOf(h);
  return inReadTxn(ctx, async (mt) => {
    const dir = await mt.requireDir(req.inode);
    if (!mayAccess(dir, caller, R_OK, true))
      throw new ThreeFsError('EACCES', `no read permission on directory ${dir.id}`);
    const { begin, end } = dentryRange(dir.id);
    const from = req.after === '' ? begin : keyAfter(dentryKey(dir.id, req.after));
    // A listing is for display: snapshot reads, so it never makes concurrent creates retry.
    const rows = await mt.tx.snapshot.getRange(from, end, { limit: req.limit + 1 });
    const page = rows.slice(0, req.limit);
    const prefixBytes = begin.length;
    const entries = [];
    for (const row of page) {
      const d = unpackValue(row.value) as { id: number; type: InodeRecord['type'] };
      const name = row.key.subarray(prefixBytes).toString('utf8');
      let attrs;
      if (req.withAttrs) {
        const inode = await mt.inode(d.id);
        if (inode) attrs = await attrsOf(mt, inode);
      }
      entries.push({ name, id: d.id, type: d.type, attrs });
    }
    return { entries, more: rows.length > req.limit };
  });
}

export async function setAttr(ctx: NamespaceContext, h: MetaRequestHeader, req: Req<'setAttr'>) {
  const caller = callerOf(h);
  return inTxn(ctx, async (mt) => {
    let inode = await mt.requireInode(req.inode);
    if (req.mode !== undefined) {
      const r = chmodResult(inode, caller, req.mode);
      if (!r.ok) throw new ThreeFsError(r.errno, `may not change the mode of inode ${inode.id}`);
      inode = { ...inode, mode: r.mode };
    }
    if (req.ownerUid !== undefined || req.ownerGid !== undefined) {
      const r = chownResult(inode, caller, req.ownerUid, req.ownerGid);
      if (!r.ok) throw new ThreeFsError(r.errno, `may not change the owner of inode ${inode.id}`);
      inode = {
        ...inode,
        mode: r.mode,
        uid: req.ownerUid ?? inode.uid,
        gid: req.ownerGid ?? inode.gid,
      };
    }
    if (req.atimeMs !== undefined || req.mtimeMs !== undefined) {
      if (!isRoot(caller) && caller.uid !== inode.uid) {
        throw new ThreeFsError('EPERM', `only the owner may set the times of inode ${inode.id}`);
      }
      inode = {
        ...inode,
        atimeMs: req.atimeMs ?? inode.atimeMs,
        mtimeMs: req.mtimeMs ?? inode.mtimeMs,
      };
    }
    inode = { ...inode, ctimeMs: mt.now };
    mt.putInode(inode);
    return { attrs: await attrsOf(mt, inode) };
  });
}

export async function truncate(ctx: NamespaceContext, h: MetaRequestHeader, req: Req<'truncate'>) {
  const caller = callerOf(h);
  const result = await inTxn(ctx, async (mt) => {
    const inode = await mt.requireInode(req.inode);
    if (inode.type === 'file' && !mayAccess(inode, caller, W_OK, false)) {
      throw new ThreeFsError('EACCES', `no write permission on inode ${inode.id}`);
    }
    const { inode: next } = await applyTruncate(mt, caller, inode, req.length);
    return { attrs: toAttrs(next) };
  });
  await ctx.kickGc(); // the chunks past the end go before the caller may write again
  return result;
}

/** The quota root whose limits statfs reports for an inode: itself if it is one, else the nearest. */
function nearestQuotaRoot(inode: InodeRecord): number | undefined {
  return inode.quota ? inode.id : inode.quotaRoots[0];
}

/** Inodes reported when no quota limits them (the KV store has no global count). */
const UNLIMITED_INODES = 2 ** 32;

export async function statFs(ctx: NamespaceContext, _h: MetaRequestHeader, req: Req<'statFs'>) {
  const cluster = await ctx.clusterSpace();
  return inReadTxn(ctx, async (mt) => {
    const inode = await mt.requireInode(req.inode);
    const rootId = nearestQuotaRoot(inode);
    const root = rootId === undefined ? undefined : await mt.inode(rootId);
    if (!root?.quota) {
      return {
        totalBytes: cluster.totalBytes,
        usedBytes: cluster.totalBytes - cluster.freeBytes,
        freeBytes: cluster.freeBytes,
        totalInodes: UNLIMITED_INODES,
        usedInodes: 0,
        quotaRoot: 0,
      };
    }
    const usage = await mt.quotaUsage(root.id);
    const totalBytes = root.quota.maxBytes > 0 ? root.quota.maxBytes : cluster.totalBytes;
    const freeBytes = Math.max(0, Math.min(totalBytes - usage.bytes, cluster.freeBytes));
    return {
      totalBytes,
      usedBytes: usage.bytes,
      freeBytes,
      totalInodes: root.quota.maxInodes > 0 ? root.quota.maxInodes : UNLIMITED_INODES,
      usedInodes: usage.inodes,
      quotaRoot: root.id,
    };
  });
}

export async function setQuota(ctx: NamespaceContext, h: MetaRequestHeader, req: Req<'setQuota'>) {
  if (!isRoot(callerOf(h))) throw new ThreeFsError('EPERM', 'only root may set quotas');
  return inTxn(ctx, async (mt) => {
    const dir = await mt.requireDir(req.inode);
    // Usage counts only what is created under a root, so a new root must start empty.
    if (!dir.quota && !(await mt.isEmptyDir(dir.id))) {
      throw new ThreeFsError(
        'ENOTEMPTY',
        `a quota can only be put on an empty directory (${dir.id})`,
      );
    }
    mt.putInode({ ...dir, quota: req.limits, ctimeMs: mt.now });
    return {};
  });
}

export async function getQuota(ctx: NamespaceContext, _h: MetaRequestHeader, req: Req<'getQuota'>) {
  return inReadTxn(ctx, async (mt) => {
    const dir = await mt.requireDir(req.inode);
    if (!dir.quota) throw new ThreeFsError('ENOENT', `directory ${dir.id} has no quota`);
    const usage = await mt.quotaUsage(dir.id);
    return { limits: dir.quota, usedBytes: usage.bytes, usedInodes: usage.inodes };
  });
}

export async function setLayout(
  ctx: NamespaceContext,
  h: MetaRequestHeader,
  req: Req<'setLayout'>,
) {
  const caller = callerOf(h);
  return inTxn(ctx, async (mt) => {
    const dir = await mt.requireDir(req.inode);
    if (!isRoot(caller) && caller.uid !== dir.uid)
      throw new ThreeFsError('EPERM', `only the owner may set the layout of ${dir.id}`);
    const layout = dir.layout;
    if (!layout) throw new ThreeFsError('INTERNAL', `directory ${dir.id} has no layout`);
    const next: InodeRecord = {
      ...dir,
      layout: {
        chainTableId: req.layout.chainTableId ?? layout.chainTableId,
        chainTableVersion: 0,
        chunkSize: req.layout.chunkSize ?? layout.chunkSize,
        stripeSize: req.layout.stripeSize ?? layout.stripeSize,
        chains: req.layout.chainTableId !== undefined ? { kind: 'empty' } : layout.chains,
      },
      ctimeMs: mt.now,
    };
    mt.putInode(next);
    return { attrs: await attrsOf(mt, next) };
  });
}
