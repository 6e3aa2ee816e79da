// The native chunk I/O executor (native/src/chunkio): one call submits a batch of disk ops, which
// run off the JS thread (io_uring, or a thread pool when the kernel refuses io_uring) and resolve
// one Promise with a result per op. CRC32C of the bytes read or written is computed there too, per
// granule, so JS never walks chunk bytes. This wrapper adds the bound on batches in flight (extra
// batches wait in a bounded queue) and turns results into typed values.
import { ThreeFsError } from '../../common/errors.js';
import { loadAddon } from '../../common/native.js';
import { PooledViews } from '../../common/pooled-views.js';

const enum OpKind {
  Read = 0,
  Write = 1,
  Fsync = 2,
  Fdatasync = 3,
  Fallocate = 4,
}

export type IoOp =
  | {
      op: 'read';
      fd: number;
      offset: number;
      length: number;
      /** Checksum each `granule` bytes of the first `crcLength` bytes read (0: no checksums). */
      granule: number;
      crcLength: number;
    }
  | {
      op: 'write';
      fd: number;
      offset: number;
      /** Bytes written: the pieces, then zeros up to `length`. */
      length: number;
      /** Buffers to gather in order; a number is that many zero bytes. */
      pieces: ReadonlyArray<Uint8Array | number>;
      /** Checksum each `granule` bytes of the pieces (0: no checksums). */
      granule: number;
    }
  | { op: 'fsync' | 'fdatasync'; fd: number }
  | { op: 'fallocate'; fd: number; offset: number; length: number; mode: number };

export interface IoResult {
  /** Bytes transferred (0 for fsync/fallocate), or a negative errno. */
  result: number;
  /**
   * read: the bytes, in page-aligned memory. Usually a view of a native pool block: slice it with
   * `slice()` from daemons/common/pooled-views.ts, never `subarray()`.
   */
  data?: Buffer;
  /** As the native side returns a pooled read, before `submit` turns them into `data`. */
  block?: number;
  arrayBuffer?: ArrayBuffer;
  /** Per-granule CRC32Cs (when a granule was given). */
  crcs?: Uint32Array;
  /** write: the CRC32C of the whole content (reads only need the granules). */
  crc?: number;
}

/** One read of a gather batch (see ChunkIo.submitGather). */
export interface GatherRead {
  fd: number;
  /** Page-aligned file offset and length (O_DIRECT). */
  offset: number;
  length: number;
  /** Bytes from the start of the read covered by `expected`, one CRC32C per granule. */
  crcLength: number;
  granule: number;
  expected: Uint32Array;
  /** The bytes wanted: [skip, skip + copyLength) of what was read. */
  skip: number;
  copyLength: number;
  /** With a region: where in it these bytes go. */
  target?: number;
}

export interface GatherResult {
  /**
   * Per read: bytes placed (its copyLength), a negative errno, or CHECKSUM_MISMATCH_BASE + the
   * granule index, negated, when a granule did not match its expected CRC.
   */
  statuses: Float64Array;
  /**
   * Every read's bytes, one after another in request order, including the places of failed
   * reads (their bytes are garbage): a view of a pool block (slice it with pooled slice()).
   */
  data: Buffer;
}

/** A gather status at or below -CHECKSUM_MISMATCH_BASE is a checksum mismatch. */
export const CHECKSUM_MISMATCH_BASE = 1_000_000;
const GATHER_FIELDS = 9;

interface NativeGather {
  statuses: Float64Array;
  length: number;
  block?: number;
  arrayBuffer?: ArrayBuffer;
  data?: Buffer;
}

interface NativeExecutor {
  submit(ops: unknown[]): Promise<IoResult[]>;
  submitGather(spec: Float64Array, expected: Uint32Array, region?: number): Promise<NativeGather>;
  close(): void;
  releaseBlock(block: number): void;
  /** [pooled bytes, bytes in use, bad releases] */
  readonly poolStats: [number, number, number];
  readonly writesInPlace: number;
  readonly backend: 'io_uring' | 'threads';
  readonly fallbackReason: string | null;
  readonly inFlight: number;
  readonly loopReads: number;
}

interface ChunkIoAddon {
  Executor: new (options: {
    backend?: 'auto' | 'io_uring' | 'threads';
    queueDepth?: number;
    threads?: number;
    maxInFlight?: number;
    readPoolBytes?: number;
    loopReadBytes?: number;
  }) => NativeExecutor;
  crc32cCombine(crcA: number, crcB: number, lengthB: number): number;
  crc32cConcat(crcs: Uint32Array, granule: number, length: number): number;
  directAlign: number;
  mapRegion(path: string, bytes: number): number;
  unmapRegion(id: number): boolean;
  regionStats(): [number, number];
}

