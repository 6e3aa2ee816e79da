// A per-inode write buffer (brief §6.1 "write buffering"): sequential small writes coalesce into
// one buffer of at most `capacity` bytes that never crosses a chunk boundary, so each flush is
// one chunk write. The buffer goes to storage when it fills, when a write does not continue it,
// on flush() (close, fsync, a read of the same inode) and after `flushDelayMs` (the timer).
// Writes that fill their whole window skip the copy and go straight to storage.
//
// Write-behind: a write returns once its bytes are buffered or handed to storage, while at most
// `maxInFlight` storage writes per inode run (and, with a budget, at most so many bytes across
// every inode of the client); a storage failure is kept and reported by the next write or flush
// (as a local file system reports writeback errors at fsync/close). A storage write
// never starts while an overlapping one is in flight, so overlapping writes land in order.
import type { ByteBudget } from '../common/byte-budget.js';
import { ThreeFsError } from '../common/errors.js';
import { SerialQueue } from '../common/serial-queue.js';

/** Where a buffer starting at `start` must end: the next chunk boundary or `capacity` bytes. */
export function windowEnd(start: number, capacity: number, chunkSize: number): number {
  const chunkEnd = (Math.floor(start / chunkSize) + 1) * chunkSize;
  return Math.min(chunkEnd, start + capacity);
}

export type WritePlan =
  /** Copy into the current buffer; `full` = it then reaches its window end. */
  | { kind: 'append'; full: boolean }
  /** Flush the current buffer (if any) first, then handle the write as if none existed. */
  | { kind: 'flush-first' }
  /** No buffer: write straight to storage (the write covers its window to the end). */
  | { kind: 'direct' }
  /** No buffer: start one with this write. */
  | { kind: 'start'; full: boolean };

/** What to do with a write of `length` bytes at `offset`, given the buffered range (if any). */
export function planWrite(
  buffered: { start: number; length: number } | undefined,
  offset: number,
  length: number,
  capacity: number,
  chunkSize: number,
): WritePlan {
  if (buffered && buffered.length > 0) {
    const end = windowEnd(buffered.start, capacity, chunkSize);
    if (offset === buffered.start + buffered.length && offset + length <= end) {
      return { kind: 'append', full: offset + length === end };
    }
    return { kind: 'flush-first' };
  }
  const end = windowEnd(offset, capacity, chunkSize);
  if (offset + length >= end) return { kind: 'direct' };
  return { kind: 'start', full: false };
}

export interface WriteBufferOptions {
  /** Largest buffer in bytes (3FS: 1 MiB). */
  capacity: number;
  chunkSize: number;
  /** Storage writes of this inode allowed in flight at once. */
  maxInFlight: number;
  /** Buffered bytes go to storage at the latest this long after they arrived. */
  flushDelayMs: number;
  /** Writes bytes to storage (the storage client's writeFile for this inode). */
  sink: (offset: number, data: Buffer) => Promise<void>;
  /** Bytes in flight shared with the other inodes of this client (a bound on write-behind). */
  budget?: ByteBudget;
}

interface InFlight {
  start: number;
  end: number;
  done: Promise<void>;
}

export class WriteBuffer {
  private buffer: Buffer | undefined;
  private start = 0;
  private length = 0;
  private readonly inFlight = new Set<InFlight>();
  private error: unknown;
  private timer: NodeJS.Timeout | undefined;
  /** write, flush and the timer's flush run one at a time (a plan must not go stale). */
  private readonly queue = new SerialQueue(1_024);

  constructor(private readonly options: WriteBufferOptions) {
    if (options.capacity <= 0 || options.maxInFlight <= 0)
      throw new ThreeFsError(
        'INVALID_ARGUMENT',
        'write buffer capacity and depth must be positive',
      );
  }

