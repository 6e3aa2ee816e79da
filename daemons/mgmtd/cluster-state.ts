// mgmtd's view of the cluster, in memory: nodes, targets with their local states, chains, chain
// tables, client sessions and configs. No I/O here. Changes that must survive a failover are
// planned first (plan*), persisted by the caller in a fenced KV transaction, and only then applied
// (apply*), so a new primary never reloads a chain older than one already published.
import { ThreeFsError } from '../common/errors.js';
import type {
  ChainInfo,
  ChainTableVersion,
  NodeInfo,
  NodeStatus,
  NodeType,
  RoutingInfo,
  SyncProgress,
  TargetInfo,
} from '../common/routing.js';
import type { LocalTargetState } from '../common/target-states.js';
import { validateChainTable, validateChainUpload } from './chain-admin.js';
import { type Chain, updateChain } from './chain-state-machine.js';
import { checkHeartbeat, freshTargetReports, type TargetReport } from './heartbeat-rules.js';

export interface ClusterTimings {
  heartbeatFailMs: number;
  bootstrapMs: number;
  maxClockSkewMs: number;
  allowUnregistered: boolean;
  clientSessionTimeoutMs: number;
}

/** What survives a failover: loaded from the KV store when a node becomes primary. */
export interface PersistedCluster {
  routingVersion: number;
  nodes: PersistedNode[];
  targets: PersistedTarget[];
  chains: Chain[];
  preferredOrders: Array<{ chainId: number; order: number[] }>;
  chainTables: Array<{
    chainTableId: number;
    version: number;
    chainIds: number[];
    description: string;
  }>;
  configs: ServiceConfig[];
}

export interface PersistedNode {
  nodeId: number;
  type: NodeType;
  address: string;
  hostname: string;
  disabled: boolean;
  tags: string[];
}

export interface PersistedTarget {
  targetId: number;
  nodeId: number;
  diskIndex: number;
  chainId: number;
}

export interface ServiceConfig {
  nodeType: NodeType;
  version: number;
  /** The config file's text (TOML), validated by the receiving daemon's schema. */
  content: string;
}

export interface HeartbeatInput {
  nodeId: number;
  type: NodeType;
  heartbeatVersion: number;
  sentAtMs: number;
  address: string;
  hostname: string;
  localAddress?: string;
  releaseVersion: string;
  configVersion: number;
  targets: Array<
    TargetReport & { usedBytes: number; lowSpace: boolean; syncProgress?: SyncProgress | undefined }
  >;
}

export interface ClientSession {
  clientId: string;
  hostname: string;
  description: string;
  startedAtMs: number;
  expiresAtMs: number;
}

const MAX_CLIENT_SESSIONS = 100_000;

export class ClusterState {
  private routingVersion = 0;
  private bootstrapUntilMs = 0;
  private readonly nodes = new Map<
    number,
    NodeInfo & { disabled: boolean; heartbeatVersion: number }
  >();
  private readonly targets = new Map<number, TargetInfo & { reportedAtMs: number }>();
  private readonly chains = new Map<number, ChainInfo>();
  private readonly chainTables: ChainTableVersion[] = [];
  private readonly configs = new Map<NodeType, ServiceConfig>();
  private readonly clientSessions = new Map<string, ClientSession>();

  constructor(
    private readonly timings: ClusterTimings,
    private readonly self: {
      nodeId: number;
      address: string;
      hostname: string;
      releaseVersion: string;
    },
  ) {}

  // ---- loading after a takeover ------------------------------------------------------------

