// Group commit for chunk data: many updates share one round of fdatasync instead of one each.
//
// An update writes its bytes with O_DIRECT, then asks for a sync of the data file it wrote. The
// first request starts a round at once; requests that arrive while a round is running join the
// next one, which starts as soon as the running round ends. A round fdatasyncs every distinct
// file of its group in parallel (each its own I/O batch: fdatasync is a barrier inside a batch).
// A request is answered only by a round that started after it was made, so the sync always
// covers the write that preceded the request. The record that names the new bytes is committed
// only after that (chunk-engine.ts), which keeps the engine's invariant: data durable first.
//
// Why: on ext4, and on disks whose flush writes back everything queued, each fdatasync waits for
// the whole device queue and, for a freshly allocated block, a journal commit. One per update
// halved write throughput; one per round costs about as much as one.
import { ThreeFsError } from '../../common/errors.js';

/** Syncs the given files (fdatasync each) and returns, per file, 0 or a negative errno. */
export type SyncFiles = (fds: readonly number[]) => Promise<number[]>;

interface Waiter {
  fd: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class GroupSync {
  /** Requests waiting for the next round. */
  private next: Waiter[] = [];
  private running = false;
  private rounds = 0;
  private synced = 0;

  constructor(
    private readonly syncFiles: SyncFiles,
    /** Most requests that may wait for a round (a backstop: callers are bounded upstream). */
    private readonly maxWaiting: number,
    /** Turns a failed fdatasync of `fd` into the error its waiters get. */
    private readonly failure: (fd: number, errno: number) => Error,
  ) {
    if (!Number.isInteger(maxWaiting) || maxWaiting < 1) {
      throw new ThreeFsError(
        'INVALID_ARGUMENT',
        `maxWaiting ${maxWaiting} is not a positive count`,
      );
    }
  }

  /** Resolves once an fdatasync of `fd` that started after this call has succeeded. */
  sync(fd: number): Promise<void> {
    if (this.next.length >= this.maxWaiting) {
      return Promise.reject(
        new ThreeFsError('RESOURCE_EXHAUSTED', `more than ${this.maxWaiting} data syncs waiting`),
      );
    }
    const done = new Promise<void>((resolve, reject) => this.next.push({ fd, resolve, reject }));
    if (!this.running) void this.runRounds();
    return done;
  }

  /** Rounds run so far and requests they answered (requests ÷ rounds is the grouping). */
  get stats(): { rounds: number; requests: number } {
    return { rounds: this.rounds, requests: this.synced };
  }

  private async runRounds(): Promise<void> {
    this.running = true;
    try {
      while (this.next.length > 0) {
        const group = this.next;
        this.next = [];
        await this.round(group);
      }
    } finally {
      this.running = false;
    }
  }

  private async round(group: Waiter[]): Promise<void> {
    const fds = [...new Set(group.map((w) => w.fd))];
    let results: number[];
    try {
      results = await this.syncFiles(fds);
      if (results.length !== fds.length) {
        throw new ThreeFsError(
          'INTERNAL',
          `data sync returned ${results.length} results for ${fds.length} files`,
        );
      }
    } catch (err) {
      for (const w of group) w.reject(err as Error);
      return;
    }
    const errnoOf = new Map(fds.map((fd, i) => [fd, results[i] as number]));
    this.rounds++;
    this.synced += group.length;
    for (const w of group) {
      const errno = errnoOf.get(w.fd) ?? 0;
      if (errno < 0) w.reject(this.failure(w.fd, errno));
      else w.resolve();
    }
  }
}
