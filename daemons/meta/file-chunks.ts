// What meta needs from storage: a file's exact length (close, fsync) and removing its chunks (GC,
// truncate). The storage client (daemons/client/storage-client.ts) provides both; meta depends only
// on this interface so its own tests and wiring do not change when the implementation does.
import type { Layout } from '../common/layout.js';

export interface FileChunks {
  /** Exact length from query-last-chunk over the first `dynStripe` chains of the file's stripe. */
  fileLength(layout: Layout, inodeId: number, dynStripe: number): Promise<number>;
  /** Removes every chunk with index ≥ fromChunkIndex through each chain (idempotent). */
  removeFileChunks(
    layout: Layout,
    inodeId: number,
    fromChunkIndex: number,
    dynStripe: number,
  ): Promise<void>;
}
