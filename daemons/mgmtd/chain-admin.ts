// Admin edits of chains and chain tables (brief §2.4 notes 3–6, §12 item 6), as pure functions.
// Each returns the new chain with chainVersion + 1, or throws a ThreeFsError saying why the edit
// is refused; none of them can make a chain lose its only up-to-date replica silently.
import { ThreeFsError } from '../common/errors.js';
import { type Chain, type ChainTarget, orderChainTargets } from './chain-state-machine.js';

export interface TargetPlacementInfo {
  targetId: number;
  nodeId: number;
}

function refuse(message: string): never {
  throw new ThreeFsError('FAILED_PRECONDITION', message);
}

function invalid(message: string): never {
  throw new ThreeFsError('INVALID_ARGUMENT', message);
}

function bump(chain: Chain, targets: ChainTarget[]): Chain {
  return {
    chainId: chain.chainId,
    chainVersion: chain.chainVersion + 1,
    targets: orderChainTargets(targets),
  };
}

/**
 * Validates chains an admin uploads. Every target must be known, sit in one chain only (counting
 * chains already stored that the upload does not replace), and no chain may hold two targets of
 * one node (a node failure would take two replicas).
 */
export function validateChainUpload(
  upload: ReadonlyArray<{ chainId: number; targetIds: readonly number[] }>,
  knownTargets: ReadonlyMap<number, TargetPlacementInfo>,
  existingChains: readonly Chain[],
): void {
  const chainOfTarget = new Map<number, number>();
  const uploaded = new Set(upload.map((c) => c.chainId));
  if (uploaded.size !== upload.length) invalid('the upload names a chain id twice');
  for (const chain of existingChains) {
    if (uploaded.has(chain.chainId)) continue;
    for (const t of chain.targets) chainOfTarget.set(t.targetId, chain.chainId);
  }
  for (const chain of upload) {
    if (!Number.isInteger(chain.chainId) || chain.chainId <= 0)
      invalid(`chain id ${chain.chainId} is not a positive integer`);
    if (chain.targetIds.length === 0) invalid(`chain ${chain.chainId} has no targets`);
    const nodes = new Set<number>();
    for (const targetId of chain.targetIds) {
      const info = knownTargets.get(targetId);
      if (!info) invalid(`chain ${chain.chainId}: unknown target ${targetId} (create it first)`);
      const other = chainOfTarget.get(targetId);
      if (other !== undefined) {
        invalid(
          `target ${targetId} is in chain ${other} and chain ${chain.chainId}; a target belongs to one chain`,
        );
      }
      chainOfTarget.set(targetId, chain.chainId);
      if (nodes.has(info.nodeId))
        invalid(`chain ${chain.chainId} has two targets on node ${info.nodeId}`);
      nodes.add(info.nodeId);
    }
  }
}

/** A chain table may only name chains that exist, each once. */
export function validateChainTable(
  chainIds: readonly number[],
  knownChains: ReadonlySet<number>,
): void {
  if (chainIds.length === 0)
    throw new ThreeFsError('INVALID_ARGUMENT', 'a chain table needs at least one chain');
  const seen = new Set<number>();
  for (const id of chainIds) {
    if (!knownChains.has(id))
      throw new ThreeFsError('INVALID_ARGUMENT', `chain table names unknown chain ${id}`);
    if (seen.has(id))
      throw new ThreeFsError('INVALID_ARGUMENT', `chain table names chain ${id} twice`);
    seen.add(id);
  }
}

/** A new chain from an upload: every target starts SERVING (fresh, empty replicas agree). */
export function newChain(chainId: number, targetIds: readonly number[]): Chain {
  return {
    chainId,
    chainVersion: 1,
    targets: targetIds.map((targetId) => ({ targetId, state: 'SERVING' })),
  };
}

/** Appends a target as OFFLINE; the state machine then syncs it (disk replacement, migration). */
export function addTarget(
  chain: Chain,
  target: TargetPlacementInfo,
  nodeOf: (targetId: number) => number | undefined,
): Chain {
  if (chain.targets.some((t) => t.targetId === target.targetId)) {
    refuse(`target ${target.targetId} is already in chain ${chain.chainId}`);
  }
  if (chain.targets.some((t) => nodeOf(t.targetId) === target.nodeId)) {
    refuse(`chain ${chain.chainId} already has a target on node ${target.nodeId}`);
  }
  return bump(chain, [...chain.targets, { targetId: target.targetId, state: 'OFFLINE' }]);
}

