// Re-sync of a returning replica, run by its predecessor (brief §2.5): read the SYNCING
// successor's chunk metadata, decide per chunk (remove, send, skip, fatal), send removes first and
// then whole chunks, each under the chunk lock so a concurrent client write is never overtaken,
// then tell the successor it is done. Progress goes to logs, metrics and the successor (which
// reports it to mgmtd, so `threefs admin list-targets` shows it).
import { Gauge, type Registry } from 'prom-client';
import { crc32c } from '../common/crc32c.js';
import { ThreeFsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { StorageService } from '../common/services/storage.js';
import type { ChunkMeta } from './chunk-store.js';
import { type CraqUpdates, INTERNAL_SEQNUM } from './craq-updates.js';
import { decideSync, type SyncMeta } from './craq-rules.js';
import type { HeldTarget, TargetRegistry } from './target-registry.js';
import type { TargetRole } from './target-roles.js';
import { type Clock, type PeerPool, realClock } from './seams.js';

export interface ResyncOptions {
  intervalMs: number;
  concurrency: number;
  pageSize: number;
  /** A chain is retried at most this often after a failed attempt (3FS: 30 s). */
  retryAfterMs?: number;
}

export interface ResyncDeps {
  nodeId: number;
  registry: Pick<TargetRegistry, 'all'>;
  roles: () => ReadonlyMap<number, TargetRole>;
  peers: PeerPool;
  craq: CraqUpdates;
  /** Takes a successor offline after a fatal inconsistency (mgmtd's updateChain in the daemon). */
  offlineTarget: (chainId: number, targetId: number) => Promise<void>;
  log: Logger;
  /** Where the re-sync progress gauges are registered. */
  metrics: Registry;
  options: ResyncOptions;
  clock?: Clock;
}

const MAX_REMOTE_CHUNKS = 10_000_000;

/** A chunk's committed versions, as the successor reports them. */
function toSyncMeta(meta: {
  commitVer: number;
  updateVer: number;
  chainVer: number;
  length: number;
  checksum: number;
  dirty?: boolean;
}): SyncMeta {
  return {
    commitVer: meta.commitVer,
    updateVer: meta.updateVer,
    chainVer: meta.chainVer,
    length: meta.length,
    checksum: meta.checksum,
    dirty: meta.dirty ?? false,
  };
}

/** Our own chunk, with the version we hold pending (decideSync compares the successor to it). */
function localSyncMeta(meta: ChunkMeta): SyncMeta {
  const pending =
    meta.updateVer !== meta.commitVer &&
    meta.pendingChainVer !== undefined &&
    meta.pendingChecksum !== undefined &&
    meta.pendingLength !== undefined &&
    meta.pendingRemove !== true
      ? {
          updateVer: meta.updateVer,
          chainVer: meta.pendingChainVer,
          checksum: meta.pendingChecksum,
          length: meta.pendingLength,
        }
      : undefined;
  return { ...toSyncMeta(meta), pending };
}

async function runLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await task(item);
    }
  });
  await Promise.all(workers);
}

export class ResyncWorker {
  private readonly running = new Set<number>();
  private readonly lastFailure = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private readonly chunksGauge: Gauge;
  private readonly bytesGauge: Gauge;

  private readonly clock: Clock;

