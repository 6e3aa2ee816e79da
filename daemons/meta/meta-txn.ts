// One metadata transaction's view of the namespace: typed reads and writes of inodes, dentries,
// directory times and quota counters over a KV transaction, with the inodes read so far cached so
// an operation can look at one inode several times without decoding it again. In a read-write
// transaction every read is conflict-tracked: decisions made on it stay true at commit
// (serializable). A read-only transaction (stat, list) reads its snapshot without tracking: it
// commits nothing, so it is serializable at its snapshot and a read set would be pure overhead.
import { ThreeFsError } from '../common/errors.js';
import { decodeInt64LE, type ReadView, type Transaction } from '../common/kv/index.js';
import { decodeInode, encodeInode, type InodeRecord, packValue, unpackValue } from './inode.js';
import type { DirEntryCache } from './dentry-cache.js';
import type { DecodedInodeCache } from './inode-cache.js';
import { nameTooLong, tooLongError } from './names.js';
import {
  dentryKey,
  dentryRange,
  dirTimesKey,
  inodeKey,
  quotaBytesKey,
  quotaInodesKey,
} from './keys.js';

export interface Dentry {
  id: number;
  type: InodeRecord['type'];
  /** Set by the create that added a file's name (idempotency.ts, requestMarks). */
  tag?: string | undefined;
}

export interface MetaTxnOptions {
  /** Reads without conflict tracking, and no writes (an INTERNAL error if one is tried). */
  readOnly?: boolean;
  /** Decoded records shared across transactions, checked against the bytes read. */
  decoded?: DecodedInodeCache;
  /** Entries naming directories, shared across read-only transactions (by snapshot version). */
  dirEntries?: DirEntryCache;
}

export class MetaTxn {
  private readonly inodes = new Map<number, InodeRecord | null>();
  /** Where reads go: the transaction itself, or its snapshot view when read-only. */
  private readonly reads: ReadView;
  readonly readOnly: boolean;
  private readonly decoded: DecodedInodeCache | undefined;
  private readonly dirEntries: DirEntryCache | undefined;
  /** The snapshot's version (read-only transactions), fetched on first need; null: none known. */
  private version: number | null | undefined;

  constructor(
    readonly tx: Transaction,
    readonly now: number,
    options: MetaTxnOptions = {},
  ) {
    this.readOnly = options.readOnly === true;
    this.reads = this.readOnly ? tx.snapshot : tx;
    this.decoded = options.decoded;
    this.dirEntries = this.readOnly ? options.dirEntries : undefined;
  }

  async inode(id: number): Promise<InodeRecord | undefined> {
    const cached = this.inodes.get(id);
    if (cached !== undefined) return cached ?? undefined;
    const kept = this.readOnly ? this.decoded?.at(id, this.versionOf) : undefined;
    if (kept !== undefined) {
      this.inodes.set(id, kept);
      return kept;
    }
    const value = await this.reads.get(inodeKey(id));
    let inode: InodeRecord | undefined;
    if (value !== undefined) {
      inode = this.decoded
        ? this.decoded.decode(id, value, this.readOnly ? this.versionOf : undefined)
        : decodeInode(value, id);
    }
    this.inodes.set(id, inode ?? null);
    return inode;
  }

  private snapshotVersion(): number | undefined {
    if (this.version === undefined) this.version = this.tx.snapshotVersion() ?? null;
    return this.version ?? undefined;
  }

  private readonly versionOf = () => this.snapshotVersion();

  async requireInode(id: number): Promise<InodeRecord> {
    const inode = await this.inode(id);
    if (!inode) throw new ThreeFsError('ENOENT', `no inode ${id}`);
    return inode;
  }

  async requireDir(id: number): Promise<InodeRecord> {
    const inode = await this.requireInode(id);
    if (inode.type !== 'dir') throw new ThreeFsError('ENOTDIR', `inode ${id} is not a directory`);
    if (inode.nlink === 0) throw new ThreeFsError('ENOENT', `directory ${id} has been removed`);
    return inode;
  }

  putInode(inode: InodeRecord): void {
    this.checkWritable();
    this.inodes.set(inode.id, inode);
    this.tx.set(inodeKey(inode.id), encodeInode(inode));
  }

  deleteInode(id: number): void {
    this.checkWritable();
    this.inodes.set(id, null);
    this.tx.clear(inodeKey(id));
  }

  async dentry(parent: number, name: string): Promise<Dentry | undefined> {
    // No entry can have such a name: the lookup's answer, as a Linux file system's lookup gives it.
    if (nameTooLong(name)) throw tooLongError(name);
    const version = this.dirEntries ? this.snapshotVersion() : undefined;
    if (version !== undefined) {
      const kept = this.dirEntries?.at(parent, name, version);
      if (kept !== undefined) return kept;
    }
    const value = await this.reads.get(dentryKey(parent, name));
    if (value === undefined) return undefined;
    const d = unpackValue(value) as Partial<Dentry>;
    if (
      typeof d?.id !== 'number' ||
      typeof d.type !== 'string' ||
      (d.tag !== undefined && typeof d.tag !== 'string')
    ) {
      throw new ThreeFsError('INTERNAL', `dentry ${parent}/${name}: malformed`);
    }
    if (version !== undefined) this.dirEntries?.keep(parent, name, d as Dentry, version);
    return d as Dentry;
  }

  putDentry(parent: number, name: string, entry: Dentry): void {
    this.checkWritable();
    const value =
      entry.tag === undefined
        ? { id: entry.id, type: entry.type }
        : { id: entry.id, type: entry.type, tag: entry.tag };
    this.tx.set(dentryKey(parent, name), packValue(value));
  }

  clearDentry(parent: number, name: string): void {
    this.checkWritable();
    this.tx.clear(dentryKey(parent, name));
  }

  /** Whether a directory has no entries (a conflict with any concurrent insert into it). */
  async isEmptyDir(id: number): Promise<boolean> {
    const { begin, end } = dentryRange(id);
    return (await this.reads.getRange(begin, end, { limit: 1 })).length === 0;
  }

  /**
   * Marks a directory modified. A blind write to a key of its own, not to the inode: concurrent
   * creates in one directory would otherwise all read-modify-write its inode and conflict.
   */
  touchDir(id: number): void {
    this.checkWritable();
    this.tx.set(dirTimesKey(id), packValue(this.now));
  }

  /** Directory mtime from its times key (0 if never touched); a snapshot read, display only. */
  async dirMtime(id: number): Promise<number> {
    const value = await this.tx.snapshot.get(dirTimesKey(id));
    return value === undefined ? 0 : Number(unpackValue(value));
  }

  async quotaUsage(root: number): Promise<{ bytes: number; inodes: number }> {
    const [bytes, inodes] = await Promise.all([
      this.reads.get(quotaBytesKey(root)),
      this.reads.get(quotaInodesKey(root)),
    ]);
    return { bytes: Number(decodeInt64LE(bytes)), inodes: Number(decodeInt64LE(inodes)) };
  }

  /** Adds to the usage of each quota root (atomic adds: concurrent updates never conflict). */
  addUsage(roots: readonly number[], bytes: number, inodes: number): void {
    this.checkWritable();
    for (const root of roots) {
      if (bytes !== 0) this.tx.add(quotaBytesKey(root), BigInt(bytes));
      if (inodes !== 0) this.tx.add(quotaInodesKey(root), BigInt(inodes));
    }
  }

  private checkWritable(): void {
    if (this.readOnly)
      throw new ThreeFsError('INTERNAL', 'a write in a read-only meta transaction');
  }
}
