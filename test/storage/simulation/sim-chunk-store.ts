// The ChunkStore contract kept in memory, for the simulation only (the daemon uses the native
// engine). The "disk" outlives a node's crash; each node incarnation gets a view of it that stops
// answering once that incarnation has crashed, so an update in flight at the crash either landed
// before it or not at all, like a durable write that had or had not returned.
import { crc32c } from '../../../daemons/common/crc32c.js';
import { ThreeFsError } from '../../../daemons/common/errors.js';
import type {
  BatchReadResult,
  ChunkMeta,
  ChunkStore,
  ReadRequest,
  ReadResult,
  SpaceInfo,
  UpdateRequest,
} from '../../../daemons/storage/chunk-store.js';
import type { Scheduler } from './scheduler.js';

interface Record {
  commitVer: number;
  chainVer: number;
  content: Buffer;
  pending?: { updateVer: number; chainVer: number; content: Buffer; remove: boolean };
  chunkSize: number;
}

/** What survives a crash. */
export class SimDisk {
  readonly chunks = new Map<string, Record>();
}

const keyOf = (chainId: number, chunkId: Buffer) => `${chainId}/${chunkId.toString('hex')}`;

export class SimChunkStore implements ChunkStore {
  crashed = false;

  constructor(
    private readonly disk: SimDisk,
    private readonly scheduler: Scheduler,
  ) {}

  /** A disk operation takes a little virtual time; after a crash it never completes. */
  private async io(): Promise<void> {
    await this.scheduler.sleep(this.scheduler.rng.int(0, 2));
    if (this.crashed) await new Promise(() => undefined);
  }

  private metaOf(chainId: number, chunkId: Buffer, r: Record): ChunkMeta {
    return {
      chainId,
      chunkId,
      commitVer: r.commitVer,
      updateVer: r.pending ? r.pending.updateVer : r.commitVer,
      chainVer: r.chainVer,
      length: r.content.length,
      checksum: crc32c(r.content),
      ...(r.pending && {
        pendingLength: r.pending.content.length,
        pendingChecksum: crc32c(r.pending.content),
        pendingChainVer: r.pending.chainVer,
        pendingRemove: r.pending.remove,
      }),
      chunkSize: r.chunkSize,
    };
  }

  meta(chainId: number, chunkId: Buffer): ChunkMeta | undefined {
    const r = this.disk.chunks.get(keyOf(chainId, chunkId));
    return r && this.metaOf(chainId, chunkId, r);
  }

  usedBytes(chainId: number): number {
    return this.listMeta(chainId).reduce((sum, m) => sum + m.length, 0);
  }

  listMeta(chainId: number, begin?: Buffer, end?: Buffer, limit = Infinity): ChunkMeta[] {
    const out: ChunkMeta[] = [];
    const keys = [...this.disk.chunks.keys()].filter((k) => k.startsWith(`${chainId}/`)).sort();
    for (const key of keys) {
      const chunkId = Buffer.from(key.split('/')[1]!, 'hex');
      if (begin && Buffer.compare(chunkId, begin) < 0) continue;
      if (end && Buffer.compare(chunkId, end) >= 0) continue;
      out.push(this.metaOf(chainId, chunkId, this.disk.chunks.get(key)!));
      if (out.length >= limit) break;
    }
    return out;
  }

  async read(batch: readonly ReadRequest[]): Promise<Array<ReadResult | Error>> {
    await this.io();
    return batch.map((r) => {
      const record = this.disk.chunks.get(keyOf(r.chainId, r.chunkId));
      if (!record) return new ThreeFsError('NOT_FOUND', 'no such chunk');
      return {
        data: Buffer.from(record.content.subarray(r.offset, r.offset + r.length)),
        meta: this.metaOf(r.chainId, r.chunkId, record),
      };
    });
  }

  /** read(), the bytes joined into one buffer (the engine gathers them natively). */
  async readBatch(batch: readonly ReadRequest[]): Promise<BatchReadResult> {
    const outcomes = await this.read(batch);
    let offset = 0;
    const pieces: Buffer[] = [];
    const results = outcomes.map((outcome) => {
      if (outcome instanceof Error) return outcome;
      const placed = { meta: outcome.meta, offset, length: outcome.data.length };
      pieces.push(outcome.data);
      offset += outcome.data.length;
      return placed;
    });
    return { results, data: Buffer.concat(pieces) };
  }

