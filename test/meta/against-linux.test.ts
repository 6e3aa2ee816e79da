// The namespace against Linux. Seeded random sequences of namespace operations (mkdir, create,
// unlink, rmdir, rename, link, symlink, stat, lstat, readdir) go to a directory through meta's RPC
// and to a directory on the local disk; every result, success or errno, must be the same, and so
// must the whole tree (names, types, symlink targets, which names are hard links of one file, file
// link counts), compared every few operations and at the end. Linux is the reference, so the test
// holds meta to POSIX as the kernel implements it rather than to our reading of the standard.
// The operations and the comparison are in test/helpers/namespace-ops.ts. A failure prints its
// seed and the operations up to it; THREEFS_NS_SEED=<n> replays one, THREEFS_NS_OPS=<n> runs
// longer sequences.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MetaClient } from '../../daemons/client/meta-client.js';
import { testDir } from '../helpers/cluster.js';
import {
  compareWithLinux,
  DirectorySide,
  type NamespaceSide,
  type Op,
  type Outcome,
  type TreeEntry,
} from '../helpers/namespace-ops.js';
import { Rng } from '../helpers/rng.js';
import { MetaTestCluster } from './meta-cluster.js';

const OPS_PER_SEED = Number(process.env.THREEFS_NS_OPS ?? 300);
const COMPARE_TREES_EVERY = 20;
const SEEDS = process.env.THREEFS_NS_SEED ? [Number(process.env.THREEFS_NS_SEED)] : [1, 2, 3, 4];

/** The system under test: the same operation through meta's RPC, paths relative to `rootId`. */
class MetaSide implements NamespaceSide {
  constructor(
    private readonly meta: MetaClient,
    private readonly rootId: number,
  ) {}

  private at(p: string) {
    return { parent: this.rootId, path: p };
  }

  async apply(op: Op): Promise<Outcome> {
    try {
      switch (op.kind) {
        case 'mkdir':
          await this.meta.call('mkdirs', { at: this.at(op.path) });
          return { code: 'OK' };
        case 'create':
          await this.meta.call('create', {
            at: this.at(op.path),
            flags: { exclusive: op.exclusive },
          });
          return { code: 'OK' };
        case 'unlink':
          await this.meta.call('remove', { at: this.at(op.path), kind: 'file' });
          return { code: 'OK' };
        case 'rmdir':
          await this.meta.call('remove', { at: this.at(op.path), kind: 'dir' });
          return { code: 'OK' };
        case 'rename':
          await this.meta.call('rename', { from: this.at(op.from), to: this.at(op.to) });
          return { code: 'OK' };
        case 'link': {
          // link(2) does not follow a symlink it is given: the link names the symlink itself.
          const { attrs } = await this.meta.call('stat', { at: this.at(op.from), follow: false });
          await this.meta.call('hardLink', { inode: attrs.id, at: this.at(op.to) });
          return { code: 'OK' };
        }
        case 'symlink':
          await this.meta.call('symlink', { at: this.at(op.path), target: op.target });
          return { code: 'OK' };
        case 'stat': {
          const { attrs } = await this.meta.call('stat', {
            at: this.at(op.path),
            follow: op.follow,
          });
          return { code: 'OK', type: attrs.type, inode: String(attrs.id) };
        }
        case 'readdir': {
          const { attrs } = await this.meta.call('stat', { at: this.at(op.path) });
          if (attrs.type !== 'dir') return { code: 'ENOTDIR' };
          return { code: 'OK', names: (await this.entries(attrs.id)).map((e) => e.name) };
        }
      }
    } catch (err) {
      return { code: (err as { code?: string }).code ?? String(err) };
    }
  }

  private async entries(inode: number) {
    const all = [];
    let after = '';
    for (let page = 0; page < 1_000; page++) {
      const { entries, more } = await this.meta.call('list', {
        inode,
        after,
        limit: 64,
        withAttrs: true,
      });
      all.push(...entries);
      if (!more) return all;
      after = entries[entries.length - 1]!.name;
    }
    throw new Error(`directory ${inode} lists more than 64,000 entries`);
  }

  async tree(dir = '', inode = this.rootId): Promise<TreeEntry[]> {
    const out: TreeEntry[] = [];
    for (const e of await this.entries(inode)) {
      const p = dir === '' ? e.name : `${dir}/${e.name}`;
      assert.ok(e.attrs, `list with attributes returned none for ${p}`);
      const entry: TreeEntry = { path: p, type: e.type, inode: String(e.id) };
      if (e.type !== 'dir') entry.nlink = e.attrs.nlink;
      if (e.type === 'symlink') entry.target = e.attrs.target ?? '';
      out.push(entry);
      if (e.type === 'dir') out.push(...(await this.tree(p, e.id)));
    }
    return out;
  }
}

describe('the namespace against Linux (seeded random operations)', () => {
  const cluster = new MetaTestCluster('meta-vs-linux');
  let meta: MetaClient;

  before(async () => {
    await cluster.start();
    const server = await cluster.startServer(11);
    meta = cluster.client({ uid: 0, gid: 0 }, [server.address]);
  });
  after(() => cluster.stop());

  for (const seed of SEEDS) {
    it(`seed ${seed}: ${OPS_PER_SEED} operations give Linux's results and tree`, async () => {
      const { attrs } = await meta.call('mkdirs', { at: { path: `/vs-linux-${seed}` } });
      await compareWithLinux(
        new Rng(seed),
        OPS_PER_SEED,
        COMPARE_TREES_EVERY,
        new DirectorySide(testDir(`vs-linux-${seed}`)),
        new MetaSide(meta, attrs.id),
      );
    });
  }
});
