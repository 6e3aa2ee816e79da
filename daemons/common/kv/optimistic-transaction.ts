// A serializable transaction by optimistic concurrency control, over any store that can give a
// consistent snapshot for reads and validate-then-apply atomically at commit (the embedded engine
// does both with LMDB). Reads come from the snapshot merged with the transaction's own writes;
// non-snapshot reads are recorded; commit hands the read set and the writes to the store, which
// re-checks the reads at the commit point and applies the writes only if nothing changed.
import { ThreeFsError } from '../errors.js';
import { applyAdd, encodeInt64LE, ADD_OPERAND_BYTES } from './atomic.js';
import type { KvLimits } from './config.js';
import { compareKeys } from './keys.js';
import { checkDelta, checkKey, checkValue, TxnBudget } from './limits.js';
import { mergeRange } from './merge.js';
import { WriteOverlay } from './overlay.js';
import { ReadSet } from './read-set.js';
import type { KeyValue, RangeOptions, ReadView, Transaction } from './types.js';

/** A consistent read-only view of the committed state, released when the transaction ends. */
export interface StoreSnapshot {
  get(key: Buffer): Buffer | undefined;
  /** Rows of [begin, end) in scan order: descending when `reverse`. */
  scan(begin: Buffer, end: Buffer, reverse: boolean): Iterator<KeyValue>;
  /**
   * Resolves once everything this snapshot shows is durable (a store may show commits before they
   * are on disk); undefined when it already is.
   */
  durable(): Promise<void> | undefined;
  /** Names the committed state the snapshot shows (Transaction.snapshotVersion), if known. */
  version?(): number;
  release(): void;
}

export interface OptimisticStore {
  readonly limits: KvLimits;
  /** The engine's own largest key, below the configured limit (LMDB: about 2 KB). */
  readonly engineMaxKeyBytes: number;
  openSnapshot(): StoreSnapshot;
  /** Atomically: throw TXN_CONFLICT if any read changed, else apply the writes durably. */
  commit(readSet: ReadSet, writes: WriteOverlay): Promise<void>;
}

type State = 'open' | 'committing' | 'committed' | 'aborted' | 'expired';

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** A private copy: callers may reuse their buffers after set() returns. */
function copyOf(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes);
}

export class OptimisticTransaction implements Transaction {
  readonly snapshot: ReadView;
  private state: State = 'open';
  private readonly overlay = new WriteOverlay();
  private readonly readSet = new ReadSet();
  private readonly budget: TxnBudget;
  private view: StoreSnapshot | undefined;

  constructor(
    private readonly store: OptimisticStore,
    private readonly finish: () => void,
  ) {
    this.budget = new TxnBudget(store.limits);
    this.snapshot = {
      get: (key) => this.read(key, false),
      getRange: (begin, end, options) => this.readRange(begin, end, options, false),
    };
  }

  get startedAt(): number {
    return this.budget.startedAt;
  }

  get(key: Uint8Array): Promise<Buffer | undefined> {
    return this.read(key, true);
  }

  snapshotVersion(): number | undefined {
    this.checkUsable();
    return this.openView().version?.();
  }

  getRange(begin: Uint8Array, end: Uint8Array, options?: RangeOptions): Promise<KeyValue[]> {
    return this.readRange(begin, end, options, true);
  }

  set(key: Uint8Array, value: Uint8Array): void {
    this.checkUsable();
    this.checkKey(key);
    checkValue(value, this.store.limits);
    this.budget.chargeWrite(key.length + value.length);
    this.overlay.set(copyOf(key), copyOf(value));
  }

  clear(key: Uint8Array): void {
    this.checkUsable();
    this.checkKey(key);
    this.budget.chargeWrite(key.length);
    this.overlay.clear(copyOf(key));
  }

  clearRange(begin: Uint8Array, end: Uint8Array): void {
    this.checkUsable();
    this.checkKey(begin);
    this.checkKey(end);
    if (compareKeys(begin, end) > 0) {
      throw new ThreeFsError('INVALID_ARGUMENT', 'clearRange: begin sorts after end');
    }
    this.budget.chargeWrite(begin.length + end.length);
    this.overlay.clearRange(copyOf(begin), copyOf(end));
  }