  /**
   * Replaces everything with what was persisted, as a new primary does (brief §1.2): the routing
   * version moves past anything the old primary published, every target's local state starts
   * OFFLINE, and chain updates are frozen until heartbeats had time to arrive.
   */
  load(persisted: PersistedCluster, nowMs: number): void {
    const stamp = persisted.routingVersion + 1;
    this.routingVersion = stamp;
    this.bootstrapUntilMs = nowMs + this.timings.bootstrapMs;
    this.nodes.clear();
    this.targets.clear();
    this.chains.clear();
    this.chainTables.length = 0;
    this.configs.clear();
    this.clientSessions.clear();
    for (const n of persisted.nodes) {
      this.nodes.set(n.nodeId, {
        ...n,
        status: n.disabled ? 'DISABLED' : 'HEARTBEAT_CONNECTING',
        localAddress: '', // comes back with the node's next heartbeat
        releaseVersion: '',
        lastHeartbeatMs: 0,
        heartbeatVersion: 0,
        changedAt: stamp,
      });
    }
    this.markSelfPrimary(stamp);
    for (const t of persisted.targets) {
      this.targets.set(t.targetId, {
        ...t,
        localState: 'OFFLINE',
        usedBytes: 0,
        lowSpace: false,
        changedAt: stamp,
        reportedAtMs: 0,
      });
    }
    const preferred = new Map(persisted.preferredOrders.map((p) => [p.chainId, p.order]));
    for (const c of persisted.chains) {
      this.chains.set(c.chainId, {
        ...c,
        targets: [...c.targets],
        preferredOrder: preferred.get(c.chainId) ?? [],
        changedAt: stamp,
      });
    }
    for (const t of persisted.chainTables) this.chainTables.push({ ...t, changedAt: stamp });
    for (const c of persisted.configs) this.configs.set(c.nodeType, c);
  }

  private markSelfPrimary(stamp: number): void {
    const existing = this.nodes.get(this.self.nodeId);
    this.nodes.set(this.self.nodeId, {
      nodeId: this.self.nodeId,
      type: 'MGMTD',
      status: 'PRIMARY_MGMTD',
      address: this.self.address,
      hostname: this.self.hostname,
      localAddress: '',
      releaseVersion: this.self.releaseVersion,
      tags: existing?.tags ?? [],
      disabled: false,
      lastHeartbeatMs: 0,
      heartbeatVersion: existing?.heartbeatVersion ?? 0,
      changedAt: stamp,
    });
  }

  bootstrapping(nowMs: number): boolean {
    return nowMs < this.bootstrapUntilMs;
  }

  get version(): number {
    return this.routingVersion;
  }

  // ---- reading ------------------------------------------------------------------------------

  routingInfo(nowMs: number): RoutingInfo {
    const byId =
      <T>(key: (item: T) => number) =>
      (a: T, b: T) =>
        key(a) - key(b);
    return {
      routingVersion: this.routingVersion,
      bootstrapping: this.bootstrapping(nowMs),
      nodes: [...this.nodes.values()]
        .map(({ disabled: _disabled, heartbeatVersion: _hbVersion, ...node }) => node)
        .sort(byId((n) => n.nodeId)),
      targets: [...this.targets.values()]
        .map(({ reportedAtMs: _reportedAt, ...target }) => target)
        .sort(byId((t) => t.targetId)),
      chains: [...this.chains.values()].sort(byId((c) => c.chainId)),
      chainTables: [...this.chainTables],
    };
  }

  chain(chainId: number): ChainInfo | undefined {
    return this.chains.get(chainId);
  }

  allChains(): ChainInfo[] {
    return [...this.chains.values()];
  }

  /** Where a target lives (node, disk, chain), if it was created. */
  target(targetId: number): PersistedTarget | undefined {
    const t = this.targets.get(targetId);
    return (
      t && { targetId: t.targetId, nodeId: t.nodeId, diskIndex: t.diskIndex, chainId: t.chainId }
    );
  }

  node(nodeId: number): PersistedNode | undefined {
    const n = this.nodes.get(nodeId);
    return (
      n && {
        nodeId: n.nodeId,
        type: n.type,
        address: n.address,
        hostname: n.hostname,
        disabled: n.disabled,
        tags: n.tags,
      }
    );
  }

  localStates(): Map<number, LocalTargetState> {
    return new Map([...this.targets.values()].map((t) => [t.targetId, t.localState]));
  }

  // ---- heartbeats ---------------------------------------------------------------------------

  /**
   * Checks and applies a heartbeat. Returns the node record to persist when the heartbeat
   * registered a node or changed what is persisted about it, and a newer config if the sender's
   * is behind (that is how config updates reach daemons).
   */
  /** Throws unless the heartbeat would be accepted; changes nothing. */
  checkHeartbeat(hb: Omit<HeartbeatInput, 'targets'>, nowMs: number): void {
    const current = this.nodes.get(hb.nodeId);
    const record = current && {
      nodeId: current.nodeId,
      type: current.type,
      disabled: current.disabled,
      lastHeartbeatVersion: current.heartbeatVersion,
    };
    checkHeartbeat(record, hb, nowMs, this.timings);
  }

