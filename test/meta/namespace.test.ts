// Every namespace operation through the RPC against one meta server on a real cluster (mgmtd +
// storage processes, LMDB): results and POSIX error codes, permissions, layouts, write sessions
// with exact lengths from storage, GC, idempotent retries and quotas.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { MetaClient } from '../../daemons/client/meta-client.js';
import { stripeChains } from '../../daemons/common/layout.js';
import { findChainTable } from '../../daemons/common/routing.js';
import { RpcClient } from '../../daemons/common/rpc/index.js';
import { MetaService } from '../../daemons/common/services/meta.js';
import type { MetaServer } from '../../daemons/meta/meta-server.js';
import { listSessions } from '../../daemons/meta/open-ops.js';
import { quietLog } from '../helpers/cluster.js';
import { GC_DELAY_MS, MetaTestCluster } from './meta-cluster.js';

const code = (expected: string) => (err: { code?: string }) => {
  assert.equal(err.code, expected);
  return true;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('meta namespace operations', () => {
  const cluster = new MetaTestCluster('meta-ns');
  let server: MetaServer;
  let root: MetaClient;
  let alice: MetaClient;
  let bob: MetaClient;

  before(async () => {
    await cluster.start();
    server = await cluster.startServer(11);
    const addr = [server.address];
    root = cluster.client({ uid: 0, gid: 0 }, addr);
    alice = cluster.client({ uid: 1000, gid: 1000, groups: [50] }, addr);
    bob = cluster.client({ uid: 2000, gid: 2000 }, addr);
    await Promise.all([root.startSession(), alice.startSession(), bob.startSession()]);
    await root.call('mkdirs', { at: { path: '/home' }, mode: 0o777 });
    await root.call('mkdirs', { at: { path: '/tmp' }, mode: 0o1777 });
  });
  after(() => cluster.stop());

  it('create, stat, lookup and list; O_EXCL, ENOENT, ENOTDIR, EISDIR, ENAMETOOLONG', async () => {
    const made = await alice.call('create', { at: { path: '/home/a.txt' }, mode: 0o640 });
    assert.equal(made.created, true);
    assert.equal(made.attrs.uid, 1000);
    assert.equal(made.attrs.mode, 0o640);
    assert.equal(made.session, undefined, 'a read open has no session');
    const again = await alice.call('create', { at: { path: '/home/a.txt' } });
    assert.equal(again.created, false);
    assert.equal(again.attrs.id, made.attrs.id);
    await assert.rejects(
      alice.call('create', { at: { path: '/home/a.txt' }, flags: { exclusive: true } }),
      code('EEXIST'),
    );
    const st = await alice.call('stat', { at: { path: '/home/a.txt' } });
    assert.equal(st.attrs.id, made.attrs.id);
    await assert.rejects(alice.call('stat', { at: { path: '/home/none' } }), code('ENOENT'));
    await assert.rejects(alice.call('create', { at: { path: '/home/a.txt/x' } }), code('ENOTDIR'));
    await assert.rejects(
      alice.call('open', { at: { path: '/home' }, flags: { write: true } }),
      code('EISDIR'),
    );
    await assert.rejects(
      alice.call('create', { at: { path: `/home/${'n'.repeat(256)}` } }),
      code('ENAMETOOLONG'),
    );
    const page = await alice.call('list', { inode: 1, withAttrs: true });
    assert.deepEqual(
      page.entries.map((e) => e.name),
      ['home', 'tmp'],
    );
    assert.equal(page.entries[0]?.attrs?.type, 'dir');
  });

  // Each of these answered differently from Linux until the seeded comparison with the local
  // file system (against-linux.test.ts) found it.
  it("Linux's answers: create of a directory or through a symlink, error order of link and rename", async () => {
    await root.call('mkdirs', { at: { path: '/lx/d/e' }, recursive: true });
    await assert.rejects(root.call('create', { at: { path: '/lx/d' } }), code('EISDIR'));
    // open(O_CREAT) follows a dangling symlink and makes its target; O_EXCL refuses the link.
    await root.call('symlink', { at: { path: '/lx/link' }, target: 'd/made' });
    await assert.rejects(
      root.call('create', { at: { path: '/lx/link' }, flags: { exclusive: true } }),
      code('EEXIST'),
    );
    const made = await root.call('create', { at: { path: '/lx/link' } });
    assert.equal(made.created, true);
    assert.equal((await root.call('stat', { at: { path: '/lx/d/made' } })).attrs.id, made.attrs.id);
    const again = await root.call('create', { at: { path: '/lx/link' } });
    assert.equal(again.created, false);
    assert.equal(again.attrs.id, made.attrs.id);
    // A name too long is ENAMETOOLONG where the walk reaches it, not before.
    const long = 'n'.repeat(256);
    await assert.rejects(root.call('stat', { at: { path: `/lx/none/${long}` } }), code('ENOENT'));
    await assert.rejects(
      root.call('stat', { at: { path: `/lx/d/${long}` } }),
      code('ENAMETOOLONG'),
    );
    await assert.rejects(
      root.call('rename', { from: { path: '/lx/none' }, to: { path: `/lx/d/${long}` } }),
      code('ENOENT'),
    );
    // link(2) checks the new name before refusing a directory.
    const dir = (await root.call('stat', { at: { path: '/lx/d' } })).attrs.id;
    await assert.rejects(
      root.call('hardLink', { inode: dir, at: { path: '/lx/link' } }),
      code('EEXIST'),
    );
    await assert.rejects(
      root.call('hardLink', { inode: dir, at: { path: '/lx/none/x' } }),
      code('ENOENT'),
    );
    await assert.rejects(
      root.call('hardLink', { inode: dir, at: { path: '/lx/x' } }),
      code('EPERM'),
    );
    // Renaming onto a directory the source lies inside: ENOTEMPTY, whatever the source is.
    await assert.rejects(
      root.call('rename', { from: { path: '/lx/d/made' }, to: { path: '/lx/d' } }),
      code('ENOTEMPTY'),
    );
    await assert.rejects(
      root.call('rename', { from: { path: '/lx/d/e' }, to: { path: '/lx' } }),
      code('ENOTEMPTY'),
    );
    // Looking a name up needs search permission on its directory: EACCES before ENOENT.
    await root.call('mkdirs', { at: { path: '/lx/closed' }, mode: 0o700 });
    await assert.rejects(
      alice.call('rename', { from: { path: '/lx/closed/none' }, to: { path: '/tmp/x' } }),
      code('EACCES'),
    );
    // Renaming a name onto itself (or a link onto its own inode) checks nothing: root's file in
    // a sticky directory, by another user.
    await root.call('create', { at: { path: '/tmp/roots' } });
    await alice.call('rename', { from: { path: '/tmp/roots' }, to: { path: '/tmp/roots' } });
    await assert.rejects(
      alice.call('rename', { from: { path: '/tmp/roots' }, to: { path: '/tmp/mine' } }),
      code('EPERM'),
    );
    // A truncate clears setuid and group-executable setgid for anyone but root, the owner too;
    // O_TRUNC counts as one even when there is nothing to cut.
    const own = await alice.call('create', { at: { path: '/tmp/own-suid' }, mode: 0o6755 });
    assert.equal(
      (await alice.call('truncate', { inode: own.attrs.id, length: 10 })).attrs.mode,
      0o755,
    );
    await alice.call('setAttr', { inode: own.attrs.id, mode: 0o6755 });
    await alice.call('truncate', { inode: own.attrs.id, length: 0 });
    await alice.call('setAttr', { inode: own.attrs.id, mode: 0o6755 });
    const trunc = await alice.call('open', {
      inode: own.attrs.id,
      flags: { write: true, truncate: true },
    });
    assert.equal(trunc.attrs.mode, 0o755);
    await alice.call('close', { inode: own.attrs.id, sessionId: trunc.session!.sessionId });
    // protected_hardlinks: no link to root's 0644 file from another user, whatever the directory.
    const roots = (await root.call('stat', { at: { path: '/tmp/roots' } })).attrs.id;
    await assert.rejects(
      alice.call('hardLink', { inode: roots, at: { path: '/tmp/pinned' } }),
      code('EPERM'),
    );
  });

  it('files get chains from the directory layout: stripe capped at the table, frozen shuffle', async () => {
    const { attrs } = await root.call('create', { at: { path: '/home/layout' } });
    const layout = attrs.layout!;
    assert.equal(layout.chunkSize, 1024 * 1024);
    assert.equal(layout.stripeSize, 4);
    assert.equal(layout.chains.kind, 'range');
    const table = findChainTable(cluster.base.routing.current, 1)!;
    assert.deepEqual([...stripeChains(layout, table.chainIds)].sort(), [1, 2, 3, 4]);
    assert.equal(attrs.dynStripe, 4);
    const sub = await root.call('mkdirs', {
      at: { path: '/home/wide' },
      layout: { stripeSize: 2, chunkSize: 65_536 },
    });
    const f = await root.call('create', { at: { parent: sub.attrs.id, path: 'f' } });
    assert.equal(f.attrs.layout?.stripeSize, 2);
    assert.equal(f.attrs.layout?.chunkSize, 65_536);
  });

  it('mkdir -p, rmdir only when empty, unlink vs rmdir codes, recursive remove', async () => {
    const deep = await alice.call('mkdirs', { at: { path: '/home/p/q/r' }, recursive: true });
    assert.equal(deep.attrs.type, 'dir');
    await alice.call('mkdirs', { at: { path: '/home/p/q/r' }, recursive: true });
    await assert.rejects(alice.call('mkdirs', { at: { path: '/home/p' } }), code('EEXIST'));
    await assert.rejects(
      alice.call('remove', { at: { path: '/home/p' }, kind: 'dir' }),
      code('ENOTEMPTY'),
    );
    await assert.rejects(
      alice.call('remove', { at: { path: '/home/p' }, kind: 'file' }),
      code('EISDIR'),
    );
    await alice.call('create', { at: { path: '/home/p/q/file' } });
    await assert.rejects(
      alice.call('remove', { at: { path: '/home/p/q/file' }, kind: 'dir' }),
      code('ENOTDIR'),
    );
    await alice.call('remove', { at: { path: '/home/p' }, recursive: true });
    await assert.rejects(alice.call('stat', { at: { path: '/home/p' } }), code('ENOENT'));
    await assert.rejects(
      alice.call('stat', { inode: deep.attrs.id }).then(async () => {
        // the walk removes the subtree shortly after
        for (let i = 0; i < 50; i++) {
          await server.gc.kick();
          await alice.call('stat', { inode: deep.attrs.id });
          await sleep(50);
        }
      }),
      code('ENOENT'),
    );
  });

  it('symlinks: readlink, following, ELOOP; hard links: nlink, EPERM on directories', async () => {
    await alice.call('mkdirs', { at: { path: '/home/ln' } });
    const target = await alice.call('create', { at: { path: '/home/ln/target' } });
    const link = await alice.call('symlink', { at: { path: '/home/ln/sym' }, target: 'target' });
    assert.equal(link.attrs.target, 'target');
    const nofollow = await alice.call('stat', { at: { path: '/home/ln/sym' }, follow: false });
    assert.equal(nofollow.attrs.type, 'symlink');
    const followed = await alice.call('stat', { at: { path: '/home/ln/sym' } });
    assert.equal(followed.attrs.id, target.attrs.id);
    await alice.call('symlink', { at: { path: '/home/ln/loop1' }, target: 'loop2' });
    await alice.call('symlink', { at: { path: '/home/ln/loop2' }, target: 'loop1' });
    await assert.rejects(alice.call('stat', { at: { path: '/home/ln/loop1' } }), code('ELOOP'));
    const hard = await alice.call('hardLink', {
      inode: target.attrs.id,
      at: { path: '/home/ln/hard' },
    });
    assert.equal(hard.attrs.nlink, 2);
    const dir = await alice.call('stat', { at: { path: '/home/ln' } });
    await assert.rejects(
      alice.call('hardLink', { inode: dir.attrs.id, at: { path: '/home/ln/d2' } }),
      code('EPERM'),
    );
    await alice.call('remove', { at: { path: '/home/ln/target' } });
    const left = await alice.call('stat', { at: { path: '/home/ln/hard' } });
    assert.equal(left.attrs.nlink, 1);
  });

  it('rename: across directories, replacing a file, EINVAL into its own subtree, ENOTEMPTY, EISDIR', async () => {
    await alice.call('mkdirs', { at: { path: '/home/rn/a/b' }, recursive: true });
    await alice.call('mkdirs', { at: { path: '/home/rn/c' } });
    const f = await alice.call('create', { at: { path: '/home/rn/a/f' } });
    await alice.call('create', { at: { path: '/home/rn/c/g' } });
    await alice.call('rename', { from: { path: '/home/rn/a/f' }, to: { path: '/home/rn/c/g' } });
    assert.equal((await alice.call('stat', { at: { path: '/home/rn/c/g' } })).attrs.id, f.attrs.id);
    await assert.rejects(alice.call('stat', { at: { path: '/home/rn/a/f' } }), code('ENOENT'));
    await assert.rejects(
      alice.call('rename', { from: { path: '/home/rn/a' }, to: { path: '/home/rn/a/b/x' } }),
      code('EINVAL'),
    );
    await assert.rejects(
      alice.call('rename', { from: { path: '/home/rn/c' }, to: { path: '/home/rn/a' } }),
      code('ENOTEMPTY'),
    );
    await alice.call('mkdirs', { at: { path: '/home/rn/empty' } });
    await assert.rejects(
      alice.call('rename', { from: { path: '/home/rn/c/g' }, to: { path: '/home/rn/empty' } }),
      code('EISDIR'),
    );
    await assert.rejects(
      alice.call('rename', { from: { path: '/home/rn/empty' }, to: { path: '/home/rn/c/g' } }),
      code('ENOTDIR'),
    );
    await alice.call('rename', { from: { path: '/home/rn/a' }, to: { path: '/home/rn/empty' } });
    assert.equal(
      (await alice.call('stat', { at: { path: '/home/rn/empty/b' } })).attrs.type,
      'dir',
    );
    await assert.rejects(
      alice.call('rename', {
        from: { path: '/home/rn/c/g' },
        to: { path: '/home/rn/empty/b' },
        noReplace: true,
      }),
      code('EEXIST'),
    );
  });

  it('permissions: EACCES for others, sticky directories, chmod by non-owner, setuid cleared on write open', async () => {
    await alice.call('mkdirs', { at: { path: '/home/private' }, mode: 0o700 });
    await assert.rejects(bob.call('create', { at: { path: '/home/private/x' } }), code('EACCES'));
    await assert.rejects(
      bob.call('list', {
        inode: (await alice.call('stat', { at: { path: '/home/private' } })).attrs.id,
      }),
      code('EACCES'),
    );
    const shared = await alice.call('create', { at: { path: '/tmp/alice' }, mode: 0o666 });
    await assert.rejects(bob.call('remove', { at: { path: '/tmp/alice' } }), code('EPERM'));
    await assert.rejects(
      bob.call('setAttr', { inode: shared.attrs.id, mode: 0o777 }),
      code('EPERM'),
    );
    const suid = await alice.call('setAttr', { inode: shared.attrs.id, mode: 0o6777 });
    assert.equal(suid.attrs.mode, 0o6777);
    const opened = await bob.call('open', { inode: shared.attrs.id, flags: { write: true } });
    assert.equal(opened.attrs.mode, 0o0777, 'setuid and setgid dropped by a non-owner write');
    await bob.call('close', { inode: shared.attrs.id, sessionId: opened.session!.sessionId });
    const groupDir = await root.call('mkdirs', { at: { path: '/home/group' }, mode: 0o770 });
    await root.call('setAttr', { inode: groupDir.attrs.id, ownerGid: 50 });
    await alice.call('create', { at: { path: '/home/group/ok' } }); // supplementary group 50
    await assert.rejects(bob.call('stat', { at: { path: '/home/group/ok' } }), code('EACCES'));
    await root.call('remove', { at: { path: '/home/group/ok' } }); // root bypass
  });

  it('write sessions: exact length from storage at close, hints guarded by the truncate version, truncate', async () => {
    const made = await alice.call('create', { at: { path: '/home/data' }, flags: { write: true } });
    const session = made.session!.sessionId;
    const data = randomBytes(2 * 1024 * 1024 + 12_345);
    await cluster.base.client.writeFile(made.attrs.layout!, made.attrs.id, 0, data);
    const hinted = await alice.call('sync', {
      inode: made.attrs.id,
      lengthHint: 1000,
      truncateVer: 0,
    });
    assert.equal(hinted.attrs.length, 1000);
    const stale = await alice.call('sync', {
      inode: made.attrs.id,
      lengthHint: 5000,
      truncateVer: 7,
    });
    assert.equal(stale.attrs.length, 1000, 'a hint with an old truncate version is ignored');
    const closed = await alice.call('close', { inode: made.attrs.id, sessionId: session });
    assert.equal(closed.lengthExact, true);
    assert.equal(closed.attrs.length, data.length);
    const cut = await alice.call('truncate', { inode: made.attrs.id, length: 100 });
    assert.equal(cut.attrs.length, 100);
    assert.equal(cut.attrs.truncateVer, 1);
    // Chunks from index 1 on are gone; chunk 0 remains (its tail past 100 is beyond the length).
    assert.equal(
      await cluster.base.client.fileLength(made.attrs.layout!, made.attrs.id, made.attrs.dynStripe),
      1024 * 1024,
    );
    const grown = await alice.call('truncate', { inode: made.attrs.id, length: 10 * 1024 * 1024 });
    const reopened = await alice.call('open', { inode: made.attrs.id, flags: { write: true } });
    const closed2 = await alice.call('close', {
      inode: made.attrs.id,
      sessionId: reopened.session!.sessionId,
    });
    assert.equal(closed2.attrs.length, grown.attrs.length, 'a sparse tail set by truncate is kept');
  });

  it('truncate while a writer has not reported its length yet still removes the chunks past the end', async () => {
    const MiB = 1024 * 1024;
    const made = await alice.call('create', {
      at: { path: '/home/unreported' },
      flags: { write: true },
    });
    const { layout, id } = made.attrs;
    // Three chunks on storage; meta still says length 0 (no hint, no close yet).
    await alice.call('sync', { inode: id, wantStripe: 3, truncateVer: 0 });
    await cluster.base.client.writeFile(layout!, id, 0, randomBytes(2 * MiB + 5000));
    const cut = await alice.call('truncate', { inode: id, length: MiB + 100 });
    assert.equal(cut.attrs.length, MiB + 100);
    // Chunk 2 is gone; chunk 1 (the partial one at the new end) is the client's to cut.
    assert.equal(await cluster.base.client.fileLength(layout!, id, 3), 2 * MiB);
    await alice.call('close', { inode: id, sessionId: made.session!.sessionId });
  });

  it('a session that wrote nothing closes without measuring: the length stays, the session goes', async () => {
    const made = await alice.call('create', { at: { path: '/home/idle' }, flags: { write: true } });
    // Bytes on storage that nobody reported: only a measuring close would find them.
    await cluster.base.client.writeFile(made.attrs.layout!, made.attrs.id, 0, randomBytes(5000));
    const idle = await alice.call('close', {
      inode: made.attrs.id,
      sessionId: made.session!.sessionId,
      updateLength: false,
    });
    assert.equal(idle.lengthExact, false);
    assert.equal(idle.attrs.length, 0, 'no storage query, so the unreported bytes are not counted');
    const sessions = await listSessions(server.ctx, undefined, 1024);
    assert.equal(
      sessions.some((s) => s.inode === made.attrs.id),
      false,
      'the session key is gone',
    );
    const writer = await alice.call('open', { inode: made.attrs.id, flags: { write: true } });
    const measured = await alice.call('close', {
      inode: made.attrs.id,
      sessionId: writer.session!.sessionId,
    });
    assert.equal(measured.lengthExact, true);
    assert.equal(measured.attrs.length, 5000);
  });

  it("closeSessions closes many sessions in one call, only the caller's, and again harmlessly", async () => {
    const open = (name: string, who: MetaClient) =>
      who.call('create', { at: { path: `/tmp/${name}` }, mode: 0o666, flags: { write: true } });
    const mine = await Promise.all(['cs1', 'cs2', 'cs3'].map((n) => open(n, alice)));
    const theirs = await open('cs4', bob);
    const sessions = [...mine, theirs].map((m) => ({
      inode: m.attrs.id,
      sessionId: m.session!.sessionId,
    }));
    const open3 = async () =>
      (await listSessions(server.ctx, undefined, 1024)).filter((s) =>
        sessions.some((t) => t.sessionId === s.sessionId),
      );
    assert.equal((await open3()).length, 4);
    const first = await alice.call('closeSessions', { sessions });
    assert.equal(first.closed, 3, "bob's session is not alice's to close");
    assert.deepEqual(
      (await open3()).map((s) => s.sessionId),
      [theirs.session!.sessionId],
    );
    const retry = await alice.call('closeSessions', { sessions: sessions.slice(0, 3) });
    assert.equal(retry.closed, 3, 'closed already counts as closed');
    await bob.call('closeSessions', { sessions: sessions.slice(3) });
    assert.equal((await open3()).length, 0);
    await assert.rejects(
      alice.call('closeSessions', { sessions: [] }),
      code('INVALID_ARGUMENT'),
      'an empty batch is a bad request',
    );
  });

  it('GC: an unlinked file keeps its chunks for the delay and while a writer is open, then loses them', async () => {
    const made = await alice.call('create', { at: { path: '/home/gc' }, flags: { write: true } });
    const { layout, id, dynStripe } = made.attrs;
    await cluster.base.client.writeFile(layout!, id, 0, randomBytes(300_000));
    await alice.call('remove', { at: { path: '/home/gc' } });
    await sleep(GC_DELAY_MS * 3);
    await server.gc.kick();
    assert.equal(
      await cluster.base.client.fileLength(layout!, id, dynStripe),
      300_000,
      'open writer: chunks kept',
    );
    assert.equal((await alice.call('stat', { inode: id })).attrs.nlink, 0);
    await alice.call('close', { inode: id, sessionId: made.session!.sessionId });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      await sleep(GC_DELAY_MS);
      await server.gc.kick();
      if ((await alice.call('batchStat', { inodes: [id] })).attrs[0] === null) break;
    }
    assert.equal((await alice.call('batchStat', { inodes: [id] })).attrs[0], null, 'inode removed');
    assert.equal(await cluster.base.client.fileLength(layout!, id, dynStripe), 0, 'chunks removed');
  });

  it('remove and rename are idempotent by request id: a retry after a lost reply succeeds', async () => {
    await alice.call('create', { at: { path: '/home/idem' } });
    const rpc = new RpcClient({ address: server.address, clusterId: 'meta-ns', log: quietLog });
    const header = {
      uid: 1000,
      gid: 1000,
      groups: [],
      clientId: alice.clientId,
      requestId: 'retry-1',
    };
    await rpc.call(MetaService.methods.rename, {
      ...header,
      from: { path: '/home/idem' },
      to: { path: '/home/idem2' },
    });
    await rpc.call(MetaService.methods.rename, {
      ...header,
      from: { path: '/home/idem' },
      to: { path: '/home/idem2' },
    });
    const rm = { ...header, requestId: 'retry-2', at: { path: '/home/idem2' } };
    await rpc.call(MetaService.methods.remove, rm);
    await rpc.call(MetaService.methods.remove, rm);
    await assert.rejects(
      rpc.call(MetaService.methods.remove, { ...rm, requestId: 'retry-3' }),
      code('ENOENT'),
    );
    await rpc.close();
  });

  it('a create retried after a lost reply returns the file and session it made, once', async () => {
    const rpc = new RpcClient({ address: server.address, clusterId: 'meta-ns', log: quietLog });
    const header = { uid: 1000, gid: 1000, groups: [], clientId: alice.clientId };
    const exclusiveWrite = {
      ...header,
      requestId: 'create-retry-1',
      at: { path: '/home/once' },
      flags: { write: true, exclusive: true },
    };
    try {
      const first = (await rpc.call(MetaService.methods.create, exclusiveWrite)).body;
      const retry = (await rpc.call(MetaService.methods.create, exclusiveWrite)).body;
      assert.equal(first.created, true);
      assert.equal(retry.created, true, 'the retry is told it created the file, not EEXIST');
      assert.equal(retry.attrs.id, first.attrs.id);
      assert.equal(retry.session?.sessionId, first.session?.sessionId);
      const open = (await listSessions(server.ctx, undefined, 1024)).filter(
        (s) => s.inode === first.attrs.id,
      );
      assert.deepEqual(
        open.map((s) => s.sessionId),
        [first.session!.sessionId],
        'one write session, not one per attempt',
      );
      // Another request for the same name is a different create: O_EXCL fails.
      await assert.rejects(
        rpc.call(MetaService.methods.create, { ...exclusiveWrite, requestId: 'create-retry-2' }),
        code('EEXIST'),
      );
      // A retry after the session was closed (say, pruned) gets it opened again under its id.
      await alice.call('close', { inode: first.attrs.id, sessionId: first.session!.sessionId });
      const late = (await rpc.call(MetaService.methods.create, exclusiveWrite)).body;
      assert.equal(late.session?.sessionId, first.session?.sessionId);
      await alice.call('close', { inode: first.attrs.id, sessionId: late.session!.sessionId });

      // Opening an existing file through create keeps its reply for retries: one session again.
      const reopen = {
        ...header,
        requestId: 'create-retry-3',
        at: { path: '/home/once' },
        flags: { write: true },
      };
      const opened = (await rpc.call(MetaService.methods.create, reopen)).body;
      const reopened = (await rpc.call(MetaService.methods.create, reopen)).body;
      assert.equal(opened.created, false);
      assert.deepEqual(reopened, opened);
      await alice.call('close', { inode: opened.attrs.id, sessionId: opened.session!.sessionId });
    } finally {
      await rpc.close();
    }
  });

  it('quotas: inode and byte limits (EDQUOT), statfs reports the quota, rename across roots, delete frees usage', async () => {
    const vol = await root.call('mkdirs', { at: { path: '/vol' }, mode: 0o777 });
    await root.call('create', { at: { path: '/vol/pre' } });
    await assert.rejects(
      root.call('setQuota', { inode: vol.attrs.id, limits: { maxBytes: 1, maxInodes: 1 } }),
      code('ENOTEMPTY'),
    );
    await root.call('remove', { at: { path: '/vol/pre' } });
    await assert.rejects(
      alice.call('setQuota', { inode: vol.attrs.id, limits: { maxBytes: 1, maxInodes: 1 } }),
      code('EPERM'),
    );
    const limit = 3 * 1024 * 1024;
    await root.call('setQuota', { inode: vol.attrs.id, limits: { maxBytes: limit, maxInodes: 4 } });
    await alice.call('mkdirs', { at: { path: '/vol/d' } });
    const f = await alice.call('create', { at: { path: '/vol/d/f' }, flags: { write: true } });
    await alice.call('create', { at: { path: '/vol/g' } });
    await alice.call('symlink', { at: { path: '/vol/s' }, target: 'g' });
    await assert.rejects(alice.call('create', { at: { path: '/vol/h' } }), code('EDQUOT'));
    let q = await root.call('getQuota', { inode: vol.attrs.id });
    assert.deepEqual([q.usedInodes, q.usedBytes], [4, 0]);

    await cluster.base.client.writeFile(
      f.attrs.layout!,
      f.attrs.id,
      0,
      randomBytes(2 * 1024 * 1024),
    );
    await alice.call('close', { inode: f.attrs.id, sessionId: f.session!.sessionId });
    q = await root.call('getQuota', { inode: vol.attrs.id });
    assert.equal(q.usedBytes, 2 * 1024 * 1024, 'closed length counted exactly');
    const fs = await alice.call('statFs', { inode: f.attrs.id });
    assert.deepEqual(
      [fs.quotaRoot, fs.totalBytes, fs.usedBytes, fs.totalInodes, fs.usedInodes],
      [vol.attrs.id, limit, 2 * 1024 * 1024, 4, 4],
    );
    await assert.rejects(
      alice.call('truncate', { inode: f.attrs.id, length: limit + 1 }),
      code('EDQUOT'),
    );
    await assert.rejects(
      alice.call('sync', { inode: f.attrs.id, lengthHint: limit + 10 }),
      code('EDQUOT'),
    );
    q = await root.call('getQuota', { inode: vol.attrs.id });
    assert.equal(
      q.usedBytes,
      limit + 10,
      'the hinted bytes exist and are counted; the writer was told EDQUOT',
    );
    await alice.call('truncate', { inode: f.attrs.id, length: 1024 });
    assert.equal((await root.call('getQuota', { inode: vol.attrs.id })).usedBytes, 1024);

    // Files take their usage along across quota roots; directories may not cross (EXDEV).
    await alice.call('rename', { from: { path: '/vol/d/f' }, to: { path: '/home/f-out' } });
    q = await root.call('getQuota', { inode: vol.attrs.id });
    assert.deepEqual([q.usedInodes, q.usedBytes], [3, 0]);
    await assert.rejects(
      alice.call('rename', { from: { path: '/vol/d' }, to: { path: '/home/d-out' } }),
      code('EXDEV'),
    );
    await alice.call('rename', { from: { path: '/home/f-out' }, to: { path: '/vol/d/f' } });
    q = await root.call('getQuota', { inode: vol.attrs.id });
    assert.deepEqual([q.usedInodes, q.usedBytes], [4, 1024]);
    await assert.rejects(
      alice.call('hardLink', { inode: f.attrs.id, at: { path: '/home/f-link' } }),
      code('EXDEV'),
    );

    await alice.call('remove', { at: { path: '/vol/d' }, recursive: true });
    const deadline = Date.now() + 10_000;
    do {
      await server.gc.kick();
      q = await root.call('getQuota', { inode: vol.attrs.id });
    } while (
      (q.usedInodes !== 2 || q.usedBytes !== 0) &&
      Date.now() < deadline &&
      (await sleep(50), true)
    );
    assert.deepEqual([q.usedInodes, q.usedBytes], [2, 0], 'the GC walk frees the subtree');
  });
});
