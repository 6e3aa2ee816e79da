// The per-chunk version rules of CRAQ as 3FS implements them (brief §3.1–§3.4, §2.5), as pure
// functions. Every replica runs the same rules; the head differs only in assigning the version.
//
// A replica keeps a committed version and at most one pending one: updateVer ∈ {commitVer,
// commitVer + 1}. The head gives a client write updateVer = commitVer + 1; successors receive that
// number and accept it only if it is exactly their next version.

export interface ChunkVersions {
  commitVer: number;
  /** commitVer, or commitVer + 1 while a write is pending. */
  updateVer: number;
  /** The chain version at which the chunk was last committed. */
  chainVer: number;
  /** A write began applying and never finished (the process died mid-write). */
  dirty: boolean;
}

export const absentChunk: ChunkVersions = { commitVer: 0, updateVer: 0, chainVer: 0, dirty: false };

export interface UpdateRequest {
  /** 0 from a client (the head assigns); the assigned version when forwarded by a predecessor. */
  updateVer: number;
  /** The chain version the sender routed with (already checked equal to the target's). */
  chainVer: number;
  /** A full-chunk replace sent by re-sync or to a SYNCING successor. */
  syncing: boolean;
}

export type UpdateOutcome =
  /** Apply the write as version `updateVer`. */
  | { kind: 'apply'; updateVer: number }
  /** Already committed here: a retry of a finished update; answer success without writing. */
  | { kind: 'already-committed' }
  /** Already applied here but not committed: a retry; answer success without writing again. */
  | { kind: 'stale' }
  | { kind: 'refuse'; reason: 'pending-exists' | 'missing-update' | 'dirty' | 'old-chain-version' };

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`CRAQ invariant broken: ${message}`);
}

export function assertChunkVersions(v: ChunkVersions): void {
  check(Number.isInteger(v.commitVer) && v.commitVer >= 0, `commitVer ${v.commitVer}`);
  check(
    v.updateVer === v.commitVer || v.updateVer === v.commitVer + 1,
    `updateVer ${v.updateVer} vs commitVer ${v.commitVer}`,
  );
}

/** What a replica does with an update (brief §3.2 step 6). */
export function decideUpdate(chunk: ChunkVersions, request: UpdateRequest): UpdateOutcome {
  assertChunkVersions(chunk);
  // A partitioned old head must never overwrite data committed under a newer chain version.
  if (request.chainVer < chunk.chainVer) return { kind: 'refuse', reason: 'old-chain-version' };
  if (request.syncing) {
    // Re-sync adopts the predecessor's numbering and discards any local pending version (§2.5 6).
    const updateVer = request.updateVer === 0 ? chunk.commitVer + 1 : request.updateVer;
    return { kind: 'apply', updateVer };
  }
  if (chunk.dirty) return { kind: 'refuse', reason: 'dirty' };
  if (request.updateVer === 0) {
    if (chunk.updateVer !== chunk.commitVer) return { kind: 'refuse', reason: 'pending-exists' };
    return { kind: 'apply', updateVer: chunk.commitVer + 1 };
  }
  if (request.updateVer <= chunk.commitVer) return { kind: 'already-committed' };
  if (request.updateVer <= chunk.updateVer) return { kind: 'stale' };
  if (request.updateVer > chunk.updateVer + 1) return { kind: 'refuse', reason: 'missing-update' };
  return { kind: 'apply', updateVer: request.updateVer };
}

/** The versions after applying an update as `updateVer` (the write itself is done by the engine). */
export function afterApply(
  chunk: ChunkVersions,
  updateVer: number,
  syncing: boolean,
): ChunkVersions {
  if (syncing) {
    // commitVer = updateVer − 1, then the caller commits: the replica adopts the sender's versions.
    return { commitVer: updateVer - 1, updateVer, chainVer: chunk.chainVer, dirty: false };
  }
  check(updateVer === chunk.commitVer + 1, `apply ${updateVer} on commitVer ${chunk.commitVer}`);
  return { ...chunk, updateVer, dirty: false };
}

