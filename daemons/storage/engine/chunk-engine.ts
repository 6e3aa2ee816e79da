// The per-disk chunk engine: the ChunkStore the storage service runs CRAQ on. It composes the
// pieces of this folder: data files and a block allocator for space, LMDB records for metadata,
// the native executor for I/O, update plans for copy-on-write, pins for readers, and a lock per
// chunk. Every update is: plan → read what the plan keeps of the old content (verifying its
// checksums) → write the new content and fdatasync in one I/O batch → one LMDB commit of the
// record (allocation included, since allocation is rebuilt from records) → release blocks the
// record no longer names once no reader holds them.
import { statfsSync } from 'node:fs';
import path from 'node:path';
import { crc32c } from '../../common/crc32c.js';
import { slice } from '../../common/pooled-views.js';
import { ThreeFsError } from '../../common/errors.js';
import { createLogger, type Logger } from '../../common/log.js';
import type {
  BatchReadResult,
  ChunkMeta,
  ChunkStore,
  ReadRequest,
  ReadResult,
  SpaceInfo,
  UpdateRequest,
} from '../chunk-store.js';
import { BlockAllocator } from './block-allocator.js';
import { BlockPins } from './block-pins.js';
import {
  CHECKSUM_MISMATCH_BASE,
  ChunkIo,
  crc32cConcat,
  errnoName,
  type GatherRead,
  type GatherResult,
  type IoResult,
} from './chunk-io.js';
import { chainRange, checkChainId, chunkKey, splitKey } from './chunk-key.js';
import {
  decodeRecord,
  encodeRecord,
  releasedBlocks,
  blocksOf,
  type BlockRef,
  type ChunkRecord,
  type ContentRef,
  type PendingVersion,
} from './chunk-record.js';
import {
  chunkEngineOptionsSchema,
  type ChunkEngineConfig,
  type ChunkEngineOptions,
} from './config.js';
import { DataFiles } from './data-files.js';
import { GroupSync } from './group-sync.js';
import { KeyedLock } from './keyed-lock.js';
import { MetaStore } from './meta-store.js';
import { alignUp, classBytes, granuleOf, MAX_CHUNK_SIZE, PAGE } from './size-classes.js';
import { spaceInfo } from './space.js';
import { oldBytesNeeded, planUpdate, type Segment, type UpdatePlan } from './update-plan.js';

/** Ops per native batch when a read request list is long. */
const READ_OPS_PER_BATCH = 1_024;
/** Chunk deletions in flight at once while dropping a chain. */
const DROP_PARALLELISM = 256;
const MAX_U32 = 0xffff_ffff;

const emptyContent: ContentRef = { length: 0, checksum: 0, block: null, crcs: new Uint32Array(0) };

export interface ChunkEngineStatus {
  ioBackend: 'io_uring' | 'threads';
  ioFallbackReason: string | null;
  directIo: boolean;
  pinnedBlocks: number;
  queuedChunkOps: number;
  /** Long-lived read blocks: bytes allocated, bytes viewed by JS or read into now. */
  readPool: { totalBytes: number; inUseBytes: number; badReleases: number };
  /** Writes sent to the disk from the received payload itself, with no bounce copy. */
  writesInPlace: number;
  /** Gather batches that ran on the event loop's own ring (io.loopReadBytes). */
  loopReads: number;
}

function toMeta(chainId: number, chunkId: Buffer, rec: ChunkRecord): ChunkMeta {
  const meta: ChunkMeta = {
    chainId,
    chunkId,
    commitVer: rec.commitVer,
    updateVer: rec.pending ? rec.pending.updateVer : rec.commitVer,
    chainVer: rec.chainVer,
    length: rec.committed.length,
    checksum: rec.committed.checksum,
    chunkSize: classBytes(rec.committed.block?.cls ?? 0),
  };
  if (rec.pending) {
    meta.pendingLength = rec.pending.length;
    meta.pendingChecksum = rec.pending.checksum;
    meta.pendingChainVer = rec.pending.chainVer;
    if (rec.pending.remove) meta.pendingRemove = true;
  }
  if (rec.lastRequestId !== 0) meta.lastRequestId = rec.lastRequestId;
  return meta;
}