/** Removes a target, which must be OFFLINE so that no serving replica is dropped. */
export function removeTarget(chain: Chain, targetId: number): Chain {
  const target = chain.targets.find((t) => t.targetId === targetId);
  if (!target) refuse(`target ${targetId} is not in chain ${chain.chainId}`);
  if (target.state !== 'OFFLINE')
    refuse(`target ${targetId} is ${target.state}; only an OFFLINE target can be removed`);
  if (chain.targets.length === 1)
    refuse(`target ${targetId} is the last target of chain ${chain.chainId}`);
  return bump(
    chain,
    chain.targets.filter((t) => t.targetId !== targetId),
  );
}

/**
 * Marks a target OFFLINE by hand. Refused for the chain's last SERVING target: that would make
 * the chain unavailable; stop the node instead and let LASTSRV keep track of the data.
 */
export function offlineTarget(chain: Chain, targetId: number): Chain {
  const target = chain.targets.find((t) => t.targetId === targetId);
  if (!target) refuse(`target ${targetId} is not in chain ${chain.chainId}`);
  if (target.state === 'OFFLINE') return chain;
  const serving = chain.targets.filter((t) => t.state === 'SERVING');
  if (target.state === 'SERVING' && serving.length === 1) {
    refuse(`target ${targetId} is the last SERVING target of chain ${chain.chainId}`);
  }
  if (target.state === 'LASTSRV') refuse(`target ${targetId} is LASTSRV; use rotate-lastsrv`);
  return bump(
    chain,
    chain.targets.map((t) => (t.targetId === targetId ? { targetId, state: 'OFFLINE' } : t)),
  );
}

/**
 * When every replica is down, the chain waits for its LASTSRV. rotate-lastsrv gives up on it and
 * waits for the next target instead, accepting that writes only the old LASTSRV held are lost.
 */
export function rotateLastServing(chain: Chain): Chain {
  if (chain.targets.some((t) => t.state === 'SERVING'))
    refuse(`chain ${chain.chainId} has a SERVING target`);
  const lastIndex = chain.targets.findIndex((t) => t.state === 'LASTSRV');
  if (lastIndex < 0) refuse(`chain ${chain.chainId} has no LASTSRV target`);
  const successor = chain.targets.find((t, i) => i !== lastIndex && t.state !== 'LASTSRV');
  if (!successor) refuse(`chain ${chain.chainId} has no other target to promote`);
  const targets = chain.targets.map((t, i): ChainTarget => {
    if (i === lastIndex) return { targetId: t.targetId, state: 'OFFLINE' };
    if (t === successor) return { targetId: t.targetId, state: 'LASTSRV' };
    return t;
  });
  // The old LASTSRV goes to the very end so the promoted target takes its place.
  const old = targets.splice(lastIndex, 1)[0] as ChainTarget;
  return bump(chain, [...targets, old]);
}

/**
 * Planned stop of a whole cluster: serving replicas all hold the data, so each becomes LASTSRV and
 * whichever returns first serves; syncing and waiting ones are stale and go OFFLINE.
 */
export function shutdownChain(chain: Chain): Chain {
  return bump(
    chain,
    chain.targets.map((t): ChainTarget => {
      if (t.state === 'SERVING' || t.state === 'LASTSRV')
        return { targetId: t.targetId, state: 'LASTSRV' };
      return { targetId: t.targetId, state: 'OFFLINE' };
    }),
  );
}

/**
 * Moves a fully serving chain one step towards the admin's preferred order: the first target out
 * of place goes OFFLINE, re-syncs and returns at the end. Returns the chain unchanged when it is
 * in order, and refuses while anything is not SERVING (one change at a time).
 */
export function rotateTowardsPreferredOrder(chain: Chain, preferred: readonly number[]): Chain {
  const ids = chain.targets.map((t) => t.targetId);
  const order = preferred.filter((id) => ids.includes(id));
  if (chain.targets.some((t) => t.state !== 'SERVING'))
    refuse(`chain ${chain.chainId} is not fully SERVING`);
  const misplaced = order.findIndex((id, i) => ids[i] !== id);
  if (misplaced < 0) return chain;
  return offlineTarget(chain, ids[misplaced] as number);
}
