// Opening, syncing and closing files (brief §5.4): write opens get a session, read opens touch
// nothing; the length is lazy while sessions are open (client hints, guarded by the truncate
// version) and exact at fsync and close (asked of storage over the file's first dynStripe chains).
// Storage calls happen between transactions, never inside one (a transaction may be retried and
// must stay short); the truncate version tells whether a truncate slipped in between.
import type { z } from 'zod';
import { hasCode, ThreeFsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { MetaMethods, MetaRequestHeader, OpenFlags } from '../common/services/meta.js';
import { grownDynStripe } from './chain-allocator.js';
import { callerOf, enforceQuota, inTxn, type NamespaceContext } from './context.js';
import { type InodeRecord, toAttrs } from './inode.js';
import { allSessionsRange, idOfKey, nameOfKey, sessionKey } from './keys.js';
import type { MetaTxn } from './meta-txn.js';
import {
  type Caller,
  mayAccess,
  modeAfterWrite,
  modeAfterWriteOpen,
  R_OK,
  W_OK,
} from './permissions.js';
import { countsInQuota } from './quota-rules.js';
import { lookup } from './resolve.js';
import { decodeSession, openSession } from './sessions.js';
import { applyTruncate, mayHoldBytesPast } from './truncate-rules.js';

type Req<K extends keyof MetaMethods> = z.output<MetaMethods[K]['request']>;

/** Opens an existing inode inside a transaction (shared by open and create-on-existing). */
export async function openExisting(
  ctx: NamespaceContext,
  mt: MetaTxn,
  caller: Caller,
  clientId: string,
  inode: InodeRecord,
  flags: z.output<typeof OpenFlags>,
) {
  const writes = flags.write || flags.truncate || flags.append;
  if (inode.type === 'dir') {
    if (writes) throw new ThreeFsError('EISDIR', `inode ${inode.id} is a directory`);
  }
  const want = (flags.read ? R_OK : 0) | (writes ? W_OK : 0);
  if (!mayAccess(inode, caller, want, inode.type === 'dir')) {
    throw new ThreeFsError('EACCES', `permission denied on inode ${inode.id}`);
  }
  if (!writes || inode.type !== 'file') return { attrs: toAttrs(inode), session: undefined };
  await enforceQuota(mt, inode.quotaRoots, 1, 0);
  let current = inode;
  if (flags.truncate && (await mayHoldBytesPast(mt, inode, 0))) {
    current = (await applyTruncate(mt, caller, inode, 0)).inode;
  } else {
    // O_TRUNC of an empty file cuts nothing but still counts as a truncate for the mode.
    const mode = flags.truncate
      ? modeAfterWrite(inode.mode, caller)
      : modeAfterWriteOpen(inode, caller);
    if (mode !== inode.mode) {
      current = { ...inode, mode, ctimeMs: mt.now };
      mt.putInode(current);
    }
  }
  const sessionId = flags.write ? openSession(mt, inode.id, clientId) : undefined;
  return { attrs: toAttrs(current), session: sessionId ? { sessionId } : undefined };
}

export async function open(ctx: NamespaceContext, h: MetaRequestHeader, req: Req<'open'>) {
  const caller = callerOf(h);
  if (req.inode === undefined && req.at === undefined) {
    throw new ThreeFsError('INVALID_ARGUMENT', 'open needs an inode or a path');
  }
  const opened = await inTxn(ctx, async (mt) => {
    const inode =
      req.inode !== undefined
        ? await mt.requireInode(req.inode)
        : await lookup(mt, caller, req.at!, true);
    if (inode.nlink === 0 && inode.type !== 'dir')
      throw new ThreeFsError('ENOENT', `inode ${inode.id} has been removed`);
    return openExisting(ctx, mt, caller, h.clientId, inode, req.flags);
  });
  // O_TRUNC: the chunks past the end go before the caller may write again.
  if (req.flags.truncate) await ctx.kickGc();
  return opened;
}

/**
 * Sets a file's length (hint or exact) when no truncate happened since the caller measured it,
 * keeping quota usage in step. Returns true when the growth passed a quota limit: the length is
 * still recorded (the bytes exist on storage), and the caller reports EDQUOT after commit.
 */
async function applyLength(
  mt: MetaTxn,
  inode: InodeRecord,
  length: number,
  truncateVer: number,
  exact: boolean,
): Promise<{ inode: InodeRecord; overQuota: boolean }> {
  if (truncateVer !== inode.truncateVer) return { inode, overQuota: false };
  const floor = inode.truncatedLength ?? 0;
  const target = exact ? Math.max(length, floor) : Math.max(length, inode.length);
  if (target === inode.length) return { inode, overQuota: false };
  let overQuota = false;
  if (countsInQuota(inode)) {
    try {
      await enforceQuota(mt, inode.quotaRoots, target - inode.length, 0);
    } catch (err) {
      if (!hasCode(err, 'EDQUOT')) throw err;
      overQuota = true;
    }
    mt.addUsage(inode.quotaRoots, target - inode.length, 0);
  }
  const next = { ...inode, length: target, mtimeMs: mt.now, ctimeMs: mt.now };
  mt.putInode(next);
  return { inode: next, overQuota };
}

/** A file's inode read outside any later transaction, for a storage query. */
async function readFile(ctx: NamespaceContext, id: number): Promise<InodeRecord> {
  return inTxn(ctx, async (mt) => {
    const inode = await mt.requireInode(id);
    if (inode.type !== 'file')
      throw new ThreeFsError(
        inode.type === 'dir' ? 'EISDIR' : 'EINVAL',
        `inode ${id} is not a regular file`,
      );
    return inode;
  });
}

/** Exact length from storage for the inode as it is now; undefined when storage cannot say. */
async function exactLength(
  ctx: NamespaceContext,
  inode: InodeRecord,
  log: Logger | undefined,
): Promise<number | undefined> {
  if (!inode.layout) throw new ThreeFsError('INTERNAL', `file ${inode.id} has no layout`);
  try {
    return await ctx.chunks.fileLength(inode.layout, inode.id, inode.dynStripe);
  } catch (err) {
    log?.warn(
      { err, inode: inode.id },
      'exact length unavailable from storage; keeping the hinted length',
    );
    return undefined;
  }
}

const EXACT_ROUNDS = 3;

export async function sync(
  ctx: NamespaceContext,
  h: MetaRequestHeader,
  req: Req<'sync'>,
  log?: Logger,
) {
  const caller = callerOf(h);
  let measured: { length: number; truncateVer: number } | undefined;
  for (let round = 0; round < EXACT_ROUNDS; round++) {
    if (req.exact) {
      const before = await readFile(ctx, req.inode);
      const length = await exactLength(ctx, before, log);
      if (length === undefined)
        throw new ThreeFsError(
          'UNAVAILABLE',
          `storage cannot tell the length of inode ${req.inode}`,
        );
      measured = { length, truncateVer: before.truncateVer };
    }
    const outcome = await inTxn(ctx, async (mt) => {
      let inode = await mt.requireInode(req.inode);
      if (inode.type !== 'file')
        throw new ThreeFsError('EINVAL', `inode ${inode.id} is not a regular file`);
      if (!mayAccess(inode, caller, W_OK, false))
        throw new ThreeFsError('EACCES', `no write permission on inode ${inode.id}`);
      if (measured && measured.truncateVer !== inode.truncateVer) return undefined; // measure again
      let overQuota = false;
      if (req.lengthHint !== undefined)
        ({ inode, overQuota } = await applyLength(
          mt,
          inode,
          req.lengthHint,
          req.truncateVer,
          false,
        ));
      if (measured) {
        const exact = await applyLength(mt, inode, measured.length, measured.truncateVer, true);
        inode = exact.inode;
        overQuota ||= exact.overQuota;
      }
      if (req.wantStripe > inode.dynStripe && inode.layout) {
        const dynStripe = grownDynStripe(inode.dynStripe, req.wantStripe, inode.layout.stripeSize);
        if (dynStripe !== inode.dynStripe) {
          inode = { ...inode, dynStripe };
          mt.putInode(inode);
        }
      }
      return { inode, overQuota };
    });
    if (!outcome) continue;
    if (outcome.overQuota)
      throw new ThreeFsError(
        'EDQUOT',
        `inode ${req.inode}: quota exceeded; the length is recorded`,
      );
    return { attrs: toAttrs(outcome.inode) };
  }
  throw new ThreeFsError(
    'UNAVAILABLE',
    `inode ${req.inode} kept being truncated while its length was measured`,
  );
}

/**
 * Closes one write session: the exact length from storage (unless the session wrote nothing:
 * `measure` false), then the session key goes.
 */
export async function closeSession(
  ctx: NamespaceContext,
  inodeId: number,
  sessionId: string,
  hint: { length: number; truncateVer: number } | undefined,
  log: Logger | undefined,
  measure = true,
): Promise<{ attrs: ReturnType<typeof toAttrs>; lengthExact: boolean; overQuota: boolean }> {
  for (let round = 0; round < EXACT_ROUNDS; round++) {
    const before = measure ? await readFile(ctx, inodeId) : undefined;
    const length = before ? await exactLength(ctx, before, log) : undefined;
    const outcome = await inTxn(ctx, async (mt) => {
      let inode = await mt.requireInode(inodeId);
      if (before && length !== undefined && inode.truncateVer !== before.truncateVer)
        return undefined;
      let overQuota = false;
      if (hint)
        ({ inode, overQuota } = await applyLength(mt, inode, hint.length, hint.truncateVer, false));
      if (before && length !== undefined) {
        const exact = await applyLength(mt, inode, length, before.truncateVer, true);
        inode = exact.inode;
        overQuota ||= exact.overQuota;
      }
      mt.tx.clear(sessionKey(inodeId, sessionId));
      return { attrs: toAttrs(inode), lengthExact: length !== undefined, overQuota };
    });
    if (outcome) return outcome;
  }
  throw new ThreeFsError(
    'UNAVAILABLE',
    `inode ${inodeId} kept being truncated while its length was measured`,
  );
}

export async function close(
  ctx: NamespaceContext,
  h: MetaRequestHeader,
  req: Req<'close'>,
  log?: Logger,
) {
  const hint =
    req.lengthHint !== undefined
      ? { length: req.lengthHint, truncateVer: req.truncateVer }
      : undefined;
  const result = await closeSession(ctx, req.inode, req.sessionId, hint, log, req.updateLength);
  if (result.overQuota)
    throw new ThreeFsError('EDQUOT', `inode ${req.inode}: quota exceeded; the length is recorded`);
  return { attrs: result.attrs, lengthExact: result.lengthExact };
}

/**
 * Closes sessions that wrote nothing, all in one transaction: no length to measure, so each is
 * one key cleared. A session of another client is left alone (and not counted).
 */
export async function closeSessions(
  ctx: NamespaceContext,
  h: MetaRequestHeader,
  req: Req<'closeSessions'>,
) {
  return inTxn(ctx, async (mt) => {
    let closed = 0;
    for (const { inode, sessionId } of req.sessions) {
      const key = sessionKey(inode, sessionId);
      const value = await mt.tx.get(key);
      if (value === undefined) {
        closed++; // closed already: a retry after a lost reply
        continue;
      }
      if (decodeSession(value).clientId !== h.clientId) continue;
      mt.tx.clear(key);
      closed++;
    }
    return { closed };
  });
}

/** Sessions page by page: (inode, session id, record). */
export async function listSessions(
  ctx: NamespaceContext,
  after: Buffer | undefined,
  limit: number,
) {
  const { begin, end } = allSessionsRange();
  const rows = await ctx.kv.run((tx) => tx.snapshot.getRange(after ?? begin, end, { limit }));
  return rows.map((row) => ({
    key: row.key,
    inode: idOfKey(row.key),
    sessionId: nameOfKey(row.key),
    record: decodeSession(row.value),
  }));
}

const PRUNE_PAGE = 1024;
const PRUNE_MAX_PAGES = 1024;

/** Closes every session of clients for which `isDead` holds; returns how many. */
export async function pruneSessions(
  ctx: NamespaceContext,
  isDead: (clientId: string, openedAtMs: number) => boolean,
  log: Logger | undefined,
): Promise<number> {
  let pruned = 0;
  let after: Buffer | undefined;
  for (let page = 0; page < PRUNE_MAX_PAGES; page++) {
    const sessions = await listSessions(ctx, after, PRUNE_PAGE);
    for (const s of sessions) {
      if (!isDead(s.record.clientId, s.record.openedAtMs)) continue;
      await closeSession(ctx, s.inode, s.sessionId, undefined, log);
      pruned++;
    }
    if (sessions.length < PRUNE_PAGE) return pruned;
    const last = sessions[sessions.length - 1]!.key;
    after = Buffer.concat([last, Buffer.from([0])]);
  }
  return pruned;
}

export async function pruneClient(
  ctx: NamespaceContext,
  h: MetaRequestHeader,
  req: Req<'pruneSession'>,
  log?: Logger,
) {
  if (h.uid !== 0) throw new ThreeFsError('EPERM', 'only root may prune sessions');
  return { pruned: await pruneSessions(ctx, (clientId) => clientId === req.deadClientId, log) };
}