function checkU32(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > MAX_U32) {
    throw new ThreeFsError('INVALID_ARGUMENT', `${name} ${value} is not a u32`);
  }
}

function ioFailure(what: string, result: IoResult | undefined, expected: number): ThreeFsError {
  const got = result?.result ?? -5;
  if (got < 0) {
    return new ThreeFsError(
      got === -28 ? 'NO_SPACE' : 'UNAVAILABLE',
      `${what} failed: ${errnoName(got)}`,
    );
  }
  return new ThreeFsError('UNAVAILABLE', `${what} transferred ${got} of ${expected} bytes`);
}

/** The error of a gather read that did not succeed (its status is not its copyLength). */
function gatherFailure(status: number, read: GatherRead, meta: ChunkMeta): ThreeFsError {
  if (status <= -CHECKSUM_MISMATCH_BASE) {
    const granule = -status - CHECKSUM_MISMATCH_BASE;
    return new ThreeFsError(
      'CHECKSUM_MISMATCH',
      `chunk read: granule ${granule} of the read does not match its stored CRC32C ` +
        `(stored ${read.expected[granule]?.toString(16)}; chunk ${meta.chunkId.toString('hex')})`,
    );
  }
  if (status < 0) return ioFailure('chunk read', { result: status }, read.length);
  return new ThreeFsError('UNAVAILABLE', `chunk read placed ${status} of ${read.copyLength} bytes`);
}

function piecesOf(segments: Segment[], old: Buffer | undefined, oldBase: number, data: Buffer) {
  return segments.map((s): Uint8Array | number => {
    if (s.from === 'data') return data;
    if (s.from === 'zeros') return s.length;
    if (!old) throw new ThreeFsError('INTERNAL', 'update plan keeps old bytes that were not read');
    return slice(old, s.start - oldBase, s.end - oldBase);
  });
}

export class ChunkEngine implements ChunkStore {
  private readonly locks: KeyedLock;
  private readonly pins: BlockPins;
  private readonly syncs: GroupSync;
  /** Committed content bytes per chain, kept as records change (reports must not scan chunks). */
  private readonly chainBytes = new Map<number, number>();
  private closed = false;
  private active = 0;
  private idle: (() => void) | undefined;

  private constructor(
    private readonly config: ChunkEngineConfig,
    private readonly io: ChunkIo,
    private readonly files: DataFiles,
    private readonly allocator: BlockAllocator,
    private readonly store: MetaStore,
    private readonly log: Logger,
  ) {
    this.locks = new KeyedLock(config.maxQueuedChunkOps);
    this.pins = new BlockPins((block) => this.allocator.free(block));
    this.syncs = new GroupSync(
      async (fds) => {
        const done = await Promise.all(fds.map((fd) => io.submit([{ op: 'fdatasync', fd }])));
        return done.map(([result]) => result?.result ?? -5);
      },
      config.maxQueuedChunkOps,
      (_fd, errno) => ioFailure('chunk fdatasync', { result: errno }, 0),
    );
  }

