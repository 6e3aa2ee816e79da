// The embedded engine: LMDB through lmdb-js. LMDB gives the two things optimistic concurrency
// needs: MVCC read transactions (a consistent snapshot per transaction) and one writer at a time,
// locked across every process that opens the same directory. Commits queued in one event-loop turn
// are validated and applied in one synchronous LMDB write transaction, which also appends their
// mutations to the write-ahead log (wal.ts); they are acknowledged once one fdatasync of the log
// covers them (group commit). LMDB itself runs without fsyncs: the log and the checkpoints
// (checkpoints.ts) are what survive an operating-system crash. docs/kv.md, "Durability".
import { ABORT, open, type Database, type RootDatabase } from 'lmdb';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ThreeFsError } from '../errors.js';
import { applyAdd } from './atomic.js';
import {
  acquireRecoveryLock,
  DATA_FILE,
  currentBootId,
  listCheckpoints,
  publishCheckpoint,
  readBootMarker,
  removeLeftovers,
  restoreNewestCheckpoint,
  writeBootMarker,
} from './checkpoints.js';
import type { KvConfig, KvLimits } from './config.js';
import { DataFileReserve, type LmdbFile } from './data-file-reserve.js';
import { OptimisticTransaction, type StoreSnapshot } from './optimistic-transaction.js';
import type { WriteOverlay } from './overlay.js';
import { findConflict, type ReadRecord, type ReadSet, type StoredReader } from './read-set.js';
import { KvStoreBase } from './store-base.js';
import type { KeyValue, Transaction } from './types.js';
import {
  decodePosition,
  encodePosition,
  INITIAL_POSITION,
  WriteAheadLog,
  type WalPosition,
} from './wal.js';
import { decodeOps, WalRecordBuilder, type WalOp } from './wal-record.js';

/**
 * Every user key is stored behind one tag byte: LMDB rejects empty keys and FoundationDB allows
 * them, and the rest of the tag space stays free for the engine's own records.
 */
const USER_TAG = Buffer.from([0x75]); // 'u'

/** Where the write-ahead log ends, written in the same LMDB transaction as the record. */
const WAL_POSITION_KEY = Buffer.from('wal-position'); // 'w' sorts outside the user space

const WAL_DIR = 'wal';

/** Bounds on one group commit: commits and bytes of their writes. */
const MAX_BATCH_COMMITS = 256;
const MAX_BATCH_WRITE_BYTES = 16 << 20;

/** LMDB's key limit for lmdb-js's default 4 KiB pages, less our tag byte. */
const LMDB_MAX_KEY_BYTES = 1978 - USER_TAG.length;

/** Readers in the lock file, shared by all processes on the host (LMDB's default is 126). */
const MAX_READERS = 4_096;

/** Key-only removals are gathered before deleting so no cursor walks a page being changed. */
const CLEAR_RANGE_BATCH = 10_000;

type LmdbReadTxn = ReturnType<RootDatabase['useReadTransaction']>;

/** lmdb-js's get without a copy: the bytes are lent until its next read (typed with options). */
type LentGet = (key: Buffer, options?: { transaction: LmdbReadTxn }) => Buffer | undefined;

/**
 * The tagged form of keys being read. lmdb-js copies a key into its own buffer before it looks it
 * up, so one scratch serves every read and a get allocates no key.
 */
const readKeyScratch = Buffer.allocUnsafe(LMDB_MAX_KEY_BYTES + USER_TAG.length);
readKeyScratch[0] = USER_TAG[0] as number;

/**
 * The value of a user key, as a Buffer of the caller's own. lmdb-js's getBinary copies into a new
 * ArrayBuffer (a malloc'd backing store per read, freed by the GC's sweeper); a copy from
 * Node's Buffer pool costs a fraction of that on metadata-sized values.
 */
