// Reads of many callers share storage calls. Every chunk read is queued under the key of the call
// that will carry it (a storage node, and for reads into shared memory the region too); a queue
// goes out as one call when it reaches a batch's size or at the end of the current event-loop
// turn, whichever comes first. A FUSE mount hands the daemon dozens of concurrent 4 KiB reads at
// once, and each used to be its own call: the per-call cost (framing, two wakeups, a reply) was
// most of the CPU of a small read on both sides.
//
// A batch splits its reply back to the callers, one outcome each, or an error for that read
// alone; a failed call gives every read of it the outcome `onCallError` chooses (a retry for a
// retryable failure), or rejects them all.
import { isRetryableCode, ThreeFsError } from '../common/errors.js';
import { slice } from '../common/pooled-views.js';

/** One read as the storage service takes it. */
export interface WireRead {
  chainId: number;
  chainVersion: number;
  chunkId: Buffer;
  offset: number;
  length: number;
}

export interface WireResult {
  status: string;
  length?: number | undefined;
  message?: string | undefined;
}

/** Sends one batch under `key`: one outcome per read, in order (an Error fails that read). */
export type SendBatch<Io, Outcome> = (key: string, ios: Io[]) => Promise<Array<Outcome | Error>>;

export type ReadOutcome =
  | { kind: 'data'; data: Buffer }
  /** Bytes the server placed in the caller's shared memory itself. */
  | { kind: 'placed'; length: number }
  | { kind: 'missing' }
  /** Not served here now: try another replica, or the same after a routing refresh. */
  | { kind: 'retry' };

interface Queued<Io, Outcome> {
  io: Io;
  resolve: (outcome: Outcome) => void;
  reject: (err: Error) => void;
}

interface Queue<Io, Outcome> {
  reads: Array<Queued<Io, Outcome>>;
  bytes: number;
}

export interface CoalescerLimits {
  /** Reads per batch (3FS: 128). */
  maxIos: number;
  /** Bytes per batch: a chunk-sized read goes alone, so its reply completes on its own. */
  maxBytes: number;
}

export class ReadCoalescer<Io extends { length: number } = WireRead, Outcome = ReadOutcome> {
  private readonly queues = new Map<string, Queue<Io, Outcome>>();
  private scheduled = false;

  constructor(
    private readonly send: SendBatch<Io, Outcome>,
    private readonly limits: CoalescerLimits,
    /** The outcome of every read of a call that failed with `err`, or undefined to reject them. */
    private readonly onCallError: (err: unknown) => Outcome | undefined,
  ) {
    if (!(limits.maxIos >= 1) || !(limits.maxBytes >= 1))
      throw new ThreeFsError('INVALID_ARGUMENT', 'read batches need room for at least one read');
  }

  /** Queues a read to go out under `key`; resolves with its outcome. */
  read(key: string, io: Io): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      let queue = this.queues.get(key);
      if (queue && queue.reads.length > 0 && queue.bytes + io.length > this.limits.maxBytes) {
        this.sendQueue(key, queue);
        queue = undefined;
      }
      if (!queue) {
        queue = { reads: [], bytes: 0 };
        this.queues.set(key, queue);
      }
      queue.reads.push({ io, resolve, reject });
      queue.bytes += io.length;
      if (queue.reads.length >= this.limits.maxIos || queue.bytes >= this.limits.maxBytes) {
        this.sendQueue(key, queue);
      } else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * How full the call gathered under `key` this turn is, as a share of `bound` in reads or bytes,
   * whichever is fuller: 0 when none is gathered there, 1 or more once it reached the bound.
   */
  fill(key: string, bound: CoalescerLimits): number {
    const queue = this.queues.get(key);
    if (!queue) return 0;
    return Math.max(queue.reads.length / bound.maxIos, queue.bytes / bound.maxBytes);
  }

  /** Reads queued and not yet sent (a bound the callers keep: they wait for their reads). */
  get queued(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.reads.length;
    return n;
  }

  private flush(): void {
    this.scheduled = false;
    for (const [key, queue] of [...this.queues]) this.sendQueue(key, queue);
  }

  private sendQueue(key: string, queue: Queue<Io, Outcome>): void {
    if (this.queues.get(key) === queue) this.queues.delete(key);
    if (queue.reads.length === 0) return;
    const batch = queue.reads;
    this.send(
      key,
      batch.map((q) => q.io),
    ).then(
      (outcomes) => {
        if (outcomes.length !== batch.length) {
          const err = new ThreeFsError(
            'PROTOCOL_ERROR',
            `a batch of ${batch.length} reads got ${outcomes.length} results`,
          );
          for (const q of batch) q.reject(err);
          return;
        }
        outcomes.forEach((outcome, i) => {
          if (outcome instanceof Error) batch[i]!.reject(outcome);
          else batch[i]!.resolve(outcome);
        });
      },
      (err: unknown) => {
        const outcome = this.onCallError(err);
        for (const q of batch) {
          if (outcome === undefined) q.reject(err as Error);
          else q.resolve(outcome);
        }
      },
    );
  }
}

