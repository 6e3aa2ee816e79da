// What every namespace operation needs: the KV store, id and chain allocators, the routing info
// (chain tables), GC timing, and the caller. Operations are functions of (context, caller, request)
// so each file holds one group of them; all KV access goes through MetaTxn.
import { ThreeFsError } from '../common/errors.js';
import type { KvStore } from '../common/kv/index.js';
import { findChainTable, type RoutingInfo, type ChainTableVersion } from '../common/routing.js';
import type { MetaRequestHeader } from '../common/services/meta.js';
import type { ChainAllocator } from './chain-allocator.js';
import type { FileChunks } from './file-chunks.js';
import type { InodeIdAllocator } from './inode-id-allocator.js';
import type { DirEntryCache } from './dentry-cache.js';
import type { DecodedInodeCache } from './inode-cache.js';
import { MetaTxn } from './meta-txn.js';
import type { Caller } from './permissions.js';
import { checkQuota } from './quota-rules.js';

export interface NamespaceContext {
  kv: KvStore;
  ids: InodeIdAllocator;
  chains: ChainAllocator;
  routing: () => RoutingInfo;
  /** Storage: exact lengths and chunk removal. */
  chunks: FileChunks;
  /** Runs the GC worker now, after a transaction queued work that is due now (truncate). */
  kickGc: () => Promise<void>;
  /** The cluster's capacity and free bytes (statfs outside quota directories). */
  clusterSpace: () => Promise<{ totalBytes: number; freeBytes: number }>;
  /** Delay between a file's last unlink and the removal of its chunks. */
  gcDelayMs: number;
  /** How long a remove/rename result is kept for retries of the same request id. */
  idempotencyTtlMs: number;
  now: () => number;
  /** Decoded inode records shared by this server's transactions (checked against the bytes read). */
  decoded?: DecodedInodeCache;
  /** Entries naming directories, shared by this server's read-only transactions. */
  dirEntries?: DirEntryCache;
}

export function callerOf(header: MetaRequestHeader): Caller {
  return { uid: header.uid, gid: header.gid, groups: header.groups };
}

/** Runs one serializable transaction (retried on conflict) with a fresh MetaTxn per attempt. */
export function inTxn<T>(ctx: NamespaceContext, fn: (mt: MetaTxn) => Promise<T>): Promise<T> {
  return ctx.kv.run((tx) => fn(new MetaTxn(tx, ctx.now(), { decoded: ctx.decoded })));
}

/**
 * Runs a read-only operation (stat, list) at one consistent snapshot: no read set, no commit
 * check, no conflicts (a write inside it is an INTERNAL error).
 */
export function inReadTxn<T>(ctx: NamespaceContext, fn: (mt: MetaTxn) => Promise<T>): Promise<T> {
  return ctx.kv.run((tx) =>
    fn(
      new MetaTxn(tx, ctx.now(), {
        readOnly: true,
        decoded: ctx.decoded,
        dirEntries: ctx.dirEntries,
      }),
    ),
  );
}

export function chainTable(ctx: NamespaceContext, tableId: number, version = 0): ChainTableVersion {
  const table = findChainTable(ctx.routing(), tableId, version);
  if (!table) {
    throw new ThreeFsError(
      'FAILED_PRECONDITION',
      `chain table ${tableId}${version ? ` version ${version}` : ''} is not in the routing info`,
    );
  }
  return table;
}

/** EDQUOT if growing by these amounts would pass the limit of any root that has one. */
export async function enforceQuota(
  mt: MetaTxn,
  roots: readonly number[],
  addBytes: number,
  addInodes: number,
): Promise<void> {
  if (addBytes <= 0 && addInodes <= 0) return;
  for (const rootId of roots) {
    const root = await mt.inode(rootId);
    if (!root?.quota) continue;
    checkQuota(rootId, root.quota, await mt.quotaUsage(rootId), addBytes, addInodes);
  }
}
