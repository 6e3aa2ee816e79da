// The embedded engine: LMDB through lmdb-js. LMDB gives the two things optimistic concurrency
// needs: MVCC read transactions (a consistent snapshot per transaction) and one writer at a time,
// locked across every process that opens the same directory. Commit runs validate-then-apply as a
// child transaction inside lmdb-js's batched write transaction, so all commits queued while the
// previous batch was syncing share one LMDB commit and one fdatasync (group commit), and each is
// still all-or-nothing. overlappingSync is off, so a commit resolves only after its fdatasync.
import { ABORT, open, type Database, type RootDatabase } from 'lmdb';
import { mkdirSync } from 'node:fs';
import { ThreeFsError } from '../errors.js';
import { applyAdd } from './atomic.js';
import type { KvConfig, KvLimits } from './config.js';
import { OptimisticTransaction, type StoreSnapshot } from './optimistic-transaction.js';
import type { WriteOverlay } from './overlay.js';
import { findConflict, type ReadRecord, type ReadSet, type StoredReader } from './read-set.js';
import { KvStoreBase } from './store-base.js';
import type { KeyValue, Transaction } from './types.js';

/**
 * Every user key is stored behind one tag byte: LMDB rejects empty keys and FoundationDB allows
 * them, and the rest of the tag space stays free for the engine's own records.
 */
const USER_TAG = Buffer.from([0x75]); // 'u'

/** LMDB's key limit for lmdb-js's default 4 KiB pages, less our tag byte. */
const LMDB_MAX_KEY_BYTES = 1978 - USER_TAG.length;

/** Readers in the lock file, shared by all processes on the host (LMDB's default is 126). */
const MAX_READERS = 4_096;

/** Key-only removals are gathered before deleting so no cursor walks a page being changed. */
const CLEAR_RANGE_BATCH = 10_000;

type LmdbReadTxn = ReturnType<RootDatabase['useReadTransaction']>;

function tagged(key: Buffer): Buffer {
  const out = Buffer.allocUnsafe(key.length + 1);
  out[0] = USER_TAG[0] as number;
  key.copy(out, 1);
  return out;
}

function untagged(key: Buffer): Buffer {
  if (key[0] !== USER_TAG[0]) {
    throw new ThreeFsError('INTERNAL', 'LMDB scan returned a key outside the user key space');
  }
  return key.subarray(1);
}

interface LmdbRow {
  key: Buffer;
  value: Buffer;
}

/** Rows of [begin, end) of the user space, ascending or descending, in a read or write txn. */
function scanRows(
  db: Database<Buffer, Buffer>,
  readTxn: LmdbReadTxn | undefined,
  begin: Buffer,
  end: Buffer,
  reverse: boolean,
): Iterator<KeyValue> {
  // lmdb-js scans from `start` (inclusive) towards `end` (exclusive) in either direction, so a
  // reverse scan of [begin, end) starts at end exclusively and stops at begin inclusively.
  const options: Record<string, unknown> = reverse
    ? { start: tagged(end), end: tagged(begin), reverse, exclusiveStart: true, inclusiveEnd: true }
    : { start: tagged(begin), end: tagged(end) };
  if (readTxn !== undefined) options.transaction = readTxn;
  const rows = db.getRange(options)[Symbol.iterator]() as Iterator<LmdbRow>;
  return {
    next(): IteratorResult<KeyValue> {
      const next = rows.next();
      if (next.done === true) return { done: true, value: undefined };
      return { done: false, value: { key: untagged(next.value.key), value: next.value.value } };
    },
    return(): IteratorResult<KeyValue> {
      rows.return?.();
      return { done: true, value: undefined };
    },
  };
}

function describeConflict(record: ReadRecord): string {
  const hex = (key: Buffer) =>
    key.length > 64 ? `${key.subarray(0, 64).toString('hex')}...` : key.toString('hex');
  return record.kind === 'point'
    ? `key ${hex(record.key)}`
    : `range [${hex(record.begin)}, ${hex(record.end)})`;
}

export class LmdbKvStore extends KvStoreBase {
  readonly engine = 'embedded' as const;
  readonly limits: KvLimits;
  readonly engineMaxKeyBytes = LMDB_MAX_KEY_BYTES;
  private readonly db: RootDatabase<Buffer, Buffer>;
  private readonly open = new Set<OptimisticTransaction>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(config: KvConfig) {
    super(config);
    this.limits = config.limits;
    try {
      mkdirSync(config.path, { recursive: true });
      this.db = open<Buffer, Buffer>({
        path: config.path,
        keyEncoding: 'binary',
        encoding: 'binary',
        // Durable commits: the commit promise resolves after LMDB's fdatasync. Never noSync, and
        // no overlappingSync (which acknowledges before the flush).
        overlappingSync: false,
        noSync: false,
        maxReaders: MAX_READERS,
      });
    } catch (err) {
      throw new ThreeFsError(
        'FAILED_PRECONDITION',
        `cannot open the embedded KV store at ${config.path}: ${(err as Error).message}`,
      );
    }
    // A transaction the caller forgot still pins an LMDB snapshot (blocking page reuse): end it
    // once it is past its age limit, when it could no longer commit anyway.
    const sweepEveryMs = Math.max(10, Math.min(1_000, Math.floor(this.limits.maxTxnAgeMs / 2)));
    this.sweeper = setInterval(() => this.expireOld(Date.now()), sweepEveryMs);
    this.sweeper.unref();
  }

