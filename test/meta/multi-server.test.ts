// Two meta daemon processes over one KV store, found by clients through mgmtd's routing info:
// races between clients on different servers (one create wins, a mode change or a rename through
// one server decides the next walk through the other, renames lose or duplicate
// nothing and make no cycle, seeded random operations from every client leave a consistent tree
// and exact quota usage, unlink against open), then SIGKILL of a meta server mid-workload:
// clients fail over, every acknowledged create exists exactly once, GC finishes after restart,
// and random operations across a kill leave the tree and the quota as consistent as without one.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MetaClient } from '../../daemons/client/meta-client.js';
import { ThreeFsError } from '../../daemons/common/errors.js';
import { randomOp, randomPath, type TreeEntry } from '../helpers/namespace-ops.js';
import { Rng } from '../helpers/rng.js';
import { GC_DELAY_MS, MetaTestCluster } from './meta-cluster.js';
import { MetaSide } from './meta-side.js';
import { quotaPostMortem } from './quota-post-mortem.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const errno = (err: unknown) => (err instanceof ThreeFsError ? err.code : String(err));

/**
 * What random operations must leave under a quota directory: no directory cycle (the walk fails
 * on one) and each directory reached once, at once; and, once GC has walked the subtrees that
 * recursive removes detached (a hard link inside one still counts until then), every file's link
 * count equal to its names and the quota's counts equal to the inodes in the tree and the sum of
 * their lengths. A failure's message carries what the store holds (quota-post-mortem.ts).
 */
async function checkTreeAndQuota(client: MetaClient, top: number, kvPath: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (let look = 0; ; look++) {
    const tree = await new MetaSide(client, top).tree();
    const names = new Map<string, TreeEntry[]>();
    for (const entry of tree) names.set(entry.inode, [...(names.get(entry.inode) ?? []), entry]);
    const differences: string[] = [];
    let bytes = 0;
    for (const [inode, entries] of names) {
      const first = entries[0]!;
      if (first.type === 'dir') {
        assert.equal(entries.length, 1, `directory ${inode} is at ${entries.map((e) => e.path)}`);
      } else if (first.nlink !== entries.length) {
        differences.push(`${first.path}: ${first.nlink} links, ${entries.length} names`);
      }
      bytes += first.length ?? 0;
    }
    const usage = await client.call('getQuota', { inode: top });
    if (usage.usedInodes !== names.size || usage.usedBytes !== bytes) {
      differences.push(
        `quota ${usage.usedInodes} inodes / ${usage.usedBytes} bytes, tree ${names.size} / ${bytes}`,
      );
    }
    if (differences.length === 0) return;
    if (look >= 200 || Date.now() > deadline) {
      const store = await quotaPostMortem(kvPath, top, new Set(names.keys()));
      assert.fail(`${differences.join('; ')}\nthe store:\n${store}`);
    }
    await sleep(100);
  }
}

/** Seeded random operations from `client` under `top` until `count` or `stopped()`; codes tallied. */
async function randomWorkload(
  client: MetaClient,
  top: number,
  seed: number,
  count: number,
  outcomes: Map<string, number>,
  stopped: () => boolean = () => false,
): Promise<void> {
  const rng = new Rng(seed);
  const side = new MetaSide(client, top);
  for (let k = 0; k < count && !stopped(); k++) {
    // Now and then an `rm -r` (an O(1) detach of the subtree; GC walks it later).
    const { code } = rng.chance(0.04)
      ? await client
          .call('remove', { at: { parent: top, path: randomPath(rng) }, recursive: true })
          .then(
            () => ({ code: 'OK' }),
            (err: { code?: string }) => ({ code: err.code ?? String(err) }),
          )
      : await side.apply(randomOp(rng));
    // Conflicts and failovers are retried inside the client; what reaches the caller is POSIX.
    assert.match(code, /^(OK|E[A-Z]+)$/, `seed ${seed}, operation ${k}`);
    outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
  }
}

