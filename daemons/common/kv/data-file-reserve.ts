// Room kept at the end of LMDB's data file, so that LMDB never meets a full disk. LMDB writes a
// commit's new pages past its last page, growing the file; when that write fails with ENOSPC,
// lmdb-js's error path has been seen to corrupt its heap and abort the process (docs/kv.md, "Full
// disk"). So the file always ends with zeros written by us (real blocks, not a hole), enough for
// the batch about to commit: its pages overwrite allocated blocks and cannot run out of space. The
// room is made before LMDB changes anything, inside its write lock (no other process commits
// meanwhile); when it cannot be made, the batch fails cleanly and nothing else happens.
import { closeSync, fstatSync, openSync, writeSync } from 'node:fs';
import { ThreeFsError } from '../errors.js';

/** What the reserve reckons with about LMDB's data file, at one moment. */
export interface LmdbFileStats {
  pageSize: number;
  /** The last page in use: pages after it are free to be written by the next commit. */
  lastPageNumber: number;
  /** Levels of the B-tree the user keys live in. */
  treeDepth: number;
}

/** What a batch about to commit writes: its point and range operations and their bytes. */
export interface BatchShape {
  ops: number;
  bytes: number;
}

/** Pages a commit may add besides its operations' (freelist records, the meta page's tree). */
const FIXED_PAGES = 16;

/**
 * Bytes a batch can add past LMDB's last page, as an upper bound for point operations: each copies
 * at most its root-to-leaf path and splits each page of it once (2 × depth + 1 new pages, plus the
 * new root a split of the root brings), its value takes overflow pages of its own, and a commit
 * adds a few pages of freelist. A cleared range copies the pages it covers, which only a scan
 * could count: it is counted as one operation, and the reserve's `minBytes` covers ranges of
 * ordinary size.
 */
export function batchGrowthBound(stats: LmdbFileStats, batch: BatchShape): number {
  const pagesPerOp = 2 * Math.max(1, stats.treeDepth) + 2;
  const pages = batch.ops * pagesPerOp + Math.ceil(batch.bytes / stats.pageSize) + FIXED_PAGES;
  return pages * stats.pageSize;
}

/**
 * Bytes of zeros to append to a data file of `fileBytes` so that at least `needBytes` lie past
 * LMDB's last page; 0 when there is room already. Growth goes in steps of at least `stepBytes`,
 * so a stream of small commits appends once per step rather than once per commit.
 */
export function bytesToAppend(
  fileBytes: number,
  stats: LmdbFileStats,
  needBytes: number,
  stepBytes: number,
): number {
  const usedBytes = (stats.lastPageNumber + 1) * stats.pageSize;
  const room = Math.max(0, fileBytes - usedBytes);
  if (room >= needBytes) return 0;
  const short = needBytes - room;
  const append = Math.max(short, stepBytes);
  // Whole pages, so the file stays a whole number of LMDB pages.
  return Math.ceil(append / stats.pageSize) * stats.pageSize;
}

/** The largest write of zeros at a time (bounds the buffer; a step larger than it loops). */
const ZERO_CHUNK_BYTES = 1 << 20;

/** What the reserve asks of LMDB, inside its write transaction. */
export interface LmdbFile {
  readonly pageSize: number;
  /** The last page in use (LMDB's environment info: about a microsecond). */
  lastPageNumber(): number;
  /** Levels of the user keys' B-tree (a stat of the database: dearer, asked only to grow). */
  treeDepth(): number;
}

export class DataFileReserve {
  private readonly fd: number;
  private readonly zeros: Buffer;
  /**
   * The file's size when last seen. Other processes only ever make it larger, so room reckoned
   * from it is never more than the real room: enough by this count is enough.
   */
  private knownBytes: number;
  /** The tree's depth when last asked, plus one for the levels it may have grown since. */
  private depthBound: number;

  /**
   * Opens LMDB's data file `file` (which LMDB has created). `minBytes` is always kept free past
   * the last page, on top of each batch's own bound; `stepBytes` is how much the file grows by at
   * least when it must grow.
   */
  constructor(
    private readonly file: string,
    private readonly lmdb: LmdbFile,
    private readonly minBytes: number,
    private readonly stepBytes: number,
  ) {
    if (!(minBytes >= 0 && stepBytes > 0)) {
      throw new ThreeFsError('INVALID_ARGUMENT', 'data file reserve bounds must be positive');
    }
    this.zeros = Buffer.alloc(Math.min(ZERO_CHUNK_BYTES, Math.max(stepBytes, 4096)));
    this.fd = openSync(file, 'r+');
    this.knownBytes = 0; // first ensure() looks
    this.depthBound = 0;
  }

  /**
   * Makes room for `batch` past LMDB's last page; call inside LMDB's write transaction, before
   * any write. Throws UNAVAILABLE, naming the shortfall, when the disk cannot give the room; the
   * zeros appended before that stay (the next attempt needs less).
   */
  ensure(batch: BatchShape): void {
    const { pageSize } = this.lmdb;
    const lastPageNumber = this.lmdb.lastPageNumber();
    const known = { pageSize, lastPageNumber, treeDepth: this.depthBound };
    const knownNeed = this.minBytes + batchGrowthBound(known, batch);
    if (bytesToAppend(this.knownBytes, known, knownNeed, this.stepBytes) === 0) return;
    // Short by what was known: look again at the depth and at the file's size.
    this.depthBound = this.lmdb.treeDepth() + 1;
    const now = { pageSize, lastPageNumber, treeDepth: this.depthBound };
    const need = this.minBytes + batchGrowthBound(now, batch);
    const fileBytes = (this.knownBytes = fstatSync(this.fd).size);
    const append = bytesToAppend(fileBytes, now, need, this.stepBytes);
    let written = 0;
    try {
      while (written < append) {
        const length = Math.min(this.zeros.length, append - written);
        const n = writeSync(this.fd, this.zeros, 0, length, fileBytes + written);
        if (n <= 0) throw new Error(`a write of zeros returned ${n}`);
        written += n;
      }
    } catch (err) {
      throw new ThreeFsError(
        'UNAVAILABLE',
        `embedded KV commit refused: no space on disk to reserve ${append - written} more bytes at the end of ${this.file}: ${(err as Error).message}`,
      );
    } finally {
      this.knownBytes = fileBytes + written;
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}
