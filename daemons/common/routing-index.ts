// Lookups by id into a routing info copy. Every read and write names a chain, and every chain
// names targets on nodes: scanning the arrays costs each I/O time in proportion to the cluster
// (3FS clusters run thousands of chains), so each copy gets maps, built once on first use. Copies
// are immutable (applyRoutingDelta returns a new one), so the maps live as long as their copy; a
// copy whose arrays changed length under its maps anyway (a caller building one by hand) gets
// fresh maps rather than stale answers.
import type { ChainInfo, ChainTableVersion, NodeInfo, RoutingInfo, TargetInfo } from './routing.js';

export interface RoutingIndex {
  chain(chainId: number): ChainInfo | undefined;
  target(targetId: number): TargetInfo | undefined;
  node(nodeId: number): NodeInfo | undefined;
  /** The node holding `targetId`, if both are known. */
  nodeOfTarget(targetId: number): NodeInfo | undefined;
  /**
   * The nodes of `chainId`'s SERVING targets, in chain order (any may serve a read); the same
   * array for every call on this copy, so callers may key what they derive from it by it.
   */
  servingNodes(chainId: number): readonly NodeInfo[];
  /** A chain table version, or the newest one when `version` is 0. */
  chainTable(chainTableId: number, version?: number): ChainTableVersion | undefined;
}

interface Built extends RoutingIndex {
  /** What the maps were built from: the version and the array lengths. */
  readonly shape: readonly number[];
}

const built = new WeakMap<RoutingInfo, Built>();

const shapeOf = (info: RoutingInfo) => [
  info.routingVersion,
  info.nodes.length,
  info.targets.length,
  info.chains.length,
  info.chainTables.length,
];

function sameShape(info: RoutingInfo, shape: readonly number[]): boolean {
  return (
    shape[0] === info.routingVersion &&
    shape[1] === info.nodes.length &&
    shape[2] === info.targets.length &&
    shape[3] === info.chains.length &&
    shape[4] === info.chainTables.length
  );
}

const NO_NODES: readonly NodeInfo[] = Object.freeze([]);

function build(info: RoutingInfo): Built {
  const chains = new Map(info.chains.map((c) => [c.chainId, c]));
  const targets = new Map(info.targets.map((t) => [t.targetId, t]));
  const nodes = new Map(info.nodes.map((n) => [n.nodeId, n]));
  const tables = new Map<number, Map<number, ChainTableVersion>>();
  const newest = new Map<number, ChainTableVersion>();
  for (const t of info.chainTables) {
    let versions = tables.get(t.chainTableId);
    if (!versions) tables.set(t.chainTableId, (versions = new Map()));
    versions.set(t.version, t);
    const best = newest.get(t.chainTableId);
    if (!best || t.version > best.version) newest.set(t.chainTableId, t);
  }
  const nodeOfTarget = (id: number) => {
    const target = targets.get(id);
    return target && nodes.get(target.nodeId);
  };
  const serving = new Map<number, readonly NodeInfo[]>();
  return {
    shape: shapeOf(info),
    chain: (id) => chains.get(id),
    target: (id) => targets.get(id),
    node: (id) => nodes.get(id),
    nodeOfTarget,
    servingNodes: (chainId) => {
      let found = serving.get(chainId);
      if (!found) {
        const chain = chains.get(chainId);
        // Only known chains are kept, so the map stays within this copy's chains.
        if (!chain) return NO_NODES;
        const list: NodeInfo[] = [];
        for (const t of chain.targets) {
          const node = t.state === 'SERVING' ? nodeOfTarget(t.targetId) : undefined;
          if (node) list.push(node);
        }
        serving.set(chainId, (found = Object.freeze(list)));
      }
      return found;
    },
    chainTable: (id, version = 0) =>
      version === 0 ? newest.get(id) : tables.get(id)?.get(version),
  };
}

export function routingIndex(info: RoutingInfo): RoutingIndex {
  let index = built.get(info);
  if (!index || !sameShape(info, index.shape)) {
    index = build(info);
    built.set(info, index);
  }
  return index;
}
