// The local state a storage node reports for each target (brief §2.4), as a pure transition
// function. Three rules keep replicas honest:
//  - restart protocol: a target coming up reports OFFLINE until mgmtd has demoted it (its public
//    state is no longer SERVING, SYNCING or WAITING), so every return goes through re-sync;
//  - self-fencing: an UPTODATE target whose public state became OFFLINE, LASTSRV or WAITING stops
//    serving at once and goes back through the restart protocol;
//  - it becomes UPTODATE only when mgmtd says SERVING (LASTSRV returning) or its sync is done.
// The server applies the routing event on every routing change and again before every heartbeat
// (storage-server.ts, applyRoles): a target that fenced itself on a demotion it learned late (the
// node was frozen) must move on to ONLINE under that same, unchanged routing.
import type { LocalTargetState, PublicTargetState } from '../common/target-states.js';

export type TargetPhase =
  /** Waiting for mgmtd to demote the target; reports OFFLINE. */
  | 'restarting'
  /** Reporting ONLINE or UPTODATE. */
  | 'running'
  /** The disk failed; reports OFFLINE until the process restarts. */
  | 'failed';

export interface LocalTarget {
  phase: TargetPhase;
  local: LocalTargetState;
}

export type LocalEvent =
  | { kind: 'routing'; publicState: PublicTargetState | undefined }
  | { kind: 'sync-done' }
  | { kind: 'disk-error' }
  /** A chunk failed its checksum and was dropped: re-sync must bring it back. */
  | { kind: 'corruption' };

export const startingTarget: LocalTarget = { phase: 'restarting', local: 'OFFLINE' };

/** Whether mgmtd still counts the target as a live member that must not be trusted blindly. */
const needsDemotion = (state: PublicTargetState | undefined) =>
  state === 'SERVING' || state === 'SYNCING' || state === 'WAITING';

export function nextLocalTarget(target: LocalTarget, event: LocalEvent): LocalTarget {
  if (target.phase === 'failed') return target;
  if (event.kind === 'disk-error') return { phase: 'failed', local: 'OFFLINE' };
  if (event.kind === 'corruption') return { phase: 'restarting', local: 'OFFLINE' };
  if (event.kind === 'sync-done') {
    return target.phase === 'running' ? { phase: 'running', local: 'UPTODATE' } : target;
  }
  const state = event.publicState;
  if (target.phase === 'restarting') {
    return needsDemotion(state) ? target : { phase: 'running', local: 'ONLINE' };
  }
  if (
    target.local === 'UPTODATE' &&
    (state === 'OFFLINE' || state === 'LASTSRV' || state === 'WAITING')
  ) {
    return { phase: 'restarting', local: 'OFFLINE' };
  }
  if (target.local === 'ONLINE' && state === 'SERVING')
    return { phase: 'running', local: 'UPTODATE' };
  return target;
}

/** Reads are served only by an UPTODATE target whose public state is SERVING. */
export function mayServeReads(
  target: LocalTarget,
  publicState: PublicTargetState | undefined,
): boolean {
  return target.phase === 'running' && target.local === 'UPTODATE' && publicState === 'SERVING';
}

/** Writes are accepted while SERVING (and UPTODATE) or, from the predecessor only, while SYNCING. */
export function mayApplyWrites(
  target: LocalTarget,
  publicState: PublicTargetState | undefined,
): boolean {
  if (target.phase !== 'running') return false;
  if (publicState === 'SERVING') return target.local === 'UPTODATE';
  return publicState === 'SYNCING';
}
