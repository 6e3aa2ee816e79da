// What every engine's store shares: the bound on open transactions, the retry loop of run(), and
// refusing work after close(). An engine supplies openTransaction(); the transaction calls `finish`
// exactly once when it commits, aborts or expires, which frees its slot.
import { ThreeFsError } from '../errors.js';
import type { KvConfig } from './config.js';
import { runWithRetry } from './retry.js';
import { TxnSlots } from './slots.js';
import type { KvEngineName, KvStore, RunOptions, Transaction } from './types.js';

export abstract class KvStoreBase implements KvStore {
  abstract readonly engine: KvEngineName;
  protected readonly slots: TxnSlots;
  protected closed = false;

  constructor(protected readonly config: KvConfig) {
    this.slots = new TxnSlots(config.maxOpenTransactions, config.maxWaitingTransactions);
  }

  /** Opens an engine transaction on a slot already taken; `finish` gives the slot back. */
  protected abstract openTransaction(finish: () => void): Transaction;

  /** Transactions open right now in this process. */
  get openTransactions(): number {
    return this.slots.inUse;
  }

  createTransaction(): Transaction {
    this.checkOpen();
    if (!this.slots.tryAcquire()) {
      throw new ThreeFsError(
        'RESOURCE_EXHAUSTED',
        `${this.config.maxOpenTransactions} transactions already open (kv.maxOpenTransactions)`,
      );
    }
    return this.openOnSlot();
  }

  run<T>(fn: (tx: Transaction) => Promise<T>, options: RunOptions = {}): Promise<T> {
    const bounds = {
      maxRetries: options.maxRetries ?? this.config.maxRetries,
      timeoutMs: options.timeoutMs ?? this.config.retryTimeoutMs,
    };
    const begin = async () => {
      this.checkOpen();
      await this.slots.acquire();
      return this.openOnSlot();
    };
    return runWithRetry(begin, fn, bounds);
  }

  abstract close(): Promise<void>;

  protected checkOpen(): void {
    if (this.closed) throw new ThreeFsError('UNAVAILABLE', `the ${this.engine} KV store is closed`);
  }

  private openOnSlot(): Transaction {
    let released = false;
    const finish = () => {
      if (released) return;
      released = true;
      this.slots.release();
    };
    try {
      return this.openTransaction(finish);
    } catch (err) {
      finish();
      throw err;
    }
  }
}
