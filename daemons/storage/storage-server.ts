// One storage process: opens a chunk engine per disk, learns its targets and their roles from
// routing info, runs the local-state machine of each target, heartbeats to mgmtd, serves the
// storage RPCs, and feeds SYNCING successors through the re-sync worker.
import { chmodSync } from 'node:fs';
import { hostname } from 'node:os';
import { Gauge, type Registry } from 'prom-client';
import { Heartbeater } from '../client/heartbeater.js';
import { MgmtdClient } from '../client/mgmtd-client.js';
import { RoutingCache } from '../client/routing-cache.js';
import { ThreeFsError } from '../common/errors.js';
import { retire } from '../common/pooled-views.js';
import type { Logger } from '../common/log.js';
import type { RoutingInfo, SyncProgress } from '../common/routing.js';
import { routingIndex } from '../common/routing-index.js';
import { type CallContext, type Handlers, RpcClientPool, RpcServer } from '../common/rpc/index.js';
import { MgmtdService } from '../common/services/mgmtd.js';
import { StorageService } from '../common/services/storage.js';
import type { ChunkStore } from './chunk-store.js';
import { ChunkQueries, metaToWire } from './chunk-queries.js';
import type { StorageConfig } from './config.js';
import {
  CraqUpdates,
  INTERNAL_SEQNUM,
  type UpdateReply,
  type UpdateRequest,
} from './craq-updates.js';
import { mapRegion, unmapRegion } from './engine/chunk-io.js';
import { LocalRegions } from './local-regions.js';
import { ResyncWorker } from './resync.js';
import { type HeldTarget, TargetRegistry } from './target-registry.js';
import { type TargetRole, targetRoles } from './target-roles.js';

export const STORAGE_RELEASE_VERSION = '0.1.0';

export interface StorageServerOptions {
  config: StorageConfig;
  log: Logger;
  registry: Registry;
  openStore: (diskPath: string, diskIndex: number) => Promise<ChunkStore>;
}

/** What the update and query paths see before routing first arrives: no target has a role. */
const NO_ROLES: ReadonlyMap<number, TargetRole> = new Map();

export class StorageServer {
  private stores: ChunkStore[] = [];
  private targets!: TargetRegistry;
  /** Roles from the routing last seen; undefined until routing first arrives. */
  private roles: ReadonlyMap<number, TargetRole> | undefined;
  private readonly syncProgress = new Map<number, SyncProgress>();
  private readonly rpc: RpcServer;
  private readonly peers: RpcClientPool;
  private readonly mgmtd: MgmtdClient;
  private readonly routing: RoutingCache;
  private craq!: CraqUpdates;
  private queries!: ChunkQueries;
  private resync!: ResyncWorker;
  private heartbeater!: Heartbeater;
  private advertised = '';
  private readonly regions: LocalRegions;

  constructor(private readonly options: StorageServerOptions) {
    const { config, log, registry } = options;
    const common = { clusterId: config.clusterId, token: config.token || undefined, log, registry };
    this.rpc = new RpcServer({
      ...common,
      name: `storage-${config.nodeId}`,
      host: config.listen.host,
      port: config.listen.port,
      unixPath: config.localSocket || undefined,
    });
    this.regions = new LocalRegions({ map: mapRegion, unmap: unmapRegion }, log);
    const regions = this.regions;
    new Gauge({
      name: 'threefs_storage_shared_regions',
      help: 'shared memory regions of same-host clients mapped for reads',
      registers: [registry],
      collect() {
        this.set(regions.count);
      },
    });
    this.peers = new RpcClientPool({ ...common, name: `storage-${config.nodeId}` });
    this.mgmtd = new MgmtdClient({
      ...common,
      addresses: config.mgmtd,
      name: `storage-${config.nodeId}`,
    });
    this.routing = new RoutingCache(this.mgmtd, {
      refreshIntervalMs: config.routingRefreshMs,
      log,
    });
    const craq = () => this.craq;
    new Gauge({
      name: 'threefs_storage_updates_in_flight',
      help: 'CRAQ updates being applied or forwarded',
      registers: [registry],
      collect() {
        this.set(craq()?.updatesInFlight ?? 0);
      },
    });
  }

