// One mgmtd process: runs the lease round on a timer, and while it holds the lease acts as the
// primary: serves routing info and heartbeats, detects failures, runs the chain state machine and
// executes admin operations. Secondaries answer getPrimaryMgmtd and refuse everything else with
// NOT_PRIMARY, naming the primary so callers can follow.
import { hostname } from 'node:os';
import { Gauge, type Registry } from 'prom-client';
import { parse as parseToml } from 'smol-toml';
import type { z } from 'zod';
import { ThreeFsError } from '../common/errors.js';
import type { KvStore } from '../common/kv/index.js';
import type { Logger } from '../common/log.js';
import { routingDeltaSince, type NodeType } from '../common/routing.js';
import { type Handlers, RpcServer } from '../common/rpc/index.js';
import { SerialQueue } from '../common/serial-queue.js';
import { MgmtdService } from '../common/services/mgmtd.js';
import {
  addTarget,
  offlineTarget,
  removeTarget,
  rotateLastServing,
  rotateTowardsPreferredOrder,
  shutdownChain,
} from './chain-admin.js';
import type { Chain } from './chain-state-machine.js';
import { ClusterState } from './cluster-state.js';
import type { MgmtdConfig } from './config.js';
import { type LeaseRecord, leaseTrusted } from './lease.js';
import { type ClusterChanges, MgmtdStore } from './store.js';

export const RELEASE_VERSION = '0.1.0';

/** How far ahead of the published routing version the stored ceiling is kept. */
const ROUTING_VERSION_HEADROOM = 100_000;

export interface MgmtdServerOptions {
  config: MgmtdConfig;
  kv: KvStore;
  log: Logger;
  registry: Registry;
  /** Zod schemas of each daemon type's config; set-config content is validated against them. */
  configSchemas?: Partial<Record<NodeType, z.ZodType>>;
  now?: () => number;
}

export class MgmtdServer {
  private readonly store: MgmtdStore;
  private readonly mutations = new SerialQueue(1_000);
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly rpc: RpcServer;
  private readonly now: () => number;
  private state: ClusterState | undefined;
  private lease: LeaseRecord | undefined;
  /** Routing versions below this are reserved in the KV store; we publish only below it. */
  private reservedRoutingVersion = 0;
  private leaseRound: Promise<void> | undefined;
  private stopped = false;
  private advertised = '';
  private readonly primaryGauge: Gauge;
  private readonly routingGauge: Gauge;

  constructor(private readonly options: MgmtdServerOptions) {
    this.store = new MgmtdStore(options.kv);
    this.now = options.now ?? Date.now;
    const { config } = options;
    this.rpc = new RpcServer({
      clusterId: config.clusterId,
      token: config.token || undefined,
      name: `mgmtd-${config.nodeId}`,
      host: config.listen.host,
      port: config.listen.port,
      log: options.log,
      registry: options.registry,
    });
    this.rpc.register(MgmtdService, this.handlers());
    this.primaryGauge = new Gauge({
      name: 'threefs_mgmtd_is_primary',
      help: '1 while this mgmtd holds a trusted lease',
      registers: [options.registry],
    });
    this.routingGauge = new Gauge({
      name: 'threefs_mgmtd_routing_version',
      help: 'routing info version served by this primary',
      registers: [options.registry],
    });
  }

  get address(): string {
    return this.advertised;
  }

  get isPrimary(): boolean {
    return (
      this.state !== undefined &&
      leaseTrusted(this.lease, this.options.config.nodeId, this.now(), this.options.config.lease)
    );
  }

  async start(): Promise<void> {
    const { config } = this.options;
    await this.rpc.listen();
    this.advertised = config.listen.advertise || this.rpc.address;
    await this.runLeaseRound();
    const every = (ms: number, task: () => Promise<void> | void) => {
      const timer = setInterval(() => {
        Promise.resolve()
          .then(task)
          .catch((err: unknown) => this.options.log.error({ err }, 'background task failed'));
      }, ms);
      this.timers.push(timer);
    };
    every(config.lease.renewIntervalMs, () => this.runLeaseRound());
    every(config.heartbeat.checkIntervalMs, () => this.checkLiveness());
    every(config.chainUpdateIntervalMs, () => this.updateChains());
    every(config.routingPersistIntervalMs, () => this.reserveRoutingVersions());
    this.options.log.info({ address: this.advertised }, 'mgmtd started');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    await this.leaseRound;
    await this.rpc.close();
    this.options.log.info('mgmtd stopped');
  }

