// Serializes work per key (a chunk): updates, commits and aborts of one chunk never interleave,
// while different chunks proceed in parallel. Bounded: past `maxWaiting` queued tasks in total,
// new work fails fast with RESOURCE_EXHAUSTED instead of growing memory without limit.
import { ThreeFsError } from '../../common/errors.js';

export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();
  private waiting = 0;

  constructor(private readonly maxWaiting: number) {}

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    if (this.waiting >= this.maxWaiting) {
      return Promise.reject(
        new ThreeFsError(
          'RESOURCE_EXHAUSTED',
          `more than ${this.maxWaiting} chunk operations queued`,
        ),
      );
    }
    this.waiting++;
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    return result.finally(() => {
      this.waiting--;
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
  }

  get size(): number {
    return this.waiting;
  }
}
