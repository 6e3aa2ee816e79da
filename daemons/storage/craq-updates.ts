// The CRAQ write path on one storage node (brief §3.2): check the chain version, deduplicate by
// update channel, take the chunk lock, apply locally as a pending version (the head assigns
// commitVer + 1), forward to the successor with retries that re-read routing, commit as the
// forward returns (the tail commits first), and answer with the chunk's new length and checksum.
import type { Logger } from '../common/log.js';
import { crc32c } from '../common/crc32c.js';
import { ThreeFsError } from '../common/errors.js';
import { StorageService } from '../common/services/storage.js';
import type { z } from 'zod';
import type { UpdateRequestBody, UpdateResult } from '../common/services/storage.js';
import type { ChunkMeta } from './chunk-store.js';
import { ChunkLocks } from './chunk-locks.js';
import { type ChunkVersions, decideUpdate } from './craq-rules.js';
import { mayApplyWrites } from './local-state.js';
import { type Clock, type PeerPool, realClock } from './seams.js';
import type { HeldTarget, TargetRegistry } from './target-registry.js';
import type { TargetRole } from './target-roles.js';
import { UpdateChannels } from './update-channels.js';

export type UpdateRequest = z.output<typeof UpdateRequestBody>;
export type UpdateReply = z.input<typeof UpdateResult>;

export interface ForwardPolicy {
  initialBackoffMs: number;
  maxBackoffMs: number;
  totalMs: number;
  timeoutMs: number;
}

export interface CraqDeps {
  registry: Pick<TargetRegistry, 'byChainId'>;
  roles: () => ReadonlyMap<number, TargetRole>;
  refreshRouting: () => Promise<void>;
  peers: PeerPool;
  forward: ForwardPolicy;
  log: Logger;
  maxConcurrentUpdates: number;
  clock?: Clock;
}

/** seqnum 0 marks internal updates (re-drives, re-sync transfers) that bypass channel dedupe. */
export const INTERNAL_SEQNUM = 0;

/**
 * The outcome of forwarding: the successor's reply, if there was a successor, and the chain
 * version this update is committed at. That is the version at which the last replica of the
 * chain found it had no successor; it travels back up in replies so every copy records the same
 * one. (Recording the version an update arrived with is wrong: a tail that lost its successor
 * mid-forward commits under the newer chain, and re-sync compares chain versions.)
 */
interface Forwarded {
  reply?: UpdateReply;
  chainVersion: number;
}

export function versionsOf(meta: ChunkMeta | undefined): ChunkVersions {
  if (!meta) return { commitVer: 0, updateVer: 0, chainVer: 0, dirty: false };
  return {
    commitVer: meta.commitVer,
    updateVer: meta.updateVer,
    chainVer: meta.chainVer,
    dirty: false,
  };
}

function replyOf(meta: ChunkMeta | undefined, chainVer: number): UpdateReply {
  return {
    commitVer: meta?.commitVer ?? 0,
    chainVer: meta?.chainVer ?? chainVer,
    length: meta?.length ?? 0,
    checksum: meta?.checksum ?? 0,
  };
}

const chunkKey = (chainId: number, chunkId: Uint8Array) =>
  `${chainId}/${Buffer.from(chunkId).toString('hex')}`;

export class CraqUpdates {
  private readonly locks = new ChunkLocks();
  private readonly channels = new UpdateChannels<UpdateReply>();
  private active = 0;

  private readonly clock: Clock;

  constructor(private readonly deps: CraqDeps) {
    this.clock = deps.clock ?? realClock;
  }

  get updatesInFlight(): number {
    return this.active;
  }

  /** Runs `task` holding the chunk's lock, as updates do (re-sync transfers use it). */
  withChunkLock<T>(chainId: number, chunkId: Uint8Array, task: () => Promise<T>): Promise<T> {
    return this.locks.with(chunkKey(chainId, chunkId), task);
  }

  /** Whether an update of the chunk is in progress right now. */
  chunkBusy(chainId: number, chunkId: Uint8Array): boolean {
    return this.locks.isLocked(chunkKey(chainId, chunkId));
  }

