// The metadata KV store: the interface, its config, key helpers and the factory. Daemons import
// from here; engine files are internal.
export type {
  KeyValue,
  KvEngineName,
  KvStore,
  RangeOptions,
  ReadView,
  RunOptions,
  Transaction,
} from './types.js';
export {
  kvConfig,
  kvConfigSchema,
  kvLimitsSchema,
  type KvConfig,
  type KvLimits,
} from './config.js';
export {
  compareKeys,
  encodeKey,
  keyAfter,
  prefixRange,
  readU64be,
  strinc,
  u64be,
  type KeyPart,
} from './keys.js';
export { decodeInt64LE, encodeInt64LE } from './atomic.js';
export { openKvStore } from './open.js';