function readUserKey(
  db: Database<Buffer, Buffer>,
  key: Buffer,
  options?: { transaction: LmdbReadTxn },
): Buffer | undefined {
  // Keys were checked against the engine's limit when they entered the transaction.
  if (key.copy(readKeyScratch, USER_TAG.length) !== key.length)
    throw new ThreeFsError('INTERNAL', `a read key of ${key.length} bytes passed the key limit`);
  const lent = (db.getBinaryFast as LentGet)(
    readKeyScratch.subarray(0, key.length + USER_TAG.length),
    options,
  );
  if (lent === undefined) return undefined;
  // lmdb-js overrides `length` on its reused buffer with the value's size (Buffer.copy trips
  // over that), so the bytes are taken as a plain typed-array view of that size.
  const size = lent.length;
  const owned = Buffer.allocUnsafe(size);
  owned.set(lent.subarray(0, size));
  return owned;
}

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

export interface LmdbOpenOptions {
  /** The boot this process runs in; tests pass another to act out a reboot. */
  bootId?: string;
}

interface PendingCommit {
  readSet: ReadSet;
  writes: WriteOverlay;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class LmdbKvStore extends KvStoreBase {
  readonly engine = 'embedded' as const;
  readonly limits: KvLimits;
  readonly engineMaxKeyBytes = LMDB_MAX_KEY_BYTES;
  private readonly db: RootDatabase<Buffer, Buffer>;
  private readonly wal: WriteAheadLog;
  private readonly lmdbFile: LmdbFile;
  private readonly reserve: DataFileReserve;
  private readonly open = new Set<OptimisticTransaction>();
  private readonly sweeper: NodeJS.Timeout;
  private pending: PendingCommit[] = [];
  private batchScheduled = false;
  private logBytesSinceCheckpoint = 0;
  private checkpointEveryBytes: number;
  private checkpointing: Promise<void> | undefined;
  private checkpointSeq = 0;

  /**
   * Opens the store at `config.path`. The first process of a boot rebuilds LMDB from the newest
   * checkpoint and the log (or, on a store without one, takes the first checkpoint).
   */
  static async open(config: KvConfig, options: LmdbOpenOptions = {}): Promise<LmdbKvStore> {
    const dir = config.path;
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw cannotOpen(dir, err);
    }
    const bootId = options.bootId ?? currentBootId();
    if (readBootMarker(dir) === bootId) return new LmdbKvStore(config);
    const release = await acquireRecoveryLock(dir, bootId);
    if (release === undefined) return new LmdbKvStore(config);
    try {
      removeLeftovers(dir, path.join(dir, WAL_DIR));
      const restored = restoreNewestCheckpoint(dir);
      const store = new LmdbKvStore(config);
      try {
        // A store without a checkpoint is new, or was written with an fsync per commit.
        if (restored === undefined) await store.checkpoint();
        writeBootMarker(dir, bootId);
      } catch (err) {
        await store.close();
        throw err;
      }
      return store;
    } finally {
      release();
    }
  }

  private constructor(config: KvConfig) {
    super(config);
    this.limits = config.limits;
    this.checkpointEveryBytes = config.checkpointEveryBytes;
    try {
      this.db = open<Buffer, Buffer>({
        path: config.path,
        keyEncoding: 'binary',
        encoding: 'binary',
        // Durability comes from the write-ahead log; LMDB's own flushes would double the cost of
        // every commit. overlappingSync cannot be combined with noSync.
        noSync: true,
        overlappingSync: false,
        maxReaders: MAX_READERS,
      });
    } catch (err) {
      throw cannotOpen(config.path, err);
    }
    this.wal = new WriteAheadLog(path.join(config.path, WAL_DIR), config.walSegmentBytes, {
      inlineSyncBelowMs: config.inlineSyncBelowMs,
    });
    this.lmdbFile = lmdbFile(this.db);
    let reserve: DataFileReserve | undefined;
    try {
      reserve = new DataFileReserve(
        path.join(config.path, DATA_FILE),
        this.lmdbFile,
        config.dataFileReserveBytes,
        config.dataFileReserveBytes,
      );
      this.wal.syncThrough(this.replayLog());
    } catch (err) {
      reserve?.close();
      void this.db.close();
      throw cannotOpen(config.path, err);
    }
    this.reserve = reserve;
    // A transaction the caller forgot still pins an LMDB snapshot (blocking page reuse): end it
    // once it is past its age limit, when it could no longer commit anyway.
    const sweepEveryMs = Math.max(10, Math.min(1_000, Math.floor(this.limits.maxTxnAgeMs / 2)));
    this.sweeper = setInterval(() => this.expireOld(Date.now()), sweepEveryMs);
    this.sweeper.unref();
  }