/** Commit as the forward returns (tail first). An older commit is stale and changes nothing. */
export function afterCommit(
  chunk: ChunkVersions,
  commitVer: number,
  chainVer: number,
): ChunkVersions {
  if (commitVer <= chunk.commitVer) return chunk;
  check(commitVer === chunk.updateVer, `commit ${commitVer} but pending is ${chunk.updateVer}`);
  return {
    commitVer,
    updateVer: commitVer,
    chainVer: Math.max(chunk.chainVer, chainVer),
    dirty: false,
  };
}

/** Reads never return a version that might not survive: a pending chunk answers NOT_COMMITTED. */
export function readAllowed(chunk: ChunkVersions, allowUncommitted: boolean): boolean {
  return allowUncommitted || (chunk.updateVer === chunk.commitVer && !chunk.dirty);
}

export interface SyncMeta extends ChunkVersions {
  checksum: number;
  length: number;
  /** The version this replica holds pending, when it holds one (our own side only). */
  pending?: PendingVersion | undefined;
}

export interface PendingVersion {
  updateVer: number;
  /** The chain version the pending update was made under. */
  chainVer: number;
  checksum: number;
  length: number;
}

/** A committed version with nothing pending and no torn write: all a successor reports. */
function settled(m: SyncMeta): boolean {
  return m.updateVer === m.commitVer && !m.dirty;
}

/**
 * Whether both hold the same committed version with the same content. Copies of one version may
 * record different chain versions (a commit records the higher of the chunk's and the commit's,
 * and a version finished by a later write is committed at that write's), so those do not count.
 */
function sameCommitted(local: SyncMeta, remote: SyncMeta): boolean {
  return (
    settled(remote) &&
    local.commitVer === remote.commitVer &&
    local.checksum === remote.checksum &&
    local.length === remote.length
  );
}

/**
 * Whether the successor has committed exactly the version we hold pending (same version number
 * and content). The last replica of a chain commits first and the commit travels back, so this is
 * a write of ours on its way back (or one whose client gave up, which the next write to the chunk
 * drives on); not an inconsistency.
 */
function committedOurPending(local: SyncMeta, remote: SyncMeta): boolean {
  const p = local.pending;
  return (
    p !== undefined &&
    settled(remote) &&
    remote.commitVer === p.updateVer &&
    // A write that redrives our pending version commits it at the chain version of the moment.
    remote.chainVer >= p.chainVer &&
    remote.checksum === p.checksum &&
    remote.length === p.length
  );
}

export type SyncDecision = 'remove' | 'send' | 'skip' | 'fatal';

/**
 * Re-sync: what the predecessor does for one chunk id, given its own metadata and the returning
 * successor's (brief §2.5 step 3). `writeInFlight` says whether a client write on the current chain
 * version is being forwarded for this chunk right now.
 */
export function decideSync(
  local: SyncMeta | undefined,
  remote: SyncMeta | undefined,
  writeInFlight: boolean,
): SyncDecision {
  if (!local && !remote) return 'skip';
  if (!local) return 'remove';
  if (!remote) return 'send';
  // Send, not skip: the transfer takes the chunk lock, so it waits for that write and sends what
  // we have committed then. Skipping could leave the successor serving a version we never commit.
  if (committedOurPending(local, remote)) return 'send';
  if (remote.chainVer > local.chainVer && !sameCommitted(local, remote)) return 'fatal';
  if (local.chainVer > remote.chainVer) return 'send';
  if (!settled(remote)) return 'send';
  if (local.updateVer !== remote.commitVer) {
    // Same chain version, different versions. 3FS skips when a write is in flight, trusting that
    // write to reach the successor as a full replace; our simulation found schedules where it does
    // not (its forward fails, or it finishes an orphaned version), leaving a "synced" successor
    // behind. So we send: the transfer takes the chunk lock, waits for the write, and sends what is
    // committed then. Only a successor ahead of its source at the same chain version is corrupt.
    if (writeInFlight || local.commitVer > remote.commitVer) return 'send';
    // The same committed version, ours with a pending one after it that no write is driving: the
    // successor never got that update and nobody downstream of us committed it (the next write
    // to the chunk drives it on). Only committed contents are compared, below.
    if (local.commitVer !== remote.commitVer) return 'fatal';
  }
  // Same versions: compare content fingerprints too, so a replica whose chunk was rewritten behind
  // our back (repair after a checksum failure) is brought back in line.
  if (local.checksum !== remote.checksum || local.length !== remote.length) return 'send';
  return 'skip';
}
