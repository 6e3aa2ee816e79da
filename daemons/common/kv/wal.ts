// The embedded engine's write-ahead log: what makes an acknowledged commit durable (docs/kv.md,
// "Durability"). Records are written inside the LMDB write transaction they describe, so the log
// order is the commit order of every process sharing the store, and the position after the last
// record is stored in LMDB in that same transaction. A commit is acknowledged once one fdatasync of
// the log covers its record; commits waiting together share that fdatasync (group commit).
//
// Segments are files `wal/<first lsn>.log`, zero-filled when created so that writing a record and
// syncing it never changes the file's size or block map (an in-place fdatasync, the disk's fastest
// durable write). A record that does not fit starts the next segment; the previous one is synced
// first, so a durable record implies every earlier record is durable too. The next segment is
// zero-filled in the background once the current one is half full, so a rotation is a rename.
//
// A sync runs on the event loop while recent syncs were short, otherwise on the thread pool
// (SyncPlacement below, docs/kv.md "Durability").
import { open } from 'node:fs/promises';
import {
  closeSync,
  existsSync,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { syncDirectory } from '../durable-files.js';
import { ThreeFsError } from '../errors.js';
import {
  parseHeader,
  recordIntact,
  RECORD_HEADER_BYTES,
  type WalRecordBuilder,
} from './wal-record.js';

/** Where the log ends: the last record's lsn and the segment and offset just after it. */
export interface WalPosition {
  lsn: number;
  /** The segment's name: the lsn of its first record. */
  segment: number;
  offset: number;
}

export const INITIAL_POSITION: WalPosition = { lsn: 0, segment: 1, offset: 0 };
const POSITION_BYTES = 24;
const ZERO_FILL_BYTES = 1 << 20;
const SEGMENT_ALIGN = 4_096;

export function encodePosition(p: WalPosition): Buffer {
  const out = Buffer.allocUnsafe(POSITION_BYTES);
  out.writeDoubleLE(p.lsn, 0);
  out.writeDoubleLE(p.segment, 8);
  out.writeDoubleLE(p.offset, 16);
  return out;
}

export function decodePosition(bytes: Buffer): WalPosition {
  if (bytes.length !== POSITION_BYTES) {
    throw new ThreeFsError('INTERNAL', `a WAL position of ${bytes.length} bytes`);
  }
  return {
    lsn: bytes.readDoubleLE(0),
    segment: bytes.readDoubleLE(8),
    offset: bytes.readDoubleLE(16),
  };
}

/** The default of `kv.inlineSyncBelowMs`: see SyncPlacement. */
export const DEFAULT_INLINE_SYNC_BELOW_MS = 1;
/** Weight of the newest sync in the running mean of sync times. */
const SYNC_MEAN_WEIGHT = 1 / 8;

/**
 * Where the next log sync runs. On the thread pool a sync costs two thread hand-offs besides
 * itself (the loop wakes a worker, the worker wakes the loop), which on this project's 2-core VM
 * measured ~0.6 ms against a ~0.3 ms in-place fdatasync: a short sync is cheaper done on the
 * event loop, which it blocks for its length. Once syncs take `inlineBelowMs` or more on average
 * (a slow or busy disk), they go to the pool so that reads and new commits go on meanwhile; a
 * pooled sync's time includes the hand-offs, so the mean only returns below the limit when the
 * disk is fast again.
 */
export class SyncPlacement {
  private meanMs = 0;

  constructor(private readonly inlineBelowMs: number) {}

  /** Whether the next sync runs on the event loop. */
  get inline(): boolean {
    return this.meanMs < this.inlineBelowMs;
  }

  /** Notes how long a sync kept its waiters, from its start to its completion being seen. */
  record(ms: number): void {
    this.meanMs += (ms - this.meanMs) * SYNC_MEAN_WEIGHT;
  }
}

export interface WalOptions {
  /** See SyncPlacement; 0 sends every sync to the thread pool. */
  inlineSyncBelowMs?: number;
}

/** Log syncs since the log was opened, by where they ran. */
export interface SyncCounts {
  inline: number;
  pooled: number;
}

interface Waiter {
  lsn: number;
  segment: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** A record read back from the log, with the position after it. */
export interface LoggedRecord {
  payload: Buffer;
  next: WalPosition;
}

const segmentName = (segment: number) => `${String(segment).padStart(16, '0')}.log`;

export class WriteAheadLog {
  /** Segments this process has open: descriptor and size (fixed once zero-filled). */
  private readonly opened = new Map<number, { fd: number; size: number }>();
  private durableLsn = 0;
  private readonly waiters: Waiter[] = [];
  private syncingSegment: number | undefined;
  private readonly idleCallbacks: Array<() => void> = [];
  private failure: ThreeFsError | undefined;
  /** A zero-filled file of this process, ready to become the next segment. */
  private spare: { file: string; bytes: number } | undefined;
  private preparing: Promise<void> | undefined;
  private readonly placement: SyncPlacement;
  private readonly counts: SyncCounts = { inline: 0, pooled: 0 };

  constructor(
    readonly dir: string,
    private readonly segmentBytes: number,
    options: WalOptions = {},
  ) {
    mkdirSync(dir, { recursive: true });
    this.placement = new SyncPlacement(options.inlineSyncBelowMs ?? DEFAULT_INLINE_SYNC_BELOW_MS);
  }

  /** How many syncs ran on the event loop and on the thread pool. */
  syncCounts(): SyncCounts {
    return { ...this.counts };
  }

  /** Records after `pos`, in order, up to the first missing, torn or out-of-sequence one. */
  *recordsAfter(pos: WalPosition): Generator<LoggedRecord> {
    let at = pos;
    for (;;) {
      const lsn = at.lsn + 1;
      let found = this.readAt(at.segment, at.offset, lsn);
      let segment = at.segment;
      let offset = at.offset;
      if (found === undefined && lsn !== at.segment) {
        found = this.readAt(lsn, 0, lsn); // a record that did not fit began the next segment
        segment = lsn;
        offset = 0;
      }
      if (found === undefined) return;
      at = { lsn, segment, offset: offset + found.length };
      yield { payload: found.subarray(RECORD_HEADER_BYTES), next: at };
    }
  }

  /**
   * Writes the record for `pos.lsn + 1` after `pos`. Runs inside the LMDB write transaction (the
   * lock that orders appends across processes); the caller stores the returned position in it.
   */
  append(pos: WalPosition, builder: WalRecordBuilder): WalPosition {
    this.checkHealthy();
    const lsn = pos.lsn + 1;
    const record = builder.encode(lsn);
    let segment = pos.segment;
    let offset = pos.offset;
    if (offset + record.length > this.sizeOf(segment)) {
      // Every record of the old segment must be durable before one lands in the new segment.
      if (existsSync(this.pathOf(segment))) fdatasyncSync(this.fd(segment));
      segment = lsn;
      offset = 0;
      const bytes = Math.ceil(Math.max(this.segmentBytes, record.length) / SEGMENT_ALIGN);
      this.createSegment(segment, bytes * SEGMENT_ALIGN);
    }
    writeFully(this.fd(segment), record, offset);
    if (offset + record.length > this.sizeOf(segment) / 2) void this.prepareSpare();
    return { lsn, segment, offset: offset + record.length };
  }

  /**
   * Zero-fills a spare segment off the commit path (once; best effort: without one, a rotation
   * zero-fills inline). Resolves when the spare is ready or the attempt failed.
   */
  prepareSpare(): Promise<void> {
    if (this.spare !== undefined) return Promise.resolve();
    this.preparing ??= (async () => {
      const file = path.join(this.dir, `spare.tmp-${process.pid}`);
      const bytes = Math.ceil(this.segmentBytes / SEGMENT_ALIGN) * SEGMENT_ALIGN;
      try {
        const fh = await open(file, 'w');
        try {
          const zeros = Buffer.alloc(Math.min(ZERO_FILL_BYTES, bytes));
          for (let at = 0; at < bytes; at += zeros.length) {
            await fh.write(zeros, 0, Math.min(zeros.length, bytes - at), at);
          }
          await fh.datasync();
        } finally {
          await fh.close();
        }
        this.spare = { file, bytes };
      } catch {
        rmSync(file, { force: true });
      } finally {
        this.preparing = undefined;
      }
    })();
    return this.preparing;
  }

  /** At open: makes the log durable up to `pos` (a crashed writer may not have synced it). */
  syncThrough(pos: WalPosition): void {
    if (existsSync(this.pathOf(pos.segment))) fdatasyncSync(this.fd(pos.segment));
    this.durableLsn = Math.max(this.durableLsn, pos.lsn);
  }

  /**
   * Resolves once records up to `lsn` (whose record is in `segment`) are on disk; undefined when
   * they already are. Waiters arriving while a sync runs share the next one.
   */
  durable(lsn: number, segment: number): Promise<void> | undefined {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (lsn <= this.durableLsn) return undefined;
    return new Promise((resolve, reject) => {
      this.waiters.push({ lsn, segment, resolve, reject });
      this.startSync();
    });
  }

  /** Runs `callback` once no sync is in flight: now, or when the current one ends. */
  whenIdle(callback: () => void): void {
    if (this.syncingSegment === undefined) callback();
    else this.idleCallbacks.push(callback);
  }

  /** Deletes segments whose records all have lsn <= `lsn` (a checkpoint holds them). */
  removeThrough(lsn: number): void {
    const segments = this.segments();
    for (let i = 0; i + 1 < segments.length; i++) {
      const segment = segments[i] as number;
      if ((segments[i + 1] as number) > lsn + 1 || segment === this.syncingSegment) break;
      this.closeFd(segment);
      unlinkSync(this.pathOf(segment));
    }
  }

  /** Fails every later commit: after a failed sync, what is on disk is unknown. */
  checkHealthy(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** Waits for a sync in flight, then closes every segment. */
  async close(): Promise<void> {
    await this.preparing;
    if (this.spare !== undefined) rmSync(this.spare.file, { force: true });
    this.spare = undefined;
    while (this.syncingSegment !== undefined) await new Promise((r) => setTimeout(r, 1));
    for (const segment of [...this.opened.keys()]) this.closeFd(segment);
  }

  private startSync(): void {
    if (this.syncingSegment !== undefined || this.waiters.length === 0) return;
    let target = this.waiters[0] as Waiter;
    for (const w of this.waiters) if (w.lsn > target.lsn) target = w;
    const { lsn, segment } = target;
    let fd: number;
    try {
      fd = this.fd(segment);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    this.syncingSegment = segment;
    const started = performance.now();
    const finished = (err: Error | null) => {
      this.syncingSegment = undefined;
      this.placement.record(performance.now() - started);
      if (err) {
        this.fail(err);
        for (const callback of this.idleCallbacks.splice(0)) callback();
        return;
      }
      this.durableLsn = Math.max(this.durableLsn, lsn);
      let kept = 0;
      for (const w of this.waiters) {
        if (w.lsn <= this.durableLsn) w.resolve();
        else this.waiters[kept++] = w;
      }
      this.waiters.length = kept;
      for (const callback of this.idleCallbacks.splice(0)) callback();
      this.startSync();
    };
    if (!this.placement.inline) {
      this.counts.pooled++;
      fdatasync(fd, finished);
      return;
    }
    this.counts.inline++;
    let failure: Error | null = null;
    try {
      fdatasyncSync(fd);
    } catch (err) {
      failure = err as Error;
    }
    finished(failure);
  }

  private fail(err: Error): void {
    this.failure = new ThreeFsError(
      'UNAVAILABLE',
      `the embedded KV store's write-ahead log failed (${err.message}); restart the process to recover`,
    );
    for (const w of this.waiters.splice(0)) w.reject(this.failure);
  }

  /** The record for `lsn` at `offset` of `segment`, if one is there intact. */
  private readAt(segment: number, offset: number, lsn: number): Buffer | undefined {
    if (!existsSync(this.pathOf(segment))) return undefined;
    const size = this.sizeOf(segment);
    if (offset + RECORD_HEADER_BYTES > size) return undefined;
    const fd = this.fd(segment);
    const header = Buffer.alloc(RECORD_HEADER_BYTES);
    readFully(fd, header, offset);
    const parsed = parseHeader(header, size - offset - RECORD_HEADER_BYTES);
    if (parsed === undefined || parsed.lsn !== lsn) return undefined;
    const record = Buffer.alloc(RECORD_HEADER_BYTES + parsed.payloadBytes);
    header.copy(record);
    readFully(fd, record.subarray(RECORD_HEADER_BYTES), offset + RECORD_HEADER_BYTES);
    return recordIntact(record) ? record : undefined;
  }

  private createSegment(segment: number, bytes: number): void {
    const final = this.pathOf(segment);
    // A rotation whose transaction never committed may have left the file: reuse it.
    if (existsSync(final) && this.sizeOf(segment) >= bytes) return;
    this.closeFd(segment);
    if (this.spare !== undefined && this.spare.bytes >= bytes) {
      renameSync(this.spare.file, final);
      this.spare = undefined;
      syncDirectory(this.dir);
      return;
    }
    const tmp = `${final}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'w');
    try {
      const zeros = Buffer.alloc(Math.min(ZERO_FILL_BYTES, bytes));
      for (let at = 0; at < bytes; at += zeros.length) {
        writeFully(fd, zeros.subarray(0, Math.min(zeros.length, bytes - at)), at);
      }
      fdatasyncSync(fd);
    } catch (err) {
      rmSync(tmp, { force: true }); // a full disk: leave nothing half-made behind
      throw err;
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, final);
    syncDirectory(this.dir);
  }

  private segments(): number[] {
    return readdirSync(this.dir)
      .filter((name) => /^\d{16}\.log$/.test(name))
      .map((name) => Number(name.slice(0, 16)))
      .sort((a, b) => a - b);
  }

  private pathOf(segment: number): string {
    return path.join(this.dir, segmentName(segment));
  }

  private sizeOf(segment: number): number {
    // An open segment exists (only this class removes segments, closing them first): every append
    // asks, so it must not cost a stat.
    const opened = this.opened.get(segment);
    if (opened !== undefined) return opened.size;
    return existsSync(this.pathOf(segment)) ? this.open(segment).size : 0;
  }

  private fd(segment: number): number {
    return this.open(segment).fd;
  }

  private open(segment: number): { fd: number; size: number } {
    let entry = this.opened.get(segment);
    if (entry === undefined) {
      const fd = openSync(this.pathOf(segment), 'r+');
      entry = { fd, size: fstatSync(fd).size };
      // Keep the newest two open (appends and syncs touch at most those); close older ones.
      for (const older of [...this.opened.keys()]) {
        if (older < segment && older !== this.syncingSegment && this.opened.size >= 2) {
          this.closeFd(older);
        }
      }
      this.opened.set(segment, entry);
    }
    return entry;
  }

  private closeFd(segment: number): void {
    const entry = this.opened.get(segment);
    if (entry === undefined) return;
    this.opened.delete(segment);
    closeSync(entry.fd);
  }
}

function writeFully(fd: number, bytes: Buffer, position: number): void {
  for (let done = 0; done < bytes.length;) {
    done += writeSync(fd, bytes, done, bytes.length - done, position + done);
  }
}

function readFully(fd: number, into: Buffer, position: number): void {
  for (let done = 0; done < into.length;) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) throw new ThreeFsError('INTERNAL', 'a WAL segment ended inside a record');
    done += n;
  }
}
