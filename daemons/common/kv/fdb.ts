// The FoundationDB engine, through the `foundationdb` npm package. That package links against the
// FDB client library (libfdb_c.so) at load time, so it is an optional dependency imported only
// when the config selects this engine: a host without FDB still runs everything else, and asking
// for FDB there fails with an error saying what to install. FDB itself provides serializability,
// read-your-writes, snapshot reads and atomic ADD; this file maps its API and errors onto ours and
// applies the same configured limits as the embedded engine. Retries use our loop (run()).
import { ThreeFsError } from '../errors.js';
import { ADD_OPERAND_BYTES, encodeInt64LE } from './atomic.js';
import type { KvConfig, KvLimits } from './config.js';
import { compareKeys } from './keys.js';
import { checkDelta, checkKey, checkValue, TxnBudget } from './limits.js';
import { KvStoreBase } from './store-base.js';
import type { KeyValue, RangeOptions, ReadView, Transaction } from './types.js';

/** The slice of the `foundationdb` package we use (declared here: the package may be absent). */
interface FdbRawTransaction {
  snapshot(): FdbRawTransaction;
  get(key: Buffer): Promise<Buffer | undefined>;
  getRangeAll(
    begin: Buffer,
    end: Buffer,
    options?: { limit?: number; reverse?: boolean },
  ): Promise<Array<[Buffer, Buffer]>>;
  set(key: Buffer, value: Buffer): void;
  clear(key: Buffer): void;
  clearRange(begin: Buffer, end: Buffer): void;
  add(key: Buffer, operand: Buffer): void;
  rawCommit(): Promise<void>;
  rawCancel(): void;
}

interface FdbDatabase {
  rawCreateTransaction(): FdbRawTransaction;
  close(): void;
}

interface FdbModule {
  setAPIVersion(version: number): void;
  open(clusterFile?: string): FdbDatabase;
}

export const FDB_INSTALL_HINT =
  'install the FoundationDB client library (foundationdb-clients package, libfdb_c.so) and ' +
  '`npm install foundationdb`';

/** The module name in a variable so TypeScript does not require the optional package to build. */
const FDB_MODULE = 'foundationdb';

let loaded: { module: FdbModule; apiVersion: number } | undefined;

async function loadFdb(apiVersion: number): Promise<FdbModule> {
  if (loaded !== undefined) {
    if (loaded.apiVersion !== apiVersion) {
      throw new ThreeFsError(
        'FAILED_PRECONDITION',
        `FoundationDB API version is already ${loaded.apiVersion} in this process; ` +
          `cannot switch to ${apiVersion}`,
      );
    }
    return loaded.module;
  }
  let module: FdbModule;
  try {
    const imported = (await import(FDB_MODULE)) as { default?: FdbModule } & FdbModule;
    module = typeof imported.open === 'function' ? imported : (imported.default as FdbModule);
    module.setAPIVersion(apiVersion);
  } catch (err) {
    throw new ThreeFsError(
      'FAILED_PRECONDITION',
      `the fdb KV engine is configured but FoundationDB cannot be loaded ` +
        `(${(err as Error).message.split('\n')[0]}): ${FDB_INSTALL_HINT}`,
    );
  }
  loaded = { module, apiVersion };
  return module;
}

/** FoundationDB error codes (fdb_c error_definitions.h) mapped to our status codes. */
const fdbRetryable: ReadonlyMap<number, string> = new Map([
  [1020, 'not_committed (conflict)'],
  [1009, 'future_version'],
  [1037, 'process_behind'],
  [1042, 'proxy_memory_limit_exceeded'],
  [1051, 'batch_transaction_throttled'],
  [1213, 'tag_throttled'],
]);

export function mapFdbError(err: unknown): unknown {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'number' || err instanceof ThreeFsError) return err;
  const message = `FoundationDB error ${code}: ${(err as Error).message}`;
  const details = { fdbCode: code };
  const retry = fdbRetryable.get(code);
  if (retry !== undefined) {
    return new ThreeFsError('TXN_CONFLICT', `${message} (${retry}; retryable)`, details);
  }
  switch (code) {
    case 1007:
      return new ThreeFsError('TXN_TOO_OLD', message, details);
    case 2101:
      return new ThreeFsError('TXN_TOO_LARGE', message, details);
    case 2102: // key_too_large
    case 2103: // value_too_large
    case 2005: // inverted_range
    case 2004: // key_outside_legal_range
      return new ThreeFsError('INVALID_ARGUMENT', message, details);
    case 1021: // commit_unknown_result: the commit may or may not have happened
      return new ThreeFsError('UNAVAILABLE', `${message} (commit result unknown)`, details);
    case 1031: // transaction_timed_out
      return new ThreeFsError('DEADLINE_EXCEEDED', message, details);
    default:
      return new ThreeFsError('UNAVAILABLE', message, details);
  }
}

