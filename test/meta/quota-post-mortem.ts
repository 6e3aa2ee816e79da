// What the KV store holds when a quota's usage and the tree under it disagree: the GC queue (a
// directory walk that never finished leaves its subtree counted) and every inode counted in the
// quota that the tree walk did not reach, with the dentries that still name it. Read straight
// from the store, beside the meta servers, so a failure that a rerun does not reproduce leaves
// enough behind to tell a stalled GC from an accounting error or an unreachable cycle.
import { kvConfig, openKvStore } from '../../daemons/common/kv/index.js';
import { decodeGcItem } from '../../daemons/meta/gc-queue.js';
import { decodeInode, unpackValue } from '../../daemons/meta/inode.js';
import {
  allDentriesRange,
  allInodesRange,
  gcQueueRange,
  idOfKey,
  nameOfKey,
  parseGcItemKey,
} from '../../daemons/meta/keys.js';
import { countsInQuota } from '../../daemons/meta/quota-rules.js';

/** Lines printed at most: a post-mortem must not bury the assertion it explains. */
const MAX_LINES = 200;
const SCAN_LIMIT = 100_000;

export async function quotaPostMortem(
  kvPath: string,
  quotaRoot: number,
  reached: ReadonlySet<string>,
): Promise<string> {
  const kv = await openKvStore(kvConfig({ path: kvPath }));
  const lines: string[] = [`at ${Date.now()} ms`];
  try {
    await kv.run(async (tx) => {
      const queue = gcQueueRange();
      for (const row of await tx.snapshot.getRange(queue.begin, queue.end, { limit: SCAN_LIMIT })) {
        lines.push(
          `gc item ${JSON.stringify(parseGcItemKey(row.key))} ${JSON.stringify(decodeGcItem(row.value))}`,
        );
      }
      const unreached = new Set<number>();
      const inodes = allInodesRange();
      for (const row of await tx.snapshot.getRange(inodes.begin, inodes.end, {
        limit: SCAN_LIMIT,
      })) {
        const inode = decodeInode(row.value, idOfKey(row.key));
        // Unlinked files waiting for GC no longer count; a detached directory's contents still do.
        if (!countsInQuota(inode) || !inode.quotaRoots.includes(quotaRoot)) continue;
        if (reached.has(String(inode.id))) continue;
        unreached.add(inode.id);
        const { id, type, nlink, parent, name, length } = inode;
        lines.push(`unreached inode ${JSON.stringify({ id, type, nlink, parent, name, length })}`);
      }
      const dentries = allDentriesRange();
      for (const row of await tx.snapshot.getRange(dentries.begin, dentries.end, {
        limit: SCAN_LIMIT,
      })) {
        const { id } = unpackValue(row.value) as { id: number };
        if (!unreached.has(id)) continue;
        lines.push(`dentry ${idOfKey(row.key)}/${nameOfKey(row.key)} -> unreached inode ${id}`);
      }
    });
  } finally {
    await kv.close();
  }
  const shown = lines.slice(0, MAX_LINES);
  if (lines.length > MAX_LINES) shown.push(`... ${lines.length - MAX_LINES} more lines`);
  return shown.join('\n');
}
