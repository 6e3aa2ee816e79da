// The threefs.io kinds with their CRD-only metadata. Printer columns answer "is it healthy?" at a
// glance; details that need a wide terminal are priority 1 (`kubectl get -o wide`).
import type { KindDefinition } from './crd.js';
import { storageChainSpec, storageChainStatus } from './storage-chain.js';
import { storageTargetSpec, storageTargetStatus } from './storage-target.js';
import { threeFSClusterSpec, threeFSClusterStatus } from './threefs-cluster.js';

export const threeFSClusterKind: KindDefinition = {
  kind: 'ThreeFSCluster',
  plural: 'threefsclusters',
  singular: 'threefscluster',
  shortNames: ['tfs'],
  description:
    'A 3FS file system: mgmtd, meta and storage daemons, its metadata store and its CSI driver.',
  spec: threeFSClusterSpec,
  status: threeFSClusterStatus,
  printerColumns: [
    { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    {
      name: 'Ready',
      type: 'string',
      jsonPath: '.status.conditions[?(@.type=="Ready")].status',
    },
    {
      name: 'Healthy-Chains',
      type: 'integer',
      jsonPath: '.status.chains.healthy',
      description: 'Chains with every target SERVING',
    },
    {
      name: 'Degraded-Chains',
      type: 'integer',
      jsonPath: '.status.chains.degraded',
      description: 'Chains missing a replica; still serving',
    },
    { name: 'Storage-Nodes', type: 'integer', jsonPath: '.status.nodes.ready' },
    { name: 'Version', type: 'string', jsonPath: '.spec.version' },
    { name: 'Primary', type: 'string', jsonPath: '.status.mgmtdPrimary', priority: 1 },
    { name: 'Used-Bytes', type: 'integer', jsonPath: '.status.capacity.usedBytes', priority: 1 },
    { name: 'Total-Bytes', type: 'integer', jsonPath: '.status.capacity.totalBytes', priority: 1 },
    { name: 'Message', type: 'string', jsonPath: '.status.message', priority: 1 },
  ],
};

export const storageTargetKind: KindDefinition = {
  kind: 'StorageTarget',
  plural: 'storagetargets',
  singular: 'storagetarget',
  shortNames: ['tfst'],
  description:
    'One 3FS storage target: a replica slot on one disk of one node, serving in one chain.',
  spec: storageTargetSpec,
  status: storageTargetStatus,
  printerColumns: [
    { name: 'Target', type: 'integer', jsonPath: '.spec.targetId' },
    { name: 'Chain', type: 'integer', jsonPath: '.spec.chainId' },
    { name: 'Node', type: 'string', jsonPath: '.spec.node' },
    { name: 'Public', type: 'string', jsonPath: '.status.publicState' },
    { name: 'Local', type: 'string', jsonPath: '.status.localState' },
    { name: 'Sync-%', type: 'integer', jsonPath: '.status.resync.percent', priority: 1 },
    { name: 'Used-Bytes', type: 'integer', jsonPath: '.status.usedBytes', priority: 1 },
    { name: 'Disk', type: 'string', jsonPath: '.spec.disk', priority: 1 },
  ],
};

export const storageChainKind: KindDefinition = {
  kind: 'StorageChain',
  plural: 'storagechains',
  singular: 'storagechain',
  shortNames: ['tfsc'],
  description: 'One 3FS chain: an ordered list of storage targets on distinct nodes (CRAQ).',
  spec: storageChainSpec,
  status: storageChainStatus,
  printerColumns: [
    { name: 'Chain', type: 'integer', jsonPath: '.spec.chainId' },
    { name: 'Table', type: 'integer', jsonPath: '.spec.chainTable' },
    { name: 'Health', type: 'string', jsonPath: '.status.health' },
    { name: 'Version', type: 'integer', jsonPath: '.status.chainVersion' },
    { name: 'Targets', type: 'string', jsonPath: '.spec.targets', priority: 1 },
  ],
};

export const allKinds: readonly KindDefinition[] = [
  threeFSClusterKind,
  storageTargetKind,
  storageChainKind,
];
