// What mgmtd accepts from a heartbeat (brief §1.2), as pure checks. A rejected heartbeat changes
// nothing; the error says why so the sender's log explains itself.
import { ThreeFsError } from '../common/errors.js';
import type { NodeType } from '../common/routing.js';
import type { LocalTargetState } from '../common/target-states.js';

export interface NodeRecord {
  nodeId: number;
  type: NodeType;
  disabled: boolean;
  /** Highest heartbeat version accepted so far; versions must grow. */
  lastHeartbeatVersion: number;
}

export interface HeartbeatHeader {
  nodeId: number;
  type: NodeType;
  heartbeatVersion: number;
  /** The sender's wall clock when it sent the heartbeat. */
  sentAtMs: number;
}

export interface HeartbeatPolicy {
  allowUnregistered: boolean;
  maxClockSkewMs: number;
}

export interface TargetReport {
  targetId: number;
  localState: LocalTargetState;
  /** The chain version the storage node last saw for this target's chain. */
  chainVersion: number;
}

/** Throws unless the heartbeat may be applied; returns whether it registers a new node. */
export function checkHeartbeat(
  record: NodeRecord | undefined,
  heartbeat: HeartbeatHeader,
  nowMs: number,
  policy: HeartbeatPolicy,
): { registers: boolean } {
  const skew = heartbeat.sentAtMs - nowMs;
  if (Math.abs(skew) > policy.maxClockSkewMs) {
    throw new ThreeFsError(
      'FAILED_PRECONDITION',
      `node ${heartbeat.nodeId}: clock differs from mgmtd's by ${Math.round(skew / 1000)} s (limit ${policy.maxClockSkewMs / 1000} s); fix NTP`,
    );
  }
  if (!record) {
    if (!policy.allowUnregistered) {
      throw new ThreeFsError(
        'NOT_FOUND',
        `node ${heartbeat.nodeId} is not registered; register it first`,
      );
    }
    return { registers: true };
  }
  if (record.type !== heartbeat.type) {
    throw new ThreeFsError(
      'INVALID_ARGUMENT',
      `node ${heartbeat.nodeId} is registered as ${record.type} but sent a ${heartbeat.type} heartbeat`,
    );
  }
  if (record.disabled)
    throw new ThreeFsError('PERMISSION_DENIED', `node ${heartbeat.nodeId} is disabled`);
  if (heartbeat.heartbeatVersion <= record.lastHeartbeatVersion) {
    throw new ThreeFsError(
      'FAILED_PRECONDITION',
      `node ${heartbeat.nodeId}: stale heartbeat version ${heartbeat.heartbeatVersion} (last accepted ${record.lastHeartbeatVersion})`,
    );
  }
  return { registers: false };
}

/**
 * Drops target reports made against an older chain version than the chain now has: they describe
 * a routing the sender has not seen yet, and acting on them could undo a newer decision.
 */
export function freshTargetReports(
  reports: readonly TargetReport[],
  currentChainVersion: (targetId: number) => number | undefined,
): TargetReport[] {
  return reports.filter((r) => {
    const current = currentChainVersion(r.targetId);
    return current === undefined || r.chainVersion >= current;
  });
}
