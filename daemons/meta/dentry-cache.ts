// Directory entries that name directories, shared by a server's read-only transactions, each with
// the snapshot version at which one of them read it (KvStore's Transaction.snapshotVersion). A
// read-only transaction whose snapshot has that same version holds identical data, so it takes
// the entry without reading the key: a stat-heavy stretch walks /a/b/... reading only the last
// name's entry and inode. Any commit, by any process, moves the version, and the next walk reads
// again. Entries that name files are not kept (a walk's last name is read once per stat, and a
// namespace has far more of them), nor are absent names. Writing transactions neither use nor
// fill it: their reads are conflict-tracked, and what they read may be their own write.
import { ThreeFsError } from '../common/errors.js';
import { setBounded } from '../common/bounded-map.js';
import type { Dentry } from './meta-txn.js';

/** Default bound: the directories of a busy namespace's paths. */
export const DEFAULT_DIR_ENTRIES = 8_192;

interface Entry {
  dentry: Readonly<Dentry>;
  version: number;
}

export class DirEntryCache {
  /** By `${parent}/${name}`: a name cannot hold "/", so the key is unambiguous. */
  private readonly entries = new Map<string, Entry>();
  /** Lookups answered without a read; for tests and diagnosis. */
  unread = 0;

  constructor(private readonly maxEntries = DEFAULT_DIR_ENTRIES) {
    if (!(Number.isSafeInteger(maxEntries) && maxEntries > 0)) {
      throw new ThreeFsError(
        'INTERNAL',
        `directory entry cache bound ${maxEntries} is not positive`,
      );
    }
  }

  get size(): number {
    return this.entries.size;
  }

  /** The entry of `name` in `parent` if it was read in a snapshot of `version`; else undefined. */
  at(parent: number, name: string, version: number): Readonly<Dentry> | undefined {
    const kept = this.entries.get(`${parent}/${name}`);
    if (kept === undefined || kept.version !== version) return undefined;
    this.unread++;
    return kept.dentry;
  }

  /** Notes what a read-only transaction at `version` read for `name` in `parent`. */
  keep(parent: number, name: string, dentry: Dentry, version: number): void {
    if (dentry.type !== 'dir') return;
    const entry = { dentry: Object.freeze({ ...dentry }), version };
    setBounded(this.entries, `${parent}/${name}`, entry, this.maxEntries, 'directory entry cache');
  }
}