  get address(): string {
    return this.advertised;
  }

  /** "unix:/path" of the socket for same-host clients, or ''. */
  get localAddress(): string {
    return this.options.config.localSocket ? `unix:${this.options.config.localSocket}` : '';
  }

  async start(): Promise<void> {
    const { config, log, registry } = this.options;
    this.stores = await Promise.all(
      config.disks.map((disk, index) => this.options.openStore(disk, index)),
    );
    this.targets = new TargetRegistry(config.clusterId, config.nodeId, config.disks, this.stores);
    const roles = () => this.roles ?? NO_ROLES;
    const refreshRouting = async () => {
      await this.routing.refresh();
    };
    this.craq = new CraqUpdates({
      registry: this.targets,
      roles,
      refreshRouting,
      peers: this.peers,
      forward: config.forward,
      log,
      maxConcurrentUpdates: config.maxConcurrentUpdates,
    });
    this.queries = new ChunkQueries(
      this.targets,
      roles,
      (target, chunkId) => void this.repair(target, chunkId),
    );
    this.resync = new ResyncWorker({
      nodeId: config.nodeId,
      registry: this.targets,
      roles,
      peers: this.peers,
      craq: this.craq,
      offlineTarget: async (chainId, targetId) => {
        await this.mgmtd.call(MgmtdService.methods.updateChain, {
          chainId,
          op: 'offline',
          targetId,
        });
      },
      log,
      metrics: registry,
      options: { ...config.resync, retryAfterMs: Math.max(1_000, config.resync.intervalMs * 4) },
    });
    this.rpc.register(StorageService, this.handlers());
    await this.rpc.listen();
    // Whoever can connect to the local socket may lend us memory to write into: only our user.
    if (config.localSocket) chmodSync(config.localSocket, 0o600);
    this.advertised = config.listen.advertise || this.rpc.address;

    this.heartbeater = new Heartbeater({
      mgmtd: this.mgmtd,
      nodeId: config.nodeId,
      type: 'STORAGE',
      address: this.advertised,
      hostname: hostname(),
      localAddress: this.localAddress,
      releaseVersion: STORAGE_RELEASE_VERSION,
      intervalMs: config.heartbeatIntervalMs,
      targets: () => {
        this.applyRoles();
        return this.targetReports();
      },
      log,
    });
    this.routing.onChange((info) => this.onRouting(info));
    this.heartbeater.start();
    this.routing.start();
    await this.routing
      .refresh()
      .catch((err: unknown) => log.warn({ err }, 'no routing info yet; will keep asking'));
    this.resync.start();
    log.info({ address: this.advertised, disks: config.disks }, 'storage started');
  }

  async stop(): Promise<void> {
    this.resync?.stop();
    this.routing.stop();
    // A clean stop reports every target OFFLINE so mgmtd moves them out at once (brief §2.4).
    for (const target of this.targets?.all ?? [])
      target.state = { phase: 'restarting', local: 'OFFLINE' };
    await this.heartbeater?.beat();
    this.heartbeater?.stop();
    await this.rpc.close();
    await this.peers.close();
    await this.mgmtd.close();
    await Promise.all(this.stores.map((store) => store.close()));
  }

  health() {
    const targets = this.targets?.all ?? [];
    return {
      ok: true,
      detail: {
        targets: targets.map((t) => ({
          target: t.targetId,
          chain: t.chainId,
          local: t.state.local,
          public: this.roles?.get(t.targetId)?.state,
        })),
      },
    };
  }