  // ---- lease and primary role -----------------------------------------------------------------

  private runLeaseRound(): Promise<void> {
    if (this.leaseRound) return this.leaseRound;
    this.leaseRound = this.leaseRoundOnce().finally(() => {
      this.leaseRound = undefined;
    });
    return this.leaseRound;
  }

  private async leaseRoundOnce(): Promise<void> {
    if (this.stopped) return;
    const { config, log } = this.options;
    const self = {
      nodeId: config.nodeId,
      address: this.advertised,
      releaseVersion: RELEASE_VERSION,
      disabled: config.disabled,
    };
    const { decision, lease } = await this.store.extendLease(self, this.leaseTimings(), this.now);
    this.lease = lease;
    if (decision.action === 'acquire') {
      log.info(
        { reason: decision.reason, leaseEndMs: decision.record.leaseEndMs },
        'took the mgmtd lease',
      );
      await this.becomePrimary();
    } else if (this.state && !this.isPrimary) {
      log.warn({ primary: lease?.primary }, 'lost the mgmtd lease; stepping down');
      this.state = undefined;
    } else if (!this.state && this.isPrimaryLease()) {
      // Holding the lease without state happens after a restart within the lease: reload.
      await this.becomePrimary();
    }
    this.primaryGauge.set(this.isPrimary ? 1 : 0);
  }

  private leaseTimings() {
    const { lease } = this.options.config;
    return {
      leaseLengthMs: lease.lengthMs,
      suspiciousMarginMs: lease.suspiciousMarginMs,
      checkReleaseVersion: lease.checkReleaseVersion,
    };
  }

  private isPrimaryLease(): boolean {
    return leaseTrusted(
      this.lease,
      this.options.config.nodeId,
      this.now(),
      this.options.config.lease,
    );
  }

  private async becomePrimary(): Promise<void> {
    const { config, log } = this.options;
    const persisted = await this.store.loadCluster();
    const state = new ClusterState(
      {
        heartbeatFailMs: config.heartbeat.failAfterMs,
        bootstrapMs: config.bootstrapMs,
        maxClockSkewMs: config.heartbeat.maxClockSkewMs,
        allowUnregistered: config.heartbeat.allowUnregistered,
        clientSessionTimeoutMs: config.clientSessionTimeoutMs,
      },
      {
        nodeId: config.nodeId,
        address: this.advertised,
        hostname: hostname(),
        releaseVersion: RELEASE_VERSION,
      },
    );
    state.load(persisted, this.now());
    this.reservedRoutingVersion = 0;
    this.state = state;
    await this.reserveRoutingVersions();
    log.info(
      {
        routingVersion: state.version,
        chains: persisted.chains.length,
        nodes: persisted.nodes.length,
        bootstrapMs: config.bootstrapMs,
      },
      'primary: cluster state reloaded; chain updates wait for the bootstrap window',
    );
  }

  /** The state, if this node may act as primary now; otherwise NOT_PRIMARY naming the holder. */
  private primary(): ClusterState {
    if (this.state && this.isPrimary) return this.state;
    const holder =
      this.lease && this.lease.leaseEndMs > this.now() ? this.lease.primary : undefined;
    throw new ThreeFsError(
      'NOT_PRIMARY',
      holder
        ? `mgmtd ${this.options.config.nodeId} is not primary; ask node ${holder.nodeId} at ${holder.address}`
        : 'no mgmtd holds the lease right now',
      { primary: holder },
    );
  }

  /** plan → persist (fenced) → apply, one at a time. */
  private mutate<T>(
    task: (state: ClusterState) => { changes: ClusterChanges; apply: () => T },
  ): Promise<T> {
    return this.mutations.run(async () => {
      const state = this.primary();
      const { changes, apply } = task(state);
      await this.store.persist(this.options.config.nodeId, changes, this.now);
      if (this.state !== state)
        throw new ThreeFsError('NOT_PRIMARY', 'stepped down while persisting');
      const result = apply();
      this.routingGauge.set(state.version);
      return result;
    });
  }

  private async editChain(chainId: number, edit: (chain: Chain) => Chain) {
    const chain = await this.mutate((state) => {
      const current = state.chain(chainId);
      if (!current) throw new ThreeFsError('NOT_FOUND', `no chain ${chainId}`);
      const next = edit(current);
      if (next === current) return { changes: {}, apply: () => current };
      return { changes: { chains: [next] }, apply: () => (state.applyChains([next]), next) };
    });
    return {
      chainId: chain.chainId,
      chainVersion: chain.chainVersion,
      targets: [...chain.targets],
    };
  }

