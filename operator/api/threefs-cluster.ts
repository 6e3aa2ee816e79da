// ThreeFSCluster: one 3FS file system, as its user declares it (spec) and as mgmtd reports it
// (status). The operator turns the spec into mgmtd, meta and storage workloads, StorageTargets and
// StorageChains. Rules the apiserver enforces live here as CEL next to the fields they guard.
import { z } from 'zod';
import {
  conditions,
  customResource,
  immutable,
  MAX_REPLICATION_FACTOR,
  objectName,
  placement,
  quantity,
  resources,
  withRules,
} from './common.js';

/** The string a user must type to let a cluster deletion wipe data (Rook's convention). */
export const DESTROY_DATA_CONFIRMATION = 'yes-really-destroy-data';

/** Chunk sizes meta accepts: powers of two from 64 KiB to 64 MiB (brief §2.1). */
export const chunkSizes = [
  '64Ki',
  '128Ki',
  '256Ki',
  '512Ki',
  '1Mi',
  '2Mi',
  '4Mi',
  '8Mi',
  '16Mi',
  '32Mi',
  '64Mi',
] as const;

const absolutePath = z.string().min(2).max(4096).regex(/^\//);

const images = z
  .object({
    threefs: z
      .string()
      .min(1)
      .max(512)
      .default('ghcr.io/threefs/threefs')
      .describe('Repository of the threefs image; the tag is spec.version.'),
    pullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'),
    pullSecrets: z.array(objectName).max(16).optional(),
  })
  .prefault({});

const keyRef = z.object({
  name: objectName,
  key: z.string().min(1).max(253).default('cluster-file'),
});

const existingFoundationDB = withRules(
  z
    .object({
      clusterFileConfigMap: keyRef.optional(),
      clusterFileSecret: keyRef.optional(),
    })
    .describe('An existing FoundationDB cluster, reached through its cluster file.'),
  [
    {
      rule: 'has(self.clusterFileConfigMap) != has(self.clusterFileSecret)',
      message: 'set exactly one of clusterFileConfigMap and clusterFileSecret',
    },
  ],
);

const managedFoundationDB = z
  .object({
    version: z
      .string()
      .regex(/^\d+\.\d+\.\d+$/)
      .describe('FoundationDB version for the FoundationDBCluster.'),
    redundancyMode: z.enum(['single', 'double', 'triple']).default('double'),
    storageProcesses: z.number().int().min(1).max(1000).default(3),
    logProcesses: z.number().int().min(1).max(100).default(3),
    statelessProcesses: z.number().int().min(1).max(100).default(3),
    storageSize: quantity.default('16Gi'),
    storageClassName: z.string().max(253).optional(),
  })
  .describe(
    'A FoundationDBCluster the operator creates; needs the FoundationDB operator in the cluster.',
  );

const embedded = z
  .object({
    size: quantity.default('10Gi').describe('Size of the volume holding the embedded store.'),
    storageClassName: z.string().max(253).optional(),
  })
  .describe('The embedded single-host store: mgmtd and meta share one volume on one node.');

const metadataBackends = ['Embedded', 'ExistingFoundationDB', 'ManagedFoundationDB'] as const;

const metadataStore = withRules(
  z.object({
    backend: immutable(
      z.enum(metadataBackends).default('Embedded'),
      'metadataStore.backend',
      'metadata cannot be moved between stores',
    ),
    embedded: embedded.optional(),
    existingFoundationDB: existingFoundationDB.optional(),
    managedFoundationDB: managedFoundationDB.optional(),
  }),
  [
    {
      rule: "self.backend != 'ExistingFoundationDB' || has(self.existingFoundationDB)",
      message: 'backend ExistingFoundationDB needs metadataStore.existingFoundationDB',
      fieldPath: '.existingFoundationDB',
      reason: 'FieldValueRequired',
    },
    {
      rule: "self.backend != 'ManagedFoundationDB' || has(self.managedFoundationDB)",
      message: 'backend ManagedFoundationDB needs metadataStore.managedFoundationDB',
      fieldPath: '.managedFoundationDB',
      reason: 'FieldValueRequired',
    },
    {
      rule: "self.backend == 'Embedded' || !has(self.embedded)",
      message: 'metadataStore.embedded is only valid with backend Embedded',
      fieldPath: '.embedded',
      reason: 'FieldValueForbidden',
    },
  ],
);

const mgmtd = z
  .object({
    replicas: z
      .number()
      .int()
      .min(1)
      .max(7)
      .default(1)
      .describe('mgmtd replicas; one holds the lease and is primary, the others stand by.'),
    resources: resources.optional(),
    placement: placement.optional(),
  })
  .prefault({});

const meta = z
  .object({
    replicas: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(1)
      .describe('meta replicas; meta is stateless on FoundationDB, so any count serves.'),
    resources: resources.optional(),
    placement: placement.optional(),
  })
  .prefault({});

const storageNode = withRules(
  z.object({
    name: objectName.describe('Kubernetes node name.'),
    devices: z.array(absolutePath).max(64).optional().describe('Block devices to format and use.'),
    directories: z
      .array(absolutePath)
      .max(64)
      .optional()
      .describe('Directories on existing file systems to use as disks.'),
  }),
  [
    {
      rule: '(has(self.devices) && size(self.devices) > 0) || (has(self.directories) && size(self.directories) > 0)',
      message: 'a storage node needs at least one device or directory',
    },
  ],
);

const storage = withRules(
  z.object({
    placement: placement.optional(),
    nodes: z
      .array(storageNode)
      .min(1)
      .max(1024)
      .optional()
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] })
      .describe('Explicit storage nodes and their disks; when set, only these nodes hold storage.'),
    deviceFilter: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .describe(
        'Regular expression on kernel device names (e.g. ^nvme[0-9]+n1$) on selected nodes.',
      ),
    devicePathFilter: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .describe('Regular expression on /dev/disk/by-path or by-id names on selected nodes.'),
    directories: z
      .array(absolutePath)
      .min(1)
      .max(64)
      .optional()
      .describe('Directories used as disks on every selected node (file-backed targets).'),
    targetsPerDisk: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(1)
      .describe('Storage targets created on each disk; more targets spread recovery load.'),
    replicationFactor: immutable(
      z.number().int().min(1).max(MAX_REPLICATION_FACTOR).default(3),
      'storage.replicationFactor',
      'chains cannot change length in place',
    ).describe('Targets per chain (replicas of each chunk), on distinct nodes.'),
    chunkSize: immutable(
      z.enum(chunkSizes).default('1Mi'),
      'storage.chunkSize',
      'existing files and targets are laid out in it',
    ).describe('Chunk size of the root layout; a power of two from 64Ki to 64Mi.'),
    stripe: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .default(16)
      .describe('Chains each new file is striped over (production 3FS uses up to 200).'),
    resources: resources.optional(),
  }),
  [
    {
      rule: 'has(self.nodes) || has(self.deviceFilter) || has(self.devicePathFilter) || has(self.directories)',
      message: 'storage needs disks: set nodes, deviceFilter, devicePathFilter or directories',
    },
    {
      rule: '!has(self.nodes) || size(self.nodes) >= self.replicationFactor',
      message:
        'storage.replicationFactor exceeds the number of storage nodes listed: each replica needs its own node',
      fieldPath: '.replicationFactor',
    },
  ],
);