  /**
   * LMDB's id of the last committed write transaction, across all processes on the store. Each
   * LMDB commit is one fdatasync, so its growth against our commits measures group commit.
   */
  lastCommitId(): number {
    this.checkOpen();
    return (this.db.getStats() as { lastTxnId: number }).lastTxnId;
  }

  protected openTransaction(finish: () => void): Transaction {
    const tx: OptimisticTransaction = new OptimisticTransaction(
      {
        limits: this.limits,
        engineMaxKeyBytes: this.engineMaxKeyBytes,
        openSnapshot: () => this.openSnapshot(),
        commit: (readSet, writes) => this.commitWrites(readSet, writes),
      },
      () => {
        this.open.delete(tx);
        finish();
      },
    );
    this.open.add(tx);
    return tx;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    for (const tx of [...this.open]) tx.abort();
    await this.db.close();
  }

  private expireOld(now: number): void {
    for (const tx of [...this.open]) tx.expireIfOlder(now);
  }

  private openSnapshot(): StoreSnapshot {
    this.checkOpen();
    const readTxn = this.db.useReadTransaction();
    let released = false;
    const db = this.db;
    const getOptions = { transaction: readTxn };
    return {
      get(key) {
        if (released) throw new ThreeFsError('INTERNAL', 'read from a released LMDB snapshot');
        return (db.getBinary as (key: Buffer, options: unknown) => Buffer | undefined)(
          tagged(key),
          getOptions,
        );
      },
      scan(begin, end, reverse) {
        if (released) throw new ThreeFsError('INTERNAL', 'scan of a released LMDB snapshot');
        return scanRows(db, readTxn, begin, end, reverse);
      },
      release() {
        if (released) return;
        released = true;
        readTxn.done();
      },
    };
  }

  private async commitWrites(readSet: ReadSet, writes: WriteOverlay): Promise<void> {
    this.checkOpen();
    const db = this.db;
    // Inside a write transaction lmdb-js reads through it, so these see the latest commit,
    // including earlier transactions of the same batch.
    const current: StoredReader = {
      get: (key) => db.getBinary(tagged(key)),
      scan: (begin, end) => scanRows(db, undefined, begin, end, false),
    };
    let conflict: ReadRecord | undefined;
    let applied = false;
    try {
      // The callback must stay synchronous: lmdb-js keeps its write transaction as the reader of
      // every read in this process while a callback runs, so awaiting inside it would let other
      // transactions' snapshot reads see uncommitted state.
      await db.childTransaction(() => {
        conflict = findConflict(readSet, current);
        if (conflict !== undefined) return ABORT;
        applyWrites(db, writes);
        applied = true;
        return undefined;
      });
    } catch (err) {
      if (err instanceof ThreeFsError) throw err; // an invariant broke inside the callback
      throw new ThreeFsError('UNAVAILABLE', `embedded KV commit failed: ${(err as Error).message}`);
    }
    if (conflict !== undefined) {
      throw new ThreeFsError(
        'TXN_CONFLICT',
        `transaction conflict: ${describeConflict(conflict)} changed since it was read`,
      );
    }
    if (!applied) throw new ThreeFsError('INTERNAL', 'LMDB commit ran no transaction callback');
  }
}

/** Applies a transaction's writes inside the current LMDB write transaction. */
function applyWrites(db: RootDatabase<Buffer, Buffer>, writes: WriteOverlay): void {
  for (const range of writes.clearedRanges()) {
    for (;;) {
      const keys: Buffer[] = [];
      const found = db.getKeys({
        start: tagged(range.begin),
        end: tagged(range.end),
        limit: CLEAR_RANGE_BATCH,
      }) as Iterable<Buffer>;
      for (const key of found) keys.push(key);
      for (const key of keys) db.removeSync(key);
      if (keys.length < CLEAR_RANGE_BATCH) break;
    }
  }
  for (const { key, mutation } of writes.sortedPoints()) {
    const storedKey = tagged(key);
    switch (mutation.kind) {
      case 'set':
        db.putSync(storedKey, mutation.value);
        break;
      case 'clear':
        db.removeSync(storedKey);
        break;
      case 'add':
        db.putSync(storedKey, applyAdd(db.getBinary(storedKey), mutation.delta));
        break;
    }
  }
}
