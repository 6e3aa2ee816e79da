// The read path's shortcuts, row by row: the decoded-inode cache (a directory's record is reused
// only for identical bytes, bounded, deeply frozen; files and symlinks are never kept) and
// read-only meta transactions (snapshot reads that never conflict, writes refused) over a real
// embedded KV store.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ThreeFsError } from '../../daemons/common/errors.js';
import { kvConfig } from '../../daemons/common/kv/config.js';
import { openKvStore } from '../../daemons/common/kv/open.js';
import type { KvStore } from '../../daemons/common/kv/types.js';
import { decodeInode, encodeInode, type InodeRecord } from '../../daemons/meta/inode.js';
import { DirEntryCache } from '../../daemons/meta/dentry-cache.js';
import { DecodedInodeCache } from '../../daemons/meta/inode-cache.js';
import { MetaTxn } from '../../daemons/meta/meta-txn.js';
import { inodeRecord } from './inode-records.js';

function dirInode(id: number, mode = 0o755): InodeRecord {
  return inodeRecord(id, 'dir', mode, {
    parent: 1,
    name: `d${id}`,
    quotaRoots: [7],
    layout: {
      chainTableId: 1,
      chainTableVersion: 0,
      chunkSize: 1 << 20,
      stripeSize: 2,
      chains: { kind: 'list', chainIds: [3, 4] },
    },
  });
}

const internal = (err: unknown) => err instanceof ThreeFsError && err.code === 'INTERNAL';

describe('decoded inode cache', () => {
  it('reuses a record only while the stored bytes are identical', () => {
    const cache = new DecodedInodeCache(16);
    const bytes = encodeInode(dirInode(4096));
    const first = cache.decode(4096, bytes);
    assert.deepEqual(first, decodeInode(bytes, 4096));
    assert.equal(cache.decode(4096, Buffer.from(bytes)), first, 'same bytes: same record');
    assert.deepEqual([cache.hits, cache.misses], [1, 1]);
    const changed = cache.decode(4096, encodeInode(dirInode(4096, 0o700)));
    assert.notEqual(changed, first);
    assert.equal(changed.mode, 0o700, 'changed bytes: decoded again, never the stale record');
    assert.deepEqual([cache.hits, cache.misses], [1, 2]);
  });

  it('hands out deeply frozen records, so no caller can change a shared one', () => {
    const record = new DecodedInodeCache(4).decode(4097, encodeInode(dirInode(4097)));
    for (const part of [record, record.layout, record.layout?.chains, record.quotaRoots]) {
      assert.ok(Object.isFrozen(part));
    }
    assert.throws(() => {
      (record as { mode: number }).mode = 0;
    }, TypeError);
    assert.throws(() => record.quotaRoots.push(8), TypeError);
    assert.equal({ ...record, mode: 0o700 }.mode, 0o700, 'a spread copy is an ordinary object');
  });

  it("keeps directories only: a file or symlink is decoded on every read, as the reader's own", () => {
    const cache = new DecodedInodeCache(4);
    const { layout: _layout, name: _name, ...dir } = dirInode(4098);
    for (const inode of [
      { ...dir, type: 'file' as const, parent: 0, length: 10 },
      { ...dir, id: 4099, type: 'symlink' as const, parent: 0, target: 'a/b' },
    ]) {
      const bytes = encodeInode(inode);
      const first = cache.decode(inode.id, bytes);
      assert.deepEqual(first, decodeInode(bytes, inode.id));
      assert.ok(!Object.isFrozen(first), 'not shared, so not frozen');
      assert.notEqual(cache.decode(inode.id, bytes), first, 'decoded again, not kept');
    }
    assert.deepEqual([cache.size, cache.hits, cache.misses], [0, 0, 4]);
  });

  it('stays within its bound, evicting the record used least recently', () => {
    const cache = new DecodedInodeCache(2);
    const bytes = (id: number) => encodeInode(dirInode(id));
    cache.decode(1, bytes(1));
    cache.decode(2, bytes(2));
    cache.decode(3, bytes(3));
    assert.equal(cache.size, 2);
    cache.decode(3, bytes(3));
    cache.decode(2, bytes(2));
    assert.equal(cache.hits, 2, 'ids 2 and 3 kept');
    cache.decode(1, bytes(1));
    assert.equal(cache.misses, 4, 'id 1 was evicted');
    assert.equal(cache.size, 2);
  });

  it('hands a record out unread only at the snapshot version its bytes were confirmed at', () => {
    const cache = new DecodedInodeCache(4);
    const bytes = encodeInode(dirInode(4102));
    const at = (version: number) => cache.at(4102, () => version);
    assert.equal(at(7), undefined, 'nothing kept yet');
    const record = cache.decode(4102, bytes, () => 7);
    assert.equal(at(7), record);
    assert.equal(at(8), undefined, 'another version: read again');
    cache.decode(4102, Buffer.from(bytes));
    assert.equal(at(7), record, 'same bytes read without a version: kept as it was');
    cache.decode(4102, Buffer.from(bytes), () => 8);
    assert.deepEqual([at(7), at(8)], [undefined, record], 'moved to 8');
    cache.decode(4102, encodeInode(dirInode(4102, 0o700)));
    assert.equal(at(8), undefined, 'new bytes without a version: no unread answer');
    assert.equal(cache.unread, 3);
  });

  it('refuses undecodable or mismatched bytes and a bound that is not positive', () => {
    const cache = new DecodedInodeCache(4);
    assert.throws(() => cache.decode(5, Buffer.from([0xc1])), internal);
    assert.throws(() => cache.decode(5, encodeInode(dirInode(6))), internal, 'id mismatch');
    assert.equal(cache.size, 0);
    assert.throws(() => new DecodedInodeCache(0), internal);
  });
});