  heartbeat(
    hb: HeartbeatInput,
    nowMs: number,
  ): { persist?: PersistedNode; config?: ServiceConfig } {
    this.checkHeartbeat(hb, nowMs);
    const current = this.nodes.get(hb.nodeId);
    let bump = false;
    const stamp = this.routingVersion + 1;
    const persistedChanged =
      !current || current.address !== hb.address || current.hostname !== hb.hostname;
    const statusChanged = current?.status !== 'HEARTBEAT_CONNECTED';
    const localAddress = hb.localAddress ?? '';
    const next = {
      nodeId: hb.nodeId,
      type: hb.type,
      status: 'HEARTBEAT_CONNECTED' as NodeStatus,
      address: hb.address,
      hostname: hb.hostname,
      localAddress,
      releaseVersion: hb.releaseVersion,
      tags: current?.tags ?? [],
      disabled: false,
      lastHeartbeatMs: nowMs,
      heartbeatVersion: hb.heartbeatVersion,
      changedAt: current?.changedAt ?? stamp,
    };
    if (
      persistedChanged ||
      statusChanged ||
      current?.releaseVersion !== hb.releaseVersion ||
      current?.localAddress !== localAddress
    ) {
      next.changedAt = stamp;
      bump = true;
    }
    this.nodes.set(hb.nodeId, next);

    const fresh = freshTargetReports(hb.targets, (targetId) => {
      const chainId = this.targets.get(targetId)?.chainId;
      return chainId === undefined ? undefined : this.chains.get(chainId)?.chainVersion;
    }) as HeartbeatInput['targets'];
    for (const report of fresh) {
      const target = this.targets.get(report.targetId);
      if (!target || target.nodeId !== hb.nodeId) continue; // unknown or someone else's target: ignore
      if (target.localState !== report.localState) {
        target.localState = report.localState;
        target.changedAt = stamp;
        bump = true;
      }
      target.usedBytes = report.usedBytes;
      target.lowSpace = report.lowSpace;
      if (report.syncProgress) target.syncProgress = report.syncProgress;
      else delete target.syncProgress;
      target.reportedAtMs = nowMs;
    }
    if (bump) this.routingVersion = stamp;

    const config = this.configs.get(hb.type);
    const result: { persist?: PersistedNode; config?: ServiceConfig } = {};
    if (persistedChanged) result.persist = this.node(hb.nodeId) as PersistedNode;
    if (config && config.version > hb.configVersion) result.config = config;
    return result;
  }

  /** Failure detection: silent nodes fail, and targets not reported lately are OFFLINE. */
  checkLiveness(nowMs: number): { failedNodes: number[]; offlineTargets: number[] } {
    const stamp = this.routingVersion + 1;
    const failedNodes: number[] = [];
    const offlineTargets: number[] = [];
    for (const node of this.nodes.values()) {
      if (node.nodeId === this.self.nodeId || node.status !== 'HEARTBEAT_CONNECTED') continue;
      if (nowMs - node.lastHeartbeatMs > this.timings.heartbeatFailMs) {
        node.status = 'HEARTBEAT_FAILED';
        node.changedAt = stamp;
        failedNodes.push(node.nodeId);
      }
    }
    for (const target of this.targets.values()) {
      if (
        target.localState !== 'OFFLINE' &&
        nowMs - target.reportedAtMs > this.timings.heartbeatFailMs
      ) {
        target.localState = 'OFFLINE';
        target.changedAt = stamp;
        offlineTargets.push(target.targetId);
      }
    }
    if (failedNodes.length + offlineTargets.length > 0) this.routingVersion = stamp;
    return { failedNodes, offlineTargets };
  }

  // ---- chains -------------------------------------------------------------------------------

  /** The chains the state machine would change now; nothing while bootstrapping. */
  planChainUpdates(nowMs: number): Chain[] {
    if (this.bootstrapping(nowMs)) return [];
    const local = this.localStates();
    const changed: Chain[] = [];
    for (const chain of this.chains.values()) {
      const next = updateChain(chain, local);
      if (next !== chain) changed.push(next);
    }
    return changed;
  }