  static async open(options: ChunkEngineOptions, log?: Logger): Promise<ChunkEngine> {
    const parsed = chunkEngineOptionsSchema.safeParse(options);
    if (!parsed.success) {
      throw new ThreeFsError('INVALID_ARGUMENT', `chunk engine options: ${parsed.error.message}`);
    }
    const config = parsed.data;
    const logger = log ?? createLogger({ role: 'chunk-engine' });
    const io = new ChunkIo({
      backend: config.io.backend,
      queueDepth: config.io.queueDepth,
      threads: config.io.threads,
      maxInFlight: config.io.maxInFlightBatches,
      maxQueued: config.io.maxQueuedBatches,
      readPoolBytes: config.io.readPoolBytes,
      loopReadBytes: config.io.loopReadBytes,
    });
    if (io.backend !== 'io_uring') {
      logger.warn({ reason: io.fallbackReason }, 'chunk I/O runs on a thread pool, not io_uring');
    }
    const files = new DataFiles(
      {
        dir: config.path,
        filesPerClass: config.filesPerClass,
        directIo: config.directIo,
        zeroNewExtents: config.zeroNewExtents,
        log: logger,
      },
      io,
    );
    let meta: MetaStore | undefined;
    try {
      const allocator = new BlockAllocator(
        { filesPerClass: config.filesPerClass, extendBytes: config.extendBytes },
        (cls, file, from, count) => files.extend(cls, file, from, count),
      );
      for (const { cls, file, blocks } of files.openExisting()) {
        allocator.setExtent(cls, file, blocks);
      }
      meta = new MetaStore(path.join(config.path, 'meta'));
      // Allocation is rebuilt from the records: whatever a crash left unreferenced is free.
      let chunks = 0;
      const engine = new ChunkEngine(config, io, files, allocator, meta, logger);
      for (const row of meta.range(Buffer.from([0]), undefined)) {
        const rec = decodeRecord(row.value);
        for (const block of blocksOf(rec)) allocator.markUsed(block);
        engine.countBytes(row.key, rec.committed.length);
        chunks++;
      }
      logger.info(
        { path: config.path, chunks, io: io.backend, directIo: files.direct },
        'chunk engine open',
      );
      return engine;
    } catch (err) {
      await meta?.close();
      files.close();
      await io.close();
      throw err;
    }
  }

  status(): ChunkEngineStatus {
    return {
      ioBackend: this.io.backend,
      ioFallbackReason: this.io.fallbackReason,
      directIo: this.files.direct,
      pinnedBlocks: this.pins.pinnedCount,
      queuedChunkOps: this.locks.size,
      readPool: this.io.readPool,
      writesInPlace: this.io.writesInPlace,
      loopReads: this.io.loopReads,
    };
  }

  /** Where a chunk's versions live (for diagnosis and tests): data file path, byte offset. */
  locate(
    chainId: number,
    chunkId: Buffer,
  ): { committed: BlockRef | null; pending: BlockRef | null } | undefined {
    const rec = this.load(chunkKey(chainId, chunkId));
    if (!rec) return undefined;
    return { committed: rec.committed.block, pending: rec.pending?.block ?? null };
  }

  /** The data file and byte offset of a block. */
  blockLocation(block: BlockRef): { file: string; offset: number } {
    return { file: this.files.filePath(block.cls, block.file), offset: this.blockOffset(block) };
  }

  /** LMDB commits so far (each one fdatasync), to show group commit in benchmarks. */
  metadataCommits(): number {
    return this.store.lastCommitId();
  }

  /** Data sync rounds so far and the update syncs they covered (group commit of chunk data). */
  dataSyncs(): { rounds: number; requests: number } {
    return this.syncs.stats;
  }

  usedBytes(chainId: number): number {
    return this.chainBytes.get(chainId) ?? 0;
  }

  meta(chainId: number, chunkId: Buffer): ChunkMeta | undefined {
    const rec = this.load(chunkKey(chainId, chunkId));
    return rec ? toMeta(chainId, chunkId, rec) : undefined;
  }