  /**
   * A chunk failed its checksum. If another replica serves the chain, drop the bad copy and send
   * the target through re-sync (OFFLINE, then SYNCING), which brings the chunk back from its
   * predecessor. With no other serving replica the copy is kept: readers keep getting the error.
   */
  private async repair(target: HeldTarget, chunkId: Buffer): Promise<void> {
    const { log } = this.options;
    const chain = routingIndex(this.routing.current).chain(target.chainId);
    const othersServing =
      chain?.targets.filter((t) => t.state === 'SERVING' && t.targetId !== target.targetId)
        .length ?? 0;
    const chunk = chunkId.toString('hex');
    if (othersServing === 0) {
      log.error(
        { target: target.targetId, chain: target.chainId, chunk },
        'chunk failed its checksum and no other replica serves: keeping it, readers get CHECKSUM_MISMATCH',
      );
      return;
    }
    if (target.state.phase !== 'running') return; // already being repaired
    log.error(
      { target: target.targetId, chain: target.chainId, chunk },
      'chunk failed its checksum: dropping the copy and re-syncing the target',
    );
    this.targets.apply(target, { kind: 'corruption' });
    await this.craq
      .withChunkLock(target.chainId, chunkId, async () => {
        const meta = target.store.meta(target.chainId, chunkId);
        if (!meta) return;
        const dropped = await target.store.update({
          chainId: target.chainId,
          chunkId,
          updateVer: meta.updateVer + 1,
          chainVer: meta.chainVer,
          kind: 'remove',
          offset: 0,
          chunkSize: meta.chunkSize,
          syncing: true,
        });
        await target.store
          .commit(target.chainId, chunkId, dropped.updateVer, meta.chainVer)
          .catch(() => undefined);
      })
      .catch((err: unknown) =>
        log.error({ err, target: target.targetId, chunk }, 'could not drop the corrupt chunk'),
      );
    await this.heartbeater.beat();
  }

  private onRouting(info: RoutingInfo): void {
    try {
      for (const added of this.targets.syncWithRouting(info)) {
        this.options.log.info(
          { target: added.targetId, chain: added.chainId, disk: added.diskIndex },
          'target adopted',
        );
      }
    } catch (err) {
      this.options.log.error({ err }, 'cannot adopt targets from routing');
    }
    this.roles = targetRoles(info, this.options.config.nodeId);
    if (this.applyRoles()) void this.heartbeater.beat();
  }

  /**
   * Moves each target's local state on by its public state in the routing last seen; whether any
   * changed. Runs on every routing change and before every heartbeat: some steps wait on a routing
   * that will not change again, as a node frozen (SIGSTOP, a VM pause) until mgmtd demoted it
   * finds when it wakes. It fences itself on that demotion; the next step, from the restart
   * protocol to ONLINE and re-sync, needs the same routing applied once more.
   */
  private applyRoles(): boolean {
    // Before any routing, no public state is known: "not in routing" would read as demoted.
    const roles = this.roles;
    if (!roles) return false;
    let changed = false;
    for (const target of this.targets.all) {
      const role = roles.get(target.targetId);
      const before = target.state;
      if (this.targets.apply(target, { kind: 'routing', publicState: role?.state })) {
        changed = true;
        this.options.log.info(
          {
            target: target.targetId,
            chain: target.chainId,
            from: before,
            to: target.state,
            public: role?.state,
          },
          'target local state changed',
        );
      }
      if (role?.state !== 'SYNCING') this.syncProgress.delete(target.targetId);
    }
    return changed;
  }

  private targetReports() {
    return this.targets.all.map((t) => {
      const space = t.store.spaceInfo();
      return {
        targetId: t.targetId,
        localState: t.state.local,
        chainVersion: this.roles?.get(t.targetId)?.chainVersion ?? 0,
        usedBytes: t.store.usedBytes(t.chainId),
        lowSpace: space.lowSpace,
        syncProgress: this.syncProgress.get(t.targetId),
      };
    });
  }

  /** A peer with a newer chain version means our routing is behind: refresh in the background. */
  private async guard<T>(task: () => Promise<T>): Promise<T> {
    try {
      return await task();
    } catch (err) {
      if (
        err instanceof ThreeFsError &&
        (err.code === 'CHAIN_VERSION_MISMATCH' || err.code === 'ROUTING_VERSION_MISMATCH')
      ) {
        void this.routing.refresh().catch(() => undefined);
      }
      throw err;
    }
  }

  /**
   * A client's write or a predecessor's update. Its payload is done with once the update settled
   * (written here, forwarded and answered): the pool block goes back then, not at the next full
   * GC (pooled-views.ts, retire).
   */
  private applyUpdate(
    req: UpdateRequest,
    ctx: CallContext,
    source: 'client' | 'chain',
  ): Promise<{ body: UpdateReply }> {
    return this.guard(async () => {
      try {
        return { body: await this.craq.handle(req, ctx.payload, source, ctx.payloadCrc) };
      } finally {
        retire(ctx.payload);
      }
    });
  }

