// The threefs.io/v1alpha1 API as the operator and CSI driver import it.
export * from './common.js';
export * from './threefs-cluster.js';
export * from './storage-target.js';
export * from './storage-chain.js';
export { allKinds, storageChainKind, storageTargetKind, threeFSClusterKind } from './kinds.js';
export { buildCrd, crdName, CATEGORY } from './crd.js';
export type { KindDefinition, PrinterColumn } from './crd.js';
