// Exactly-once updates (brief §3.2 step 2): each client numbers its updates per channel; a storage
// target remembers, per (client, chain, channel), the last sequence number and its outcome. A
// retry of the last update gets the remembered outcome instead of running again; an older number
// is a duplicate; a newer one while the last still runs must wait. Bounded in entries and age.
// A remembered outcome holds only while the replica still has the history it describes: a re-sync
// transfer may replace a chunk with an older version (one the chain never acknowledged), so it
// retires every outcome remembered for its chain (forgetChain).
import { ThreeFsError } from '../common/errors.js';

export interface ChannelTag {
  clientId: string;
  chainId: number;
  channelId: number;
  seqnum: number;
}

type Entry<R> =
  | { seqnum: number; state: 'running'; touchedMs: number }
  | { seqnum: number; state: 'done'; result: R; touchedMs: number; generation: number };

export type ChannelDecision<R> =
  { kind: 'run'; finish: (result: R) => void; fail: () => void } | { kind: 'cached'; result: R };

export class UpdateChannels<R> {
  private readonly entries = new Map<string, Entry<R>>();
  /** Per chain, bumped by forgetChain; a done entry from an older generation no longer counts. */
  private readonly generations = new Map<number, number>();

  constructor(
    private readonly maxEntries = 1_000_000,
    private readonly idleMs = 3_600_000,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * Retires every outcome remembered for `chainId`: a re-sync transfer is about to rewrite one of
   * its chunks here, possibly back to a version before updates we answered for.
   */
  forgetChain(chainId: number): void {
    this.generations.set(chainId, this.generationOf(chainId) + 1);
  }

  private generationOf(chainId: number): number {
    return this.generations.get(chainId) ?? 0;
  }

  /** The entry for `key`, unless it is an outcome forgetChain retired (then it is dropped). */
  private live(key: string, chainId: number): Entry<R> | undefined {
    const entry = this.entries.get(key);
    if (entry?.state === 'done' && entry.generation !== this.generationOf(chainId)) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  /** Decides what to do with an update carrying `tag`. */
  begin(tag: ChannelTag, nowMs: number): ChannelDecision<R> {
    const key = `${tag.clientId}/${tag.chainId}/${tag.channelId}`;
    const entry = this.live(key, tag.chainId);
    if (entry) {
      if (tag.seqnum < entry.seqnum) {
        throw new ThreeFsError(
          'FAILED_PRECONDITION',
          `duplicate update: seqnum ${tag.seqnum} < ${entry.seqnum} on channel ${key}`,
        );
      }
      if (entry.state === 'running') {
        throw new ThreeFsError(
          'UNAVAILABLE',
          `channel ${key} is busy with seqnum ${entry.seqnum}; retry`,
          { channelLocked: true },
        );
      }
      if (tag.seqnum === entry.seqnum) {
        entry.touchedMs = nowMs;
        return { kind: 'cached', result: entry.result };
      }
    } else if (this.entries.size >= this.maxEntries) {
      this.evict(nowMs);
    }
    this.entries.delete(key); // re-insert at the end: Map order is our recency order
    this.entries.set(key, { seqnum: tag.seqnum, state: 'running', touchedMs: nowMs });
    return {
      kind: 'run',
      finish: (result) => this.entries.set(key, this.done(tag, result, nowMs)),
      // A failed update may be retried with the same seqnum and must run again.
      fail: () => {
        if (entry && entry.state === 'done') this.entries.set(key, entry);
        else this.entries.delete(key);
      },
    };
  }

  /**
   * Remembers the outcome of an update this replica applied as forwarded by its predecessor, so a
   * client retrying that update here (after this replica became head) gets it once. It never
   * blocks: forwarded updates are not deduplicated by tag, only by version.
   */
  record(tag: ChannelTag, result: R, nowMs: number): void {
    const key = `${tag.clientId}/${tag.chainId}/${tag.channelId}`;
    const entry = this.live(key, tag.chainId);
    if (entry && (entry.seqnum > tag.seqnum || entry.state === 'running')) return;
    if (!entry && this.entries.size >= this.maxEntries) this.evict(nowMs);
    this.entries.delete(key);
    this.entries.set(key, this.done(tag, result, nowMs));
  }

  /** A finished update's entry, in its chain's current generation. */
  private done(tag: ChannelTag, result: R, nowMs: number): Entry<R> {
    return {
      seqnum: tag.seqnum,
      state: 'done',
      result,
      touchedMs: nowMs,
      generation: this.generationOf(tag.chainId),
    };
  }

  private evict(nowMs: number): void {
    for (const [key, entry] of this.entries) {
      if (
        entry.state === 'done' &&
        (nowMs - entry.touchedMs > this.idleMs || this.entries.size >= this.maxEntries)
      ) {
        this.entries.delete(key);
      }
      if (this.entries.size < this.maxEntries) return;
    }
    if (this.entries.size >= this.maxEntries) {
      throw new ThreeFsError(
        'RESOURCE_EXHAUSTED',
        `${this.maxEntries} update channels are all busy`,
      );
    }
  }
}