  private handlers(): Handlers<typeof StorageService> {
    return {
      batchRead: (req) =>
        this.guard(async () => {
          const { results, payload, payloadCrc } = await this.queries.batchRead(req);
          return { body: { results }, payload, payloadCrc };
        }),
      write: (req, ctx) => this.applyUpdate(req, ctx, 'client'),
      update: (req, ctx) => this.applyUpdate(req, ctx, 'chain'),
      queryLastChunk: (req) =>
        this.guard(async () => ({
          body: this.queries.queryLastChunk(
            req.chainId,
            req.chainVersion,
            Buffer.from(req.begin),
            Buffer.from(req.end),
          ),
        })),
      removeChunks: (req) =>
        this.guard(async () => {
          const target = this.targets.byChainId(req.chainId);
          if (!target)
            throw new ThreeFsError('NOT_FOUND', `no target of chain ${req.chainId} here`);
          const chunks = target.store.listMeta(
            req.chainId,
            Buffer.from(req.begin),
            Buffer.from(req.end),
            req.limit + 1,
          );
          for (const meta of chunks.slice(0, req.limit)) {
            await this.craq.handle(
              {
                chainId: req.chainId,
                chainVersion: req.chainVersion,
                chunkId: meta.chunkId,
                kind: 'remove',
                offset: 0,
                length: 0,
                checksum: 0,
                chunkSize: meta.chunkSize,
                tag: { ...req.tag, seqnum: INTERNAL_SEQNUM },
                updateVer: 0,
                syncing: false,
                chunkChainVer: 0,
              },
              undefined,
              'client',
            );
          }
          return {
            body: { removed: Math.min(chunks.length, req.limit), more: chunks.length > req.limit },
          };
        }),
      syncStart: (req) =>
        this.guard(async () => ({
          body: this.queries.syncPage(
            req.chainId,
            req.chainVersion,
            req.after && Buffer.from(req.after),
            req.limit,
          ),
        })),
      syncDone: (req) =>
        this.guard(async () => {
          const target = this.targets.byChainId(req.chainId);
          const role = target && this.roles?.get(target.targetId);
          if (
            !target ||
            !role ||
            role.chainVersion !== req.chainVersion ||
            role.state !== 'SYNCING'
          ) {
            throw new ThreeFsError(
              'CHAIN_VERSION_MISMATCH',
              `chain ${req.chainId}: not a SYNCING target at version ${req.chainVersion}`,
            );
          }
          this.targets.apply(target, { kind: 'sync-done' });
          this.syncProgress.delete(target.targetId);
          this.options.log.info(
            { target: target.targetId, chain: target.chainId },
            'sync done: target is UPTODATE',
          );
          void this.heartbeater.beat();
          return { body: {} };
        }),
      syncProgress: (req) => {
        const target = this.targets.byChainId(req.chainId);
        if (target) {
          const { chunksDone, chunksTotal, bytesDone, bytesTotal } = req;
          this.syncProgress.set(target.targetId, {
            chunksDone,
            chunksTotal,
            bytesDone,
            bytesTotal,
          });
        }
        return { body: {} };
      },
      spaceInfo: () => ({
        body: {
          disks: this.stores.map((store, diskIndex) => ({
            diskIndex,
            path: this.options.config.disks[diskIndex] ?? '',
            ...store.spaceInfo(),
          })),
        },
      }),
      queryChunk: (req) => {
        const target = this.targets.byChainId(req.chainId);
        const meta = target?.store.meta(req.chainId, Buffer.from(req.chunkId));
        return { body: { meta: meta && metaToWire(meta) } };
      },
      mapRegion: (req, ctx) => ({
        body: { regionId: this.regions.map(ctx.connection, req.path, req.bytes) },
      }),
      unmapRegion: (req, ctx) => {
        this.regions.unmap(ctx.connection, req.regionId);
        return { body: {} };
      },
      batchReadToRegion: (req, ctx) =>
        this.guard(async () => {
          const bytes = this.regions.bytesOf(ctx.connection, req.regionId);
          return { body: await this.queries.batchReadToRegion(req, req.regionId, bytes) };
        }),
    };
  }
}
