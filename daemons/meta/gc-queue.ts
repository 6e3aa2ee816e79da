// Deferred deletion work as durable KV items (brief §5.6): written in the same transaction as the
// unlink, rmdir -r or truncate that creates the work, so a crash can never lose it; removed in the
// same transaction that finishes it, so it is never finished twice. Any meta server's GC worker
// may take any item (see gc-worker.ts), so the work of a server that never returns is not stranded.
import { ThreeFsError } from '../common/errors.js';
import { packValue, unpackValue } from './inode.js';
import { type GcKind, gcItemKey } from './keys.js';
import type { MetaTxn } from './meta-txn.js';

export interface GcItem {
  /** Directory walks: the quota roots the subtree's inodes were counted in when it was removed. */
  quotaRoots?: number[] | undefined;
  /** Truncates: chunks from this index on are removed. */
  fromChunk?: number | undefined;
  /** A worker holding the item until this time (ms); others leave it alone meanwhile. */
  claimedUntilMs?: number | undefined;
  claimedBy?: string | undefined;
}

export function enqueueGc(
  mt: MetaTxn,
  dueMs: number,
  kind: GcKind,
  inode: number,
  item: GcItem = {},
): void {
  mt.tx.set(gcItemKey(dueMs, kind, inode), packValue(item));
}

export function decodeGcItem(value: Uint8Array): GcItem {
  const item = unpackValue(value) as GcItem | null;
  if (item === null || typeof item !== 'object')
    throw new ThreeFsError('INTERNAL', 'malformed GC item');
  return item;
}