  /**
   * LMDB's id of the last committed write transaction, across all processes on the store. Each
   * group commit is one LMDB transaction, so its growth against our commits measures grouping.
   */
  lastCommitId(): number {
    this.checkOpen();
    return (this.db.getStats() as { lastTxnId: number }).lastTxnId;
  }

  /** The log's end as committed in LMDB (its lsn counts group commits since the store began). */
  logPosition(): WalPosition {
    this.checkOpen();
    return this.readPosition();
  }

  /**
   * Writes a restore point: an LMDB snapshot copy, fsynced, named by the log position it covers;
   * log segments it covers are then deleted. Runs on its own once the log has grown by
   * `checkpointEveryBytes` (or a quarter of the data file, if larger) since the last one.
   */
  checkpoint(): Promise<void> {
    this.checkOpen();
    this.checkpointing ??= this.writeCheckpoint().finally(() => {
      this.checkpointing = undefined;
    });
    return this.checkpointing;
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
    const unsent = this.pending.splice(0);
    for (const c of unsent) c.reject(closedError());
    await this.checkpointing?.catch(() => undefined);
    await this.wal.close();
    await this.db.close();
    this.reserve.close();
  }

  private expireOld(now: number): void {
    for (const tx of [...this.open]) tx.expireIfOlder(now);
  }

  /** The log's end as stored in LMDB: in `readTxn`'s snapshot, or else the latest commit. */
  private readPosition(readTxn?: LmdbReadTxn): WalPosition {
    // Decoded straight from lmdb-js's lent bytes: nothing else reads before it returns.
    const lent = (this.db.getBinaryFast as LentGet)(
      WAL_POSITION_KEY,
      readTxn === undefined ? undefined : { transaction: readTxn },
    );
    return lent === undefined ? INITIAL_POSITION : decodePosition(lent);
  }

  /**
   * Applies the log's records after the position LMDB holds: after a rebuild from a checkpoint
   * all records since it, otherwise at most the one record of a writer killed between writing it
   * and committing LMDB (its commit had not been acknowledged; like FoundationDB's
   * commit_unknown_result, it may take effect).
   */
  private replayLog(): WalPosition {
    return this.db.transactionSync(() => {
      const start = this.readPosition();
      let at = start;
      for (const record of this.wal.recordsAfter(start)) {
        for (const op of decodeOps(record.payload)) applyOp(this.db, op);
        at = record.next;
      }
      if (at !== start) this.db.putSync(WAL_POSITION_KEY, encodePosition(at));
      return at;
    }) as WalPosition;
  }

  private openSnapshot(): StoreSnapshot {
    this.checkOpen();
    // lmdb-js hands out its current read transaction until a timer renews it, so a snapshot
    // could predate commits this process has already seen acknowledged (by itself or by another
    // process): a transaction must start from the latest commit, as FoundationDB's do.
    this.db.resetReadTxn();
    const readTxn = this.db.useReadTransaction();
    let released = false;
    const db = this.db;
    const getOptions = { transaction: readTxn };
    const wal = this.wal;
    const position = () => this.readPosition(readTxn);
    return {
      get(key) {
        if (released) throw new ThreeFsError('INTERNAL', 'read from a released LMDB snapshot');
        return readUserKey(db, key, getOptions);
      },
      scan(begin, end, reverse) {
        if (released) throw new ThreeFsError('INTERNAL', 'scan of a released LMDB snapshot');
        return scanRows(db, readTxn, begin, end, reverse);
      },
      // Commits are visible before their log record is synced: a reader must not answer with
      // state a crash could still take back.
      durable() {
        if (released) throw new ThreeFsError('INTERNAL', 'durable() of a released LMDB snapshot');
        const seen = position();
        return wal.durable(seen.lsn, seen.segment);
      },
      // Every LMDB transaction that changes user keys also moves the log position, and each
      // group commit's record has the next lsn (runBatch, replayLog): the lsn a snapshot holds
      // names the committed state it shows.
      version() {
        if (released) throw new ThreeFsError('INTERNAL', 'version() of a released LMDB snapshot');
        return position().lsn;
      },
      release() {
        if (released) return;
        released = true;
        readTxn.done();
      },
    };
  }