  /** Publishes chains that have been persisted. Refuses to move any chain version backwards. */
  applyChains(chains: readonly Chain[]): void {
    if (chains.length === 0) return;
    const stamp = this.routingVersion + 1;
    for (const chain of chains) {
      const current = this.chains.get(chain.chainId);
      if (current && chain.chainVersion <= current.chainVersion) {
        throw new ThreeFsError(
          'INTERNAL',
          `chain ${chain.chainId}: version ${chain.chainVersion} after ${current.chainVersion}`,
        );
      }
      this.chains.set(chain.chainId, {
        chainId: chain.chainId,
        chainVersion: chain.chainVersion,
        targets: [...chain.targets],
        preferredOrder: current?.preferredOrder ?? [],
        changedAt: stamp,
      });
      for (const t of chain.targets) {
        const target = this.targets.get(t.targetId);
        if (target && target.chainId !== chain.chainId) {
          throw new ThreeFsError(
            'INTERNAL',
            `target ${t.targetId} belongs to chain ${target.chainId}, not ${chain.chainId}`,
          );
        }
      }
    }
    this.routingVersion = stamp;
  }

  /** Validates created targets: unknown nodes or ids already in use are refused. */
  planTargets(targets: readonly PersistedTarget[]): PersistedTarget[] {
    const seen = new Set<number>();
    for (const t of targets) {
      const node = this.nodes.get(t.nodeId);
      if (!node)
        throw new ThreeFsError(
          'INVALID_ARGUMENT',
          `target ${t.targetId}: unknown node ${t.nodeId}`,
        );
      if (node.type !== 'STORAGE')
        throw new ThreeFsError(
          'INVALID_ARGUMENT',
          `target ${t.targetId}: node ${t.nodeId} is ${node.type}, not STORAGE`,
        );
      const existing = this.targets.get(t.targetId);
      if (
        existing &&
        (existing.nodeId !== t.nodeId ||
          existing.diskIndex !== t.diskIndex ||
          existing.chainId !== t.chainId)
      ) {
        throw new ThreeFsError(
          'ALREADY_EXISTS',
          `target ${t.targetId} exists with a different placement`,
        );
      }
      if (seen.has(t.targetId))
        throw new ThreeFsError('INVALID_ARGUMENT', `target ${t.targetId} is listed twice`);
      seen.add(t.targetId);
    }
    return [...targets];
  }

  applyTargets(targets: readonly PersistedTarget[]): void {
    const stamp = this.routingVersion + 1;
    for (const t of targets) {
      const existing = this.targets.get(t.targetId);
      this.targets.set(t.targetId, {
        ...t,
        localState: existing?.localState ?? 'OFFLINE',
        usedBytes: existing?.usedBytes ?? 0,
        lowSpace: existing?.lowSpace ?? false,
        changedAt: stamp,
        reportedAtMs: existing?.reportedAtMs ?? 0,
      });
    }
    this.routingVersion = stamp;
  }

  /**
   * New chains from an upload: validated against known targets and stored chains. A chain that
   * exists keeps its state unless its target list changes (then it restarts at the next version).
   */
  planChainUpload(upload: ReadonlyArray<{ chainId: number; targetIds: number[] }>): Chain[] {
    const placement = new Map(
      [...this.targets.values()].map((t) => [
        t.targetId,
        { targetId: t.targetId, nodeId: t.nodeId },
      ]),
    );
    validateChainUpload(upload, placement, [...this.chains.values()]);
    for (const c of upload) {
      for (const id of c.targetIds) {
        const t = this.targets.get(id);
        if (t && t.chainId !== c.chainId) {
          throw new ThreeFsError(
            'INVALID_ARGUMENT',
            `target ${id} was created for chain ${t.chainId}, not ${c.chainId}`,
          );
        }
      }
    }
    const planned: Chain[] = [];
    for (const c of upload) {
      const current = this.chains.get(c.chainId);
      const same =
        current &&
        current.targets.length === c.targetIds.length &&
        current.targets.every((t) => c.targetIds.includes(t.targetId));
      if (same) continue;
      planned.push({
        chainId: c.chainId,
        chainVersion: (current?.chainVersion ?? 0) + 1,
        targets: c.targetIds.map((targetId) => ({
          targetId,
          state: current ? 'OFFLINE' : 'SERVING',
        })),
      });
    }
    return planned;
  }

