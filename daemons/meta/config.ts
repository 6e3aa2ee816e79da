// The meta daemon's configuration. Timings default to 3FS's (brief §13.2); tests shorten them.
import { z } from 'zod';
import {
  clusterFields,
  durationMs as ms,
  listenSchema,
  localSocketField,
  mgmtdAddresses,
  statusSchema,
} from '../common/config-fields.js';
import { ChunkSize } from '../common/layout.js';
import { kvConfigSchema } from '../common/kv/index.js';

export const metaConfigSchema = z.object({
  nodeId: z
    .number()
    .int()
    .positive()
    .describe('this meta node id (required, distinct per meta server)'),
  ...clusterFields,
  mgmtd: mgmtdAddresses,
  listen: listenSchema(8001),
  localSocket: localSocketField('unix socket for clients on this host (FUSE, CSI, tools)'),
  status: statusSchema(9101),
  kv: kvConfigSchema,
  heartbeatIntervalMs: ms(10_000, 'heartbeat interval to mgmtd'),
  routingRefreshMs: ms(10_000, 'routing info poll interval'),
  rootLayout: z
    .object({
      chainTableId: z
        .number()
        .int()
        .positive()
        .default(1)
        .describe('chain table of the root directory'),
      chunkSize: ChunkSize.default(1024 * 1024).describe('chunk size of the root directory'),
      stripeSize: z
        .number()
        .int()
        .min(1)
        .max(65_536)
        .default(16)
        .describe('stripe of the root directory'),
    })
    .prefault({})
    .describe('layout given to the root directory when the file system is first created'),
  gc: z
    .object({
      delayMs: ms(5 * 60_000, 'a removed file keeps its chunks this long'),
      intervalMs: ms(200, 'how often due GC items are looked for'),
      claimMs: ms(60_000, 'a GC item claimed by a server is left to it this long'),
      batch: z.number().int().min(1).max(4096).default(64).describe('GC items claimed per round'),
    })
    .prefault({}),
  idempotencyTtlMs: ms(30 * 60_000, 'results of mutating requests are kept this long for retries'),
  sessions: z
    .object({
      pruneIntervalMs: ms(5 * 60_000, 'how often sessions of dead clients are looked for'),
      graceMs: ms(60_000, 'a session younger than this is never pruned'),
    })
    .prefault({}),
  statfsCacheMs: ms(60_000, 'cluster capacity for statfs is cached this long'),
});

export type MetaConfig = z.output<typeof metaConfigSchema>;
export const META_ENV_PREFIX = 'THREEFS_META_';
