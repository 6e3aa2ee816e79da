// The storage daemon's configuration. Timings default to 3FS's (brief §13.2); tests shorten them.
import { z } from 'zod';
import {
  clusterFields,
  durationMs as ms,
  listenSchema,
  localSocketField,
  mgmtdAddresses,
  statusSchema,
} from '../common/config-fields.js';
import { DEFAULT_LOOP_READ_BYTES } from './engine/config.js';

export const storageConfigSchema = z.object({
  nodeId: z
    .number()
    .int()
    .positive()
    .describe('this storage node id (required, distinct per node)'),
  ...clusterFields,
  mgmtd: mgmtdAddresses,
  listen: listenSchema(8000),
  localSocket: localSocketField(
    'unix socket for clients on this host: reads land in their shared memory',
  ),
  status: statusSchema(9100),
  disks: z
    .array(z.string().min(1))
    .min(1)
    .describe('one directory per disk; disk index = position'),
  heartbeatIntervalMs: ms(10_000, 'heartbeat and target report interval'),
  routingRefreshMs: ms(10_000, 'routing info poll interval (also refreshed on demand)'),
  forward: z
    .object({
      initialBackoffMs: ms(100, 'first retry delay of a failed forward'),
      maxBackoffMs: ms(1_000, 'largest retry delay'),
      totalMs: ms(60_000, 'give up forwarding after this long'),
      timeoutMs: ms(10_000, 'deadline of one forward attempt'),
    })
    .prefault({}),
  resync: z
    .object({
      intervalMs: ms(500, 'how often chains with a SYNCING successor are looked for'),
      concurrency: z
        .number()
        .int()
        .min(1)
        .max(256)
        .default(16)
        .describe('chunks transferred at once per chain'),
      pageSize: z
        .number()
        .int()
        .min(1)
        .max(65_536)
        .default(4096)
        .describe('successor metadata page size'),
    })
    .prefault({}),
  space: z
    .object({
      lowSpaceRatio: z.number().min(0).max(1).default(0.96),
      rejectNewChunkRatio: z.number().min(0).max(1).default(0.98),
    })
    .prefault({}),
  engine: z
    .object({
      filesPerClass: z
        .number()
        .int()
        .min(1)
        .max(256)
        .default(256)
        .describe('data files per size class'),
      directIo: z
        .enum(['auto', 'off'])
        .default('auto')
        .describe('O_DIRECT where the file system allows it'),
      io: z
        .object({
          loopReadBytes: z
            .number()
            .int()
            .min(0)
            .max(64 * 2 ** 20)
            .default(DEFAULT_LOOP_READ_BYTES)
            .describe('read batches up to this many bytes run on the event loop (0: none)'),
        })
        .prefault({}),
    })
    .prefault({}),
  maxConcurrentUpdates: z
    .number()
    .int()
    .min(1)
    .max(65_536)
    .default(1024)
    .describe('updates in progress at once'),
});

export type StorageConfig = z.output<typeof storageConfigSchema>;
export const STORAGE_ENV_PREFIX = 'THREEFS_STORAGE_';
