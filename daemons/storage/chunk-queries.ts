// Read-side storage operations (brief §3.3, §3.6): batched reads from any up-to-date SERVING
// replica (a pending version answers NOT_COMMITTED rather than stale data), last-chunk queries for
// file length, single-chunk metadata, and the metadata pages a predecessor reads during re-sync.
import type { z } from 'zod';
import { ThreeFsError } from '../common/errors.js';
import { groupBy } from '../common/group-by.js';
import { slice } from '../common/pooled-views.js';
import type { ChunkMetaWire, ReadIoResult, StorageService } from '../common/services/storage.js';
import type { ChunkMeta, ReadRequest } from './chunk-store.js';
import { mayServeReads } from './local-state.js';
import type { HeldTarget, TargetRegistry } from './target-registry.js';
import type { TargetRole } from './target-roles.js';

type ReadBatch = z.output<typeof StorageService.methods.batchRead.request>;
type RegionReadBatch = z.output<typeof StorageService.methods.batchReadToRegion.request>;

interface PendingRead {
  index: number;
  read: ReadRequest;
  target: HeldTarget;
}
type ReadResultWire = z.input<typeof ReadIoResult>;

export function metaToWire(meta: ChunkMeta): z.input<typeof ChunkMetaWire> {
  return {
    chunkId: meta.chunkId,
    commitVer: meta.commitVer,
    updateVer: meta.updateVer,
    chainVer: meta.chainVer,
    length: meta.length,
    checksum: meta.checksum,
  };
}

/**
 * The reply payload: the bytes of every IO that succeeded, in IO order. When they already lie
 * back to back from the start of one engine buffer, that buffer is the payload, with no copy.
 */
function payloadOf(
  places: ReadonlyArray<{ data: Buffer; offset: number; length: number } | undefined>,
  buffers: readonly Buffer[],
  wholeChunkCrc: ReadonlyArray<number | undefined>,
): { payload: Buffer; payloadCrc?: number } {
  const placed = places.filter((p) => p !== undefined);
  if (placed.length === 0) return { payload: Buffer.alloc(0) };
  const first = placed[0]!;
  let end = 0;
  const contiguous = placed.every((p) => {
    const ok = p.data === first.data && p.offset === end;
    end += p.length;
    return ok;
  });
  if (contiguous && buffers.length === 1) {
    const payload = end === first.data.length ? first.data : slice(first.data, 0, end);
    const only = placed.length === 1 ? wholeChunkCrc[places.indexOf(first)] : undefined;
    return only === undefined ? { payload } : { payload, payloadCrc: only };
  }
  return {
    payload: Buffer.concat(placed.map((p) => p.data.subarray(p.offset, p.offset + p.length))),
  };
}

export class ChunkQueries {
  constructor(
    private readonly registry: Pick<TargetRegistry, 'byChainId'>,
    private readonly roles: () => ReadonlyMap<number, TargetRole>,
    /** Called when a chunk's data fails its checksum (the reader gets an error, never the data). */
    private readonly onCorruption: (target: HeldTarget, chunkId: Buffer) => void = () => undefined,
  ) {}

  /**
   * Serves a batch; each IO gets its own status, and the payload is the bytes read, IO by IO.
   * One engine call per disk carries every IO for it and returns their bytes in one buffer,
   * which is the payload as it is when one disk served them all (the usual case).
   */
  async batchRead(
    request: ReadBatch,
  ): Promise<{ results: ReadResultWire[]; payload: Buffer; payloadCrc?: number }> {
    const { results, pending } = this.route(request.ios);
    const byStore = groupBy(pending, (p) => p.target.store);
    // Where each IO's bytes are: which engine buffer, at what offset.
    const places: Array<{ data: Buffer; offset: number; length: number } | undefined> = new Array(
      request.ios.length,
    );
    // A whole chunk's CRC32C is its committed checksum; the engine verified every granule of it.
    const wholeChunkCrc: Array<number | undefined> = new Array(request.ios.length);
    const buffers: Buffer[] = [];
    await Promise.all(
      [...byStore.values()].map(async (group) => {
        const { results: outcomes, data } = await group[0]!.target.store.readBatch(
          group.map((g) => g.read),
        );
        buffers.push(data);
        outcomes.forEach((outcome, i) => {
          const { index, read } = group[i]!;
          if (!this.settle(results, group[i]!, outcome, request.allowUncommitted)) return;
          if (outcome instanceof Error) return; // settle has recorded it
          const { meta, offset, length } = outcome;
          places[index] = { data, offset, length };
          if (length === meta.length && read.offset === 0) wholeChunkCrc[index] = meta.checksum;
        });
      }),
    );
    return { results, ...payloadOf(places, buffers, wholeChunkCrc) };
  }

  /**
   * batchRead for a same-host client: each IO's bytes land at its `target` in the client's
   * mapped region (`regionBytes` long) and only the statuses come back.
   */
  async batchReadToRegion(
    request: RegionReadBatch,
    region: number,
    regionBytes: number,
  ): Promise<{ results: ReadResultWire[] }> {
    const { results, pending } = this.route(request.ios);
    const inside = pending.filter(({ index }) => {
      const io = request.ios[index]!;
      if (io.target + io.length <= regionBytes) return true;
      results[index] = {
        status: 'INVALID_ARGUMENT',
        message: `target [${io.target}, +${io.length}) is outside the region of ${regionBytes} bytes`,
      };
      return false;
    });
    const byStore = groupBy(inside, (p) => p.target.store);
    await Promise.all(
      [...byStore.values()].map(async (group) => {
        const store = group[0]!.target.store;
        if (!store.readIntoRegion) {
          for (const { index } of group)
            results[index] = {
              status: 'FAILED_PRECONDITION',
              message: 'this store cannot read into shared memory',
            };
          return;
        }
        const outcomes = await store.readIntoRegion(
          group.map((g) => g.read),
          region,
          group.map((g) => request.ios[g.index]!.target),
        );
        outcomes.forEach((outcome, i) =>
          this.settle(results, group[i]!, outcome, request.allowUncommitted),
        );
      }),
    );
    return { results };
  }

