// Routing info: what every process needs to know about the cluster (brief §1.2, §2.1). mgmtd owns
// it and bumps `routingVersion` on every change; others pull "what changed since version v" and
// merge it with applyRoutingDelta. Every entity carries the routing version it last changed at,
// which is what makes deltas cheap: no change log, just a filter.
import { hostname } from 'node:os';
import { z } from 'zod';
import { ThreeFsError } from './errors.js';
import { routingIndex } from './routing-index.js';
import { LocalTargetState, PublicTargetState } from './target-states.js';

export const NodeType = z.enum(['MGMTD', 'META', 'STORAGE', 'CLIENT']);
export type NodeType = z.infer<typeof NodeType>;

export const NodeStatus = z.enum([
  'PRIMARY_MGMTD',
  'HEARTBEAT_CONNECTED',
  'HEARTBEAT_CONNECTING',
  'HEARTBEAT_FAILED',
  'DISABLED',
]);
export type NodeStatus = z.infer<typeof NodeStatus>;

const Id = z.number().int().positive();
const Version = z.number().int().min(0);

export const NodeInfo = z.object({
  nodeId: Id,
  type: NodeType,
  status: NodeStatus,
  /** host:port of the node's RPC service, or '' for clients. */
  address: z.string().default(''),
  hostname: z.string().default(''),
  /**
   * "unix:/path" of the node's unix socket listener, for clients on the same host (hostname);
   * '' when it has none.
   */
  localAddress: z.string().default(''),
  releaseVersion: z.string().default(''),
  tags: z.array(z.string()).default([]),
  lastHeartbeatMs: z.number().int().min(0).default(0),
  changedAt: Version,
});
export type NodeInfo = z.infer<typeof NodeInfo>;

const thisHost = hostname();

/** The unix socket a client on this host dials for `node`, if it runs here and has one. */
export function sameHostAddress(node: NodeInfo): string | undefined {
  return node.localAddress !== '' && node.hostname === thisHost ? node.localAddress : undefined;
}

export const SyncProgress = z.object({
  chunksDone: z.number().int().min(0),
  chunksTotal: z.number().int().min(0),
  bytesDone: z.number().int().min(0),
  bytesTotal: z.number().int().min(0),
});
export type SyncProgress = z.infer<typeof SyncProgress>;

export const TargetInfo = z.object({
  targetId: Id,
  nodeId: Id,
  diskIndex: z.number().int().min(0),
  chainId: Id,
  localState: LocalTargetState,
  usedBytes: z.number().int().min(0).default(0),
  lowSpace: z.boolean().default(false),
  syncProgress: SyncProgress.optional(),
  changedAt: Version,
});
export type TargetInfo = z.infer<typeof TargetInfo>;

export const ChainInfo = z.object({
  chainId: Id,
  chainVersion: z.number().int().min(1),
  targets: z.array(z.object({ targetId: Id, state: PublicTargetState })).min(1),
  preferredOrder: z.array(Id).default([]),
  changedAt: Version,
});
export type ChainInfo = z.infer<typeof ChainInfo>;

/** Table versions are immutable: uploading a table again adds a version, old files keep theirs. */
export const ChainTableVersion = z.object({
  chainTableId: Id,
  version: z.number().int().min(1),
  chainIds: z.array(Id).min(1),
  description: z.string().default(''),
  changedAt: Version,
});
export type ChainTableVersion = z.infer<typeof ChainTableVersion>;

export const RoutingInfo = z.object({
  routingVersion: Version,
  /** True right after a mgmtd takeover, while chain updates are frozen (brief §1.2). */
  bootstrapping: z.boolean(),
  nodes: z.array(NodeInfo),
  targets: z.array(TargetInfo),
  chains: z.array(ChainInfo),
  chainTables: z.array(ChainTableVersion),
});
export type RoutingInfo = z.infer<typeof RoutingInfo>;

/**
 * Entities changed after `sinceVersion`, plus the ids of everything that exists now, so a receiver
 * also learns what was removed.
 */
export const RoutingDelta = z.object({
  sinceVersion: Version,
  routingVersion: Version,
  bootstrapping: z.boolean(),
  nodes: z.array(NodeInfo),
  targets: z.array(TargetInfo),
  chains: z.array(ChainInfo),
  chainTables: z.array(ChainTableVersion),
  nodeIds: z.array(Id),
  targetIds: z.array(Id),
  chainIds: z.array(Id),
});
export type RoutingDelta = z.infer<typeof RoutingDelta>;

export function emptyRoutingInfo(): RoutingInfo {
  return {
    routingVersion: 0,
    bootstrapping: false,
    nodes: [],
    targets: [],
    chains: [],
    chainTables: [],
  };
}

/** The delta a holder of `sinceVersion` needs; a version from the future gets everything. */
export function routingDeltaSince(info: RoutingInfo, sinceVersion: number): RoutingDelta {
  const since = sinceVersion > info.routingVersion ? 0 : sinceVersion;
  const changed = <T extends { changedAt: number }>(items: readonly T[]) =>
    items.filter((i) => i.changedAt > since);
  return {
    sinceVersion: since,
    routingVersion: info.routingVersion,
    bootstrapping: info.bootstrapping,
    nodes: changed(info.nodes),
    targets: changed(info.targets),
    chains: changed(info.chains),
    chainTables: changed(info.chainTables),
    nodeIds: info.nodes.map((n) => n.nodeId),
    targetIds: info.targets.map((t) => t.targetId),
    chainIds: info.chains.map((c) => c.chainId),
  };
}

function merge<T>(
  current: readonly T[],
  updates: readonly T[],
  key: (item: T) => number,
  keep: readonly number[],
): T[] {
  const byKey = new Map(current.map((item) => [key(item), item]));
  for (const item of updates) byKey.set(key(item), item);
  const alive = new Set(keep);
  return [...byKey.values()].filter((item) => alive.has(key(item))).sort((a, b) => key(a) - key(b));
}

/**
 * Applies a delta to a local copy. A delta that does not start at the copy's version (or that
 * would move it backwards) is refused: the caller asks again from its own version.
 */
export function applyRoutingDelta(info: RoutingInfo, delta: RoutingDelta): RoutingInfo {
  if (delta.sinceVersion !== 0 && delta.sinceVersion !== info.routingVersion) {
    throw new ThreeFsError(
      'ROUTING_VERSION_MISMATCH',
      `delta starts at version ${delta.sinceVersion} but the local copy is at ${info.routingVersion}`,
    );
  }
  const base = delta.sinceVersion === 0 ? emptyRoutingInfo() : info;
  const tableKey = (t: ChainTableVersion) => t.chainTableId * 2 ** 20 + t.version;
  return {
    routingVersion: delta.routingVersion,
    bootstrapping: delta.bootstrapping,
    nodes: merge(base.nodes, delta.nodes, (n) => n.nodeId, delta.nodeIds),
    targets: merge(base.targets, delta.targets, (t) => t.targetId, delta.targetIds),
    chains: merge(base.chains, delta.chains, (c) => c.chainId, delta.chainIds),
    // Table versions are immutable and never removed while files may use them.
    chainTables: merge(base.chainTables, delta.chainTables, tableKey, [
      ...base.chainTables.map(tableKey),
      ...delta.chainTables.map(tableKey),
    ]),
  };
}

/** The newest version of a chain table, or a given one (0 means newest). */
export function findChainTable(
  info: RoutingInfo,
  chainTableId: number,
  version = 0,
): ChainTableVersion | undefined {
  return routingIndex(info).chainTable(chainTableId, version);
}
