// Options of one chunk engine (one disk), validated by zod so a bad value fails open() with the
// field named. The storage daemon embeds this schema in its own config.
import { z } from 'zod';

/** Gather batches reading up to this many bytes run on the event loop's ring (io.loopReadBytes). */
export const DEFAULT_LOOP_READ_BYTES = 256 * 2 ** 10;

export const chunkEngineOptionsSchema = z.object({
  /** The disk's directory: data/ (the data files) and meta/ (LMDB) live under it. */
  path: z.string().min(1),
  /** Data files per size class (3FS uses 256). Fixed for the life of a disk: it may not shrink. */
  filesPerClass: z.number().int().min(1).max(256).default(256),
  /** Most bytes one growth of a data file preallocates (a group of 256 blocks at most). */
  extendBytes: z
    .number()
    .int()
    .min(65_536)
    .default(64 * 2 ** 20),
  /** Write zeros over each new extent (trades one-time writes for cheaper first writes). */
  zeroNewExtents: z.boolean().default(false),
  /** 'auto': O_DIRECT where the file system allows it; 'off': buffered I/O. */
  directIo: z.enum(['auto', 'off']).default('auto'),
  lowSpaceThreshold: z.number().gt(0).lte(1).default(0.96),
  rejectNewChunksThreshold: z.number().gt(0).lte(1).default(0.98),
  io: z
    .object({
      backend: z.enum(['auto', 'io_uring', 'threads']).default('auto'),
      queueDepth: z.number().int().min(8).max(4096).default(256),
      threads: z.number().int().min(1).max(256).default(8),
      maxInFlightBatches: z.number().int().min(1).max(65_536).default(256),
      /**
       * Reads of a batch up to this many bytes from the disk go to an io_uring the event loop
       * drives itself, with no thread woken on either side; larger ones (and their checksums)
       * stay on the I/O thread. 0 sends every read to the I/O thread.
       */
      loopReadBytes: z
        .number()
        .int()
        .min(0)
        .max(64 * 2 ** 20)
        .default(DEFAULT_LOOP_READ_BYTES),
      maxQueuedBatches: z.number().int().min(1).default(16_384),
      /**
       * Long-lived read destinations, allocated as reads need them. A block returns only when V8's
       * full collection has collected every view of it; reads past the cap get one-off buffers,
       * which V8 counts as external memory and answers with more full collections. At 1 MiB
       * reads near 2 GB/s, 128 MiB ran dry between collections (0.41 ms CPU per MiB, 0.9–1.6
       * GB/s); 512 MiB did not (0.29 ms per MiB, 2.0–2.2 GB/s).
       */
      readPoolBytes: z
        .number()
        .int()
        .min(0)
        .max(64 * 2 ** 30)
        .default(512 * 2 ** 20),
    })
    .prefault({}),
  /** Chunk operations (updates, commits) allowed to wait for their chunk at once. */
  maxQueuedChunkOps: z.number().int().min(1).default(65_536),
});

export type ChunkEngineOptions = z.input<typeof chunkEngineOptionsSchema>;
export type ChunkEngineConfig = z.output<typeof chunkEngineOptionsSchema>;