  /** Bytes buffered and not yet handed to storage. */
  get buffered(): number {
    return this.length;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /**
   * Buffers or starts the write. `done` is called once `data` is no longer referenced: right after
   * it is copied, or when its storage write settles; also when the write fails before either.
   */
  write(offset: number, data: Buffer, done?: () => void): Promise<void> {
    let stored = false;
    return this.queue
      .run(async () => {
        stored = await this.writeNow(offset, data, done);
      })
      .finally(() => {
        if (!stored) done?.();
      });
  }

  /** Sends buffered bytes to storage and waits for every storage write; throws a kept failure. */
  flush(): Promise<void> {
    return this.queue.run(async () => {
      await this.startFlush();
      while (this.inFlight.size > 0) {
        await Promise.allSettled([...this.inFlight].map((f) => f.done));
      }
      this.throwIfFailed(true);
    });
  }

  /** Whether `data` went to a storage write (which then calls `done` when it settles). */
  private async writeNow(offset: number, data: Buffer, done?: () => void): Promise<boolean> {
    this.throwIfFailed();
    if (data.length === 0) return false;
    let plan = planWrite(
      this.buffer ? { start: this.start, length: this.length } : undefined,
      offset,
      data.length,
      this.options.capacity,
      this.options.chunkSize,
    );
    if (plan.kind === 'flush-first') {
      await this.startFlush();
      plan = planWrite(
        undefined,
        offset,
        data.length,
        this.options.capacity,
        this.options.chunkSize,
      );
    }
    switch (plan.kind) {
      case 'direct':
        await this.store(offset, data, done);
        return true;
      case 'start':
      case 'append': {
        if (plan.kind === 'start') {
          this.buffer = Buffer.allocUnsafe(
            windowEnd(offset, this.options.capacity, this.options.chunkSize) - offset,
          );
          this.start = offset;
          this.length = 0;
          this.armTimer();
        }
        const buffer = this.buffer;
        if (!buffer || this.length + data.length > buffer.length)
          throw new ThreeFsError('INTERNAL', 'write buffer overflow: plan and buffer disagree');
        data.copy(buffer, this.length);
        this.length += data.length;
        if (plan.full) await this.startFlush();
        break;
      }
      case 'flush-first':
        throw new ThreeFsError('INTERNAL', 'an empty buffer cannot need a flush');
    }
    return false;
  }

  /** Drops the timer (the owner flushes before closing). */
  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private throwIfFailed(clear = false): void {
    if (this.error === undefined) return;
    const err = this.error;
    if (clear) this.error = undefined;
    throw err;
  }

  private armTimer(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.queue
        .run(() => this.startFlush())
        .catch((err: unknown) => {
          this.error ??= err;
        });
    }, this.options.flushDelayMs);
    this.timer.unref();
  }

  /** Hands the buffer (if any) to storage; resolves when the write is under way. */
  private async startFlush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const buffer = this.buffer;
    if (!buffer || this.length === 0) return;
    const data = buffer.subarray(0, this.length);
    const start = this.start;
    this.buffer = undefined;
    this.length = 0;
    await this.store(start, data);
  }

  /** Starts one storage write once nothing overlapping is in flight and depth allows. */
  private async store(offset: number, data: Buffer, done?: () => void): Promise<void> {
    const end = offset + data.length;
    for (;;) {
      const blockers = [...this.inFlight].filter((f) => f.start < end && offset < f.end);
      if (blockers.length === 0 && this.inFlight.size < this.options.maxInFlight) break;
      const waitFor = blockers.length > 0 ? blockers : [...this.inFlight];
      await Promise.race(waitFor.map((f) => f.done));
    }
    const budget = this.options.budget;
    let started!: () => void;
    const underway = new Promise<void>((resolve) => (started = resolve));
    const run = async () => {
      if (budget) await budget.acquire(data.length);
      started();
      try {
        await this.options.sink(offset, data);
      } finally {
        budget?.release(data.length);
      }
    };
    const entry: InFlight = { start: offset, end, done: Promise.resolve() };
    entry.done = run()
      .catch((err: unknown) => {
        this.error ??= err;
      })
      .finally(() => {
        this.inFlight.delete(entry);
        started(); // a budget refusal ends the write before it ever started
        done?.();
      });
    this.inFlight.add(entry);
    await underway;
  }
}
