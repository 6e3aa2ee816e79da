// How a storage node sees its own targets, from routing info alone (brief §2.4 "How storage
// reacts to routing changes"): each local target's public state, whether it is the head or the
// tail, and the successor to forward writes to. Pure: recomputed on every routing change.
import type { PublicTargetState } from '../common/target-states.js';
import type { RoutingInfo } from '../common/routing.js';

export interface Peer {
  targetId: number;
  nodeId: number;
  /** host:port of the peer's storage service; '' if the node is unknown. */
  address: string;
  state: PublicTargetState;
}

export interface TargetRole {
  targetId: number;
  chainId: number;
  chainVersion: number;
  state: PublicTargetState;
  /** First in the chain and SERVING: the target clients write to. */
  isHead: boolean;
  /** Serving with no successor: commits first, answers last-chunk queries. */
  isTail: boolean;
  /** The next target, only if it is SERVING or SYNCING (WAITING and OFFLINE end the chain). */
  successor: Peer | undefined;
  /** The nearest SERVING target before this one: who re-syncs it when it is SYNCING. */
  predecessor: Peer | undefined;
}

const forwardable = (state: PublicTargetState) => state === 'SERVING' || state === 'SYNCING';

/** Roles of every target of `nodeId` that appears in a chain, keyed by target id. */
export function targetRoles(routing: RoutingInfo, nodeId: number): Map<number, TargetRole> {
  const targets = new Map(routing.targets.map((t) => [t.targetId, t]));
  const nodes = new Map(routing.nodes.map((n) => [n.nodeId, n]));
  const peer = (targetId: number, state: PublicTargetState): Peer => {
    const node = targets.get(targetId)?.nodeId ?? 0;
    return { targetId, nodeId: node, address: nodes.get(node)?.address ?? '', state };
  };
  const roles = new Map<number, TargetRole>();
  for (const chain of routing.chains) {
    chain.targets.forEach((t, i) => {
      if (targets.get(t.targetId)?.nodeId !== nodeId) return;
      const next = chain.targets[i + 1];
      const successor =
        next && forwardable(t.state) && forwardable(next.state)
          ? peer(next.targetId, next.state)
          : undefined;
      let predecessor: Peer | undefined;
      for (let j = i - 1; j >= 0; j--) {
        const before = chain.targets[j]!;
        if (before.state === 'SERVING') {
          predecessor = peer(before.targetId, before.state);
          break;
        }
      }
      roles.set(t.targetId, {
        targetId: t.targetId,
        chainId: chain.chainId,
        chainVersion: chain.chainVersion,
        state: t.state,
        isHead: i === 0 && t.state === 'SERVING',
        isTail: t.state === 'SERVING' && successor === undefined,
        successor,
        predecessor,
      });
    });
  }
  return roles;
}