  /**
   * Checks each IO against its target's role (chain version, serving state): failures get their
   * status at once, the rest are returned to be read.
   */
  private route(ios: ReadBatch['ios']): {
    results: ReadResultWire[];
    pending: PendingRead[];
  } {
    const results: ReadResultWire[] = new Array(ios.length);
    const pending: PendingRead[] = [];
    ios.forEach((io, index) => {
      const fail = (status: string, message: string) => (results[index] = { status, message });
      const target = this.registry.byChainId(io.chainId);
      const role = target && this.roles().get(target.targetId);
      // Not a hole: the reader's routing is stale, and a retry after a refresh reads elsewhere.
      if (!target || !role)
        return fail('ROUTING_VERSION_MISMATCH', `no target of chain ${io.chainId} here`);
      if (role.chainVersion !== io.chainVersion) {
        return fail(
          'CHAIN_VERSION_MISMATCH',
          `chain ${io.chainId} is at version ${role.chainVersion}`,
        );
      }
      if (!mayServeReads(target.state, role.state)) {
        return fail(
          'ROUTING_VERSION_MISMATCH',
          `target ${target.targetId} is ${role.state}/${target.state.local}`,
        );
      }
      pending.push({
        index,
        target,
        read: {
          chainId: io.chainId,
          chunkId: Buffer.from(io.chunkId),
          offset: io.offset,
          length: io.length,
        },
      });
    });
    return { results, pending };
  }

  /**
   * Records one engine outcome as the IO's result; true when the IO succeeded. A chunk that
   * never committed is NOT_FOUND, a pending version NOT_COMMITTED (CRAQ: never stale data).
   */
  private settle(
    results: ReadResultWire[],
    { index, target, read }: PendingRead,
    outcome: { meta: ChunkMeta; length: number } | Error,
    allowUncommitted: boolean,
  ): boolean {
    if (outcome instanceof Error) {
      const code = outcome instanceof ThreeFsError ? outcome.code : 'INTERNAL';
      if (code === 'CHECKSUM_MISMATCH') this.onCorruption(target, read.chunkId);
      results[index] = { status: code, message: outcome.message };
      return false;
    }
    const { meta } = outcome;
    if (meta.commitVer === 0) {
      results[index] = { status: 'NOT_FOUND', message: 'no such chunk' };
      return false;
    }
    if (meta.updateVer !== meta.commitVer && !allowUncommitted) {
      results[index] = { status: 'NOT_COMMITTED', message: `version ${meta.updateVer} is pending` };
      return false;
    }
    results[index] = {
      status: 'ok',
      length: outcome.length,
      commitVer: meta.commitVer,
      chunkLength: meta.length,
    };
    return true;
  }

  private servingTarget(chainId: number, chainVersion: number) {
    const target = this.registry.byChainId(chainId);
    const role = target && this.roles().get(target.targetId);
    if (!target || !role) throw new ThreeFsError('NOT_FOUND', `no target of chain ${chainId} here`);
    if (role.chainVersion !== chainVersion) {
      throw new ThreeFsError(
        'CHAIN_VERSION_MISMATCH',
        `chain ${chainId} is at version ${role.chainVersion}`,
        { chainVersion: role.chainVersion },
      );
    }
    return { target, role };
  }

  /** Last chunk, count and total bytes of committed chunks in [begin, end) (brief §3.6). */
  queryLastChunk(chainId: number, chainVersion: number, begin: Buffer, end: Buffer) {
    const { target, role } = this.servingTarget(chainId, chainVersion);
    if (!mayServeReads(target.state, role.state)) {
      throw new ThreeFsError(
        'ROUTING_VERSION_MISMATCH',
        `target ${target.targetId} is ${role.state}`,
      );
    }
    const chunks = target.store.listMeta(chainId, begin, end).filter((m) => m.commitVer > 0);
    const last = chunks[chunks.length - 1];
    return {
      lastChunkId: last?.chunkId,
      lastChunkLength: last?.length ?? 0,
      chunkCount: chunks.length,
      totalBytes: chunks.reduce((sum, m) => sum + m.length, 0),
    };
  }

  /** A page of this (SYNCING) target's metadata for its predecessor (brief §2.5 step 2). */
  syncPage(chainId: number, chainVersion: number, after: Buffer | undefined, limit: number) {
    const { target, role } = this.servingTarget(chainId, chainVersion);
    if (role.state !== 'SYNCING') {
      throw new ThreeFsError(
        'FAILED_PRECONDITION',
        `target ${target.targetId} is ${role.state}, not SYNCING`,
      );
    }
    const begin = after ? Buffer.concat([after, Buffer.from([0])]) : undefined;
    const page = target.store.listMeta(chainId, begin, undefined, limit + 1);
    return { chunks: page.slice(0, limit).map(metaToWire), more: page.length > limit };
  }
}