const client = z
  .object({
    mountOptions: z.array(z.string().min(1).max(256)).max(32).optional(),
    resources: resources.optional().describe('Resources of the per-node FUSE mount pod.'),
    placement: placement.optional(),
  })
  .prefault({});

const csi = z
  .object({
    enabled: z.boolean().default(true),
    driverName: immutable(
      z
        .string()
        .min(3)
        .max(63)
        .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/)
        .default('csi.threefs.io'),
      'csi.driverName',
      'existing PersistentVolumes name the driver',
    ),
    storageClass: z
      .object({
        create: z.boolean().default(true),
        name: objectName.default('threefs'),
        reclaimPolicy: z.enum(['Delete', 'Retain']).default('Delete'),
        allowVolumeExpansion: z.boolean().default(true),
      })
      .prefault({}),
    resources: resources.optional(),
    placement: placement.optional(),
  })
  .prefault({});

const network = withRules(
  z
    .object({
      hostNetwork: z
        .boolean()
        .default(false)
        .describe('Run daemons in the host network namespace (usual with RDMA).'),
      transport: z.enum(['TCP', 'RDMA']).default('TCP'),
      rdma: z
        .object({
          resourceNames: z
            .array(z.string().min(1).max(253))
            .min(1)
            .max(8)
            .describe('Extended resources granting RDMA devices, e.g. rdma/hca_shared_devices_a.'),
          devices: z
            .array(z.string().min(1).max(64))
            .max(16)
            .optional()
            .describe('RDMA device names to use (e.g. mlx5_0); all when unset.'),
        })
        .optional(),
    })
    .prefault({}),
  [
    {
      rule: "self.transport != 'RDMA' || has(self.rdma)",
      message: 'transport RDMA needs network.rdma.resourceNames',
      fieldPath: '.rdma',
      reason: 'FieldValueRequired',
    },
  ],
);