const addon = loadAddon<ChunkIoAddon>('threefs_chunkio');

/** O_DIRECT alignment of offsets, lengths and memory. */
export const DIRECT_ALIGN = addon.directAlign;

/** crc32c(a || b) from crc32c(a), crc32c(b) and b's length. */
export const crc32cCombine = addon.crc32cCombine;

/** CRC of `length` bytes from the CRCs of its `granule`-byte pieces (the last may be partial). */
export const crc32cConcat = addon.crc32cConcat;

/**
 * Maps a local client's shared memory (a memfd sealed against shrinking, opened by path, e.g.
 * /proc/<pid>/fd/<n>) so gather reads can land in it directly; returns its id. Regions belong to
 * the process, not to one executor. Throws with the reason when the file will not do.
 */
export function mapRegion(path: string, bytes: number): number {
  try {
    return addon.mapRegion(path, bytes);
  } catch (err) {
    throw new ThreeFsError('INVALID_ARGUMENT', `cannot map ${path}: ${(err as Error).message}`);
  }
}

/** Unmaps once reads landing in it are done; false for an unknown id. */
export const unmapRegion = (id: number): boolean => addon.unmapRegion(id);

export function regionStats(): { regions: number; bytes: number } {
  const [regions, bytes] = addon.regionStats();
  return { regions, bytes };
}

export interface ChunkIoOptions {
  backend?: 'auto' | 'io_uring' | 'threads';
  /** io_uring submission queue entries. */
  queueDepth?: number;
  /** Threads of the fallback backend. */
  threads?: number;
  /** Batches handed to the native side at once; more wait here. */
  maxInFlight?: number;
  /** Batches allowed to wait here before submit() fails with RESOURCE_EXHAUSTED. */
  maxQueued?: number;
  /** Bytes of long-lived read blocks (reads past it get one-off buffers). */
  readPoolBytes?: number;
  /**
   * Gather batches reading at most this many bytes run on an io_uring this thread drives itself
   * (0: every batch goes to the I/O thread). See "Small reads on the event loop" in
   * docs/chunk-engine.md.
   */
  loopReadBytes?: number;
}

function encode(op: IoOp): Record<string, unknown> {
  switch (op.op) {
    case 'read':
      return { kind: OpKind.Read, ...op };
    case 'write':
      return { kind: OpKind.Write, ...op };
    case 'fsync':
      return { kind: OpKind.Fsync, fd: op.fd };
    case 'fdatasync':
      return { kind: OpKind.Fdatasync, fd: op.fd };
    case 'fallocate':
      return { kind: OpKind.Fallocate, ...op };
  }
}

