// The KV store's configuration, one zod schema embedded in every daemon's config (mgmtd, meta,
// admin CLI) under a `kv` key. Limits default to FoundationDB's own, so code that passes on the
// embedded engine does not start failing when a cluster moves to FoundationDB.
import { z } from 'zod';
import { DEFAULT_INLINE_SYNC_BELOW_MS } from './wal.js';

export const kvLimitsSchema = z
  .object({
    maxKeyBytes: z.number().int().positive().default(10_000).describe('largest key (FDB: 10,000)'),
    maxValueBytes: z
      .number()
      .int()
      .positive()
      .default(100_000)
      .describe('largest value (FDB: 100,000)'),
    maxTxnBytes: z
      .number()
      .int()
      .positive()
      .default(10_000_000)
      .describe('bytes of mutations in one transaction (FDB: 10,000,000)'),
    maxReadBytes: z
      .number()
      .int()
      .positive()
      .default(50_000_000)
      .describe('bytes one transaction may read and keep for conflict checks'),
    maxTxnAgeMs: z
      .number()
      .int()
      .positive()
      .default(5_000)
      .describe('a transaction older than this fails with TXN_TOO_OLD (FDB: 5 s)'),
  })
  .prefault({});

export const kvConfigSchema = z
  .object({
    engine: z
      .enum(['embedded', 'fdb'])
      .default('embedded')
      .describe('embedded = LMDB on this host; fdb = a FoundationDB cluster'),
    path: z
      .string()
      .min(1)
      .default('.threefs/kv')
      .describe('embedded engine: directory of the LMDB files (shared by processes on this host)'),
    walSegmentBytes: z
      .number()
      .int()
      .min(64 << 10)
      .default(16 << 20)
      .describe(
        'embedded engine: size of one write-ahead log segment file (zero-filled at creation)',
      ),
    checkpointEveryBytes: z
      .number()
      .int()
      .min(1 << 20)
      .default(64 << 20)
      .describe(
        'embedded engine: write a restore point after this much log (or a quarter of the data file, if larger)',
      ),
    dataFileReserveBytes: z
      .number()
      .int()
      .min(64 << 10)
      .default(16 << 20)
      .describe(
        'embedded engine: zeroed space kept at the end of the LMDB data file beyond what a commit may need, so LMDB never meets a full disk; commits fail cleanly once the disk cannot give it',
      ),
    inlineSyncBelowMs: z
      .number()
      .min(0)
      .max(100)
      .default(DEFAULT_INLINE_SYNC_BELOW_MS)
      .describe(
        'embedded engine: a log fdatasync that recently took less than this runs on the event loop rather than the thread pool (0 = never)',
      ),
    fdbClusterFile: z
      .string()
      .default('')
      .describe('fdb engine: cluster file; empty = the client library default'),
    fdbApiVersion: z.number().int().min(520).default(620).describe('fdb engine: API version'),
    maxRetries: z
      .number()
      .int()
      .min(0)
      .default(100)
      .describe('run(): attempts after a conflict before giving up'),
    retryTimeoutMs: z
      .number()
      .int()
      .positive()
      .default(30_000)
      .describe('run(): stop retrying after this long'),
    maxOpenTransactions: z
      .number()
      .int()
      .positive()
      .max(4_096)
      .default(256)
      .describe('transactions open at once in this process; run() waits for a slot'),
    maxWaitingTransactions: z
      .number()
      .int()
      .min(0)
      .default(10_000)
      .describe('run() calls allowed to wait for a slot before RESOURCE_EXHAUSTED'),
    limits: kvLimitsSchema,
  })
  .prefault({});

export type KvConfig = z.output<typeof kvConfigSchema>;
export type KvLimits = z.output<typeof kvLimitsSchema>;

/** A full config from a partial one, e.g. in tests: `kvConfig({ path })`. */
export function kvConfig(input: z.input<typeof kvConfigSchema> = {}): KvConfig {
  return kvConfigSchema.parse(input);
}