  private commitWrites(readSet: ReadSet, writes: WriteOverlay): Promise<void> {
    this.checkOpen();
    this.wal.checkHealthy();
    return new Promise((resolve, reject) => {
      this.pending.push({ readSet, writes, resolve, reject });
      this.scheduleBatch();
    });
  }

  private scheduleBatch(): void {
    if (this.batchScheduled || this.pending.length === 0) return;
    this.batchScheduled = true;
    // While the log syncs, commits keep queueing: they would wait for the next sync anyway, and
    // applying them together costs one LMDB transaction and one record instead of one each.
    // Then the batch waits one more loop turn: that turn's poll reads the requests that arrived
    // while this turn's commits were being made, and theirs join the batch. Without it, four
    // sequential clients settle into batches of three and one (meta, 20,000 creates: 9,931 group
    // commits before, 5,807 with it, +11–25% creates/s over interleaved runs). A lone client pays
    // one non-blocking poll.
    this.wal.whenIdle(() =>
      setImmediate(() =>
        setImmediate(() => {
          this.batchScheduled = false;
          this.runBatch();
          this.scheduleBatch();
        }),
      ),
    );
  }

  /** One group commit: validate and apply each queued commit, log them, then wait for the sync. */
  private runBatch(): void {
    let bytes = 0;
    let count = 0;
    while (
      count < this.pending.length &&
      count < MAX_BATCH_COMMITS &&
      (count === 0 ||
        bytes + (this.pending[count] as PendingCommit).writes.bytes <= MAX_BATCH_WRITE_BYTES)
    ) {
      bytes += (this.pending[count] as PendingCommit).writes.bytes;
      count++;
    }
    const batch = this.pending.splice(0, count);
    if (this.closed) {
      for (const c of batch) c.reject(closedError());
      return;
    }
    const db = this.db;
    // Inside the write transaction lmdb-js reads through it, so these see the latest commit,
    // including earlier commits of the same batch.
    const current: StoredReader = {
      get: (key) => readUserKey(db, key),
      scan: (begin, end) => scanRows(db, undefined, begin, end, false),
    };
    const conflicts: Array<ReadRecord | undefined> = [];
    let logged: WalPosition | undefined;
    let recordBytes = 0;
    const shape = { ops: 0, bytes: 0 };
    for (const c of batch) {
      shape.ops += c.writes.ops;
      shape.bytes += c.writes.bytes;
    }
    try {
      db.transactionSync(() => {
        // First, under LMDB's lock and before any write: LMDB must never meet a full disk.
        this.reserve.ensure(shape);
        const record = new WalRecordBuilder();
        for (const c of batch) {
          const conflict = findConflict(c.readSet, current);
          conflicts.push(conflict);
          if (conflict === undefined) applyWrites(db, c.writes, record);
        }
        if (record.isEmpty) return ABORT;
        // Last, so nothing but LMDB's own commit can fail after the record is written.
        logged = this.wal.append(this.readPosition(), record);
        db.putSync(WAL_POSITION_KEY, encodePosition(logged));
        recordBytes = record.payloadBytes;
        return undefined;
      });
    } catch (err) {
      // Nothing of the transaction applied. A record already written stays where it is: the
      // next append, of this process or another, overwrites it (the position did not move), and
      // it cannot be taken back here without racing that append once LMDB's lock is released.
      // Until then a reopen would apply it, so its outcome is reported as unknown.
      const failure =
        err instanceof ThreeFsError
          ? err
          : new ThreeFsError(
              'UNAVAILABLE',
              logged === undefined
                ? `embedded KV commit failed: ${(err as Error).message}`
                : `embedded KV commit failed after its log record was written, so it may still take effect (like FoundationDB's commit_unknown_result): ${(err as Error).message}`,
            );
      for (const c of batch) c.reject(failure);
      return;
    }
    const durable = logged === undefined ? undefined : this.wal.durable(logged.lsn, logged.segment);
    batch.forEach((c, i) => {
      const conflict = conflicts[i];
      if (conflict !== undefined) {
        c.reject(
          new ThreeFsError(
            'TXN_CONFLICT',
            `transaction conflict: ${describeConflict(conflict)} changed since it was read`,
          ),
        );
      } else if (durable === undefined) c.resolve();
      else durable.then(c.resolve, c.reject);
    });
    this.logBytesSinceCheckpoint += recordBytes;
    if (this.logBytesSinceCheckpoint >= this.checkpointEveryBytes) {
      this.checkpoint().catch(() => undefined); // retried at the next threshold crossing
    }
  }