  async readPending(chainId: number, chunkId: Buffer): Promise<Buffer> {
    const record = this.disk.chunks.get(keyOf(chainId, chunkId));
    if (!record?.pending) throw new ThreeFsError('NOT_FOUND', 'no pending version');
    return Buffer.from(record.pending.content);
  }

  async update(request: UpdateRequest): Promise<ChunkMeta> {
    await this.io();
    const key = keyOf(request.chainId, request.chunkId);
    const record = this.disk.chunks.get(key) ?? {
      commitVer: 0,
      chainVer: 0,
      content: Buffer.alloc(0),
      chunkSize: request.chunkSize,
    };
    if (!request.syncing && request.updateVer !== record.commitVer + 1) {
      throw new ThreeFsError(
        'INTERNAL',
        `sim store: update ${request.updateVer} on commit ${record.commitVer}`,
      );
    }
    let content: Buffer;
    if (request.kind === 'write') {
      const data = request.data ?? Buffer.alloc(0);
      const base = request.syncing ? Buffer.alloc(0) : record.content;
      content = Buffer.alloc(Math.max(base.length, request.offset + data.length));
      base.copy(content);
      data.copy(content, request.offset);
    } else if (request.kind === 'truncate') {
      content = Buffer.alloc(request.length ?? 0);
      record.content.copy(content, 0, 0, Math.min(record.content.length, content.length));
    } else {
      content = Buffer.alloc(0);
    }
    if (request.commitChainVer !== undefined) {
      // Applied and committed in one durable step (the last replica of a chain).
      delete record.pending;
      const chainVer = Math.max(record.chainVer, request.commitChainVer);
      if (request.kind === 'remove') {
        this.disk.chunks.delete(key);
        return {
          ...this.metaOf(request.chainId, request.chunkId, record),
          commitVer: request.updateVer,
          updateVer: request.updateVer,
          chainVer,
          length: 0,
          checksum: 0,
        };
      }
      Object.assign(record, { commitVer: request.updateVer, chainVer, content });
      this.disk.chunks.set(key, record);
      return this.metaOf(request.chainId, request.chunkId, record);
    }
    if (request.syncing) record.commitVer = request.updateVer - 1;
    record.pending = {
      updateVer: request.updateVer,
      chainVer: request.chainVer,
      content,
      remove: request.kind === 'remove',
    };
    this.disk.chunks.set(key, record);
    return this.metaOf(request.chainId, request.chunkId, record);
  }

  async commit(
    chainId: number,
    chunkId: Buffer,
    updateVer: number,
    chainVer: number,
  ): Promise<ChunkMeta> {
    await this.io();
    const key = keyOf(chainId, chunkId);
    const record = this.disk.chunks.get(key);
    if (!record) throw new ThreeFsError('NOT_FOUND', 'no such chunk');
    if (
      updateVer <= record.commitVer ||
      !record.pending ||
      record.pending.updateVer !== updateVer
    ) {
      return this.metaOf(chainId, chunkId, record);
    }
    const final = {
      ...this.metaOf(chainId, chunkId, record),
      commitVer: updateVer,
      updateVer,
      chainVer,
    };
    if (record.pending.remove) {
      this.disk.chunks.delete(key);
      return { ...final, length: 0, checksum: 0 };
    }
    record.commitVer = updateVer;
    record.chainVer = chainVer;
    record.content = record.pending.content;
    delete record.pending;
    return this.metaOf(chainId, chunkId, record);
  }

  async abortPending(chainId: number, chunkId: Buffer): Promise<void> {
    const record = this.disk.chunks.get(keyOf(chainId, chunkId));
    if (record) delete record.pending;
  }

  async dropChain(chainId: number): Promise<void> {
    for (const key of [...this.disk.chunks.keys()])
      if (key.startsWith(`${chainId}/`)) this.disk.chunks.delete(key);
  }

  spaceInfo(): SpaceInfo {
    return {
      capacityBytes: 1 << 30,
      freeBytes: 1 << 30,
      usedBytes: 0,
      lowSpace: false,
      rejectNewChunks: false,
    };
  }

  async close(): Promise<void> {}
}