describe('two meta servers, several clients', () => {
  const cluster = new MetaTestCluster('meta-multi');
  const clients: MetaClient[] = [];

  async function waitMetaNodes(count: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const info = await cluster.base.routing.refresh();
      const meta = info.nodes.filter(
        (n) => n.type === 'META' && n.status === 'HEARTBEAT_CONNECTED',
      );
      if (meta.length >= count) return;
      if (Date.now() > deadline) assert.fail(`only ${meta.length} META nodes in routing info`);
      await sleep(100);
    }
  }

  /** Calls spread over both servers: clients stick to one server each, chosen at random. */
  const spread = (i: number) => clients[i % clients.length]!;

  before(async () => {
    await cluster.start();
    await cluster.startProcess(21);
    await cluster.startProcess(22);
    await waitMetaNodes(2);
    for (let i = 0; i < 6; i++) clients.push(cluster.client());
    await Promise.all(clients.map((c) => c.startSession()));
    // Make sure both servers are in use: clients pick one at random on their first call, so add
    // clients until two are picked. A client that has made no call yet has no server (undefined
    // must not count as one: it made this loop stop early, leaving a client unplaced).
    const servers = () => new Set(clients.map((c) => c.server).filter((s) => s !== undefined));
    for (let round = 0; round <= 20; round++) {
      await Promise.all(clients.map((c) => c.call('stat', { inode: 1 })));
      if (servers().size >= 2) break;
      clients.push(cluster.client());
      await clients[clients.length - 1]!.startSession();
    }
  });
  after(() => cluster.stop());

  it("clients on the servers' host dial the unix sockets routing advertises", async () => {
    const info = await cluster.base.routing.refresh();
    const meta = info.nodes.filter((n) => n.type === 'META');
    assert.ok(meta.length >= 2 && meta.every((n) => n.localAddress.startsWith('unix:')));
    const dialed = new Set(clients.map((c) => c.server));
    assert.ok(dialed.size >= 2, `clients use ${[...dialed].join(', ')}`);
    for (const server of dialed) {
      assert.ok(
        meta.some((n) => n.localAddress === server),
        `${server} is not a meta server's local socket`,
      );
    }
  });

  it('racing creates of one name: exactly one wins', async () => {
    await clients[0]!.call('mkdirs', { at: { path: '/race' } });
    for (let round = 0; round < 5; round++) {
      const results = await Promise.allSettled(
        clients.map((c) =>
          c.call('create', { at: { path: `/race/one-${round}` }, flags: { exclusive: true } }),
        ),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      assert.equal(
        won.length,
        1,
        `round ${round}: ${results.map((r) => (r.status === 'fulfilled' ? 'ok' : errno(r.reason))).join(',')}`,
      );
      for (const r of results) if (r.status === 'rejected') assert.equal(errno(r.reason), 'EEXIST');
    }
  });

  it("a directory's mode changed through one server decides the next walk through the other", async () => {
    const byServer = new Map(clients.map((c) => [c.server, c]));
    const [changer, walker] = [...byServer.values()];
    assert.ok(changer && walker && changer.server !== walker.server, 'two servers in use');
    const user = { uid: 1000, gid: 1000 };
    const { attrs } = await changer.call('mkdirs', {
      at: { path: '/perm/inner' },
      recursive: true,
    });
    await changer.call('create', { at: { path: '/perm/inner/f' } });
    const walk = () =>
      walker.call('stat', { at: { path: '/perm/inner/f' } }, user).then(
        () => 'OK',
        (err: unknown) => errno(err),
      );
    for (let round = 0; round < 5; round++) {
      // Walks between changes find the directory's record unread on the walker's server.
      for (let i = 0; i < 3; i++) assert.equal(await walk(), 'OK', `round ${round}`);
      await changer.call('setAttr', { inode: attrs.id, mode: 0o700 });
      assert.equal(await walk(), 'EACCES', `round ${round}: the new mode, at once`);
      await changer.call('setAttr', { inode: attrs.id, mode: 0o755 });
    }
  });

  it('a directory renamed through one server is where the next walk through the other looks', async () => {
    const byServer = new Map(clients.map((c) => [c.server, c]));
    const [changer, walker] = [...byServer.values()];
    assert.ok(changer && walker && changer.server !== walker.server, 'two servers in use');
    await changer.call('mkdirs', { at: { path: '/moving/here' }, recursive: true });
    await changer.call('create', { at: { path: '/moving/here/f' } });
    const walk = (dir: string) =>
      walker.call('stat', { at: { path: `/moving/${dir}/f` } }).then(
        () => 'OK',
        (err: unknown) => errno(err),
      );
    let [at, other] = ['here', 'there'];
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 3; i++) assert.equal(await walk(at), 'OK', `round ${round}`);
      await changer.call('rename', {
        from: { path: `/moving/${at}` },
        to: { path: `/moving/${other}` },
      });
      [at, other] = [other, at];
      assert.deepEqual([await walk(other), await walk(at)], ['ENOENT', 'OK'], `round ${round}`);
    }
  });

  it('racing renames: no entry lost or duplicated, no directory cycle', async () => {
    await clients[0]!.call('mkdirs', { at: { path: '/mv/a' }, recursive: true });
    await clients[0]!.call('mkdirs', { at: { path: '/mv/b' } });
    const files = 24;
    for (let i = 0; i < files; i++) await spread(i).call('create', { at: { path: `/mv/a/f${i}` } });
    // Every client moves every file back and forth; many moves lose with ENOENT, none may duplicate.
    await Promise.all(
      clients.map(async (c, ci) => {
        for (let k = 0; k < 12; k++) {
          const i = (ci * 7 + k * 5) % files;
          const [from, to] = k % 2 === 0 ? ['a', 'b'] : ['b', 'a'];
          await c
            .call('rename', {
              from: { path: `/mv/${from}/f${i}` },
              to: { path: `/mv/${to}/f${i}` },
            })
            .catch((err: unknown) => {
              assert.equal(errno(err), 'ENOENT');
            });
        }
      }),
    );
    const a = await clients[0]!.call('stat', { at: { path: '/mv/a' } });
    const b = await clients[0]!.call('stat', { at: { path: '/mv/b' } });
    const names = [
      ...(await clients[0]!.call('list', { inode: a.attrs.id, limit: 1024 })).entries,
      ...(await clients[0]!.call('list', { inode: b.attrs.id, limit: 1024 })).entries,
    ].map((e) => e.name);
    assert.equal(names.length, files, 'every file in exactly one directory');
    assert.equal(new Set(names).size, files);

    // Cycle race: x → y/x and y → x/y at once; at most one may succeed.
    for (let round = 0; round < 4; round++) {
      await clients[0]!.call('mkdirs', { at: { path: `/cyc${round}/x` }, recursive: true });
      await clients[0]!.call('mkdirs', { at: { path: `/cyc${round}/y` } });
      const results = await Promise.allSettled([
        clients[0]!.call('rename', {
          from: { path: `/cyc${round}/x` },
          to: { path: `/cyc${round}/y/x` },
        }),
        clients[1]!.call('rename', {
          from: { path: `/cyc${round}/y` },
          to: { path: `/cyc${round}/x/y` },
        }),
      ]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      const top = await clients[0]!.call('stat', { at: { path: `/cyc${round}` } });
      const entries = (await clients[0]!.call('list', { inode: top.attrs.id })).entries;
      assert.equal(entries.length, 1, 'one of x, y is left at the top, holding the other');
      const inner = (await clients[0]!.call('list', { inode: entries[0]!.id })).entries;
      assert.equal(inner.length, 1);
      assert.equal((await clients[0]!.call('list', { inode: inner[0]!.id })).entries.length, 0);
    }
  });

  it('seeded random operations from every client at once: a tree, link counts and quota usage that add up', async () => {
    const { attrs: top } = await clients[0]!.call('mkdirs', { at: { path: '/mixed' } });
    await clients[0]!.call('setQuota', {
      inode: top.id,
      limits: { maxBytes: 0, maxInodes: 1_000_000 },
    });
    const outcomes = new Map<string, number>();
    await Promise.all(
      clients.map((client, i) => randomWorkload(client, top.id, 7_000 + i, 120, outcomes)),
    );
    assert.ok((outcomes.get('OK') ?? 0) >= 100, `few operations succeeded: ${[...outcomes]}`);
    await checkTreeAndQuota(clients[0]!, top.id, cluster.kvPath);
  });

  it('racing unlink and open: either the open wins a session (GC waits) or it gets ENOENT', async () => {
    await clients[0]!.call('mkdirs', { at: { path: '/uo' } });
    for (let round = 0; round < 6; round++) {
      const made = await clients[0]!.call('create', { at: { path: `/uo/f${round}` } });
      const [unlink, open] = await Promise.allSettled([
        clients[1]!.call('remove', { at: { path: `/uo/f${round}` } }),
        clients[2]!.call('open', { at: { path: `/uo/f${round}` }, flags: { write: true } }),
      ]);
      if (unlink.status === 'rejected') {
        assert.fail(`the unlink racing an open failed: ${(unlink.reason as Error).message}`);
      }
      if (open.status === 'rejected') {
        assert.equal(errno(open.reason), 'ENOENT');
        continue;
      }
      await sleep(GC_DELAY_MS * 2);
      assert.notEqual(
        (await clients[0]!.call('batchStat', { inodes: [made.attrs.id] })).attrs[0],
        null,
        'kept while open',
      );
      await clients[2]!.call('close', {
        inode: made.attrs.id,
        sessionId: open.value.session!.sessionId,
      });
    }
  });

  it('SIGKILL of a meta server mid-workload: failover, nothing lost or duplicated, GC completes after restart', async () => {
    await clients[0]!.call('mkdirs', { at: { path: '/kill' } });
    const acknowledged = new Set<string>();
    let stop = false;
    const workers = clients.map(async (c, ci) => {
      for (let i = 0; i < 400 && !stop; i++) {
        const name = `c${ci}-${i}`;
        await c.call('create', { at: { path: `/kill/${name}` }, flags: { exclusive: true } });
        acknowledged.add(name);
      }
    });
    await sleep(400);
    const victim = cluster.processes.get(21)!;
    await victim.kill('SIGKILL');
    await sleep(600);
    stop = true;
    await Promise.all(workers);
    const failovers = clients.reduce((sum, c) => sum + c.failovers, 0);
    assert.ok(failovers > 0, 'some client was on the killed server and moved');
    const dir = await clients[0]!.call('stat', { at: { path: '/kill' } });
    const names: string[] = [];
    let afterName = '';
    for (let page = 0; page < 100; page++) {
      const { entries, more } = await clients[0]!.call('list', {
        inode: dir.attrs.id,
        after: afterName,
        limit: 1024,
      });
      names.push(...entries.map((e) => e.name));
      if (!more) break;
      afterName = entries[entries.length - 1]!.name;
    }
    assert.equal(new Set(names).size, names.length, 'no duplicate entry');
    assert.deepEqual(
      new Set(names),
      acknowledged,
      'every acknowledged create exists, nothing else',
    );

    // GC work queued, then the surviving server killed too before the delay passes; a restart finishes it.
    const ids = (await clients[0]!.call('list', { inode: dir.attrs.id, limit: 50 })).entries.map(
      (e) => e.id,
    );
    await clients[0]!.call('remove', { at: { path: '/kill' }, recursive: true });
    await cluster.processes.get(22)!.kill('SIGKILL');
    await cluster.startProcess(23);
    const deadline = Date.now() + 20_000;
    let left = ids.length;
    while (Date.now() < deadline) {
      const { attrs } = await clients[0]!.call('batchStat', { inodes: ids });
      left = attrs.filter((a) => a !== null).length;
      if (left === 0) break;
      await sleep(200);
    }
    assert.equal(left, 0, 'every inode of the removed subtree collected after the restart');
  });

  it('seeded random operations while a meta server is killed: the tree and quota still add up', async () => {
    // The previous test left server 23; 24 joins so the clients have somewhere to fail over to.
    await cluster.startProcess(24);
    await waitMetaNodes(2);
    const { attrs: top } = await clients[0]!.call('mkdirs', { at: { path: '/mixed-kill' } });
    await clients[0]!.call('setQuota', {
      inode: top.id,
      limits: { maxBytes: 0, maxInodes: 1_000_000 },
    });
    const outcomes = new Map<string, number>();
    let stop = false;
    const failoversBefore = clients.reduce((sum, c) => sum + c.failovers, 0);
    const workers = clients.map((client, i) =>
      randomWorkload(client, top.id, 9_000 + i, 600, outcomes, () => stop),
    );
    await sleep(300);
    await cluster.processes.get(23)!.kill('SIGKILL');
    await sleep(800);
    stop = true;
    await Promise.all(workers);
    const failovers = clients.reduce((sum, c) => sum + c.failovers, 0) - failoversBefore;
    assert.ok(failovers > 0, 'some client was on the killed server and moved');
    // Retries after the kill reuse their request ids: each operation took effect once.
    assert.ok((outcomes.get('OK') ?? 0) >= 50, `few operations succeeded: ${[...outcomes]}`);
    await checkTreeAndQuota(clients[0]!, top.id, cluster.kvPath);
  });
});