describe('directory entry cache', () => {
  it('answers only at the version an entry was read at, and keeps directories only', () => {
    const cache = new DirEntryCache(4);
    cache.keep(1, 'a', { id: 10, type: 'dir' }, 5);
    cache.keep(1, 'f', { id: 11, type: 'file' }, 5);
    assert.deepEqual(cache.at(1, 'a', 5), { id: 10, type: 'dir' });
    assert.equal(cache.at(1, 'a', 6), undefined, 'another version: read again');
    assert.equal(cache.at(1, 'f', 5), undefined, 'a file entry is not kept');
    assert.equal(cache.at(2, 'a', 5), undefined, 'another directory');
    assert.ok(Object.isFrozen(cache.at(1, 'a', 5)), 'shared, so frozen');
    assert.equal(cache.unread, 2);
  });

  it('stays within its bound, evicting the entry read least recently', () => {
    const cache = new DirEntryCache(2);
    for (const name of ['a', 'b', 'c']) cache.keep(1, name, { id: 10, type: 'dir' }, 1);
    assert.equal(cache.size, 2);
    assert.deepEqual(
      ['a', 'b', 'c'].map((name) => cache.at(1, name, 1) !== undefined),
      [false, true, true],
    );
    assert.throws(() => new DirEntryCache(0), internal);
  });
});