  /**
   * A write from a client (source 'client', must reach the head) or forwarded along the chain.
   * `payloadCrc` is the payload's CRC32C when the transport already verified it (RPC ctx), so
   * the check against the request's checksum does not read the payload again.
   */
  async handle(
    request: UpdateRequest,
    payload: Buffer | undefined,
    source: 'client' | 'chain',
    payloadCrc?: number,
  ): Promise<UpdateReply> {
    const target = this.deps.registry.byChainId(request.chainId);
    if (!target)
      throw new ThreeFsError('NOT_FOUND', `this node holds no target of chain ${request.chainId}`);
    this.checkRole(target, request, source);
    this.checkPayload(request, payload, payloadCrc);
    if (this.active >= this.deps.maxConcurrentUpdates) {
      throw new ThreeFsError('UNAVAILABLE', `${this.active} updates in progress; retry`);
    }
    // A re-sync transfer (internal and syncing) may take a chunk back to an older version.
    if (request.syncing && request.tag.seqnum === INTERNAL_SEQNUM) {
      this.channels.forgetChain(request.chainId);
    }
    // Only the head answers from the channel cache. A replica down the chain records outcomes (for
    // a client that retries here after a head failover) but always applies what it is forwarded:
    // the same client update may come back under a new version after the head re-executed it,
    // and the version rules already make re-forwarded updates idempotent.
    const dedupe = request.tag.seqnum !== INTERNAL_SEQNUM && source === 'client';
    const decision = dedupe
      ? this.channels.begin({ ...request.tag, chainId: request.chainId }, this.clock.now())
      : undefined;
    if (decision?.kind === 'cached') return decision.result;
    this.active++;
    try {
      const reply = await this.locks.with(chunkKey(request.chainId, request.chunkId), () =>
        this.applyForwardCommit(target, request, payload, source),
      );
      if (decision?.kind === 'run') decision.finish(reply);
      else if (source === 'chain' && request.tag.seqnum !== INTERNAL_SEQNUM) {
        this.channels.record({ ...request.tag, chainId: request.chainId }, reply, this.clock.now());
      }
      return reply;
    } catch (err) {
      if (decision?.kind === 'run') decision.fail();
      throw err;
    } finally {
      this.active--;
    }
  }

  private checkRole(
    target: HeldTarget,
    request: UpdateRequest,
    source: 'client' | 'chain',
  ): TargetRole {
    const role = this.deps.roles().get(target.targetId);
    if (!role || role.chainVersion !== request.chainVersion) {
      throw new ThreeFsError(
        'CHAIN_VERSION_MISMATCH',
        `chain ${request.chainId}: request at version ${request.chainVersion}, target ${target.targetId} at ${role?.chainVersion ?? 'none'}`,
        { chainVersion: role?.chainVersion },
      );
    }
    if (source === 'client' && !role.isHead) {
      throw new ThreeFsError(
        'ROUTING_VERSION_MISMATCH',
        `target ${target.targetId} is not the head of chain ${request.chainId}`,
      );
    }
    const writable = request.syncing
      ? role.state === 'SYNCING' || mayApplyWrites(target.state, role.state)
      : mayApplyWrites(target.state, role.state);
    if (!writable) {
      throw new ThreeFsError(
        'ROUTING_VERSION_MISMATCH',
        `target ${target.targetId} is ${role.state}/${target.state.local} and takes no ${request.syncing ? 'sync ' : ''}writes`,
      );
    }
    return role;
  }

  private checkPayload(
    request: UpdateRequest,
    payload: Buffer | undefined,
    payloadCrc: number | undefined,
  ): void {
    if (request.kind !== 'write') return;
    const data = payload ?? Buffer.alloc(0);
    if (data.length !== request.length) {
      throw new ThreeFsError(
        'INVALID_ARGUMENT',
        `payload is ${data.length} bytes, request says ${request.length}`,
      );
    }
    if (request.offset + request.length > request.chunkSize) {
      throw new ThreeFsError(
        'INVALID_ARGUMENT',
        `write [${request.offset}, +${request.length}) exceeds chunk size ${request.chunkSize}`,
      );
    }
    const actual = payload && payloadCrc !== undefined ? payloadCrc : crc32c(data);
    if (actual !== request.checksum) {
      throw new ThreeFsError(
        'CHECKSUM_MISMATCH',
        `payload CRC32C ${actual} differs from the request's ${request.checksum}`,
      );
    }
  }

