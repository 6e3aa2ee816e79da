// Runs async tasks one at a time, in arrival order, with a bound on how many may wait. Used where
// a read-decide-write sequence must not interleave with another (mgmtd's plan → persist → apply).
import { ThreeFsError } from './errors.js';

export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  constructor(private readonly maxWaiting = 10_000) {}

  run<T>(task: () => Promise<T>): Promise<T> {
    if (this.waiting >= this.maxWaiting) {
      return Promise.reject(
        new ThreeFsError('RESOURCE_EXHAUSTED', `more than ${this.maxWaiting} tasks waiting`),
      );
    }
    this.waiting++;
    const result = this.tail.then(
      () => task(),
      () => task(),
    );
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result.finally(() => {
      this.waiting--;
    });
  }
}