/**
 * Up to this many reads or bytes, a call being gathered takes reads that could go to another
 * replica (chooseReplica). A call's fixed cost (a request and a reply to frame and parse, a
 * wake-up on each side) was most of a 4 KiB read's CPU when a turn's reads spread over every
 * replica; with qd32 random reads through the native API on three local nodes, joining calls up
 * to 16 reads cut the storage servers' CPU per read from ~55 to ~35 µs (12 and 9 measured the same
 * within the host's noise). Joining without a bound put a whole turn's reads in one call, and
 * reads then moved in lock-step: one node working while the others idled, no more reads per
 * second than before. Large reads gain nothing from sharing a call and lose the nodes' working
 * side by side, hence the bytes.
 */
export const JOIN_BOUND: CoalescerLimits = { maxIos: 16, maxBytes: 256 * 1024 };

/**
 * Which of a read's replicas carries it, given how full each one's call of this turn is (fill()):
 * the fullest call with room; else a replica no call is gathered for yet (a large burst still
 * spreads over the nodes); else one of the least full calls. `random` breaks ties between the
 * last two kinds, so reads that each fill a call still spread over the replicas.
 */
export function chooseReplica(
  fills: readonly number[],
  random: () => number = Math.random,
): number {
  if (fills.length === 0) throw new ThreeFsError('INTERNAL', 'a read with no replica to choose');
  let fullest = -1;
  let least = Infinity;
  let ties = 0;
  for (let i = 0; i < fills.length; i++) {
    const f = fills[i]!;
    if (f > 0 && f < 1 && (fullest < 0 || f > fills[fullest]!)) fullest = i;
    if (f < least) {
      least = f;
      ties = 1;
    } else if (f === least) ties++;
  }
  if (fullest >= 0) return fullest;
  // No call with room: the least full (an idle replica's is 0), at random among equals.
  let pick = Math.floor(random() * ties);
  for (let i = 0; i < fills.length; i++) if (fills[i] === least && pick-- === 0) return i;
  throw new ThreeFsError('INTERNAL', 'no least full replica'); // unreachable: `pick` < ties
}

/** A retryable call failure means another replica or a refreshed routing may serve the reads. */
export function retryOnRetryable(err: unknown): ReadOutcome | undefined {
  return err instanceof ThreeFsError && err.retryable ? { kind: 'retry' } : undefined;
}

/**
 * The outcome of a read result, with `take` giving its bytes when it succeeded: NOT_FOUND is a
 * missing chunk (a hole), a retryable status or a bad copy (CHECKSUM_MISMATCH) a retry, anything
 * else an error of that read.
 */
function outcomeOf(
  result: WireResult,
  chainId: number,
  take: (length: number) => ReadOutcome | Error,
): ReadOutcome | Error {
  if (result.status === 'ok') return take(result.length ?? 0);
  if (result.status === 'NOT_FOUND') return { kind: 'missing' };
  if (isRetryableCode(result.status) || result.status === 'CHECKSUM_MISMATCH')
    return { kind: 'retry' };
  return new ThreeFsError(
    'INTERNAL',
    `read of chain ${chainId} failed: ${result.status} ${result.message ?? ''}`,
  );
}

/** Outcomes of a batchRead reply: each successful read's bytes cut from the payload in order. */
export function payloadOutcomes(
  ios: readonly WireRead[],
  results: readonly WireResult[],
  payload: Buffer | undefined,
): Array<ReadOutcome | Error> {
  let offset = 0;
  return results.map((result, i) =>
    outcomeOf(result, ios[i]?.chainId ?? 0, (length) => {
      if (!payload || offset + length > payload.length)
        return new ThreeFsError('PROTOCOL_ERROR', 'read reply payload is short');
      const data = slice(payload, offset, offset + length);
      offset += length;
      return { kind: 'data', data };
    }),
  );
}

/** Outcomes of a batchReadToRegion reply: the bytes are already in the caller's region. */
export function placedOutcomes(
  ios: readonly WireRead[],
  results: readonly WireResult[],
): Array<ReadOutcome | Error> {
  return results.map((result, i) =>
    outcomeOf(result, ios[i]?.chainId ?? 0, (length) => ({ kind: 'placed', length })),
  );
}