  private async applyForwardCommit(
    target: HeldTarget,
    request: UpdateRequest,
    payload: Buffer | undefined,
    source: 'client' | 'chain',
  ): Promise<UpdateReply> {
    const { store } = target;
    const role = this.checkRole(target, request, source); // routing may have moved while we waited
    let meta = store.meta(request.chainId, Buffer.from(request.chunkId));
    if (source === 'client' && meta && meta.updateVer !== meta.commitVer) {
      // An update that never finished left a pending version. Nobody else holds the chunk lock,
      // so nobody is finishing it: drive it down the chain and commit it before the new write.
      await this.redrive(target, request, meta);
      meta = store.meta(request.chainId, Buffer.from(request.chunkId));
    }
    if (request.kind === 'remove' && !meta) return replyOf(undefined, role.chainVersion);
    const decision = decideUpdate(versionsOf(meta), {
      updateVer: request.updateVer,
      chainVer: request.chainVersion,
      syncing: request.syncing,
    });
    let updateVer: number;
    switch (decision.kind) {
      case 'already-committed':
        return replyOf(meta, role.chainVersion);
      case 'refuse':
        this.deps.log.warn(
          {
            chain: request.chainId,
            target: target.targetId,
            reason: decision.reason,
            versions: versionsOf(meta),
            updateVer: request.updateVer,
            chainVersion: request.chainVersion,
            syncing: request.syncing,
            source,
          },
          'update refused',
        );
        throw new ThreeFsError(
          decision.reason === 'old-chain-version'
            ? 'CHAIN_VERSION_MISMATCH'
            : 'FAILED_PRECONDITION',
          `chain ${request.chainId} chunk ${Buffer.from(request.chunkId).toString('hex')}: update refused (${decision.reason})`,
        );
      case 'stale':
        updateVer = (meta as ChunkMeta).updateVer; // already applied here; finish it
        break;
      case 'apply': {
        updateVer = decision.updateVer;
        // The last replica commits right after applying, so it does both in one durable step
        // (one metadata commit instead of two). A re-sync transfer never forwards; a tail is
        // the replica whose routing shows no successor. Should routing gain a successor while
        // this runs, that successor is SYNCING and re-sync sends it this chunk: it takes the
        // chunk lock we hold, so it reads the version committed here (as when the original
        // two-step path found no successor at forwarding time).
        const commitChainVer = request.syncing
          ? this.recordedChainVer(request)
          : role.successor
            ? undefined
            : role.chainVersion;
        meta = await store.update({
          chainId: request.chainId,
          chunkId: Buffer.from(request.chunkId),
          updateVer,
          chainVer: this.recordedChainVer(request),
          kind: request.kind,
          offset: request.offset,
          data: request.kind === 'write' ? (payload ?? Buffer.alloc(0)) : undefined,
          length: request.kind === 'truncate' ? request.length : undefined,
          chunkSize: request.chunkSize,
          syncing: request.syncing,
          requestId: request.tag.requestId,
          commitChainVer,
        });
        if (commitChainVer !== undefined) {
          if (meta.updateVer !== updateVer || meta.commitVer !== updateVer) {
            throw new ThreeFsError(
              'INTERNAL',
              `chain ${request.chainId}: apply-and-commit of version ${updateVer} left versions ${meta.commitVer}/${meta.updateVer}`,
            );
          }
          return replyOf(meta, commitChainVer);
        }
        break;
      }
    }
    const forwarded = request.syncing
      ? undefined
      : await this.forward(target, request, payload, updateVer, meta);
    const downstream = forwarded?.reply;
    if (
      downstream &&
      meta?.pendingChecksum !== undefined &&
      downstream.checksum !== meta.pendingChecksum
    ) {
      throw new ThreeFsError(
        'CHECKSUM_MISMATCH',
        `chain ${request.chainId}: successor's chunk checksum ${downstream.checksum} differs from ours ${meta.pendingChecksum}`,
      );
    }
    // Every copy of one update records the same chain version (see Forwarded).
    const commitChainVer = forwarded ? forwarded.chainVersion : this.recordedChainVer(request);
    this.deps.log.debug(
      {
        chain: request.chainId,
        target: target.targetId,
        updateVer,
        commitChainVer,
        source,
        syncing: request.syncing,
        forwardedTo: forwarded?.reply ? 'successor' : 'none',
      },
      'committing',
    );
    const committed = await this.commit(
      target,
      request.chainId,
      Buffer.from(request.chunkId),
      updateVer,
      commitChainVer,
    );
    return replyOf(committed, commitChainVer);
  }

  /** The chain version a replica records for this update's chunk (see chunkChainVer). */
  private recordedChainVer(request: UpdateRequest): number {
    return request.syncing && request.chunkChainVer > 0
      ? request.chunkChainVer
      : request.chainVersion;
  }

  /** Commits; a removed chunk answers NOT_FOUND to a repeated commit, which means it is done. */
  private async commit(
    target: HeldTarget,
    chainId: number,
    chunkId: Buffer,
    updateVer: number,
    chainVer: number,
  ) {
    try {
      return await target.store.commit(chainId, chunkId, updateVer, chainVer);
    } catch (err) {
      if (err instanceof ThreeFsError && err.code === 'NOT_FOUND') return undefined;
      throw err;
    }
  }

