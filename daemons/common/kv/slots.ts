// A bound on transactions open at once in one process. Each open transaction pins a snapshot (an
// LMDB reader slot shared by every process on the host, or FDB client memory), so the count must
// be limited; run() waits for a slot in a bounded FIFO queue, createTransaction() fails at once.
import { ThreeFsError } from '../errors.js';

export class TxnSlots {
  private used = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(
    private readonly max: number,
    private readonly maxWaiting: number,
  ) {
    if (!(max >= 1) || !(maxWaiting >= 0)) {
      throw new ThreeFsError('INVALID_ARGUMENT', `bad slot bounds ${max}/${maxWaiting}`);
    }
  }

  get inUse(): number {
    return this.used;
  }

  tryAcquire(): boolean {
    if (this.used >= this.max) return false;
    this.used++;
    return true;
  }

  acquire(): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    if (this.waiters.length >= this.maxWaiting) {
      return Promise.reject(
        new ThreeFsError(
          'RESOURCE_EXHAUSTED',
          `${this.max} transactions open and ${this.waiters.length} waiting ` +
            '(kv.maxOpenTransactions, kv.maxWaitingTransactions)',
        ),
      );
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    if (this.used <= 0) throw new ThreeFsError('INTERNAL', 'transaction slot released twice');
    const next = this.waiters.shift();
    if (next !== undefined)
      next(); // the slot passes straight to the next waiter
    else this.used--;
  }
}
