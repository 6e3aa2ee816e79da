// The chain state machine of 3FS (brief §2.4), as one pure function. mgmtd runs it for every chain
// whose targets' local states changed; storage, clients and the operator only ever see its output.
//
// Safety rests on three rules kept here and asserted below:
//  - a target becomes SERVING only if it was SERVING, finished syncing (SYNCING + UPTODATE), or
//    was the LASTSRV holding the newest data while nothing else serves;
//  - when the last serving replica dies, the first of them in chain order becomes LASTSRV, so the
//    chain waits for exactly the target that holds every acknowledged write;
//  - at most one target per chain syncs at a time.
//
// The admin operations that edit chains by hand (chain-admin.ts) keep the same invariants.
import { ThreeFsError } from '../common/errors.js';
import type { LocalTargetState, PublicTargetState } from '../common/target-states.js';

export interface ChainTarget {
  targetId: number;
  state: PublicTargetState;
}

export interface Chain {
  chainId: number;
  chainVersion: number;
  /** Head first. Order inside a state bucket is preserved across updates. */
  targets: readonly ChainTarget[];
}

/** Local states from heartbeats; a target with no (fresh) report counts as OFFLINE. */
export type LocalStates = ReadonlyMap<number, LocalTargetState>;

/** The order a chain is kept in after every update: serving replicas first, dead ones last. */
export const publicStateOrder: readonly PublicTargetState[] = [
  'SERVING',
  'LASTSRV',
  'SYNCING',
  'WAITING',
  'OFFLINE',
];

function localOf(localStates: LocalStates, targetId: number): LocalTargetState {
  return localStates.get(targetId) ?? 'OFFLINE';
}

/** The public states one update assigns, in the chain's current order (before re-ordering). */
export function nextPublicStates(
  targets: readonly ChainTarget[],
  localStates: LocalStates,
): PublicTargetState[] {
  const local = targets.map((t) => localOf(localStates, t.targetId));
  const next: Array<PublicTargetState | undefined> = targets.map(() => undefined);

  // 1. Targets that serve after this update, without looking at anything else.
  targets.forEach((t, i) => {
    if (t.state === 'SERVING' && local[i] !== 'OFFLINE') next[i] = 'SERVING';
    if (t.state === 'SYNCING' && local[i] === 'UPTODATE') next[i] = 'SERVING';
  });
  let anyServing = next.includes('SERVING');

  // 2. A LASTSRV that is back serves again when nobody else does (it holds the newest data); the
  //    first live one wins. Any other LASTSRV is stale once someone serves, else still the one
  //    to wait for. (Several LASTSRV exist only after a planned shutdown of the chain.)
  if (!anyServing) {
    const back = targets.findIndex((t, i) => t.state === 'LASTSRV' && local[i] !== 'OFFLINE');
    if (back >= 0) {
      next[back] = 'SERVING';
      anyServing = true;
    }
  }
  targets.forEach((t, i) => {
    if (t.state === 'LASTSRV' && next[i] === undefined)
      next[i] = anyServing ? 'OFFLINE' : 'LASTSRV';
  });

  // 3. Serving targets that died: OFFLINE if someone still serves; otherwise the first of them
  //    becomes LASTSRV (unless a LASTSRV already stands for the chain).
  let lastServingChosen = next.includes('LASTSRV');
  targets.forEach((t, i) => {
    if (t.state !== 'SERVING' || local[i] !== 'OFFLINE') return;
    if (anyServing || lastServingChosen) next[i] = 'OFFLINE';
    else {
      next[i] = 'LASTSRV';
      lastServingChosen = true;
    }
  });

  // 4. A syncing target keeps syncing while someone serves; it waits when nobody can feed it.
  targets.forEach((t, i) => {
    if (t.state !== 'SYNCING' || next[i] !== undefined) return;
    if (local[i] === 'OFFLINE') next[i] = 'OFFLINE';
    else next[i] = anyServing ? 'SYNCING' : 'WAITING';
  });

  // 5. Waiting and offline targets: the first live one starts syncing when someone serves and
  //    nobody else syncs; other live ones wait; dead ones stay offline.
  let syncing = next.includes('SYNCING');
  targets.forEach((t, i) => {
    if (t.state !== 'WAITING' && t.state !== 'OFFLINE') return;
    if (local[i] === 'OFFLINE') next[i] = 'OFFLINE';
    else if (local[i] === 'ONLINE' && anyServing && !syncing) {
      next[i] = 'SYNCING';
      syncing = true;
    } else next[i] = 'WAITING';
  });

  return next.map((state, i) => {
    if (state === undefined) {
      throw new ThreeFsError(
        'INTERNAL',
        `no rule assigned a state to target ${targets[i]?.targetId}`,
      );
    }
    return state;
  });
}

/** Stable re-order into SERVING, LASTSRV, SYNCING, WAITING, OFFLINE. */
export function orderChainTargets(targets: readonly ChainTarget[]): ChainTarget[] {
  return publicStateOrder.flatMap((state) => targets.filter((t) => t.state === state));
}

function sameTargets(a: readonly ChainTarget[], b: readonly ChainTarget[]): boolean {
  return (
    a.length === b.length &&
    a.every((t, i) => t.targetId === b[i]?.targetId && t.state === b[i]?.state)
  );
}

/**
 * One update of a chain from the local states mgmtd currently believes. Returns the same object
 * when nothing changes; otherwise a re-ordered chain with chainVersion + 1.
 */
export function updateChain(chain: Chain, localStates: LocalStates): Chain {
  const states = nextPublicStates(chain.targets, localStates);
  const targets = orderChainTargets(
    chain.targets.map((t, i) => ({ targetId: t.targetId, state: states[i] as PublicTargetState })),
  );
  if (sameTargets(targets, chain.targets)) return chain;
  const next = { chainId: chain.chainId, chainVersion: chain.chainVersion + 1, targets };
  assertTransitionSafe(chain, next);
  return next;
}

/** The invariants every chain update keeps; a violation is a bug, never a user error. */
export function assertTransitionSafe(before: Chain, after: Chain): void {
  const fail = (why: string) => {
    throw new ThreeFsError(
      'INTERNAL',
      `chain ${before.chainId} update broke an invariant: ${why}`,
      {
        before,
        after,
      },
    );
  };
  if (after.chainVersion <= before.chainVersion) fail('chain version did not grow');
  if (after.targets.length !== before.targets.length) fail('targets were added or dropped');
  const was = new Map(before.targets.map((t) => [t.targetId, t.state]));
  for (const t of after.targets) {
    const old = was.get(t.targetId);
    if (old === undefined) fail(`target ${t.targetId} appeared`);
    if (t.state === 'SERVING' && old !== 'SERVING' && old !== 'SYNCING' && old !== 'LASTSRV') {
      fail(`target ${t.targetId} went from ${old} straight to SERVING`);
    }
  }
  const count = (state: PublicTargetState) => after.targets.filter((t) => t.state === state).length;
  if (count('SYNCING') > 1) fail('more than one SYNCING target');
  if (count('LASTSRV') === 1 && count('SERVING') > 0) fail('LASTSRV beside a SERVING target');
  const hadServing = before.targets.some((t) => t.state === 'SERVING' || t.state === 'LASTSRV');
  if (hadServing && count('SERVING') === 0 && count('LASTSRV') === 0) {
    fail('the last up-to-date replica was lost without a LASTSRV');
  }
}
