// Which records a path walk reads, row by row, over a real embedded KV store: root walks past a
// directory on its dentry alone (root may search any directory), any other caller reads every
// directory it searches, and both get the same answers and errors.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ThreeFsError } from '../../daemons/common/errors.js';
import { kvConfig } from '../../daemons/common/kv/config.js';
import { openKvStore } from '../../daemons/common/kv/open.js';
import type { KvStore, ReadView, Transaction } from '../../daemons/common/kv/types.js';
import type { InodeRecord } from '../../daemons/meta/inode.js';
import { idOfKey, ROOT_ID } from '../../daemons/meta/keys.js';
import { MetaTxn } from '../../daemons/meta/meta-txn.js';
import type { Caller } from '../../daemons/meta/permissions.js';
import { lookup, resolveParent } from '../../daemons/meta/resolve.js';
import { inodeRecord } from './inode-records.js';

const ROOT: Caller = { uid: 0, gid: 0, groups: [] };
const USER: Caller = { uid: 1000, gid: 1000, groups: [] };

/** A read view that notes the id of every inode key read through it. */
function noting(view: ReadView, inodesRead: number[]): ReadView {
  return {
    get: (key) => {
      if (Buffer.from(key).subarray(0, 4).toString() === 'INOD') inodesRead.push(idOfKey(key));
      return view.get(key);
    },
    getRange: (begin, end, options) => view.getRange(begin, end, options),
  };
}

/** Runs `walk` in a read-only MetaTxn whose reads are noted; returns its result and the inodes read. */
async function walked<T>(
  kv: KvStore,
  walk: (mt: MetaTxn) => Promise<T>,
): Promise<{ result: T | ThreeFsError; inodesRead: number[] }> {
  const inodesRead: number[] = [];
  const tx = kv.createTransaction();
  const seen = Object.create(tx, { snapshot: { value: noting(tx.snapshot, inodesRead) } });
  try {
    const result = await walk(new MetaTxn(seen as Transaction, 2, { readOnly: true })).catch(
      (err: unknown) => {
        if (err instanceof ThreeFsError) return err;
        throw err;
      },
    );
    return { result, inodesRead };
  } finally {
    tx.abort();
  }
}

const code = (result: unknown) => (result instanceof ThreeFsError ? result.code : 'OK');
const idOf = (result: unknown) => (result as InodeRecord).id;

describe('path walks', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'meta-path-walk-'));
  let kv: KvStore;

  before(async () => {
    kv = await openKvStore(kvConfig({ engine: 'embedded', path: path.join(root, 'kv') }));
    // /a (0755) / b (0700, root's) / f, /a/link -> b, /a/file
    await kv.run(async (tx) => {
      const mt = new MetaTxn(tx, 1);
      mt.putInode(inodeRecord(ROOT_ID, 'dir', 0o755, { parent: ROOT_ID }));
      mt.putInode(inodeRecord(10, 'dir', 0o755, { parent: ROOT_ID, name: 'a' }));
      mt.putInode(inodeRecord(11, 'dir', 0o700, { parent: 10, name: 'b' }));
      mt.putInode(inodeRecord(12, 'file', 0o644));
      mt.putInode(inodeRecord(13, 'symlink', 0o777, { target: 'b' }));
      mt.putInode(inodeRecord(14, 'file', 0o644));
      mt.putDentry(ROOT_ID, 'a', { id: 10, type: 'dir' });
      mt.putDentry(10, 'b', { id: 11, type: 'dir' });
      mt.putDentry(11, 'f', { id: 12, type: 'file' });
      mt.putDentry(10, 'link', { id: 13, type: 'symlink' });
      mt.putDentry(10, 'file', { id: 14, type: 'file' });
    });
  });
  after(async () => {
    await kv.close();
    rmSync(root, { recursive: true, force: true });
  });

  const rows: Array<{
    path: string;
    caller: Caller;
    answer: string | number;
    inodesRead: number[];
  }> = [
    // Root reads only the inode the path names.
    { path: '/a/b/f', caller: ROOT, answer: 12, inodesRead: [12] },
    { path: '/a/b', caller: ROOT, answer: 11, inodesRead: [11] },
    // A symlink on the way is read to be followed, and where it ends is a lookup's last name.
    { path: '/a/link/f', caller: ROOT, answer: 12, inodesRead: [13, 11, 12] },
    // ".." reads the record that says where the parent is, and the parent.
    { path: '/a/b/../file', caller: ROOT, answer: 14, inodesRead: [11, 10, 14] },
    // A file on the way is ENOTDIR from its dentry.
    { path: '/a/file/x', caller: ROOT, answer: 'ENOTDIR', inodesRead: [] },
    { path: '/a/none/x', caller: ROOT, answer: 'ENOENT', inodesRead: [] },
    // Anyone else reads every directory it searches: root's, a's, then b's refuses them.
    { path: '/a/b/f', caller: USER, answer: 'EACCES', inodesRead: [ROOT_ID, 10, 11] },
    { path: '/a/file', caller: USER, answer: 14, inodesRead: [ROOT_ID, 10, 14] },
    { path: '/a/file/x', caller: USER, answer: 'ENOTDIR', inodesRead: [ROOT_ID, 10] },
  ];
  for (const row of rows) {
    it(`${row.path} as uid ${row.caller.uid}: ${row.answer}, reading inodes [${row.inodesRead.join(', ')}]`, async () => {
      const { result, inodesRead } = await walked(kv, (mt) =>
        lookup(mt, row.caller, { path: row.path }, true),
      );
      assert.equal(typeof row.answer === 'number' ? idOf(result) : code(result), row.answer);
      assert.deepEqual(inodesRead, row.inodesRead);
    });
  }

  it('hands the directory of the last name to its caller as a full record', async () => {
    for (const [caller, at, id, mode] of [
      [ROOT, '/a/b/new', 11, 0o700],
      [USER, '/a/new', 10, 0o755],
    ] as const) {
      const { result } = await walked(kv, (mt) => resolveParent(mt, caller, { path: at }));
      const { dir, name } = result as { dir: InodeRecord; name: string };
      assert.equal(name, 'new');
      assert.deepEqual([dir.id, dir.type, dir.mode], [id, 'dir', mode]);
    }
  });

  it('reads a start given by id: a file there is ENOTDIR, or itself for an empty path', async () => {
    const file = await walked(kv, (mt) => lookup(mt, ROOT, { parent: 14, path: 'x' }, true));
    assert.equal(code(file.result), 'ENOTDIR');
    assert.deepEqual(file.inodesRead, [14]);
    const same = await walked(kv, (mt) => lookup(mt, ROOT, { parent: 14, path: '' }, true));
    assert.equal(idOf(same.result), 14);
    const below = await walked(kv, (mt) => lookup(mt, ROOT, { parent: 10, path: 'b/f' }, true));
    assert.deepEqual([idOf(below.result), below.inodesRead], [12, [10, 12]]);
  });
});
