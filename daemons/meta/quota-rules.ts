// Directory quota rules as pure functions (3FS has no quotas; docs/meta.md "Quotas"). Every inode
// records the quota roots it is counted in (nearest first), fixed when it is created under them;
// usage counters live beside each root and move by atomic adds in the same transaction as the
// change they count.
import { ThreeFsError } from '../common/errors.js';
import type { QuotaLimits } from '../common/services/meta.js';
import type { InodeRecord } from './inode.js';

/** The quota roots a new child of `parent` is counted in. */
export function childQuotaRoots(parent: InodeRecord): number[] {
  return parent.quota ? [parent.id, ...parent.quotaRoots] : [...parent.quotaRoots];
}

export function sameQuotaRoots(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

export interface QuotaUsage {
  bytes: number;
  inodes: number;
}

/** Throws EDQUOT if adding to `usage` would pass a limit. Only growth is ever refused. */
export function checkQuota(
  rootId: number,
  limits: QuotaLimits,
  usage: QuotaUsage,
  addBytes: number,
  addInodes: number,
): void {
  if (addInodes > 0 && limits.maxInodes > 0 && usage.inodes + addInodes > limits.maxInodes) {
    throw new ThreeFsError(
      'EDQUOT',
      `quota of directory ${rootId}: ${usage.inodes} of ${limits.maxInodes} inodes used`,
    );
  }
  if (addBytes > 0 && limits.maxBytes > 0 && usage.bytes + addBytes > limits.maxBytes) {
    throw new ThreeFsError(
      'EDQUOT',
      `quota of directory ${rootId}: ${usage.bytes} + ${addBytes} bytes is over ${limits.maxBytes}`,
    );
  }
}

/** Whether a file's bytes count in usage: unlinked files waiting for GC no longer do. */
export function countsInQuota(inode: InodeRecord): boolean {
  return inode.type !== 'file' || inode.nlink > 0;
}
