// The FUSE daemon's configuration. Kernel cache lifetimes default to 3FS's (brief §6.1: attr
// and entry 30 s, negative 5 s); so do the write buffer (1 MiB) and max read/write (1 MiB).
import { z } from 'zod';
import {
  clusterFields,
  durationMs as ms,
  mgmtdAddresses,
  statusSchema,
} from '../common/config-fields.js';
import { DEFAULT_USRBIO_DIR } from '../common/usrbio-protocol.js';

const seconds = (value: number, description: string) =>
  z.number().min(0).max(86_400).default(value).describe(description);

export const fuseConfigSchema = z.object({
  ...clusterFields,
  mgmtd: mgmtdAddresses,
  mountpoint: z.string().min(1).describe('directory to mount on (must exist and be empty)'),
  attrTimeoutS: seconds(30, 'kernel attribute cache lifetime'),
  entryTimeoutS: seconds(30, 'kernel name → inode cache lifetime'),
  negativeTimeoutS: seconds(5, 'kernel cache lifetime of "no such name" (0 = not cached)'),
  writeBufferBytes: z
    .number()
    .int()
    .min(4096)
    .max(64 * 1024 * 1024)
    .default(1024 * 1024)
    .describe('per-inode write buffer (capped at the chunk size)'),
  flushDelayMs: ms(1_000, 'buffered writes reach storage at the latest this long after'),
  maxInFlightWrites: z
    .number()
    .int()
    .min(1)
    .max(64)
    .default(16)
    .describe('storage writes per inode in flight (write-behind depth)'),
  writeBehindBytes: z
    .number()
    .int()
    .min(1024 * 1024)
    .max(2 ** 34)
    .default(64 * 1024 * 1024)
    .describe('bytes of storage writes in flight across all files (write-behind memory)'),
  lengthHintMs: ms(5_000, 'how often write-opened files report their length to meta'),
  opTimeoutMs: ms(
    60_000,
    'an operation waits and retries this long for a lost mgmtd, meta or storage, then fails with EIO',
  ),
  attemptTimeoutMs: ms(5_000, 'deadline of one RPC attempt'),
  routingRefreshMs: ms(10_000, 'routing info poll interval'),
  groupsCacheMs: ms(1_000, 'supplementary groups of a caller pid are cached this long'),
  allowOther: z.boolean().default(false).describe('let users other than the mounter use the mount'),
  sharedMemoryReads: z
    .boolean()
    .default(true)
    .describe('let storage servers on this host read straight into read replies and USRBIO rings'),
  maxWrite: z
    .number()
    .int()
    .min(4096)
    .max(1024 * 1024)
    .default(1024 * 1024)
    .describe('largest FUSE write and read request'),
  maxBackground: z.number().int().min(1).max(1024).default(64).describe('kernel async requests'),
  maxHandles: z
    .number()
    .int()
    .min(16)
    .max(1 << 22)
    .default(1 << 20)
    .describe('open files + dirs'),
  debug: z.boolean().default(false).describe('libfuse debug output on stderr'),
  usrbio: z
    .object({
      enabled: z.boolean().default(true).describe('serve the zero-copy ring API (docs/usrbio.md)'),
      dir: z
        .string()
        .min(1)
        .default(DEFAULT_USRBIO_DIR)
        .describe('directory of the control sockets (<st_dev of the mount>.sock)'),
      maxSessions: z.number().int().min(1).max(4096).default(256).describe('programs at once'),
      maxEntries: z
        .number()
        .int()
        .min(1)
        .max(4096)
        .default(4096)
        .describe('ring slots per program'),
      maxRegionBytes: z
        .number()
        .int()
        .min(4096)
        .max(2 ** 40)
        .default(2 ** 34)
        .describe('largest shared data region per program'),
      maxIoBytes: z
        .number()
        .int()
        .min(4096)
        .max(2 ** 30)
        .default(64 * 1024 * 1024)
        .describe('largest single read or write'),
      maxFiles: z
        .number()
        .int()
        .min(1)
        .max(1 << 20)
        .default(4096)
        .describe('files per program'),
    })
    .prefault({}),
  status: statusSchema(9103),
});

export type FuseConfig = z.output<typeof fuseConfigSchema>;
export const FUSE_ENV_PREFIX = 'THREEFS_FUSE_';
