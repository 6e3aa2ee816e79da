// The metadata service's tables in the KV store (brief §5.1). Inode ids are little-endian in keys,
// as in 3FS: consecutive ids then land far apart, which spreads the inodes of one burst of creates
// over FoundationDB's shards instead of hammering one; nothing scans inodes in id order.
import { ThreeFsError } from '../common/errors.js';
import { encodeKey, prefixRange, u64be } from '../common/kv/index.js';

/** FUSE's root inode number is 1; so is ours. */
export const ROOT_ID = 1;
/** Parent of every removed directory subtree awaiting GC; never reachable by path. */
export const GC_ROOT_ID = 2;

export function u64le(id: number): Buffer {
  if (!Number.isSafeInteger(id) || id < 0) {
    throw new ThreeFsError('INVALID_ARGUMENT', `id ${id} is not a non-negative safe integer`);
  }
  const out = Buffer.allocUnsafe(8);
  out.writeBigUInt64LE(BigInt(id));
  return out;
}

export const inodeKey = (id: number): Buffer => encodeKey('INOD', u64le(id));
export const dentryKey = (parent: number, name: string): Buffer =>
  encodeKey('DENT', u64le(parent), name);
/** Every dentry of one directory, in name order. */
export const dentryRange = (parent: number) => prefixRange(encodeKey('DENT', u64le(parent)));
/** A directory's modification time, kept apart from its inode (see docs/meta.md). */
export const dirTimesKey = (dir: number): Buffer => encodeKey('DTIM', u64le(dir));

export const sessionKey = (inode: number, sessionId: string): Buffer =>
  encodeKey('INOS', u64le(inode), sessionId);
export const sessionRange = (inode: number) => prefixRange(encodeKey('INOS', u64le(inode)));
export const allSessionsRange = () => prefixRange(Buffer.from('INOS'));
export const SESSION_PREFIX_BYTES = 4 + 8;

export const idempotencyKey = (clientId: string, requestId: string): Buffer =>
  encodeKey('IDEM', `${clientId}\u0000${requestId}`);
/** Expiry index of idempotency records: time first, so the cleaner scans what is due. */
export const idempotencyExpiryKey = (expiresAtMs: number, clientId: string, requestId: string) =>
  encodeKey('IDEX', u64be(expiresAtMs), `${clientId}\u0000${requestId}`);
export const idempotencyExpiryRange = () => prefixRange(Buffer.from('IDEX'));

export const ALLOCATOR_SHARDS = 32;
export const allocatorShardKey = (shard: number): Buffer => {
  if (!Number.isInteger(shard) || shard < 0 || shard >= ALLOCATOR_SHARDS) {
    throw new ThreeFsError('INTERNAL', `allocator shard ${shard} out of range`);
  }
  return encodeKey('IALC', u64be(shard));
};

/** GC work, ordered by when it is due: kind 'f' file chunks, 'd' directory walk, 't' truncate. */
export type GcKind = 'f' | 'd' | 't';
export const gcItemKey = (dueMs: number, kind: GcKind, inode: number): Buffer =>
  encodeKey('GCQU', u64be(dueMs), kind, u64be(inode));
export const gcQueueRange = () => prefixRange(Buffer.from('GCQU'));
/** Every due item sorts before this key. */
export const gcDueEnd = (nowMs: number): Buffer => encodeKey('GCQU', u64be(nowMs + 1));
export function parseGcItemKey(key: Uint8Array): { dueMs: number; kind: GcKind; inode: number } {
  const buf = Buffer.from(key.buffer, key.byteOffset, key.length);
  if (buf.length !== 4 + 8 + 1 + 8) throw new ThreeFsError('INTERNAL', 'malformed GC queue key');
  const kind = String.fromCharCode(buf[12] as number);
  if (kind !== 'f' && kind !== 'd' && kind !== 't') {
    throw new ThreeFsError('INTERNAL', `unknown GC item kind ${kind}`);
  }
  return {
    dueMs: Number(buf.readBigUInt64BE(4)),
    kind,
    inode: Number(buf.readBigUInt64BE(13)),
  };
}

/** Quota usage counters of a quota root, updated with atomic adds. */
export const quotaBytesKey = (dir: number): Buffer => encodeKey('QUSE', u64le(dir), 'b');
export const quotaInodesKey = (dir: number): Buffer => encodeKey('QUSE', u64le(dir), 'i');