  // ---- background work on the primary ---------------------------------------------------------

  private checkLiveness(): void {
    if (!this.isPrimary || !this.state) return;
    const { failedNodes, offlineTargets } = this.state.checkLiveness(this.now());
    if (failedNodes.length > 0 || offlineTargets.length > 0) {
      this.options.log.warn(
        { failedNodes, offlineTargets },
        'heartbeats missing: nodes failed, targets offline',
      );
    }
    this.state.expireClientSessions(this.now());
  }

  private async updateChains(): Promise<void> {
    if (!this.isPrimary) return;
    await this.mutate((state) => {
      const planned = state.planChainUpdates(this.now());
      if (planned.length === 0) return { changes: {}, apply: () => undefined };
      return {
        changes: { chains: planned },
        apply: () => {
          state.applyChains(planned);
          for (const chain of planned) {
            this.options.log.info(
              { chain: chain.chainId, chainVersion: chain.chainVersion, targets: chain.targets },
              'chain updated',
            );
          }
        },
      };
    });
  }

  /**
   * Keeps a ceiling of reserved routing versions in the KV store, well above the version being
   * published. A new primary starts above the stored ceiling, so it can never publish a version
   * number a client already saw with other content; and version bumps (every heartbeat that
   * changes a state) never wait for a KV write.
   */
  private async reserveRoutingVersions(): Promise<void> {
    const state = this.state;
    if (
      !state ||
      !this.isPrimary ||
      state.version + ROUTING_VERSION_HEADROOM / 2 < this.reservedRoutingVersion
    )
      return;
    await this.mutations.run(async () => {
      const ceiling = state.version + ROUTING_VERSION_HEADROOM;
      await this.store.persist(this.options.config.nodeId, { routingVersion: ceiling }, this.now);
      this.reservedRoutingVersion = ceiling;
      this.routingGauge.set(state.version);
    });
  }

  // ---- RPC handlers ---------------------------------------------------------------------------