  /** Finishes an orphaned pending version: forward it as a full-chunk write, then commit. */
  private async redrive(
    target: HeldTarget,
    request: UpdateRequest,
    meta: ChunkMeta,
  ): Promise<void> {
    const content = meta.pendingRemove
      ? undefined
      : await target.store.readPending(meta.chainId, meta.chunkId);
    const role = this.deps.roles().get(target.targetId);
    const internal: UpdateRequest = {
      ...request,
      kind: meta.pendingRemove ? 'remove' : 'write',
      offset: 0,
      length: content?.length ?? 0,
      checksum: content ? crc32c(content) : 0,
      updateVer: meta.updateVer,
      chainVersion: role?.chainVersion ?? request.chainVersion,
      syncing: false,
      tag: { ...request.tag, seqnum: INTERNAL_SEQNUM },
    };
    this.deps.log.warn(
      { chain: meta.chainId, updateVer: meta.updateVer, target: target.targetId },
      'finishing an orphaned pending version',
    );
    const forwarded = await this.forward(target, internal, content, meta.updateVer, meta);
    await this.commit(target, meta.chainId, meta.chunkId, meta.updateVer, forwarded.chainVersion);
  }

  /**
   * Sends the update to the successor, retrying with backoff and re-reading routing before each
   * attempt, so a dead successor is skipped once mgmtd moves it out. Returns undefined at the tail.
   * A SYNCING successor receives the whole chunk as a full replace (brief §2.5 step 1).
   */
  private async forward(
    target: HeldTarget,
    request: UpdateRequest,
    payload: Buffer | undefined,
    updateVer: number,
    meta: ChunkMeta | undefined,
  ): Promise<Forwarded> {
    const policy = this.deps.forward;
    const deadline = this.clock.now() + policy.totalMs;
    let backoff = policy.initialBackoffMs;
    for (let attempt = 0; ; attempt++) {
      const role = this.deps.roles().get(target.targetId);
      // Only a SERVING target forwards (and, with no successor, commits as the tail). A SYNCING
      // one holding a client update was fenced and restarted since it applied it (mgmtd makes a
      // target SYNCING only from OFFLINE or WAITING): its predecessor has moved on, so committing
      // here would record, at the new chain version, a version no other replica holds. Seen in
      // the simulation when a node paused past the failure detector's delay.
      if (!role || role.state !== 'SERVING') {
        throw new ThreeFsError(
          'CHAIN_VERSION_MISMATCH',
          `target ${target.targetId} left the serving chain while forwarding`,
        );
      }
      const successor = role.successor;
      if (!successor) return { chainVersion: role.chainVersion };
      let body: UpdateRequest = { ...request, chainVersion: role.chainVersion, updateVer };
      let data = payload;
      // A forwarded payload's CRC32C is the request's checksum (checked on arrival): the frame
      // reuses it rather than checksumming the chunk again.
      let payloadCrc = request.kind === 'write' ? request.checksum : undefined;
      if (successor.state === 'SYNCING' && request.kind !== 'remove') {
        data = await target.store.readPending(request.chainId, Buffer.from(request.chunkId));
        body = {
          ...body,
          kind: 'write',
          offset: 0,
          length: data.length,
          checksum: crc32c(data),
          syncing: true,
        };
        payloadCrc = body.checksum;
      } else if (successor.state === 'SYNCING') {
        body = { ...body, syncing: true };
      }
      try {
        const reply = await this.deps.peers
          .get(successor.address)
          .call(StorageService.methods.update, body, {
            payload: data,
            payloadCrc: data ? payloadCrc : undefined,
            timeoutMs: Math.max(1, Math.min(policy.timeoutMs, deadline - this.clock.now())),
          });
        return { reply: reply.body, chainVersion: reply.body.chainVer };
      } catch (err) {
        const retryable = err instanceof ThreeFsError && err.retryable;
        if (!retryable || this.clock.now() + backoff >= deadline) {
          this.deps.log.error(
            {
              err,
              chain: request.chainId,
              successor: successor.targetId,
              attempt,
              updateVer,
              pending: meta?.updateVer,
            },
            'forward failed for good',
          );
          throw err;
        }
        this.deps.log.warn(
          {
            chain: request.chainId,
            successor: successor.targetId,
            attempt,
            code: (err as ThreeFsError).code,
          },
          'forward failed; retrying',
        );
        await this.clock.sleep(backoff);
        backoff = Math.min(backoff * 2, policy.maxBackoffMs);
        await this.deps.refreshRouting().catch(() => undefined);
      }
    }
  }
}