export class ChunkIo {
  readonly backend: 'io_uring' | 'threads';
  /** Why io_uring is not used, when it is not. */
  readonly fallbackReason: string | null;
  private readonly executor: NativeExecutor;
  private readonly maxInFlight: number;
  private readonly maxQueued: number;
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];
  private closed = false;
  /** The executor is gone: its blocks belong to their ArrayBuffers. */
  private released = false;
  private drained: (() => void) | undefined;
  private readonly views: PooledViews;

  constructor(options: ChunkIoOptions = {}) {
    this.maxInFlight = options.maxInFlight ?? 256;
    this.maxQueued = options.maxQueued ?? 16_384;
    this.executor = new addon.Executor({
      backend: options.backend ?? 'auto',
      queueDepth: options.queueDepth ?? 256,
      threads: options.threads ?? 8,
      // The native bound is a backstop; this class keeps below it.
      maxInFlight: this.maxInFlight + 1,
      readPoolBytes: options.readPoolBytes ?? 128 * 1024 * 1024,
      loopReadBytes: options.loopReadBytes ?? 0,
    });
    const executor = this.executor;
    this.views = new PooledViews((block) => {
      if (!this.released) executor.releaseBlock(block);
    });
    this.backend = this.executor.backend;
    this.fallbackReason = this.executor.fallbackReason;
  }

  /** Runs a batch; resolves with one result per op, in order. */
  async submit(ops: readonly IoOp[]): Promise<IoResult[]> {
    return this.bounded(async () => {
      let pending: Promise<IoResult[]>;
      try {
        pending = this.executor.submit(ops.map(encode));
      } catch (err) {
        throw new ThreeFsError('INVALID_ARGUMENT', `bad I/O batch: ${(err as Error).message}`);
      }
      const results = await pending;
      for (const r of results) {
        if (r.block !== undefined && r.arrayBuffer !== undefined) {
          r.data = this.views.view(r.block, r.arrayBuffer, 0, r.result);
          delete r.block;
          delete r.arrayBuffer;
        }
      }
      return results;
    });
  }

  /**
   * Reads a batch into one buffer: each read's granules are checked against its expected CRCs
   * on the I/O thread and its wanted bytes placed after the previous read's, so a batch of small
   * reads costs one native call, one buffer and no per-read objects. Reads that start
   * page-aligned land straight in place. With a `region` (mapRegion), each read's bytes go to
   * its `target` offset there instead, and `data` is empty.
   */
  async submitGather(reads: readonly GatherRead[], region?: number): Promise<GatherResult> {
    let expectedCount = 0;
    for (const r of reads) expectedCount += r.expected.length;
    const spec = new Float64Array(reads.length * GATHER_FIELDS);
    const expected = new Uint32Array(expectedCount);
    let at = 0;
    reads.forEach((r, i) => {
      const row = i * GATHER_FIELDS;
      spec[row] = r.fd;
      spec[row + 1] = r.offset;
      spec[row + 2] = r.length;
      spec[row + 3] = r.crcLength;
      spec[row + 4] = r.granule;
      spec[row + 5] = r.skip;
      spec[row + 6] = r.copyLength;
      spec[row + 7] = at;
      spec[row + 8] = r.target ?? -1;
      expected.set(r.expected, at);
      at += r.expected.length;
    });
    return this.bounded(async () => {
      let pending: Promise<NativeGather>;
      try {
        pending = this.executor.submitGather(spec, expected, region);
      } catch (err) {
        throw new ThreeFsError('INVALID_ARGUMENT', `bad gather batch: ${(err as Error).message}`);
      }
      const got = await pending;
      const data =
        got.block !== undefined && got.arrayBuffer !== undefined
          ? this.views.view(got.block, got.arrayBuffer, 0, got.length)
          : (got.data ?? Buffer.alloc(0));
      return { statuses: got.statuses, data };
    });
  }

  /** Runs `work` within the bound on batches in flight (extra batches wait in a bounded queue). */
  private async bounded<T>(work: () => Promise<T>): Promise<T> {
    if (this.closed) throw new ThreeFsError('UNAVAILABLE', 'chunk I/O executor is closed');
    if (this.inFlight >= this.maxInFlight) {
      if (this.waiting.length >= this.maxQueued) {
        throw new ThreeFsError(
          'RESOURCE_EXHAUSTED',
          `more than ${this.maxQueued} I/O batches queued`,
        );
      }
      // A finishing batch hands its slot straight to us (inFlight is not decremented for it).
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.inFlight++;
    }
    try {
      if (this.closed) throw new ThreeFsError('UNAVAILABLE', 'chunk I/O executor is closed');
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.inFlight--;
      if (this.inFlight === 0 && this.drained !== undefined) this.drained();
    }
  }

  /** Lets batches in flight finish, fails the queued ones, and stops the I/O threads. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => (this.drained = resolve));
    }
    this.executor.close();
  }

  /**
   * Writes that went to the disk straight from the caller's memory (one page-aligned piece as
   * long as the write, e.g. a whole chunk received into the transport's payload pool) rather than
   * through a bounce copy.
   */
  get writesInPlace(): number {
    return this.executor.writesInPlace;
  }

  /** Gather batches that ran on the event loop's own ring (loopReadBytes). */
  get loopReads(): number {
    return this.executor.loopReads;
  }

  /** The read pool: bytes allocated, bytes held by live views or reads in flight. */
  get readPool(): { totalBytes: number; inUseBytes: number; badReleases: number } {
    const [totalBytes, inUseBytes, badReleases] = this.executor.poolStats;
    return { totalBytes, inUseBytes, badReleases };
  }
}

/** The errno name of a negative result, for messages. */
export function errnoName(result: number): string {
  const names: Record<number, string> = {
    [-1]: 'EPERM',
    [-2]: 'ENOENT',
    [-5]: 'EIO',
    [-9]: 'EBADF',
    [-12]: 'ENOMEM',
    [-22]: 'EINVAL',
    [-27]: 'EFBIG',
    [-28]: 'ENOSPC',
    [-30]: 'EROFS',
    [-95]: 'EOPNOTSUPP',
    [-122]: 'EDQUOT',
  };
  return names[result] ?? `errno ${-result}`;
}