  /** A new immutable version of a chain table. */
  planChainTable(chainTableId: number, chainIds: number[], description: string): ChainTableVersion {
    validateChainTable(chainIds, new Set(this.chains.keys()));
    const latest = this.chainTables
      .filter((t) => t.chainTableId === chainTableId)
      .reduce((max, t) => Math.max(max, t.version), 0);
    return {
      chainTableId,
      version: latest + 1,
      chainIds: [...chainIds],
      description,
      changedAt: this.routingVersion + 1,
    };
  }

  applyChainTable(table: ChainTableVersion): void {
    const stamp = this.routingVersion + 1;
    this.chainTables.push({ ...table, changedAt: stamp });
    this.routingVersion = stamp;
  }

  setPreferredOrder(chainId: number, order: number[]): void {
    const chain = this.chains.get(chainId);
    if (!chain) throw new ThreeFsError('NOT_FOUND', `no chain ${chainId}`);
    const ids = new Set(chain.targets.map((t) => t.targetId));
    for (const id of order)
      if (!ids.has(id))
        throw new ThreeFsError('INVALID_ARGUMENT', `target ${id} is not in chain ${chainId}`);
    const stamp = this.routingVersion + 1;
    this.chains.set(chainId, { ...chain, preferredOrder: [...order], changedAt: stamp });
    this.routingVersion = stamp;
  }

  // ---- nodes and configs --------------------------------------------------------------------

  planNodeDisabled(nodeId: number, disabled: boolean): PersistedNode {
    const node = this.node(nodeId);
    if (!node) throw new ThreeFsError('NOT_FOUND', `no node ${nodeId}`);
    if (nodeId === this.self.nodeId && disabled)
      throw new ThreeFsError('FAILED_PRECONDITION', 'the primary mgmtd cannot disable itself');
    return { ...node, disabled };
  }

  applyNode(node: PersistedNode): void {
    const stamp = this.routingVersion + 1;
    const current = this.nodes.get(node.nodeId);
    const status: NodeStatus = node.disabled
      ? 'DISABLED'
      : current?.status === 'DISABLED' || !current
        ? 'HEARTBEAT_CONNECTING'
        : current.status;
    this.nodes.set(node.nodeId, {
      ...node,
      status,
      localAddress: current?.localAddress ?? '',
      releaseVersion: current?.releaseVersion ?? '',
      lastHeartbeatMs: current?.lastHeartbeatMs ?? 0,
      heartbeatVersion: current?.heartbeatVersion ?? 0,
      changedAt: stamp,
    });
    if (node.disabled) {
      for (const t of this.targets.values()) {
        if (t.nodeId === node.nodeId && t.localState !== 'OFFLINE') {
          t.localState = 'OFFLINE';
          t.changedAt = stamp;
        }
      }
    }
    this.routingVersion = stamp;
  }

  config(nodeType: NodeType): ServiceConfig | undefined {
    return this.configs.get(nodeType);
  }

  planConfig(nodeType: NodeType, content: string): ServiceConfig {
    return { nodeType, version: (this.configs.get(nodeType)?.version ?? 0) + 1, content };
  }

  applyConfig(config: ServiceConfig): void {
    this.configs.set(config.nodeType, config);
  }

  // ---- client sessions (FUSE liveness; meta prunes dead writers with them) ---------------------

  extendClientSession(
    session: Omit<ClientSession, 'startedAtMs' | 'expiresAtMs'>,
    nowMs: number,
  ): ClientSession {
    const existing = this.clientSessions.get(session.clientId);
    if (!existing && this.clientSessions.size >= MAX_CLIENT_SESSIONS) {
      throw new ThreeFsError(
        'RESOURCE_EXHAUSTED',
        `more than ${MAX_CLIENT_SESSIONS} client sessions`,
      );
    }
    const next = {
      ...session,
      startedAtMs: existing?.startedAtMs ?? nowMs,
      expiresAtMs: nowMs + this.timings.clientSessionTimeoutMs,
    };
    this.clientSessions.set(session.clientId, next);
    return next;
  }

  expireClientSessions(nowMs: number): string[] {
    const expired: string[] = [];
    for (const [id, session] of this.clientSessions) {
      if (session.expiresAtMs <= nowMs) {
        this.clientSessions.delete(id);
        expired.push(id);
      }
    }
    return expired;
  }

  listClientSessions(): ClientSession[] {
    return [...this.clientSessions.values()].sort((a, b) => a.clientId.localeCompare(b.clientId));
  }
}