describe('read-only meta transactions', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'meta-read-path-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  /** Runs `fn` on an embedded store of its own under `root`, closed after. */
  async function withStore(name: string, fn: (kv: KvStore) => Promise<void>): Promise<void> {
    const kv = await openKvStore(kvConfig({ engine: 'embedded', path: path.join(root, name) }));
    try {
      await fn(kv);
    } finally {
      await kv.close();
    }
  }

  it('read a snapshot without conflicts where a tracked read would conflict, and refuse writes', async () => {
    await withStore('kv', async (kv) => {
      const cache = new DecodedInodeCache();
      await kv.run(async (tx) => new MetaTxn(tx, 1).putInode(dirInode(4100)));
      const readOnly = new MetaTxn(kv.createTransaction(), 2, { readOnly: true, decoded: cache });
      const tracked = new MetaTxn(kv.createTransaction(), 2, { decoded: cache });
      assert.equal((await readOnly.requireDir(4100)).mode, 0o755);
      assert.equal((await tracked.requireDir(4100)).mode, 0o755);
      assert.throws(() => readOnly.putInode(dirInode(4101)), internal);
      assert.throws(() => readOnly.touchDir(4100), internal);
      // Another transaction changes the inode after both have read it.
      await kv.run(async (tx) => new MetaTxn(tx, 3).putInode(dirInode(4100, 0o700)));
      await readOnly.tx.commit(); // nothing to check: serializable at its snapshot
      tracked.touchDir(4100);
      await assert.rejects(tracked.tx.commit(), (err: unknown) => {
        return err instanceof ThreeFsError && err.code === 'TXN_CONFLICT';
      });
      // A new transaction sees the new bytes through the same cache, not the old record.
      const later = new MetaTxn(kv.createTransaction(), 4, { readOnly: true, decoded: cache });
      assert.equal((await later.requireDir(4100)).mode, 0o700);
      later.tx.abort();
    });
  });

  it('skip reading a directory while no commit has moved the snapshot version', async () => {
    await withStore('kv2', async (kv) => {
      const cache = new DecodedInodeCache();
      await kv.run(async (tx) => new MetaTxn(tx, 1).putInode(dirInode(4200)));
      const readOnly = () =>
        new MetaTxn(kv.createTransaction(), 2, { readOnly: true, decoded: cache });
      const read = async (mt: MetaTxn) => {
        const before = cache.unread;
        const record = await mt.requireDir(4200);
        const version = mt.tx.snapshotVersion();
        mt.tx.abort();
        return { mode: record.mode, unread: cache.unread - before, version };
      };
      const first = await read(readOnly());
      assert.deepEqual([first.mode, first.unread], [0o755, 0], 'read, and its version noted');
      const second = await read(readOnly());
      assert.deepEqual([second.mode, second.unread], [0o755, 1], 'same version: not read');
      assert.equal(second.version, first.version);
      // A commit anywhere moves the version: the next transaction reads and sees the change.
      await kv.run(async (tx) => new MetaTxn(tx, 3).putInode(dirInode(4200, 0o700)));
      const third = await read(readOnly());
      assert.deepEqual([third.mode, third.unread], [0o700, 0]);
      assert.notEqual(third.version, first.version);
      assert.equal((await read(readOnly())).unread, 1);
      // A writing transaction always reads (its reads are conflict-tracked).
      const writing = await read(new MetaTxn(kv.createTransaction(), 4, { decoded: cache }));
      assert.deepEqual([writing.mode, writing.unread], [0o700, 0]);
    });
  });

  it('take an entry naming a directory unread while no commit has moved the snapshot version', async () => {
    await withStore('kv3', async (kv) => {
      const dirEntries = new DirEntryCache();
      await kv.run(async (tx) =>
        new MetaTxn(tx, 1).putDentry(4300, 'd', { id: 4301, type: 'dir' }),
      );
      const lookUp = async (options: { readOnly?: boolean }) => {
        const mt = new MetaTxn(kv.createTransaction(), 2, { ...options, dirEntries });
        const before = dirEntries.unread;
        const entry = await mt.dentry(4300, 'd');
        mt.tx.abort();
        return { id: entry?.id, unread: dirEntries.unread - before };
      };
      assert.deepEqual(await lookUp({ readOnly: true }), { id: 4301, unread: 0 });
      assert.deepEqual(await lookUp({ readOnly: true }), { id: 4301, unread: 1 });
      assert.deepEqual(await lookUp({}), { id: 4301, unread: 0 }, 'a writing one always reads');
      // Renamed away: the commit moves the version, so the next walk reads the absence.
      await kv.run(async (tx) => {
        const mt = new MetaTxn(tx, 3);
        mt.clearDentry(4300, 'd');
        mt.putDentry(4300, 'e', { id: 4301, type: 'dir' });
      });
      assert.deepEqual(await lookUp({ readOnly: true }), { id: undefined, unread: 0 });
    });
  });
});
