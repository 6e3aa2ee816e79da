// Reads of many callers share storage calls. Every chunk read is queued for the storage node that
// will serve it; the queue of a node goes out as one batchRead when it reaches a batch's size or
// at the end of the current event-loop turn, whichever comes first. A FUSE mount hands the daemon
// dozens of concurrent 4 KiB reads at once, and each used to be its own call: the per-call cost
// (framing, two wakeups, a reply) was most of the CPU of a small read on both sides.
//
// A batch splits its reply back to the callers: the bytes of a read, "no such chunk", "retry"
// (another replica or a routing refresh may serve it), or an error for that read alone.
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

/** Sends one batch to one node: the per-read results and the payload of the bytes read. */
export type SendBatch = (
  address: string,
  ios: WireRead[],
) => Promise<{ results: readonly WireResult[]; payload: Buffer | undefined }>;

export type ReadOutcome =
  | { kind: 'data'; data: Buffer }
  | { kind: 'missing' }
  /** Not served here now: try another replica, or the same after a routing refresh. */
  | { kind: 'retry' };

interface Queued {
  io: WireRead;
  resolve: (outcome: ReadOutcome) => void;
  reject: (err: Error) => void;
}

interface NodeQueue {
  reads: Queued[];
  bytes: number;
}

export interface CoalescerLimits {
  /** Reads per batch (3FS: 128). */
  maxIos: number;
  /** Bytes per batch: a chunk-sized read goes alone, so its reply completes on its own. */
  maxBytes: number;
}

export class ReadCoalescer {
  private readonly queues = new Map<string, NodeQueue>();
  private scheduled = false;

  constructor(
    private readonly send: SendBatch,
    private readonly limits: CoalescerLimits,
  ) {
    if (!(limits.maxIos >= 1) || !(limits.maxBytes >= 1))
      throw new ThreeFsError('INVALID_ARGUMENT', 'read batches need room for at least one read');
  }

  /** Queues a read for `address`; resolves with what the node answered for it. */
  read(address: string, io: WireRead): Promise<ReadOutcome> {
    return new Promise<ReadOutcome>((resolve, reject) => {
      let queue = this.queues.get(address);
      if (queue && queue.reads.length > 0 && queue.bytes + io.length > this.limits.maxBytes) {
        this.sendQueue(address, queue);
        queue = undefined;
      }
      if (!queue) {
        queue = { reads: [], bytes: 0 };
        this.queues.set(address, queue);
      }
      queue.reads.push({ io, resolve, reject });
      queue.bytes += io.length;
      if (queue.reads.length >= this.limits.maxIos || queue.bytes >= this.limits.maxBytes) {
        this.sendQueue(address, queue);
      } else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Reads queued and not yet sent (a bound the callers keep: they wait for their reads). */
  get queued(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.reads.length;
    return n;
  }

  private flush(): void {
    this.scheduled = false;
    for (const [address, queue] of [...this.queues]) this.sendQueue(address, queue);
  }

  private sendQueue(address: string, queue: NodeQueue): void {
    if (this.queues.get(address) === queue) this.queues.delete(address);
    if (queue.reads.length === 0) return;
    const batch = queue.reads;
    this.send(
      address,
      batch.map((q) => q.io),
    ).then(
      ({ results, payload }) => this.answer(batch, results, payload),
      (err: unknown) => {
        if (err instanceof ThreeFsError && err.retryable) {
          for (const q of batch) q.resolve({ kind: 'retry' });
        } else {
          for (const q of batch) q.reject(err as Error);
        }
      },
    );
  }

  private answer(
    batch: Queued[],
    results: readonly WireResult[],
    payload: Buffer | undefined,
  ): void {
    if (results.length !== batch.length) {
      const err = new ThreeFsError(
        'PROTOCOL_ERROR',
        `a batch of ${batch.length} reads got ${results.length} results`,
      );
      for (const q of batch) q.reject(err);
      return;
    }
    let offset = 0;
    results.forEach((result, i) => {
      const q = batch[i]!;
      if (result.status === 'ok') {
        const length = result.length ?? 0;
        if (!payload || offset + length > payload.length) {
          q.reject(new ThreeFsError('PROTOCOL_ERROR', 'read reply payload is short'));
          return;
        }
        q.resolve({ kind: 'data', data: slice(payload, offset, offset + length) });
        offset += length;
      } else if (result.status === 'NOT_FOUND') {
        q.resolve({ kind: 'missing' });
      } else if (isRetryableCode(result.status) || result.status === 'CHECKSUM_MISMATCH') {
        q.resolve({ kind: 'retry' });
      } else {
        q.reject(
          new ThreeFsError(
            'INTERNAL',
            `read of chain ${q.io.chainId} failed: ${result.status} ${result.message ?? ''}`,
          ),
        );
      }
    });
  }
}
