// The program-facing file API on a real cluster (mgmtd, storage and meta processes), in this
// process: reads and writes at offsets into caller Buffers, its own writes visible to its reads
// before any flush, length hints while open and the exact length at close, and the namespace
// calls with their codes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { FileApi } from '../../daemons/client/file-api.js';
import type { MetaClient } from '../../daemons/client/meta-client.js';
import type { MetaServer } from '../../daemons/meta/meta-server.js';
import { listSessions } from '../../daemons/meta/open-ops.js';
import { quietLog } from '../helpers/cluster.js';
import { MetaTestCluster } from '../meta/meta-cluster.js';

const MiB = 1024 * 1024;
const root = { uid: 0, gid: 0 };
const code = (expected: string) => (err: { code?: string }) => {
  assert.equal(err.code, expected);
  return true;
};

describe('file API', () => {
  const cluster = new MetaTestCluster('fuse-file-api');
  let meta: MetaClient;
  let api: FileApi;
  let server: MetaServer;

  before(async () => {
    await cluster.start();
    server = await cluster.startServer(31);
    meta = cluster.client(root, [server.address]);
    await meta.startSession();
    api = new FileApi({
      meta,
      storage: cluster.base.client,
      log: quietLog,
      flushDelayMs: 60_000, // only explicit flushes, reads and closes move buffered bytes
      lengthHintMs: 200,
    });
  });
  after(async () => {
    await api.close();
    await cluster.stop();
  });

  it('writes and reads at offsets into caller buffers; reads see buffered writes', async () => {
    await api.mkdir('/data', 0o755, root);
    const f = await api.create('/data/a', 0o644, { write: true }, root);
    const mirror = Buffer.alloc(2 * MiB + 100);
    for (let at = 0; at < mirror.length; at += 10_000) {
      const piece = randomBytes(Math.min(10_000, mirror.length - at));
      piece.copy(mirror, at);
      assert.equal(await f.write(piece, at), piece.length);
    }
    const target = Buffer.alloc(300_000, 0xee);
    assert.equal(await f.read(target, MiB - 100_000), 300_000);
    assert.ok(target.equals(mirror.subarray(MiB - 100_000, MiB + 200_000)));
    assert.equal((await api.stat(f.inode, root)).length, mirror.length);
    const tail = Buffer.alloc(1000);
    assert.equal(await f.read(tail, mirror.length - 10), 10);
    await f.close();
    const { attrs } = await meta.call('stat', { inode: f.inode });
    assert.equal(attrs.length, mirror.length, 'exact length at close');
    const r = await api.open('/data/a', { read: true }, root);
    const all = Buffer.alloc(mirror.length);
    assert.equal(await r.read(all, 0), mirror.length);
    assert.ok(all.equals(mirror));
    await r.close();
    await assert.rejects(r.read(all, 0), code('EBADF'));
    await assert.rejects(r.write(all, 0), code('EBADF'));
  });

  it('a write-open file reports its length to meta before close', async () => {
    const f = await api.create('/data/hinted', 0o644, { write: true }, root);
    await f.write(randomBytes(MiB), 0); // a whole window: straight to storage
    await f.flush();
    let length = 0;
    for (let i = 0; i < 50 && length < MiB; i++) {
      await new Promise((r) => setTimeout(r, 50));
      length = (await meta.call('stat', { inode: f.inode })).attrs.length;
    }
    assert.equal(length, MiB);
    await f.close();
  });

  it('stat, list, rename, unlink with their codes', async () => {
    await api.mkdir('/ns', 0o755, root);
    for (const name of ['x', 'y', 'z'])
      await (await api.create(`/ns/${name}`, 0o600, {}, root)).close();
    const dir = await api.statPath('/ns', root);
    const page = await api.list(dir.id, root, { withAttrs: true });
    assert.deepEqual(
      page.entries.map((e) => [e.name, e.attrs?.mode]),
      [
        ['x', 0o600],
        ['y', 0o600],
        ['z', 0o600],
      ],
    );
    await api.rename('/ns/x', '/ns/y', root);
    await assert.rejects(api.statPath('/ns/x', root), code('ENOENT'));
    await api.unlink('/ns/y', root);
    await assert.rejects(api.unlink('/ns/y', root), code('ENOENT'));
    await assert.rejects(api.rmdir('/ns', root), code('ENOTEMPTY'));
    await assert.rejects(api.mkdir('/ns', 0o755, root), code('EEXIST'));
    await assert.rejects(
      api.open('/ns/z', { write: true }, { uid: 1000, gid: 1000 }),
      code('EACCES'),
    );
  });

  it('closes of handles that wrote nothing go to meta in batches, soon; a writer closes at once', async () => {
    await api.mkdir('/idle', 0o755, root);
    const handles = [];
    for (let i = 0; i < 10; i++)
      handles.push(await api.create(`/idle/f${i}`, 0o644, { write: true }, root));
    const writer = await api.create('/idle/w', 0o644, { write: true }, root);
    await writer.write(randomBytes(1000), 0);
    const ids = new Set([...handles, writer].map((h) => h.inode));
    const sessionsLeft = async () =>
      (await listSessions(server.ctx, undefined, 4096)).filter((s) => ids.has(s.inode)).length;
    assert.equal(await sessionsLeft(), 11);
    // Which meta methods the closes call (a spy on the real client; calls still go through).
    const called: string[] = [];
    const call = meta.call.bind(meta);
    meta.call = ((name, body, user) => {
      called.push(name);
      return call(name, body, user);
    }) as typeof meta.call;
    try {
      await Promise.all(handles.map((h) => h.close()));
      await writer.close();
      assert.deepEqual(called, ['close'], 'the writer closed at once, the idle ones wait');
      assert.equal(
        (await meta.call('stat', { inode: writer.inode })).attrs.length,
        1000,
        "a writer's close measured its length before it returned",
      );
      let left = await sessionsLeft();
      for (let i = 0; i < 100 && left > 0; i++) {
        await new Promise((r) => setTimeout(r, 10));
        left = await sessionsLeft();
      }
      assert.equal(left, 0, 'every idle session closed within a second');
      assert.deepEqual(
        called.filter((name) => name !== 'stat'),
        ['close', 'closeSessions'],
        'the ten idle closes went as one batch',
      );
    } finally {
      meta.call = call;
    }
  });
});
