// The metadata service's tables in the KV store (brief §5.1). Inode ids are little-endian in keys,
// as in 3FS: consecutive ids then land far apart, which spreads the inodes of one burst of creates
// over FoundationDB's shards instead of hammering one; nothing scans inodes in id order.
import { ThreeFsError } from '../common/errors.js';
import { encodeKey, prefixRange, u64be } from '../common/kv/index.js';

/** FUSE's root inode number is 1; so is ours. */
export const ROOT_ID = 1;
/** Parent of every removed directory subtree awaiting GC; never reachable by path. */
export const GC_ROOT_ID = 2;

const TAG_BYTES = 4;
const ID_BYTES = 8;
const TWO_32 = 2 ** 32;

function checkId(id: number): void {
  if (!Number.isSafeInteger(id) || id < 0) {
    throw new ThreeFsError('INVALID_ARGUMENT', `id ${id} is not a non-negative safe integer`);
  }
}

/** Writes `id` as a little-endian u64 at `offset` (two u32 halves: no BigInt on the hot path). */
function writeIdLE(out: Buffer, offset: number, id: number): void {
  checkId(id);
  out.writeUInt32LE(id % TWO_32, offset);
  out.writeUInt32LE(Math.floor(id / TWO_32), offset + 4);
}

/**
 * A 4-byte table tag, a little-endian u64 id, then `extra` bytes for the caller to fill: one
 * allocation per key. Path walks build several keys per stat, and encodeKey's part buffers,
 * concatenation and BigInt conversion were a measurable share of a stat's CPU.
 */
function tagAndId(tag: Buffer, id: number, extra: number): Buffer {
  const out = Buffer.allocUnsafe(TAG_BYTES + ID_BYTES + extra);
  tag.copy(out, 0);
  writeIdLE(out, TAG_BYTES, id);
  return out;
}

const INOD = Buffer.from('INOD');
const DENT = Buffer.from('DENT');
const DTIM = Buffer.from('DTIM');

export function u64le(id: number): Buffer {
  const out = Buffer.allocUnsafe(ID_BYTES);
  writeIdLE(out, 0, id);
  return out;
}

/** Bytes before the name in a key of tag + id + name (DENT, INOS). */
export const TAG_AND_ID_BYTES = TAG_BYTES + ID_BYTES;

/** The id of a key that starts with a tag and a little-endian u64 (INOD, DENT, DTIM, INOS). */
export function idOfKey(key: Uint8Array): number {
  return Number(Buffer.from(key.buffer, key.byteOffset, key.length).readBigUInt64LE(TAG_BYTES));
}

/** The name of a key of tag + id + name (a dentry's name, a session's id). */
export function nameOfKey(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.length)
    .subarray(TAG_AND_ID_BYTES)
    .toString('utf8');
}

export const inodeKey = (id: number): Buffer => tagAndId(INOD, id, 0);
export function dentryKey(parent: number, name: string): Buffer {
  const nameBytes = Buffer.byteLength(name, 'utf8');
  const out = tagAndId(DENT, parent, nameBytes);
  out.write(name, TAG_AND_ID_BYTES, nameBytes, 'utf8');
  return out;
}
/** Every dentry of one directory, in name order. */
export const dentryRange = (parent: number) => prefixRange(tagAndId(DENT, parent, 0));
/** Every inode, and every dentry of every directory: whole-table scans (diagnosis, tests). */
export const allInodesRange = () => prefixRange(INOD);
export const allDentriesRange = () => prefixRange(DENT);
/** A directory's modification time, kept apart from its inode (see docs/meta.md). */
export const dirTimesKey = (dir: number): Buffer => tagAndId(DTIM, dir, 0);

export const sessionKey = (inode: number, sessionId: string): Buffer =>
  encodeKey('INOS', u64le(inode), sessionId);
export const sessionRange = (inode: number) => prefixRange(encodeKey('INOS', u64le(inode)));
export const allSessionsRange = () => prefixRange(Buffer.from('INOS'));

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
