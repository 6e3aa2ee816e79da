// The GC worker (brief §5.6): takes due items from the durable GC queue and finishes them.
//   f  a file whose last link went away: once no write session is open, its chunks are removed
//      through storage, then its inode and the item go in one transaction;
//   t  chunks past a truncated end: removed through storage, then the item goes;
//   d  a directory subtree removed by rmdir -r: walked a page per transaction, each child unlinked
//      (files become f items) or detached (directories become d items); then the directory goes.
// Crash safety: an item is claimed for `claimMs` in a transaction before its storage work starts
// and finished by a transaction that first checks the claim is still its own. A worker that dies
// mid-item leaves the item to be claimed again after the claim runs out, so no work is lost; the
// finishing transaction of a worker whose claim was taken over conflicts and does nothing, so no
// inode is deleted twice. Storage removal of an id may run twice, which removes nothing more: inode
// ids are never reused, so the chunks of id n belong to that one file only.
import { ThreeFsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { dentryRange, type GcKind, gcDueEnd, gcQueueRange, parseGcItemKey } from './keys.js';
import { inTxn, type NamespaceContext } from './context.js';
import { decodeGcItem, enqueueGc, type GcItem } from './gc-queue.js';
import { expireRecords } from './idempotency.js';
import { packValue, unpackValue } from './inode.js';
import type { MetaTxn } from './meta-txn.js';
import { deleteEmptyDir, detachSubtree, unlinkInode } from './remove-ops.js';
import { hasOpenSessions } from './sessions.js';

export interface GcWorkerOptions {
  ctx: NamespaceContext;
  workerId: string;
  intervalMs: number;
  /** How long a claimed item is left to its worker. */
  claimMs: number;
  /** Items claimed per round. */
  batch: number;
  log: Logger;
}

interface Claimed {
  key: Buffer;
  kind: GcKind;
  inode: number;
  item: GcItem;
}

/** Children handled per transaction of a directory walk, and pages per item per round. */
const WALK_PAGE = 128;
const WALK_PAGES_PER_ROUND = 64;
const IDEMPOTENCY_EXPIRY_BATCH = 1024;

export class GcWorker {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly options: GcWorkerOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.kick(), this.options.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** Runs a round now (or right after the current one); resolves when that round is over. */
  kick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      const current = this.running;
      return current.then(() => this.running ?? undefined);
    }
    const running = this.round()
      .then(() => undefined)
      .catch((err: unknown) =>
        this.options.log.warn({ err }, 'GC round failed; retried next round'),
      )
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          void this.kick();
        }
      });
    this.running = running;
    return running;
  }

  /** Claims and finishes due items until none is left or a bounded number of rounds passed. */
  async round(): Promise<number> {
    const { ctx } = this.options;
    await ctx.kv.run((tx) => expireRecords(tx, ctx.now(), IDEMPOTENCY_EXPIRY_BATCH));
    let done = 0;
    for (let pass = 0; pass < 16 && !this.stopped; pass++) {
      const claimed = await this.claim();
      if (claimed.length === 0) break;
      for (const item of claimed) {
        try {
          if (await this.finish(item)) done++;
        } catch (err) {
          this.options.log.warn(
            { err, kind: item.kind, inode: item.inode },
            'GC item failed; retried after its claim runs out',
          );
        }
      }
    }
    return done;
  }

  private async claim(): Promise<Claimed[]> {
    const { ctx, workerId, claimMs, batch } = this.options;
    return inTxn(ctx, async (mt) => {
      const now = mt.now;
      const rows = await mt.tx.getRange(gcQueueRange().begin, gcDueEnd(now), { limit: batch * 4 });
      const out: Claimed[] = [];
      for (const row of rows) {
        const item = decodeGcItem(row.value);
        if ((item.claimedUntilMs ?? 0) > now) continue;
        const claimed = { ...item, claimedBy: workerId, claimedUntilMs: now + claimMs };
        mt.tx.set(row.key, packValue(claimed));
        const { kind, inode } = parseGcItemKey(row.key);
        out.push({ key: Buffer.from(row.key), kind, inode, item: claimed });
        if (out.length >= batch) break;
      }
      return out;
    });
  }

  /** Whether this worker still holds the item (conflict-tracked read). */
  private async stillMine(mt: MetaTxn, key: Buffer): Promise<boolean> {
    const value = await mt.tx.get(key);
    return value !== undefined && decodeGcItem(value).claimedBy === this.options.workerId;
  }

  private async finish(c: Claimed): Promise<boolean> {
    switch (c.kind) {
      case 'f':
        return this.finishFile(c);
      case 't':
        return this.finishTruncate(c);
      case 'd':
        return this.finishDir(c);
    }
  }

  private async finishFile(c: Claimed): Promise<boolean> {
    const { ctx } = this.options;
    const inode = await inTxn(ctx, async (mt) => {
      const found = await mt.inode(c.inode);
      if (found && (await hasOpenSessions(mt, c.inode))) {
        // Never while a writer is open: come back after another delay (dead writers are pruned).
        mt.tx.clear(c.key);
        enqueueGc(mt, mt.now + ctx.gcDelayMs, 'f', c.inode);
        return 'postponed' as const;
      }
      return found;
    });
    if (inode === 'postponed') return false;
    if (inode) {
      if (inode.nlink !== 0 || inode.type !== 'file') {
        throw new ThreeFsError(
          'INTERNAL',
          `GC item for inode ${inode.id} which still has ${inode.nlink} links`,
        );
      }
      if (!inode.layout) throw new ThreeFsError('INTERNAL', `file ${inode.id} has no layout`);
      await ctx.chunks.removeFileChunks(inode.layout, inode.id, 0, inode.dynStripe);
    }
    return inTxn(ctx, async (mt) => {
      if (!(await this.stillMine(mt, c.key))) return false;
      mt.deleteInode(c.inode);
      mt.tx.clear(c.key);
      return true;
    });
  }

  private async finishTruncate(c: Claimed): Promise<boolean> {
    const { ctx } = this.options;
    const inode = await inTxn(ctx, (mt) => mt.inode(c.inode));
    if (inode?.layout && inode.type === 'file') {
      await ctx.chunks.removeFileChunks(
        inode.layout,
        inode.id,
        c.item.fromChunk ?? 0,
        inode.dynStripe,
      );
    }
    return inTxn(ctx, async (mt) => {
      if (!(await this.stillMine(mt, c.key))) return false;
      mt.tx.clear(c.key);
      return true;
    });
  }

  private async finishDir(c: Claimed): Promise<boolean> {
    const { ctx } = this.options;
    for (let page = 0; page < WALK_PAGES_PER_ROUND; page++) {
      const finished = await inTxn(ctx, async (mt) => {
        if (!(await this.stillMine(mt, c.key))) return true;
        const dir = await mt.inode(c.inode);
        if (!dir) {
          mt.tx.clear(c.key);
          return true;
        }
        const { begin, end } = dentryRange(c.inode);
        const rows = await mt.tx.getRange(begin, end, { limit: WALK_PAGE });
        for (const row of rows) {
          const entry = unpackValue(row.value) as { id: number };
          mt.tx.clear(row.key);
          const child = await mt.inode(entry.id);
          if (!child) continue;
          if (child.type === 'dir') detachSubtree(mt, child);
          else unlinkInode(mt, child, ctx.gcDelayMs);
        }
        if (rows.length < WALK_PAGE) {
          deleteEmptyDir(mt, dir);
          mt.tx.clear(c.key);
          return true;
        }
        return false;
      });
      if (finished) return true;
    }
    return false; // a big directory: the rest next round (the claim is renewed when it is taken again)
  }
}
