// Decoded directory inodes shared across transactions, so the hot path (a path walk decodes every
// directory on the way, every stat) does not MessagePack-decode the same directory inodes again
// and again. A cached record is returned only when the stored bytes are identical to the bytes it
// was decoded from, so other meta servers writing the same store can never make it stale.
//
// A record also notes the snapshot version (KvStore's Transaction.snapshotVersion) at which a
// read-only transaction last found those bytes in the store. Another read-only transaction whose
// snapshot has that same version holds identical data, so it may take the record without reading
// the key at all (`at`): in a stretch with no commits, a walk by a caller other than root reads
// no directory twice. Any commit, by any process, moves the version, and the next read confirms
// the bytes again. Writing transactions never set the version (their reads may be their own
// writes) and always read: their reads are conflict-tracked. Records kept are deeply frozen:
// they are shared.
//
// Files and symlinks are decoded for each read and not kept. A namespace has far more of them
// than the cache holds, and keeping each one read (a copy of its bytes, freezing, an eviction, and
// records that live long enough to be promoted by V8's collector and then die) cost a stat of
// distinct files about 8 µs of meta's ~63 (4 clients, 20,000 files: 63-69 µs of meta CPU per stat
// with files kept, 52-62 without); a repeated stat of one file costs a decode (~3 µs) instead.
import { ThreeFsError } from '../common/errors.js';
import { setBounded } from '../common/bounded-map.js';
import { decodeInode, type InodeRecord } from './inode.js';

interface Entry {
  bytes: Buffer;
  record: InodeRecord;
  /** A snapshot version at which the store held `bytes` under this id, if one is known. */
  version: number | undefined;
}

/** Default bound: the directory inodes of a busy namespace (~1–2 MB). */
export const DEFAULT_DECODED_INODES = 8_192;

/** Freezes a decoded record and everything it holds (layout, chain ids, quota roots, quota). */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value as Record<string, unknown>)) deepFreeze(inner);
  }
  return value;
}

export class DecodedInodeCache {
  private readonly entries = new Map<number, Entry>();
  /** Lookups answered without decoding, decodes, and lookups answered without a read. */
  hits = 0;
  misses = 0;
  unread = 0;

  constructor(private readonly maxEntries = DEFAULT_DECODED_INODES) {
    if (!(Number.isSafeInteger(maxEntries) && maxEntries > 0)) {
      throw new ThreeFsError('INTERNAL', `decoded inode cache bound ${maxEntries} is not positive`);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * The record kept for `id` if its bytes were found in a snapshot of the version `versionOf`
   * gives (a read-only transaction's), which would read them again; undefined otherwise.
   * `versionOf` is asked only when such a record is kept (files never are).
   */
  at(id: number, versionOf: () => number | undefined): InodeRecord | undefined {
    const cached = this.entries.get(id);
    if (cached?.version === undefined || cached.version !== versionOf()) return undefined;
    this.unread++;
    return cached.record;
  }

  /**
   * The record stored as `value` under inode `id`. A directory's is shared and frozen, any other
   * is the caller's own; either way, spread it to change it. `versionOf`: gives the snapshot
   * version of a read-only transaction that read `value` from the store (never a writing
   * transaction's); asked only for a directory's record, which is kept.
   */
  decode(id: number, value: Uint8Array, versionOf?: () => number | undefined): InodeRecord {
    const cached = this.entries.get(id);
    if (cached !== undefined && cached.bytes.equals(value)) {
      this.hits++;
      const version = versionOf?.();
      if (version !== undefined) cached.version = version;
      return cached.record;
    }
    this.misses++;
    const decoded = decodeInode(value, id);
    if (decoded.type !== 'dir') return decoded;
    const record = deepFreeze(decoded);
    const entry = { bytes: Buffer.from(value), record, version: versionOf?.() };
    setBounded(this.entries, id, entry, this.maxEntries, 'decoded inode cache');
    return record;
  }

  /** Drops a record (the inode was deleted); a later decode of new bytes replaces it anyway. */
  forget(id: number): void {
    this.entries.delete(id);
  }
}