  private handlers(): Handlers<typeof MgmtdService> {
    const ok = <T>(body: T) => ({ body });
    return {
      getPrimaryMgmtd: async () => {
        const lease = await this.store.readLease();
        const live = lease && lease.leaseEndMs > this.now() ? lease : undefined;
        return ok({ primary: live?.primary, leaseEndMs: live?.leaseEndMs ?? 0 });
      },
      heartbeat: async (req) => {
        const state = this.primary();
        const now = this.now();
        state.checkHeartbeat(req, now);
        const known = state.node(req.nodeId);
        if (!known || known.address !== req.address || known.hostname !== req.hostname) {
          await this.mutate(() => ({
            changes: {
              nodes: [
                {
                  nodeId: req.nodeId,
                  type: req.type,
                  address: req.address,
                  hostname: req.hostname,
                  disabled: known?.disabled ?? false,
                  tags: known?.tags ?? [],
                },
              ],
            },
            apply: () => undefined,
          }));
        }
        const { config } = state.heartbeat(req, this.now());
        return ok({ routingVersion: state.version, config });
      },
      getRoutingInfo: (req) => {
        const state = this.primary();
        if (state.version >= this.reservedRoutingVersion) {
          void this.reserveRoutingVersions();
          throw new ThreeFsError('UNAVAILABLE', 'routing versions are being reserved; retry');
        }
        if (req.sinceVersion === state.version) return ok({ routingVersion: state.version });
        return ok({
          routingVersion: state.version,
          delta: routingDeltaSince(state.routingInfo(this.now()), req.sinceVersion),
        });
      },
      setConfig: async (req) => {
        this.validateConfig(req.nodeType, req.content);
        const config = await this.mutate((state) => {
          const planned = state.planConfig(req.nodeType, req.content);
          return {
            changes: { configs: [planned] },
            apply: () => (state.applyConfig(planned), planned),
          };
        });
        this.options.log.info({ nodeType: req.nodeType, version: config.version }, 'config set');
        return ok({ version: config.version });
      },
      getConfig: (req) => ok({ config: this.primary().config(req.nodeType) }),
      setChainTable: async (req) => {
        const table = await this.mutate((state) => {
          const planned = state.planChainTable(req.chainTableId, req.chainIds, req.description);
          return {
            changes: { chainTables: [planned] },
            apply: () => (state.applyChainTable(planned), planned),
          };
        });
        return ok({ version: table.version });
      },
      enableNode: async (req) => {
        await this.setNodeDisabled(req.nodeId, false);
        return ok({});
      },
      disableNode: async (req) => {
        await this.setNodeDisabled(req.nodeId, true);
        return ok({});
      },
      extendClientSession: (req) =>
        ok({ expiresAtMs: this.primary().extendClientSession(req, this.now()).expiresAtMs }),
      listClientSessions: () => ok({ sessions: this.primary().listClientSessions() }),
      setChains: async (req) => {
        const changed = await this.mutate((state) => {
          const planned = state.planChainUpload(req.chains);
          return {
            changes: { chains: planned },
            apply: () => (state.applyChains(planned), planned.map((c) => c.chainId)),
          };
        });
        return ok({ changed });
      },
      rotateLastSrv: async (req) =>
        ok({ chain: await this.editChain(req.chainId, rotateLastServing) }),
      setPreferredTargetOrder: async (req) => {
        await this.mutate((state) => {
          const chain = state.chain(req.chainId);
          if (!chain) throw new ThreeFsError('NOT_FOUND', `no chain ${req.chainId}`);
          const ids = new Set(chain.targets.map((t) => t.targetId));
          const stray = req.order.find((id) => !ids.has(id));
          if (stray !== undefined)
            throw new ThreeFsError(
              'INVALID_ARGUMENT',
              `target ${stray} is not in chain ${req.chainId}`,
            );
          return {
            changes: { preferredOrders: [{ chainId: req.chainId, order: req.order }] },
            apply: () => state.setPreferredOrder(req.chainId, req.order),
          };
        });
        return ok({});
      },
      rotateAsPreferredOrder: async (req) => {
        const chain = await this.editChain(req.chainId, (c) => {
          const order = this.primary().chain(req.chainId)?.preferredOrder ?? [];
          if (order.length === 0)
            throw new ThreeFsError(
              'FAILED_PRECONDITION',
              `chain ${req.chainId} has no preferred order`,
            );
          return rotateTowardsPreferredOrder(c, order);
        });
        return ok({ chain });
      },
      updateChain: async (req) => {
        const state = this.primary();
        const chain = await this.editChain(req.chainId, (c) => {
          if (req.op === 'remove') return removeTarget(c, req.targetId);
          if (req.op === 'offline') return offlineTarget(c, req.targetId);
          const target = state.target(req.targetId);
          if (!target)
            throw new ThreeFsError('NOT_FOUND', `no target ${req.targetId}; create it first`);
          if (target.chainId !== req.chainId) {
            throw new ThreeFsError(
              'INVALID_ARGUMENT',
              `target ${req.targetId} was created for chain ${target.chainId}`,
            );
          }
          const nodeOf = (id: number) => state.target(id)?.nodeId;
          return addTarget(c, { targetId: target.targetId, nodeId: target.nodeId }, nodeOf);
        });
        return ok({ chain });
      },
      createTargets: async (req) => {
        const created = await this.mutate((state) => {
          const planned = state.planTargets(req.targets);
          return {
            changes: { targets: planned },
            apply: () => (state.applyTargets(planned), planned.length),
          };
        });
        return ok({ created });
      },
      shutdownAllChains: async () => {
        const count = await this.mutate((state) => {
          const chains = state.allChains().map((c) => shutdownChain(c));
          return { changes: { chains }, apply: () => (state.applyChains(chains), chains.length) };
        });
        return ok({ chains: count });
      },
    };
  }

  private async setNodeDisabled(nodeId: number, disabled: boolean): Promise<void> {
    await this.mutate((state) => {
      const node = state.planNodeDisabled(nodeId, disabled);
      return { changes: { nodes: [node] }, apply: () => state.applyNode(node) };
    });
    this.options.log.info(
      { target: nodeId, disabled },
      disabled ? 'node disabled' : 'node enabled',
    );
  }

  private validateConfig(nodeType: NodeType, content: string): void {
    let parsed: unknown;
    try {
      parsed = parseToml(content);
    } catch (err) {
      throw new ThreeFsError(
        'INVALID_ARGUMENT',
        `config for ${nodeType} is not valid TOML: ${(err as Error).message}`,
      );
    }
    const schema = this.options.configSchemas?.[nodeType];
    if (!schema) return;
    const result = schema.safeParse(parsed);
    if (!result.success) {
      const problems = result.error.issues
        .map((i) => `${i.path.join('.') || '<root>'}: ${i.message}`)
        .join('; ');
      throw new ThreeFsError('INVALID_ARGUMENT', `config for ${nodeType} is invalid: ${problems}`);
    }
  }
}