const updateStrategy = z
  .object({
    maxUnavailableStorageNodes: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .default(1)
      .describe(
        'Storage nodes restarted at once during an update; chain health also gates each step.',
      ),
  })
  .prefault({});

const cleanupPolicy = withRules(
  z
    .object({
      onDelete: z
        .enum(['Retain', 'DeleteData'])
        .default('Retain')
        .describe('What deleting the cluster does to data on disks and in the metadata store.'),
      confirmation: z
        .string()
        .max(64)
        .optional()
        .describe(`Must be "${DESTROY_DATA_CONFIRMATION}" for onDelete DeleteData.`),
      sanitizeDisks: z.enum(['Quick', 'Complete']).default('Quick'),
    })
    .prefault({}),
  [
    {
      rule: `self.onDelete != 'DeleteData' || (has(self.confirmation) && self.confirmation == '${DESTROY_DATA_CONFIRMATION}')`,
      message: `cleanupPolicy.onDelete DeleteData destroys data: set cleanupPolicy.confirmation to "${DESTROY_DATA_CONFIRMATION}"`,
      fieldPath: '.confirmation',
      reason: 'FieldValueRequired',
    },
  ],
);

export const threeFSClusterSpec = withRules(
  z.object({
    version: z
      .string()
      .max(64)
      .regex(/^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$/)
      .describe('threefs release to run; also the image tag.'),
    images,
    metadataStore: metadataStore.prefault({}),
    mgmtd,
    meta,
    storage,
    client,
    csi,
    network,
    updateStrategy,
    paused: z
      .boolean()
      .default(false)
      .describe('Stop reconciling this cluster: nothing is created, changed or deleted.'),
    cleanupPolicy,
  }),
  [
    {
      rule: "self.metadataStore.backend != 'Embedded' || (self.mgmtd.replicas == 1 && self.meta.replicas == 1)",
      message:
        'the Embedded metadata store lives on one node: mgmtd.replicas and meta.replicas must be 1 (use FoundationDB to scale)',
      fieldPath: '.metadataStore.backend',
    },
    {
      rule: 'self.storage.replicationFactor == 1 || self.updateStrategy.maxUnavailableStorageNodes < self.storage.replicationFactor',
      message:
        'updateStrategy.maxUnavailableStorageNodes must be below storage.replicationFactor so every chain keeps a serving replica',
      fieldPath: '.updateStrategy.maxUnavailableStorageNodes',
    },
  ],
);

const count = z.number().int().min(0);

export const threeFSClusterStatus = z.object({
  phase: z
    .enum(['Pending', 'Creating', 'Ready', 'Updating', 'Degraded', 'Failed', 'Deleting', 'Paused'])
    .optional(),
  message: z.string().max(32768).optional(),
  observedGeneration: count.optional(),
  conditions: conditions
    .optional()
    .describe('Ready, Progressing and Degraded, with observedGeneration.'),
  nodes: z
    .object({ desired: count, ready: count, notReady: count })
    .partial()
    .optional()
    .describe('Storage nodes.'),
  targets: z
    .object({
      total: count,
      serving: count,
      syncing: count,
      waiting: count,
      lastServing: count,
      offline: count,
    })
    .partial()
    .optional()
    .describe('Storage targets by public state.'),
  chains: z
    .object({ total: count, healthy: count, degraded: count, unavailable: count })
    .partial()
    .optional(),
  capacity: z
    .object({ totalBytes: count, usedBytes: count, availableBytes: count })
    .partial()
    .optional(),
  mgmtdPrimary: z.string().max(253).optional().describe('Pod holding the mgmtd lease.'),
  versions: z
    .object({ mgmtd: z.string(), meta: z.string(), storage: z.string(), client: z.string() })
    .partial()
    .optional()
    .describe('Versions running, per component; more than one means an update is rolling.'),
});

export const threeFSCluster = customResource(threeFSClusterSpec, threeFSClusterStatus);

export type ThreeFSClusterSpec = z.infer<typeof threeFSClusterSpec>;
export type ThreeFSClusterStatus = z.infer<typeof threeFSClusterStatus>;
export type ThreeFSCluster = z.infer<typeof threeFSCluster>;
