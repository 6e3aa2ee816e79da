// Primary election by a lease row in the KV store (brief §1.2). Every mgmtd runs decideLease
// inside a serializable read-write transaction on the lease key every renewal interval; the KV's
// conflict detection makes sure one writer wins. The decision itself is pure, so every rule is a
// table row in the tests.

export interface LeaseHolder {
  nodeId: number;
  /** Where clients reach this mgmtd's RPC service. */
  address: string;
}

export interface LeaseRecord {
  primary: LeaseHolder;
  /** When this primary first took the lease; kept across renewals (it marks the bootstrap start). */
  leaseStartMs: number;
  leaseEndMs: number;
  /** Release of the binary holding the lease: an older release may not take over (no rollback). */
  releaseVersion: string;
}

export interface LeaseCandidate extends LeaseHolder {
  releaseVersion: string;
  /** A node tagged disabled gives its lease up and never takes one. */
  disabled: boolean;
}

export interface LeaseTimings {
  leaseLengthMs: number;
  /** Only trust a lease while at least this much of it is left (clock drift, slow renewals). */
  suspiciousMarginMs: number;
  checkReleaseVersion: boolean;
}

export type LeaseDecision =
  | { action: 'acquire'; record: LeaseRecord; reason: string }
  | { action: 'extend'; record: LeaseRecord }
  | { action: 'release'; record: LeaseRecord }
  | { action: 'none'; reason: string };

/** Compares dotted numeric versions ("1.10.0" > "1.9.3"); non-numeric parts compare as text. */
export function compareReleaseVersions(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '0';
    const y = pb[i] ?? '0';
    const nx = Number(x);
    const ny = Number(y);
    const diff = Number.isFinite(nx) && Number.isFinite(ny) ? nx - ny : x.localeCompare(y);
    if (diff !== 0) return Math.sign(diff);
  }
  return 0;
}

export function decideLease(
  stored: LeaseRecord | undefined,
  self: LeaseCandidate,
  nowMs: number,
  timings: LeaseTimings,
): LeaseDecision {
  const mine = stored !== undefined && stored.primary.nodeId === self.nodeId;
  const fresh = (startMs: number): LeaseRecord => ({
    primary: { nodeId: self.nodeId, address: self.address },
    leaseStartMs: startMs,
    leaseEndMs: nowMs + timings.leaseLengthMs,
    releaseVersion: self.releaseVersion,
  });

  if (self.disabled) {
    if (mine && stored.leaseEndMs > nowMs)
      return { action: 'release', record: { ...stored, leaseEndMs: nowMs } };
    return { action: 'none', reason: 'this node is disabled' };
  }
  if (stored === undefined)
    return { action: 'acquire', record: fresh(nowMs), reason: 'no lease stored' };
  if (stored.leaseEndMs < nowMs) {
    if (
      timings.checkReleaseVersion &&
      compareReleaseVersions(self.releaseVersion, stored.releaseVersion) < 0
    ) {
      return {
        action: 'none',
        reason: `lease expired but release ${self.releaseVersion} is older than the holder's ${stored.releaseVersion}`,
      };
    }
    return {
      action: 'acquire',
      record: fresh(nowMs),
      reason: `lease of node ${stored.primary.nodeId} expired`,
    };
  }
  if (stored.leaseEndMs - nowMs >= timings.leaseLengthMs)
    return { action: 'none', reason: 'lease is fresh' };
  if (mine)
    return {
      action: 'extend',
      record: { ...fresh(stored.leaseStartMs), releaseVersion: self.releaseVersion },
    };
  return { action: 'none', reason: `node ${stored.primary.nodeId} holds the lease` };
}

/** Whether this node may act as primary now: it holds the lease with a safety margin left. */
export function leaseTrusted(
  record: LeaseRecord | undefined,
  nodeId: number,
  nowMs: number,
  timings: Pick<LeaseTimings, 'suspiciousMarginMs'>,
): boolean {
  return (
    record !== undefined &&
    record.primary.nodeId === nodeId &&
    nowMs + timings.suspiciousMarginMs < record.leaseEndMs
  );
}