async function mapped<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    throw mapFdbError(err);
  }
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

class FdbTransaction implements Transaction {
  readonly snapshot: ReadView;
  private state: 'open' | 'committed' | 'ended' = 'open';
  private readonly budget: TxnBudget;

  constructor(
    private readonly raw: FdbRawTransaction,
    private readonly limits: KvLimits,
    private readonly finish: () => void,
  ) {
    this.budget = new TxnBudget(limits);
    const snap = raw.snapshot();
    this.snapshot = {
      get: (key) => this.get(key, snap),
      getRange: (begin, end, options) => this.getRange(begin, end, options, snap),
    };
  }

  /** FoundationDB's read version would cost a round trip before the first read: not offered. */
  snapshotVersion(): undefined {
    return undefined;
  }

  async get(key: Uint8Array, from: FdbRawTransaction = this.raw): Promise<Buffer | undefined> {
    this.checkUsable();
    checkKey(key, this.limits);
    return mapped(from.get(toBuffer(key)));
  }

  async getRange(
    begin: Uint8Array,
    end: Uint8Array,
    options?: RangeOptions,
    from: FdbRawTransaction = this.raw,
  ): Promise<KeyValue[]> {
    this.checkUsable();
    checkKey(begin, this.limits);
    checkKey(end, this.limits);
    const limit = options?.limit;
    if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) {
      throw new ThreeFsError(
        'INVALID_ARGUMENT',
        `getRange limit ${limit} is not a positive integer`,
      );
    }
    if (compareKeys(begin, end) >= 0) return [];
    const rangeOptions: { limit?: number; reverse?: boolean } = {
      reverse: options?.reverse === true,
    };
    if (limit !== undefined) rangeOptions.limit = limit;
    const rows = await mapped(from.getRangeAll(toBuffer(begin), toBuffer(end), rangeOptions));
    return rows.map(([key, value]) => ({ key, value }));
  }

  set(key: Uint8Array, value: Uint8Array): void {
    this.checkUsable();
    checkKey(key, this.limits);
    checkValue(value, this.limits);
    this.budget.chargeWrite(key.length + value.length);
    this.raw.set(Buffer.from(key), Buffer.from(value));
  }

  clear(key: Uint8Array): void {
    this.checkUsable();
    checkKey(key, this.limits);
    this.budget.chargeWrite(key.length);
    this.raw.clear(Buffer.from(key));
  }

  clearRange(begin: Uint8Array, end: Uint8Array): void {
    this.checkUsable();
    checkKey(begin, this.limits);
    checkKey(end, this.limits);
    if (compareKeys(begin, end) > 0) {
      throw new ThreeFsError('INVALID_ARGUMENT', 'clearRange: begin sorts after end');
    }
    this.budget.chargeWrite(begin.length + end.length);
    this.raw.clearRange(Buffer.from(begin), Buffer.from(end));
  }

  add(key: Uint8Array, delta: bigint): void {
    this.checkUsable();
    checkKey(key, this.limits);
    checkDelta(delta);
    const operand = encodeInt64LE(delta);
    this.budget.chargeWrite(key.length + ADD_OPERAND_BYTES);
    this.raw.add(Buffer.from(key), operand);
  }

  async commit(): Promise<void> {
    if (this.state === 'committed') return; // run() commits after a fn that already did
    this.checkUsable();
    this.state = 'ended';
    try {
      await mapped(this.raw.rawCommit());
      this.state = 'committed';
    } finally {
      this.finish();
    }
  }

  abort(): void {
    if (this.state !== 'open') return;
    this.state = 'ended';
    this.raw.rawCancel();
    this.finish();
  }

  private checkUsable(): void {
    if (this.state !== 'open') {
      throw new ThreeFsError(
        'FAILED_PRECONDITION',
        'transaction already committed or aborted: start a new one',
      );
    }
    this.budget.checkAge();
  }
}

export class FdbKvStore extends KvStoreBase {
  readonly engine = 'fdb' as const;

  private constructor(
    config: KvConfig,
    private readonly db: FdbDatabase,
  ) {
    super(config);
  }

  static async open(config: KvConfig): Promise<FdbKvStore> {
    const fdb = await loadFdb(config.fdbApiVersion);
    let db: FdbDatabase;
    try {
      db = fdb.open(config.fdbClusterFile === '' ? undefined : config.fdbClusterFile);
    } catch (err) {
      throw new ThreeFsError(
        'FAILED_PRECONDITION',
        `cannot open FoundationDB with cluster file '${config.fdbClusterFile || '(default)'}': ` +
          (err as Error).message,
      );
    }
    return new FdbKvStore(config, db);
  }

  protected openTransaction(finish: () => void): Transaction {
    return new FdbTransaction(this.db.rawCreateTransaction(), this.config.limits, finish);
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.db.close();
    }
    return Promise.resolve();
  }
}
