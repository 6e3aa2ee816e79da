// mgmtd's configuration. Timings default to 3FS's (brief §13.2); tests shorten them.
import { z } from 'zod';
import {
  clusterFields,
  durationMs as ms,
  listenSchema,
  statusSchema,
} from '../common/config-fields.js';
import { kvConfigSchema } from '../common/kv/index.js';

export const mgmtdConfigSchema = z.object({
  nodeId: z
    .number()
    .int()
    .positive()
    .default(1)
    .describe('this mgmtd node id (distinct per mgmtd)'),
  ...clusterFields,
  listen: listenSchema(9000),
  status: statusSchema(9090),
  kv: kvConfigSchema,
  lease: z
    .object({
      lengthMs: ms(60_000, 'lease length'),
      renewIntervalMs: ms(10_000, 'how often every mgmtd runs the lease round'),
      suspiciousMarginMs: ms(20_000, 'trust the lease only with this much left'),
      checkReleaseVersion: z.boolean().default(true).describe('an older release may not take over'),
    })
    .prefault({}),
  bootstrapMs: ms(120_000, 'after a takeover, chain updates wait this long for heartbeats'),
  heartbeat: z
    .object({
      failAfterMs: ms(60_000, 'a node silent this long is HEARTBEAT_FAILED, its targets OFFLINE'),
      checkIntervalMs: ms(10_000, 'how often silent nodes are looked for'),
      maxClockSkewMs: ms(30_000, 'heartbeats from clocks further off are refused'),
      allowUnregistered: z.boolean().default(true).describe('a first heartbeat registers the node'),
    })
    .prefault({}),
  chainUpdateIntervalMs: ms(1_000, 'how often the chain state machine runs'),
  routingPersistIntervalMs: ms(5_000, 'how often a changed routing version is persisted'),
  clientSessionTimeoutMs: ms(
    20 * 60_000,
    'client sessions expire after this long without extension',
  ),
  disabled: z.boolean().default(false).describe('a disabled mgmtd never takes the lease'),
});

export type MgmtdConfig = z.output<typeof mgmtdConfigSchema>;
export const MGMTD_ENV_PREFIX = 'THREEFS_MGMTD_';
