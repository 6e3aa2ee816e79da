// Read-side storage operations (brief §3.3, §3.6): batched reads from any up-to-date SERVING
// replica (a pending version answers NOT_COMMITTED rather than stale data), last-chunk queries for
// file length, single-chunk metadata, and the metadata pages a predecessor reads during re-sync.
import type { z } from 'zod';
import { ThreeFsError } from '../common/errors.js';
import { groupBy } from '../common/group-by.js';
import type { ChunkMetaWire, ReadIoResult, StorageService } from '../common/services/storage.js';
import type { ChunkMeta, ReadRequest } from './chunk-store.js';
import { mayServeReads } from './local-state.js';
import type { HeldTarget, TargetRegistry } from './target-registry.js';
import type { TargetRole } from './target-roles.js';

type ReadBatch = z.output<typeof StorageService.methods.batchRead.request>;
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

export class ChunkQueries {
  constructor(
    private readonly registry: Pick<TargetRegistry, 'byChainId'>,
    private readonly roles: () => ReadonlyMap<number, TargetRole>,
    /** Called when a chunk's data fails its checksum (the reader gets an error, never the data). */
    private readonly onCorruption: (target: HeldTarget, chunkId: Buffer) => void = () => undefined,
  ) {}

  /** Serves a batch; each IO gets its own status, and the payload concatenates the bytes read. */
  async batchRead(
    request: ReadBatch,
  ): Promise<{ results: ReadResultWire[]; payload: Buffer; payloadCrc?: number }> {
    const results: ReadResultWire[] = new Array(request.ios.length);
    const pending: Array<{
      index: number;
      read: ReadRequest;
      target: HeldTarget;
      store: HeldTarget['store'];
    }> = [];
    request.ios.forEach((io, index) => {
      const fail = (status: string, message: string) => (results[index] = { status, message });
      const target = this.registry.byChainId(io.chainId);
      const role = target && this.roles().get(target.targetId);
      if (!target || !role) return fail('NOT_FOUND', `no target of chain ${io.chainId} here`);
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
      const chunkId = Buffer.from(io.chunkId);
      const meta = target.store.meta(io.chainId, chunkId);
      if (!meta || meta.commitVer === 0) return fail('NOT_FOUND', 'no such chunk');
      if (meta.updateVer !== meta.commitVer && !request.allowUncommitted) {
        return fail('NOT_COMMITTED', `version ${meta.updateVer} is pending`);
      }
      pending.push({
        index,
        target,
        store: target.store,
        read: { chainId: io.chainId, chunkId, offset: io.offset, length: io.length },
      });
    });

    // One engine call per disk, each carrying every IO for that disk.
    const byStore = groupBy(pending, (p) => p.store);
    const data: Buffer[] = new Array(request.ios.length);
    // A whole chunk's CRC32C is its committed checksum; the engine verified every granule of it.
    const wholeChunkCrc: Array<number | undefined> = new Array(request.ios.length);
    await Promise.all(
      [...byStore.values()].map(async (group) => {
        const outcomes = await group[0]!.store.read(group.map((g) => g.read));
        outcomes.forEach((outcome, i) => {
          const { index } = group[i]!;
          if (outcome instanceof Error) {
            const code = outcome instanceof ThreeFsError ? outcome.code : 'INTERNAL';
            if (code === 'CHECKSUM_MISMATCH')
              this.onCorruption(group[i]!.target, group[i]!.read.chunkId);
            results[index] = { status: code, message: outcome.message };
            return;
          }
          data[index] = outcome.data;
          if (outcome.data.length === outcome.meta.length && group[i]!.read.offset === 0) {
            wholeChunkCrc[index] = outcome.meta.checksum;
          }
          results[index] = {
            status: 'ok',
            length: outcome.data.length,
            commitVer: outcome.meta.commitVer,
            chunkLength: outcome.meta.length,
          };
        });
      }),
    );
    // One chunk read (the usual case) goes out as the engine's own buffer, never copied.
    const pieces = data.filter((d): d is Buffer => d !== undefined);
    if (pieces.length === 1) {
      const payloadCrc = wholeChunkCrc[data.findIndex((d) => d !== undefined)];
      return { results, payload: pieces[0]!, payloadCrc };
    }
    return { results, payload: Buffer.concat(pieces) };
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