  listMeta(chainId: number, begin?: Buffer, end?: Buffer, limit?: number): ChunkMeta[] {
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
      throw new ThreeFsError('INVALID_ARGUMENT', `limit ${limit} is not a count`);
    }
    const range = chainRange(chainId, begin, end);
    const out: ChunkMeta[] = [];
    for (const row of this.store.range(range.start, range.end, limit)) {
      const { chunkId } = splitKey(row.key);
      out.push(toMeta(chainId, chunkId, decodeRecord(row.value)));
    }
    return out;
  }

  async read(batch: readonly ReadRequest[]): Promise<Array<ReadResult | Error>> {
    const { results, data } = await this.readBatch(batch);
    return results.map((r) =>
      r instanceof Error ? r : { meta: r.meta, data: slice(data, r.offset, r.offset + r.length) },
    );
  }

  async readIntoRegion(
    batch: readonly ReadRequest[],
    region: number,
    targets: readonly number[],
  ): Promise<Array<{ meta: ChunkMeta; length: number } | Error>> {
    if (targets.length !== batch.length)
      throw new ThreeFsError('INVALID_ARGUMENT', 'one region target per read');
    const { results } = await this.gatherBatch(batch, { region, targets });
    return results.map((r) => (r instanceof Error ? r : { meta: r.meta, length: r.length }));
  }

  async readBatch(batch: readonly ReadRequest[]): Promise<BatchReadResult> {
    return this.gatherBatch(batch, undefined);
  }

  /** readBatch, into one pool buffer or (with `into`) to targets of a shared region. */
  private async gatherBatch(
    batch: readonly ReadRequest[],
    into: { region: number; targets: readonly number[] } | undefined,
  ): Promise<BatchReadResult> {
    return this.track(async () => {
      const results: BatchReadResult['results'] = new Array(batch.length);
      const jobs: Array<{ index: number; meta: ChunkMeta; block: BlockRef; read: GatherRead }> = [];
      batch.forEach((request, index) => {
        try {
          const job = this.gatherJob(request);
          if (job.read === undefined) results[index] = { meta: job.meta, offset: 0, length: 0 };
          else {
            if (into) job.read.target = into.targets[index];
            this.pins.pin(job.block);
            jobs.push({ index, meta: job.meta, block: job.block, read: job.read });
          }
        } catch (err) {
          results[index] = err as Error;
        }
      });
      const parts: Buffer[] = [];
      let base = 0;
      for (let i = 0; i < jobs.length; i += READ_OPS_PER_BATCH) {
        const group = jobs.slice(i, i + READ_OPS_PER_BATCH);
        let gathered: GatherResult;
        try {
          gathered = await this.io.submitGather(
            group.map((j) => j.read),
            into?.region,
          );
        } catch (err) {
          for (const j of group) results[j.index] = err as Error;
          continue;
        } finally {
          for (const j of group) this.pins.unpin(j.block);
        }
        let at = base;
        group.forEach((job, k) => {
          const status = gathered.statuses[k] ?? -5;
          results[job.index] =
            status === job.read.copyLength
              ? { meta: job.meta, offset: job.read.target ?? at, length: job.read.copyLength }
              : gatherFailure(status, job.read, job.meta);
          at += job.read.copyLength;
        });
        parts.push(gathered.data);
        base += gathered.data.length;
      }
      // More than one native batch only for requests past READ_OPS_PER_BATCH reads.
      const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      return { results, data };
    });
  }

  async readPending(chainId: number, chunkId: Buffer): Promise<Buffer> {
    const key = chunkKey(chainId, chunkId);
    return this.track(() =>
      this.locks.run(key.toString('latin1'), async () => {
        const rec = this.load(key);
        const pending = rec?.pending;
        if (!pending || pending.remove) {
          throw new ThreeFsError(
            'NOT_FOUND',
            `chunk ${chunkId.toString('hex')} has no pending content to read`,
          );
        }
        return this.readContent(pending, 0, pending.length);
      }),
    );
  }

  async update(request: UpdateRequest): Promise<ChunkMeta> {
    const key = chunkKey(request.chainId, request.chunkId);
    checkU32('updateVer', request.updateVer);
    checkU32('chainVer', request.chainVer);
    if (request.updateVer === 0) {
      throw new ThreeFsError('INVALID_ARGUMENT', 'updateVer 0: the service assigns versions');
    }
    if (!['write', 'truncate', 'remove'].includes(request.kind)) {
      throw new ThreeFsError('INVALID_ARGUMENT', `unknown update kind ${String(request.kind)}`);
    }
    if (request.kind === 'write' && !Buffer.isBuffer(request.data)) {
      throw new ThreeFsError('INVALID_ARGUMENT', 'a write needs data');
    }
    if (request.kind === 'truncate' && request.length === undefined) {
      throw new ThreeFsError('INVALID_ARGUMENT', 'a truncate needs a length');
    }
    if (request.commitChainVer !== undefined) checkU32('commitChainVer', request.commitChainVer);
    if (request.requestId !== undefined && !Number.isSafeInteger(request.requestId)) {
      throw new ThreeFsError('INVALID_ARGUMENT', `requestId ${request.requestId}`);
    }
    return this.track(() =>
      this.locks.run(key.toString('latin1'), () => this.applyUpdate(key, request)),
    );
  }

  async commit(
    chainId: number,
    chunkId: Buffer,
    updateVer: number,
    chainVer: number,
  ): Promise<ChunkMeta> {
    const key = chunkKey(chainId, chunkId);
    checkU32('updateVer', updateVer);
    checkU32('chainVer', chainVer);
    return this.track(() =>
      this.locks.run(key.toString('latin1'), async () => {
        const rec = this.load(key);
        if (!rec) throw new ThreeFsError('NOT_FOUND', `chunk ${chunkId.toString('hex')} not found`);
        if (updateVer <= rec.commitVer) return toMeta(chainId, chunkId, rec); // stale: done already
        const pending = rec.pending;
        if (!pending || pending.updateVer !== updateVer) {
          throw new ThreeFsError(
            'FAILED_PRECONDITION',
            `commit of version ${updateVer} but the pending version is ${pending?.updateVer ?? 'none'}`,
          );
        }
        const committedChainVer = Math.max(rec.chainVer, chainVer);
        if (pending.remove) {
          await this.persist(key, rec, undefined);
          return toMeta(chainId, chunkId, {
            commitVer: updateVer,
            chainVer: committedChainVer,
            committed: emptyContent,
            pending: null,
            lastRequestId: rec.lastRequestId,
          });
        }
        const next: ChunkRecord = {
          commitVer: updateVer,
          chainVer: committedChainVer,
          committed: {
            length: pending.length,
            checksum: pending.checksum,
            block: pending.block,
            crcs: pending.crcs,
          },
          pending: null,
          lastRequestId: rec.lastRequestId,
        };
        await this.persist(key, rec, next);
        return toMeta(chainId, chunkId, next);
      }),
    );
  }

  async abortPending(chainId: number, chunkId: Buffer): Promise<void> {
    const key = chunkKey(chainId, chunkId);
    await this.track(() =>
      this.locks.run(key.toString('latin1'), async () => {
        const rec = this.load(key);
        if (!rec?.pending) return;
        const neverCommitted = rec.commitVer === 0 && rec.committed.block === null;
        const next: ChunkRecord | undefined = neverCommitted
          ? undefined
          : { ...rec, pending: null };
        await this.persist(key, rec, next);
      }),
    );
  }

  async dropChain(chainId: number): Promise<void> {
    checkChainId(chainId);
    await this.track(async () => {
      const range = chainRange(chainId);
      // Bounded rounds: each deletes up to DROP_PARALLELISM chunks, sharing LMDB commits.
      for (;;) {
        const keys = [...this.store.range(range.start, range.end, DROP_PARALLELISM)].map(
          (row) => row.key,
        );
        if (keys.length === 0) return;
        await Promise.all(
          keys.map((key) =>
            this.locks.run(key.toString('latin1'), async () => {
              const rec = this.load(key);
              if (!rec) return;
              await this.persist(key, rec, undefined);
            }),
          ),
        );
      }
    });
  }

  spaceInfo(): SpaceInfo {
    const fs = statfsSync(this.config.path);
    return spaceInfo(
      { capacityBytes: fs.blocks * fs.bsize, availableBytes: fs.bavail * fs.bsize },
      this.allocator.freePreallocatedBytes(),
      {
        lowSpace: this.config.lowSpaceThreshold,
        rejectNewChunks: this.config.rejectNewChunksThreshold,
      },
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.active > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    await this.io.close();
    await this.store.close();
    this.files.close();
  }

  // ---- internals ----

  private async track<T>(work: () => Promise<T>): Promise<T> {
    if (this.closed) throw new ThreeFsError('UNAVAILABLE', 'chunk engine is closed');
    this.active++;
    try {
      return await work();
    } finally {
      this.active--;
      if (this.active === 0) this.idle?.();
    }
  }

  private load(key: Buffer): ChunkRecord | undefined {
    const raw = this.store.get(key);
    return raw ? decodeRecord(raw) : undefined;
  }

  /**
   * Makes `after` the chunk's record (undefined deletes it) in one durable LMDB commit, then keeps
   * the per-chain byte count and frees blocks `before` named and `after` does not.
   */
  private async persist(
    key: Buffer,
    before: ChunkRecord | undefined,
    after: ChunkRecord | undefined,
  ): Promise<void> {
    await this.store.write([{ key, value: after ? encodeRecord(after) : null }]);
    this.countBytes(key, (after?.committed.length ?? 0) - (before?.committed.length ?? 0));
    this.release(before, after);
  }

  private countBytes(key: Buffer, delta: number): void {
    const { chainId } = splitKey(key);
    const bytes = (this.chainBytes.get(chainId) ?? 0) + delta;
    if (bytes < 0) throw new ThreeFsError('INTERNAL', `chain ${chainId} would hold ${bytes} bytes`);
    if (bytes === 0) this.chainBytes.delete(chainId);
    else this.chainBytes.set(chainId, bytes);
  }

  /** Frees what `before` referenced and `after` does not, once readers are done with it. */
  private release(before: ChunkRecord | undefined, after: ChunkRecord | undefined): void {
    for (const block of releasedBlocks(before, after)) this.pins.release(block);
  }

  private fdOf(block: BlockRef): number {
    return this.files.fd(block.cls, block.file);
  }

  private blockOffset(block: BlockRef): number {
    return block.block * classBytes(block.cls);
  }

  /**
   * What one read of committed content needs: the chunk's meta, and (unless nothing is left to
   * read past the offset) the gather read of its granules with the expected CRCs.
   */
  private gatherJob(
    request: ReadRequest,
  ): { meta: ChunkMeta; block: BlockRef; read: GatherRead } | { meta: ChunkMeta; read: undefined } {
    checkU32('read offset', request.offset);
    if (!Number.isSafeInteger(request.length) || request.length < 0) {
      throw new ThreeFsError('INVALID_ARGUMENT', `read length ${request.length}`);
    }
    const rec = this.load(chunkKey(request.chainId, request.chunkId));
    if (!rec) {
      throw new ThreeFsError('NOT_FOUND', `chunk ${request.chunkId.toString('hex')} not found`);
    }
    const meta = toMeta(request.chainId, request.chunkId, rec);
    const content = rec.committed;
    const start = Math.min(request.offset, content.length);
    const end = Math.min(request.offset + Math.min(request.length, MAX_CHUNK_SIZE), content.length);
    const block = content.block;
    if (end <= start || block === null) return { meta, read: undefined };
    const { op, offsetInChunk } = this.readOp(block, start, end, content.length);
    const g = op.granule;
    return {
      meta,
      block,
      read: {
        fd: op.fd,
        offset: op.offset,
        length: op.length,
        crcLength: op.crcLength,
        granule: g,
        expected: content.crcs.subarray(
          offsetInChunk / g,
          Math.ceil((offsetInChunk + op.crcLength) / g),
        ),
        skip: start - offsetInChunk,
        copyLength: end - start,
      },
    };
  }

  /** A read of content bytes [start, end), widened to whole granules so each can be verified. */
  private readOp(block: BlockRef, start: number, end: number, contentLength: number) {
    const g = granuleOf(block.cls);
    const from = Math.floor(start / g) * g;
    const to = Math.min(Math.ceil(end / g) * g, contentLength);
    const op = {
      op: 'read' as const,
      fd: this.fdOf(block),
      offset: this.blockOffset(block) + from,
      length: alignUp(to - from, PAGE),
      granule: g,
      crcLength: to - from,
    };
    return { op, offsetInChunk: from };
  }

  /** The bytes of a read result, after checking it completed and matches its checksums. */
  private verified(
    result: IoResult | undefined,
    bytes: number,
    expected: Uint32Array,
    what: string,
  ): Buffer {
    if (!result || result.result < bytes || !result.data || !result.crcs) {
      throw ioFailure(what, result, bytes);
    }
    for (let i = 0; i < result.crcs.length; i++) {
      if (result.crcs[i] !== expected[i]) {
        throw new ThreeFsError(
          'CHECKSUM_MISMATCH',
          `${what}: granule ${i} of the read does not match its stored CRC32C ` +
            `(stored ${expected[i]?.toString(16)}, read ${result.crcs[i]?.toString(16)})`,
        );
      }
    }
    return result.data;
  }

  /** Verified content bytes [start, end) of a version (start granule-aligned). */
  private async readContent(content: ContentRef, start: number, end: number): Promise<Buffer> {
    if (end <= start || content.block === null) return Buffer.alloc(0);
    const { op, offsetInChunk } = this.readOp(content.block, start, end, content.length);
    if (offsetInChunk !== start) throw new ThreeFsError('INTERNAL', 'unaligned content read');
    const g = granuleOf(content.block.cls);
    const [result] = await this.io.submit([op]);
    const data = this.verified(
      result,
      op.crcLength,
      content.crcs.subarray(start / g),
      'chunk read',
    );
    return slice(data, 0, end - start);
  }

  private async applyUpdate(key: Buffer, request: UpdateRequest): Promise<ChunkMeta> {
    const rec = this.load(key);
    const syncing = request.syncing === true;
    if (!syncing) {
      if (rec?.pending) {
        throw new ThreeFsError(
          'FAILED_PRECONDITION',
          `chunk ${request.chunkId.toString('hex')} already has pending version ${rec.pending.updateVer}`,
        );
      }
      const next = (rec?.commitVer ?? 0) + 1;
      if (request.updateVer !== next) {
        throw new ThreeFsError(
          'FAILED_PRECONDITION',
          `update to version ${request.updateVer}, but the next version is ${next}`,
        );
      }
    } else if (request.updateVer < 1) {
      throw new ThreeFsError('INVALID_ARGUMENT', 'a syncing update needs updateVer >= 1');
    }
    if (request.kind === 'remove' && !rec) {
      throw new ThreeFsError('NOT_FOUND', `chunk ${request.chunkId.toString('hex')} not found`);
    }
    const data = request.data ?? Buffer.alloc(0);
    const committed = rec?.committed ?? emptyContent;
    const plan = planUpdate(committed, rec?.pending !== null && rec?.pending !== undefined, {
      kind: request.kind,
      offset: request.offset,
      dataLength: data.length,
      length: request.length ?? 0,
      chunkSize: request.chunkSize,
      syncing,
    });
    if (!rec && this.spaceInfo().rejectNewChunks) {
      throw new ThreeFsError(
        'NO_SPACE',
        `disk ${this.config.path} is over its reject-new-chunk threshold ` +
          `(${this.config.rejectNewChunksThreshold}): no new chunks`,
      );
    }
    const allocated: BlockRef[] = [];
    try {
      const content = await this.writeContent(plan, committed, data, allocated);
      const lastRequestId = request.requestId ?? rec?.lastRequestId ?? 0;
      let next: ChunkRecord;
      if (request.commitChainVer !== undefined) {
        // Applied and committed in one LMDB commit: the record goes from one committed version
        // straight to the next, so a crash leaves either (see ChunkStore.update).
        next = {
          commitVer: request.updateVer,
          chainVer: Math.max(rec?.chainVer ?? 0, request.commitChainVer),
          committed: content,
          pending: null,
          lastRequestId,
        };
        if (plan.kind === 'remove') {
          await this.persist(key, rec, undefined);
          return toMeta(request.chainId, request.chunkId, { ...next, committed: emptyContent });
        }
      } else {
        const pending: PendingVersion = {
          ...content,
          updateVer: request.updateVer,
          chainVer: request.chainVer,
          remove: plan.kind === 'remove',
        };
        next = {
          commitVer: syncing ? request.updateVer - 1 : (rec?.commitVer ?? 0),
          chainVer: rec?.chainVer ?? 0,
          committed,
          pending,
          lastRequestId,
        };
      }
      await this.persist(key, rec, next);
      allocated.length = 0; // the record owns them now
      return toMeta(request.chainId, request.chunkId, next);
    } finally {
      for (const block of allocated) this.allocator.free(block);
    }
  }

  /** Writes a plan's pending content durably; new blocks are pushed to `allocated`. */
  private async writeContent(
    plan: UpdatePlan,
    committed: ContentRef,
    data: Buffer,
    allocated: BlockRef[],
  ): Promise<ContentRef> {
    switch (plan.kind) {
      case 'remove':
        return emptyContent;
      case 'shrink': {
        const block = committed.block;
        if (!block) throw new ThreeFsError('INTERNAL', 'shrink of a chunk without a block');
        if (plan.newLength === 0) return emptyContent;
        const g = granuleOf(block.cls);
        const whole = Math.floor(plan.newLength / g);
        const crcs = new Uint32Array(Math.ceil(plan.newLength / g));
        crcs.set(committed.crcs.subarray(0, whole));
        if (whole < crcs.length) {
          const tail = await this.readContent(
            committed,
            whole * g,
            Math.min((whole + 1) * g, committed.length),
          );
          crcs[whole] = crc32c(tail.subarray(0, plan.newLength - whole * g));
        }
        return {
          length: plan.newLength,
          checksum: crc32cConcat(crcs, g, plan.newLength),
          block,
          crcs,
        };
      }
      case 'in-place': {
        const block = committed.block;
        if (!block)
          throw new ThreeFsError('INTERNAL', 'in-place update of a chunk without a block');
        const g = granuleOf(block.cls);
        const keep = committed.crcs.subarray(0, plan.writeFrom / g);
        if (plan.writeFrom >= plan.newLength) {
          const crcs = Uint32Array.from(keep);
          return {
            length: plan.newLength,
            checksum: crc32cConcat(crcs, g, plan.newLength),
            block,
            crcs,
          };
        }
        const need = oldBytesNeeded(plan);
        const old = need ? await this.readContent(committed, need.start, need.end) : undefined;
        const written = await this.writeDurably(
          block,
          plan.writeFrom,
          plan.newLength - plan.writeFrom,
          piecesOf(plan.segments, old, plan.writeFrom, data),
        );
        const crcs = new Uint32Array(keep.length + written.crcs.length);
        crcs.set(keep);
        crcs.set(written.crcs, keep.length);
        return {
          length: plan.newLength,
          checksum: crc32cConcat(crcs, g, plan.newLength),
          block,
          crcs,
        };
      }
      case 'cow': {
        if (plan.cls === null) return emptyContent;
        const need = oldBytesNeeded(plan);
        let old: Buffer | undefined;
        if (need && committed.block) {
          const g = granuleOf(committed.block.cls);
          old = await this.readContent(
            committed,
            0,
            Math.min(committed.length, alignUp(need.end, g)),
          );
        }
        const block = await this.allocator.allocate(plan.cls);
        allocated.push(block);
        const written = await this.writeDurably(
          block,
          0,
          plan.newLength,
          piecesOf(plan.segments, old, 0, data),
        );
        return { length: plan.newLength, checksum: written.crc, block, crcs: written.crcs };
      }
    }
  }

  /**
   * Writes `length` content bytes at `from` in a block, then waits for a data sync round that
   * covers it (group-sync.ts): concurrent updates share their fdatasyncs.
   */
  private async writeDurably(
    block: BlockRef,
    from: number,
    length: number,
    pieces: Array<Uint8Array | number>,
  ): Promise<{ crcs: Uint32Array; crc: number }> {
    const fd = this.fdOf(block);
    const padded = alignUp(length, PAGE);
    if (from % PAGE !== 0 || from + padded > classBytes(block.cls)) {
      throw new ThreeFsError(
        'INTERNAL',
        `write [${from}, ${from + padded}) does not fit its block`,
      );
    }
    const [write] = await this.io.submit([
      {
        op: 'write',
        fd,
        offset: this.blockOffset(block) + from,
        length: padded,
        pieces,
        granule: granuleOf(block.cls),
      },
    ]);
    if (!write || write.result !== padded || !write.crcs || write.crc === undefined) {
      throw ioFailure('chunk write', write, padded);
    }
    await this.syncs.sync(fd);
    return { crcs: write.crcs, crc: write.crc };
  }
}