  constructor(private readonly deps: ResyncDeps) {
    this.clock = deps.clock ?? realClock;
    this.chunksGauge = new Gauge({
      name: 'threefs_storage_resync_chunks',
      help: 'chunks of the current re-sync, by chain and kind (done/total)',
      labelNames: ['chain', 'kind'],
      registers: [deps.metrics],
    });
    this.bytesGauge = new Gauge({
      name: 'threefs_storage_resync_bytes',
      help: 'bytes of the current re-sync, by chain and kind (done/total)',
      labelNames: ['chain', 'kind'],
      registers: [deps.metrics],
    });
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.deps.options.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Starts a re-sync for every chain where a local SERVING target feeds a SYNCING successor. */
  tick(): void {
    const retryAfter = this.deps.options.retryAfterMs ?? 30_000;
    for (const target of this.deps.registry.all) {
      const role = this.deps.roles().get(target.targetId);
      if (!role || role.state !== 'SERVING' || role.successor?.state !== 'SYNCING') continue;
      if (target.state.local !== 'UPTODATE' || this.running.has(role.chainId)) continue;
      if (this.clock.now() - (this.lastFailure.get(role.chainId) ?? 0) < retryAfter) continue;
      this.running.add(role.chainId);
      this.syncChain(target, role)
        .then(() => this.lastFailure.delete(role.chainId))
        .catch((err: unknown) => {
          this.lastFailure.set(role.chainId, this.clock.now());
          this.deps.log.warn(
            { err, chain: role.chainId, target: role.successor?.targetId },
            're-sync attempt failed; will retry',
          );
        })
        .finally(() => this.running.delete(role.chainId));
    }
  }

  private async syncChain(target: HeldTarget, role: TargetRole): Promise<void> {
    const { log, peers } = this.deps;
    const successor = role.successor!;
    const peer = peers.get(successor.address);
    const chainLog = log.child({ chain: role.chainId, target: successor.targetId });
    chainLog.info({ chainVersion: role.chainVersion }, 're-sync started');

    const remote = new Map<string, SyncMeta>();
    let after: Uint8Array | undefined;
    for (;;) {
      const { body } = await peer.call(StorageService.methods.syncStart, {
        chainId: role.chainId,
        chainVersion: role.chainVersion,
        after,
        limit: this.deps.options.pageSize,
      });
      for (const m of body.chunks)
        remote.set(Buffer.from(m.chunkId).toString('hex'), toSyncMeta(m));
      if (remote.size > MAX_REMOTE_CHUNKS)
        throw new ThreeFsError(
          'RESOURCE_EXHAUSTED',
          `successor reports over ${MAX_REMOTE_CHUNKS} chunks`,
        );
      if (!body.more || body.chunks.length === 0) break;
      after = body.chunks[body.chunks.length - 1]!.chunkId;
    }

    const local = new Map(
      target.store.listMeta(role.chainId).map((m) => [m.chunkId.toString('hex'), m] as const),
    );
    const removes: string[] = [];
    const sends: ChunkMeta[] = [];
    for (const id of new Set([...local.keys(), ...remote.keys()])) {
      const mine = local.get(id);
      const chunkId = Buffer.from(id, 'hex');
      const decision = decideSync(
        mine && localSyncMeta(mine),
        remote.get(id),
        this.deps.craq.chunkBusy(role.chainId, chunkId),
      );
      if (decision === 'fatal') {
        chainLog.error(
          { chunk: id, local: mine, remote: remote.get(id) },
          're-sync found an inconsistency; taking the successor offline',
        );
        await this.deps.offlineTarget(role.chainId, successor.targetId);
        throw new ThreeFsError(
          'INTERNAL',
          `re-sync of chain ${role.chainId}: inconsistent chunk ${id}`,
        );
      }
      if (decision === 'remove') removes.push(id);
      if (decision === 'send' && mine) sends.push(mine);
    }

    const progress = {
      chunksDone: 0,
      chunksTotal: removes.length + sends.length,
      bytesDone: 0,
      bytesTotal: sends.reduce((s, m) => s + m.length, 0),
    };
    const report = async () => {
      const labels = { chain: String(role.chainId) };
      this.chunksGauge.set({ ...labels, kind: 'done' }, progress.chunksDone);
      this.chunksGauge.set({ ...labels, kind: 'total' }, progress.chunksTotal);
      this.bytesGauge.set({ ...labels, kind: 'done' }, progress.bytesDone);
      this.bytesGauge.set({ ...labels, kind: 'total' }, progress.bytesTotal);
      await peer
        .call(StorageService.methods.syncProgress, {
          chainId: role.chainId,
          chainVersion: role.chainVersion,
          ...progress,
        })
        .catch(() => undefined);
    };
    chainLog.info(
      { removes: removes.length, sends: sends.length, bytes: progress.bytesTotal },
      're-sync plan',
    );
    await report();

    const tag = {
      clientId: `resync-${this.deps.nodeId}`,
      channelId: 0,
      seqnum: INTERNAL_SEQNUM,
      requestId: 0,
    };
    const chunkSizeOf = (m: { chunkSize?: number }) => m.chunkSize ?? 1024 * 1024;
    let lastReport = this.clock.now();
    const step = async () => {
      if (this.clock.now() - lastReport > 1_000) {
        lastReport = this.clock.now();
        chainLog.info(progress, 're-sync progress');
        await report();
      }
    };
    await runLimited(removes, this.deps.options.concurrency, async (id) => {
      const chunkId = Buffer.from(id, 'hex');
      await this.deps.craq.withChunkLock(role.chainId, chunkId, async () => {
        if (target.store.meta(role.chainId, chunkId)) return; // written meanwhile: the write reached the successor too
        await peer.call(StorageService.methods.update, {
          chainId: role.chainId,
          chainVersion: this.currentVersion(target, role),
          chunkId,
          kind: 'remove',
          chunkSize: 65_536,
          tag,
          syncing: true,
        });
      });
      progress.chunksDone++;
      await step();
    });
    await runLimited(sends, this.deps.options.concurrency, async (planned) => {
      await this.deps.craq.withChunkLock(role.chainId, planned.chunkId, async () => {
        const meta = target.store.meta(role.chainId, planned.chunkId);
        if (!meta || meta.commitVer === 0) return;
        const [outcome] = await target.store.read([
          { chainId: role.chainId, chunkId: planned.chunkId, offset: 0, length: meta.length },
        ]);
        if (!outcome || outcome instanceof Error)
          throw outcome ?? new ThreeFsError('INTERNAL', 'no read result');
        await peer.call(
          StorageService.methods.update,
          {
            chainId: role.chainId,
            chainVersion: this.currentVersion(target, role),
            chunkId: planned.chunkId,
            kind: 'write',
            offset: 0,
            length: outcome.data.length,
            checksum: crc32c(outcome.data),
            chunkSize: chunkSizeOf(meta),
            tag,
            updateVer: meta.commitVer,
            chunkChainVer: meta.chainVer,
            syncing: true,
          },
          { payload: outcome.data },
        );
        progress.bytesDone += outcome.data.length;
      });
      progress.chunksDone++;
      await step();
    });
    await report();
    await peer.call(StorageService.methods.syncDone, {
      chainId: role.chainId,
      chainVersion: this.currentVersion(target, role),
    });
    chainLog.info(progress, 're-sync done');
  }

  /** Transfers carry the chain version of the moment; a change means mgmtd moved on: stop. */
  private currentVersion(target: HeldTarget, started: TargetRole): number {
    const role = this.deps.roles().get(target.targetId);
    if (
      !role ||
      role.chainVersion !== started.chainVersion ||
      role.successor?.targetId !== started.successor?.targetId
    ) {
      throw new ThreeFsError(
        'CHAIN_VERSION_MISMATCH',
        `chain ${started.chainId} changed during re-sync`,
      );
    }
    return role.chainVersion;
  }
}
