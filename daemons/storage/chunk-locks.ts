// One update at a time per chunk, on every replica (brief §3.2 step 4). Waiters queue in arrival
// order; the number waiting on one chunk is bounded so a hot chunk cannot eat memory.
import { ThreeFsError } from '../common/errors.js';

export class ChunkLocks {
  private readonly queues = new Map<string, Array<() => void>>();

  constructor(private readonly maxWaitersPerChunk = 1_024) {}

  get lockedCount(): number {
    return this.queues.size;
  }

  isLocked(key: string): boolean {
    return this.queues.has(key);
  }

  /** Runs `task` holding the lock of `key`. */
  async with<T>(key: string, task: () => Promise<T>): Promise<T> {
    await this.acquire(key);
    try {
      return await task();
    } finally {
      this.release(key);
    }
  }

  private acquire(key: string): Promise<void> {
    const queue = this.queues.get(key);
    if (!queue) {
      this.queues.set(key, []);
      return Promise.resolve();
    }
    if (queue.length >= this.maxWaitersPerChunk) {
      return Promise.reject(
        new ThreeFsError(
          'RESOURCE_EXHAUSTED',
          `${queue.length} updates already wait for chunk ${key}`,
        ),
      );
    }
    return new Promise((resolve) => queue.push(resolve));
  }

  private release(key: string): void {
    const queue = this.queues.get(key);
    if (!queue) throw new ThreeFsError('INTERNAL', `chunk lock ${key} released but not held`);
    const next = queue.shift();
    if (next) next();
    else this.queues.delete(key);
  }
}
