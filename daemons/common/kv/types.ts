// The metadata KV interface, shaped like FoundationDB's so the same daemon code runs on the embedded
// engine (LMDB, one host) and on FoundationDB (a cluster). Keys and values are raw bytes; keys sort
// byte-wise; ranges are half-open [begin, end). Transactions are serializable: a transaction that
// commits behaves as if it ran alone at its commit point. Details: docs/kv.md.

/** One row of a range read. */
export interface KeyValue {
  key: Buffer;
  value: Buffer;
}

export interface RangeOptions {
  /** At most this many rows (a positive integer); no limit when absent. */
  limit?: number;
  /** Rows from the end of the range backwards: with `limit`, the last rows of the range. */
  reverse?: boolean;
}

/** The read half of a transaction. */
export interface ReadView {
  get(key: Uint8Array): Promise<Buffer | undefined>;
  /** Rows with begin <= key < end, in key order (or reversed). An empty or inverted range gives []. */
  getRange(begin: Uint8Array, end: Uint8Array, options?: RangeOptions): Promise<KeyValue[]>;
}

export interface Transaction extends ReadView {
  /**
   * The same transaction's reads without read conflicts: what they saw may change before commit
   * without failing it. Still sees this transaction's own writes. For reads whose result is only
   * a hint (e.g. picking an id-allocator shard, listing for display).
   */
  readonly snapshot: ReadView;
  set(key: Uint8Array, value: Uint8Array): void;
  clear(key: Uint8Array): void;
  /** Removes every key in [begin, end). */
  clearRange(begin: Uint8Array, end: Uint8Array): void;
  /**
   * Adds `delta` to the little-endian integer stored at `key` (absent = 0), as FoundationDB's ADD
   * with an 8-byte operand: the result is 8 bytes, wrapping at 2^64. Adds no read conflict, so
   * concurrent adds to one counter never conflict with each other.
   */
  add(key: Uint8Array, delta: bigint): void;
  /**
   * A number naming the committed state this transaction's snapshot shows, where the engine
   * knows one cheaply: two snapshots with the same version hold identical committed data (this
   * transaction's own writes are not part of it). Undefined where the engine cannot say; nothing
   * may be assumed then.
   */
  snapshotVersion(): number | undefined;
  /**
   * Makes the writes durable and visible atomically, or throws TXN_CONFLICT if something this
   * transaction read has changed since its snapshot. Resolves only once the commit is on disk.
   */
  commit(): Promise<void>;
  /** Drops the writes and releases the snapshot. Safe to call more than once, or after commit. */
  abort(): void;
}

export interface RunOptions {
  /** Attempts after the first one lost a conflict; the default comes from the store's config. */
  maxRetries?: number;
  /** Stop retrying once this many ms have passed since the first attempt began. */
  timeoutMs?: number;
}

export interface KvStore {
  /** Which engine serves this store ('embedded' or 'fdb'), for logs and tests. */
  readonly engine: KvEngineName;
  /**
   * Runs `fn` in a fresh transaction and commits it; on TXN_CONFLICT runs it again (with jittered
   * backoff) up to the retry bound. `fn` may therefore run more than once: it must have no side
   * effects outside the transaction. Returns what the committed attempt returned.
   */
  run<T>(fn: (tx: Transaction) => Promise<T>, options?: RunOptions): Promise<T>;
  /** A transaction driven by the caller, who must commit or abort it. */
  createTransaction(): Transaction;
  /** Ends open transactions (their later calls fail), waits for commits in flight, and releases the engine. */
  close(): Promise<void>;
}

export type KvEngineName = 'embedded' | 'fdb';
