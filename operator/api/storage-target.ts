// StorageTarget: one replica slot on one disk of one node, belonging to exactly one chain. The
// operator creates one per target it places; mgmtd's view of the target is mirrored into status.
import { z } from 'zod';
import {
  conditions,
  customResource,
  objectName,
  targetLocalState,
  targetPublicState,
  withRules,
} from './common.js';

const id = z.number().int().min(1);

export const storageTargetSpec = withRules(
  z.object({
    cluster: objectName.describe('The ThreeFSCluster this target belongs to (same namespace).'),
    node: objectName.describe('Kubernetes node holding the disk.'),
    disk: z
      .string()
      .min(2)
      .max(4096)
      .regex(/^\//)
      .describe('Device or directory path of the disk on the node.'),
    diskIndex: z.number().int().min(0).max(1023).describe('Index of the disk on its node.'),
    targetId: id.describe('3FS target id; unique in the cluster.'),
    chainId: id.describe('3FS chain id of the chain this target serves in.'),
  }),
  [
    {
      rule: 'self.node == oldSelf.node',
      message: 'node is immutable: a target lives on its disk',
      fieldPath: '.node',
    },
    {
      rule: 'self.disk == oldSelf.disk',
      message: 'disk is immutable: a target lives on its disk',
      fieldPath: '.disk',
    },
    {
      rule: 'self.targetId == oldSelf.targetId',
      message: 'targetId is immutable: chains and chunk metadata refer to it',
      fieldPath: '.targetId',
    },
    {
      rule: 'self.chainId == oldSelf.chainId',
      message: 'chainId is immutable: a target belongs to one chain for its whole life',
      fieldPath: '.chainId',
    },
  ],
);

export const storageTargetStatus = z.object({
  observedGeneration: z.number().int().min(0).optional(),
  publicState: targetPublicState.optional().describe('State mgmtd publishes to clients.'),
  localState: targetLocalState.optional().describe('State the storage daemon reports.'),
  chainVersion: z.number().int().min(0).optional(),
  usedBytes: z.number().int().min(0).optional(),
  resync: z
    .object({
      syncedBytes: z.number().int().min(0),
      totalBytes: z.number().int().min(0),
      percent: z.number().int().min(0).max(100),
    })
    .partial()
    .optional()
    .describe('Progress of re-sync from the predecessor while SYNCING.'),
  lastHeartbeatTime: z.string().meta({ format: 'date-time' }).optional(),
  conditions: conditions.optional(),
});

export const storageTarget = customResource(storageTargetSpec, storageTargetStatus);

export type StorageTargetSpec = z.infer<typeof storageTargetSpec>;
export type StorageTargetStatus = z.infer<typeof storageTargetStatus>;
export type StorageTarget = z.infer<typeof storageTarget>;
