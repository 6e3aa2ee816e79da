// One meta server: the Meta RPC service over the shared KV store, plus its background duties
// (heartbeats to mgmtd, routing refresh, GC worker, pruning sessions of dead clients). Stateless:
// any number run at once over one store and any of them serves any request. Handlers run
// concurrently (the RPC layer runs up to 64 per connection), so the embedded engine can commit
// concurrent operations in one group commit.
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import { Heartbeater } from '../client/heartbeater.js';
import type { MgmtdClient } from '../client/mgmtd-client.js';
import type { RoutingCache } from '../client/routing-cache.js';
import type { KvStore } from '../common/kv/index.js';
import type { Logger } from '../common/log.js';
import {
  CoreService,
  coreHandlers,
  type Handlers,
  RpcClientPool,
  RpcServer,
} from '../common/rpc/index.js';
import { MetaService } from '../common/services/meta.js';
import * as attrOps from './attr-ops.js';
import { ChainAllocator } from './chain-allocator.js';
import { ClusterSpaceCache } from './cluster-space.js';
import type { MetaConfig } from './config.js';
import type { NamespaceContext } from './context.js';
import * as createOps from './create-ops.js';
import type { FileChunks } from './file-chunks.js';
import { GcWorker } from './gc-worker.js';
import { InodeIdAllocator } from './inode-id-allocator.js';
import { DirEntryCache } from './dentry-cache.js';
import { DecodedInodeCache } from './inode-cache.js';
import * as openOps from './open-ops.js';
import { remove } from './remove-ops.js';
import { rename } from './rename-op.js';
import { ensureRoot } from './root-inode.js';
import { SessionPruner } from './session-pruner.js';

export const META_RELEASE_VERSION = '0.1.0';

export interface MetaServerOptions {
  config: MetaConfig;
  kv: KvStore;
  log: Logger;
  registry?: Registry;
  mgmtd: MgmtdClient;
  routing: RoutingCache;
  chunks: FileChunks;
}

export class MetaServer {
  private readonly rpc: RpcServer;
  private readonly storagePool: RpcClientPool;
  readonly ctx: NamespaceContext;
  readonly gc: GcWorker;
  readonly pruner: SessionPruner;
  private heartbeater: Heartbeater | undefined;
  private advertised = '';

  constructor(private readonly options: MetaServerOptions) {
    const { config, kv, log, routing } = options;
    this.storagePool = new RpcClientPool({
      clusterId: config.clusterId,
      token: config.token || undefined,
      log,
      name: `meta-${config.nodeId}`,
    });
    const space = new ClusterSpaceCache(
      this.storagePool,
      () => routing.current,
      config.statfsCacheMs,
    );
    this.ctx = {
      kv,
      ids: new InodeIdAllocator(kv),
      chains: new ChainAllocator(),
      routing: () => routing.current,
      chunks: options.chunks,
      kickGc: () => this.gc.kick(),
      clusterSpace: () => space.get(),
      gcDelayMs: config.gc.delayMs,
      idempotencyTtlMs: config.idempotencyTtlMs,
      now: Date.now,
      decoded: new DecodedInodeCache(),
      dirEntries: new DirEntryCache(),
    };
    this.gc = new GcWorker({
      ctx: this.ctx,
      workerId: `meta-${config.nodeId}-${process.pid}-${Date.now()}`,
      intervalMs: config.gc.intervalMs,
      claimMs: config.gc.claimMs,
      batch: config.gc.batch,
      log,
    });
    this.pruner = new SessionPruner({
      ctx: this.ctx,
      mgmtd: options.mgmtd,
      intervalMs: config.sessions.pruneIntervalMs,
      graceMs: config.sessions.graceMs,
      log,
    });
    this.rpc = new RpcServer({
      clusterId: config.clusterId,
      token: config.token || undefined,
      name: `meta-${config.nodeId}`,
      host: config.listen.host,
      port: config.listen.port,
      unixPath: config.localSocket || undefined,
      log,
      registry: options.registry,
    });
    // Core.echo: liveness checks, and the RPC floor the meta benchmark measures beside meta calls.
    this.rpc.register(CoreService, coreHandlers);
    this.rpc.register(MetaService, this.handlers());
  }

  get address(): string {
    return this.advertised;
  }

  async start(): Promise<void> {
    const { config, log, routing } = this.options;
    const created = await ensureRoot(this.options.kv, config.rootLayout);
    if (created) log.info({ layout: config.rootLayout }, 'created the root directory');
    await routing.refresh().catch((err: unknown) => log.warn({ err }, 'no routing info yet'));
    await this.rpc.listen();
    this.advertised = config.listen.advertise || this.rpc.address;
    this.heartbeater = new Heartbeater({
      mgmtd: this.options.mgmtd,
      nodeId: config.nodeId,
      type: 'META',
      address: this.advertised,
      localAddress: config.localSocket ? `unix:${config.localSocket}` : '',
      hostname: hostname(),
      releaseVersion: META_RELEASE_VERSION,
      intervalMs: config.heartbeatIntervalMs,
      log,
    });
    this.heartbeater.start();
    this.gc.start();
    this.pruner.start();
  }

  async stop(): Promise<void> {
    this.heartbeater?.stop();
    await this.rpc.close();
    await Promise.all([this.gc.stop(), this.pruner.stop()]);
    await this.storagePool.close();
  }

  private handlers(): Handlers<typeof MetaService> {
    const ctx = this.ctx;
    const log = this.options.log;
    return {
      statFs: async (req) => ({ body: await attrOps.statFs(ctx, req, req) }),
      stat: async (req) => ({ body: await attrOps.stat(ctx, req, req) }),
      create: async (req) => ({ body: await createOps.create(ctx, req, req) }),
      mkdirs: async (req) => ({ body: await createOps.mkdirs(ctx, req, req) }),
      symlink: async (req) => ({ body: await createOps.symlink(ctx, req, req) }),
      hardLink: async (req) => ({ body: await createOps.hardLink(ctx, req, req) }),
      remove: async (req) => ({ body: await remove(ctx, req, req) }),
      open: async (req) => ({ body: await openOps.open(ctx, req, req) }),
      sync: async (req) => ({ body: await openOps.sync(ctx, req, req, log) }),
      close: async (req) => ({ body: await openOps.close(ctx, req, req, log) }),
      closeSessions: async (req) => ({ body: await openOps.closeSessions(ctx, req, req) }),
      rename: async (req) => ({ body: await rename(ctx, req, req) }),
      list: async (req) => ({ body: await attrOps.list(ctx, req, req) }),
      truncate: async (req) => ({ body: await attrOps.truncate(ctx, req, req) }),
      setAttr: async (req) => ({ body: await attrOps.setAttr(ctx, req, req) }),
      pruneSession: async (req) => ({ body: await openOps.pruneClient(ctx, req, req, log) }),
      batchStat: async (req) => ({ body: await attrOps.batchStat(ctx, req, req) }),
      setQuota: async (req) => ({ body: await attrOps.setQuota(ctx, req, req) }),
      getQuota: async (req) => ({ body: await attrOps.getQuota(ctx, req, req) }),
      setLayout: async (req) => ({ body: await attrOps.setLayout(ctx, req, req) }),
    };
  }
}
