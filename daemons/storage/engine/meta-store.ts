// The engine's crash-safe metadata: one LMDB environment per disk holding every chunk record, keyed
// by chainId ‖ chunkId. Reads are synchronous (LMDB is memory-mapped). Writes go through lmdb-js's
// batched write transactions: every write queued while the previous batch is writing shares one
// LMDB commit (group commit), each write is all-or-nothing, and write() resolves only once its
// commit is flushed to disk (db.flushed). overlappingSync lets a batch's fdatasync run outside
// LMDB's writer lock while the next batch writes: chunk writes keep the disk queue full, so a
// flush waits behind data and serializing commits behind it cost chain-1 writes a quarter of
// their throughput. lmdb-js keeps the meta pages so that a crash reverts at most to the last
// flushed commit (after a reboot) and never corrupts; never noSync.
import { open, type RootDatabase } from 'lmdb';
import { mkdirSync } from 'node:fs';
import { ThreeFsError } from '../../common/errors.js';

/** Readers in the lock file; reads are short, but many may be in progress at once. */
const MAX_READERS = 1_024;

export interface MetaWrite {
  key: Buffer;
  /** null deletes the key. */
  value: Buffer | null;
}

function storeError(action: string, err: unknown): ThreeFsError {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  if (
    code === 'ENOSPC' ||
    code === 'MDB_MAP_FULL' ||
    /ENOSPC|No space left|MDB_MAP_FULL|-30792/.test(message)
  ) {
    return new ThreeFsError(
      'NO_SPACE',
      `chunk metadata ${action} failed: the disk is full (${message})`,
    );
  }
  return new ThreeFsError('UNAVAILABLE', `chunk metadata ${action} failed: ${message}`);
}

export class MetaStore {
  private readonly db: RootDatabase<Buffer, Buffer>;
  private closed = false;

  constructor(readonly path: string) {
    try {
      mkdirSync(path, { recursive: true });
      this.db = open<Buffer, Buffer>({
        path,
        keyEncoding: 'binary',
        encoding: 'binary',
        overlappingSync: true,
        noSync: false,
        maxReaders: MAX_READERS,
      });
    } catch (err) {
      throw new ThreeFsError(
        'FAILED_PRECONDITION',
        `cannot open the chunk metadata store at ${path}: ${(err as Error).message}`,
      );
    }
  }

  get(key: Buffer): Buffer | undefined {
    this.checkOpen();
    return this.db.getBinary(key);
  }

  /** Rows with start <= key < end (end undefined: to the end), in key order, at most `limit`. */
  *range(
    start: Buffer,
    end: Buffer | undefined,
    limit?: number,
  ): Generator<{ key: Buffer; value: Buffer }> {
    this.checkOpen();
    const options: Record<string, unknown> = { start };
    if (end !== undefined) options.end = end;
    if (limit !== undefined) options.limit = limit;
    for (const row of this.db.getRange(options) as Iterable<{ key: Buffer; value: Buffer }>) {
      yield row;
    }
  }

  /**
   * Applies the writes atomically and durably: resolves once they are flushed. (They are visible
   * to get() a little earlier, as soon as LMDB commits; callers must not free what the old
   * record named before this resolves.)
   */
  async write(writes: readonly MetaWrite[]): Promise<void> {
    this.checkOpen();
    const db = this.db;
    try {
      // The callback stays synchronous: lmdb-js runs it inside its batched write transaction.
      await db.transaction(() => {
        for (const w of writes) {
          if (w.value === null) db.removeSync(w.key);
          else db.putSync(w.key, w.value);
        }
      });
      await db.flushed;
    } catch (err) {
      throw storeError('commit', err);
    }
  }

  /** LMDB's id of its last write transaction (each one fdatasync), to show group commit. */
  lastCommitId(): number {
    return (this.db.getStats() as { lastTxnId: number }).lastTxnId;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new ThreeFsError('UNAVAILABLE', 'chunk metadata store is closed');
  }
}