  private async writeCheckpoint(): Promise<void> {
    const dir = this.config.path;
    const covered = this.readPosition().lsn; // the copy's snapshot is taken after this
    // LMDB copies an environment into a directory, as data.mdb.
    const tmp = path.join(dir, `checkpoint.tmp-${process.pid}-${this.checkpointSeq++}`);
    const bytesBefore = this.logBytesSinceCheckpoint;
    mkdirSync(tmp);
    try {
      await this.db.backup(tmp, false);
      publishCheckpoint(dir, path.join(tmp, DATA_FILE), covered);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    this.wal.removeThrough(listCheckpoints(dir).at(-1) ?? covered);
    this.logBytesSinceCheckpoint -= bytesBefore;
    // Copying costs the pages LMDB uses (not the room kept after them, data-file-reserve.ts):
    // keep that at most a quarter of the log written.
    const dataBytes = (this.lmdbFile.lastPageNumber() + 1) * this.lmdbFile.pageSize;
    this.checkpointEveryBytes = Math.max(this.config.checkpointEveryBytes, dataBytes / 4);
  }
}

/** LMDB's side of the data file reserve, through lmdb-js's environment and statistics. */
function lmdbFile(db: RootDatabase<Buffer, Buffer>): LmdbFile {
  // lmdb-js keeps its native environment on the root database; its info() reads LMDB's current
  // meta page without a transaction. Not in lmdb-js's type definitions.
  const env = (db as unknown as { env: { info(): { lastPageNumber: number } } }).env;
  const stats = () => db.getStats() as { pageSize: number; treeDepth: number };
  return {
    pageSize: stats().pageSize,
    lastPageNumber: () => env.info().lastPageNumber,
    treeDepth: () => stats().treeDepth,
  };
}

function closedError(): ThreeFsError {
  return new ThreeFsError('UNAVAILABLE', 'the embedded KV store is closed');
}

function cannotOpen(dir: string, err: unknown): ThreeFsError {
  return new ThreeFsError(
    'FAILED_PRECONDITION',
    `cannot open the embedded KV store at ${dir}: ${(err as Error).message}`,
  );
}

/** Applies a transaction's writes inside the current LMDB write transaction, logging each. */
function applyWrites(
  db: RootDatabase<Buffer, Buffer>,
  writes: WriteOverlay,
  record: WalRecordBuilder,
): void {
  for (const range of writes.clearedRanges()) {
    const op: WalOp = { kind: 'clearRange', begin: range.begin, end: range.end };
    applyOp(db, op);
    record.push(op);
  }
  for (const { key, mutation } of writes.sortedPoints()) {
    let op: WalOp;
    switch (mutation.kind) {
      case 'set':
        op = { kind: 'set', key, value: mutation.value };
        break;
      case 'clear':
        op = { kind: 'clear', key };
        break;
      case 'add':
        op = { kind: 'set', key, value: applyAdd(readUserKey(db, key), mutation.delta) };
        break;
    }
    applyOp(db, op);
    record.push(op);
  }
}

/** One logged mutation on user keys, applied inside the current LMDB write transaction. */
function applyOp(db: RootDatabase<Buffer, Buffer>, op: WalOp): void {
  switch (op.kind) {
    case 'set':
      db.putSync(tagged(op.key), op.value);
      return;
    case 'clear':
      db.removeSync(tagged(op.key));
      return;
    case 'clearRange':
      for (;;) {
        const keys: Buffer[] = [];
        const found = db.getKeys({
          start: tagged(op.begin),
          end: tagged(op.end),
          limit: CLEAR_RANGE_BATCH,
        }) as Iterable<Buffer>;
        for (const key of found) keys.push(key);
        for (const key of keys) db.removeSync(key);
        if (keys.length < CLEAR_RANGE_BATCH) return;
      }
  }
}