  add(key: Uint8Array, delta: bigint): void {
    this.checkUsable();
    this.checkKey(key);
    checkDelta(delta);
    encodeInt64LE(delta); // range check: the operand is an int64
    this.budget.chargeWrite(key.length + ADD_OPERAND_BYTES);
    this.overlay.add(copyOf(key), delta);
  }

  async commit(): Promise<void> {
    if (this.state === 'committed') return; // run() commits after a fn that already did
    this.checkUsable();
    this.state = 'committing';
    // A read-only transaction is serializable at its snapshot: nothing to check or write, but
    // what it read must be on disk before its caller acts on it.
    const durable = this.overlay.isEmpty ? this.view?.durable() : undefined;
    this.releaseView();
    try {
      if (!this.overlay.isEmpty) await this.store.commit(this.readSet, this.overlay);
      else await durable;
      this.state = 'committed';
    } catch (err) {
      this.state = 'aborted';
      throw err;
    } finally {
      this.finish();
    }
  }

  abort(): void {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    this.releaseView();
    this.finish();
  }

  /** Ends a transaction past its age limit, freeing its snapshot even if the caller forgot it. */
  expireIfOlder(now: number): boolean {
    if (this.state !== 'open' || now - this.startedAt <= this.store.limits.maxTxnAgeMs) {
      return false;
    }
    this.state = 'expired';
    this.releaseView();
    this.finish();
    return true;
  }

  private async read(key: Uint8Array, conflict: boolean): Promise<Buffer | undefined> {
    this.checkUsable();
    this.checkKey(key);
    // Most reads come before any write: skip the overlay's key encoding when it holds nothing.
    const pending = this.overlay.isEmpty ? undefined : this.overlay.pointAt(key);
    if (pending?.kind === 'set') return pending.value;
    if (pending?.kind === 'clear') return undefined;
    if (pending === undefined && this.overlay.isRangeCleared(key)) return undefined;
    const keyBuffer = toBuffer(key);
    const stored = this.openView().get(keyBuffer);
    if (conflict) {
      this.budget.chargeRead(key.length + (stored?.length ?? 0));
      this.readSet.recordPoint(copyOf(keyBuffer), stored);
    }
    return pending?.kind === 'add' ? applyAdd(stored, pending.delta) : stored;
  }

  private async readRange(
    begin: Uint8Array,
    end: Uint8Array,
    options: RangeOptions | undefined,
    conflict: boolean,
  ): Promise<KeyValue[]> {
    this.checkUsable();
    this.checkKey(begin);
    this.checkKey(end);
    const limit = options?.limit;
    if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) {
      throw new ThreeFsError(
        'INVALID_ARGUMENT',
        `getRange limit ${limit} is not a positive integer`,
      );
    }
    const reverse = options?.reverse === true;
    if (compareKeys(begin, end) >= 0) return [];
    const beginKey = copyOf(begin);
    const endKey = copyOf(end);
    const rows = this.openView().scan(beginKey, endKey, reverse);
    let merged;
    try {
      merged = mergeRange(rows, this.overlay, beginKey, endKey, limit, reverse);
    } finally {
      rows.return?.(); // a limited scan stops early: release the engine's cursor
    }
    if (conflict) {
      let bytes = merged.depends.begin.length + merged.depends.end.length;
      for (const row of merged.stored) bytes += row.key.length + row.value.length;
      this.budget.chargeRead(bytes);
      this.readSet.recordRange(merged.depends.begin, merged.depends.end, merged.stored);
    }
    return merged.rows;
  }

  private openView(): StoreSnapshot {
    if (this.view === undefined) this.view = this.store.openSnapshot();
    return this.view;
  }

  private releaseView(): void {
    const view = this.view;
    this.view = undefined;
    view?.release();
  }

  private checkKey(key: Uint8Array): void {
    checkKey(key, this.store.limits, this.store.engineMaxKeyBytes);
  }

  private checkUsable(): void {
    switch (this.state) {
      case 'open':
        this.budget.checkAge();
        return;
      case 'expired':
        this.budget.checkAge(); // throws TXN_TOO_OLD with the age and the limit
        throw new ThreeFsError('INTERNAL', 'expired transaction passed its age check');
      default:
        throw new ThreeFsError(
          'FAILED_PRECONDITION',
          `transaction is ${this.state}: start a new one (KvStore.run does this on conflict)`,
        );
    }
  }
}
