// StorageChain: an ordered list of targets on distinct nodes; a chunk is written to the head and
// committed at the tail (CRAQ). The order in spec is the desired order; mgmtd's current order,
// version and per-target states are mirrored into status.
import { z } from 'zod';
import {
  conditions,
  customResource,
  immutable,
  MAX_REPLICATION_FACTOR,
  objectName,
  targetLocalState,
  targetPublicState,
  withRules,
} from './common.js';

const id = z.number().int().min(1);

export const storageChainSpec = z.object({
  cluster: objectName.describe('The ThreeFSCluster this chain belongs to (same namespace).'),
  chainId: immutable(id, 'chainId', 'files are striped over chain ids').describe('3FS chain id.'),
  chainTable: z
    .number()
    .int()
    .min(1)
    .max(65535)
    .default(1)
    .describe('Id of the chain table this chain is listed in.'),
  targets: withRules(
    z.array(id).min(1).max(MAX_REPLICATION_FACTOR).meta({ 'x-kubernetes-list-type': 'atomic' }),
    [{ rule: 'self.all(t, self.exists_one(u, u == t))', message: 'targets must be distinct' }],
  ).describe('Target ids, head first.'),
});

export const chainHealth = z.enum(['Healthy', 'Degraded', 'Unavailable']);

export const storageChainStatus = z.object({
  observedGeneration: z.number().int().min(0).optional(),
  chainVersion: z.number().int().min(0).optional().describe('Bumped by mgmtd on every change.'),
  health: chainHealth
    .optional()
    .describe('Healthy: every target SERVING; Degraded: some; Unavailable: none.'),
  targets: z
    .array(
      z.object({
        targetId: id,
        publicState: targetPublicState.optional(),
        localState: targetLocalState.optional(),
      }),
    )
    .max(MAX_REPLICATION_FACTOR)
    .optional()
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['targetId'] })
    .describe('Targets in mgmtd order with their states.'),
  conditions: conditions.optional(),
});

export const storageChain = customResource(storageChainSpec, storageChainStatus);

export type StorageChainSpec = z.infer<typeof storageChainSpec>;
export type StorageChainStatus = z.infer<typeof storageChainStatus>;
export type StorageChain = z.infer<typeof storageChain>;
