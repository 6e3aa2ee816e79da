// The namespace against Linux. Seeded random sequences of namespace operations (mkdir, create,
// unlink, rmdir, rename, link, symlink, stat, lstat, readdir) go to a directory through meta's RPC
// and to a directory on the local disk; every result, success or errno, must be the same, and so
// must the whole tree (names, types, symlink targets, which names are hard links of one file, file
// link counts), compared every few operations and at the end. Linux is the reference, so the test
// holds meta to POSIX as the kernel implements it rather than to our reading of the standard.
//
// Paths are made from three names and stay short so that operations collide: renames onto
// existing names, directories into their own subtrees, links of directories, creates through
// dangling symlinks. Symlink targets never climb with "..", so nothing resolves outside the two
// roots. A failure prints its seed and the operations up to it; THREEFS_NS_SEED=<n> replays one,
// THREEFS_NS_OPS=<n> runs longer sequences.
import assert from 'node:assert/strict';
import {
  closeSync,
  constants,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  statSync,
  symlinkSync,
  unlinkSync,
} from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { MetaClient } from '../../daemons/client/meta-client.js';
import type { InodeAttrs } from '../../daemons/common/services/meta.js';
import { testDir } from '../helpers/cluster.js';
import { Rng } from '../helpers/rng.js';
import { MetaTestCluster } from './meta-cluster.js';

type Op =
  | { kind: 'mkdir' | 'unlink' | 'rmdir' | 'readdir'; path: string }
  | { kind: 'create'; path: string; exclusive: boolean }
  | { kind: 'rename' | 'link'; from: string; to: string }
  | { kind: 'symlink'; target: string; path: string }
  | { kind: 'stat'; path: string; follow: boolean };

type NodeType = InodeAttrs['type'];

/** What an operation returned: 'OK' or an errno name, and what it saw (stat, readdir). */
interface Outcome {
  code: string;
  type?: NodeType;
  /** The inode, as a key of this side: hard links compare through the identity map. */
  inode?: string;
  names?: string[];
}

/** One entry of a tree walk (lstat semantics). */
interface TreeEntry {
  path: string;
  type: NodeType;
  inode: string;
  /** Files and symlinks; a directory's count is not compared (Linux counts subdirectories). */
  nlink?: number;
  target?: string;
}

const NAMES = ['a', 'b', 'c'];
const LONG_NAME = 'n'.repeat(256);
const OPS_PER_SEED = Number(process.env.THREEFS_NS_OPS ?? 300);
const COMPARE_TREES_EVERY = 20;
const SEEDS = process.env.THREEFS_NS_SEED ? [Number(process.env.THREEFS_NS_SEED)] : [1, 2, 3, 4];

function randomPath(rng: Rng): string {
  const depth = rng.weighted([
    [1, 4],
    [2, 4],
    [3, 2],
  ] as const);
  const parts = Array.from({ length: depth }, () => rng.pick(NAMES));
  if (rng.chance(0.02)) parts[parts.length - 1] = LONG_NAME;
  // "x/.." and "." inside a path: resolved physically by both sides, never above the root.
  if (depth >= 2 && rng.chance(0.05)) parts.splice(1, 0, '..');
  if (rng.chance(0.03)) parts.splice(rng.int(0, parts.length - 1), 0, '.');
  return parts.join('/');
}

function randomOp(rng: Rng): Op {
  const kind = rng.weighted([
    ['mkdir', 5],
    ['create', 5],
    ['unlink', 2],
    ['rmdir', 2],
    ['rename', 4],
    ['link', 2],
    ['symlink', 2],
    ['stat', 3],
    ['readdir', 1],
  ] as const);
  switch (kind) {
    case 'create':
      return { kind, path: randomPath(rng), exclusive: rng.chance(0.5) };
    case 'rename':
    case 'link':
      return { kind, from: randomPath(rng), to: randomPath(rng) };
    case 'symlink': {
      const target = Array.from({ length: rng.int(1, 2) }, () => rng.pick(NAMES)).join('/');
      return { kind, target, path: randomPath(rng) };
    }
    case 'stat':
      return { kind, path: randomPath(rng), follow: rng.chance(0.5) };
    default:
      return { kind, path: randomPath(rng) };
  }
}

function typeOfStats(st: { isDirectory(): boolean; isSymbolicLink(): boolean }): NodeType {
  return st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file';
}

/** The reference: the same operation on the local disk's file system. */
class LinuxSide {
  constructor(private readonly root: string) {}

  /** Not path.join: that would fold "x/.." away before the kernel walks it. */
  private at(p: string): string {
    return `${this.root}/${p}`;
  }

  apply(op: Op): Outcome {
    try {
      switch (op.kind) {
        case 'mkdir':
          mkdirSync(this.at(op.path));
          return { code: 'OK' };
        case 'create': {
          const flags =
            constants.O_CREAT | constants.O_RDONLY | (op.exclusive ? constants.O_EXCL : 0);
          closeSync(openSync(this.at(op.path), flags, 0o644));
          return { code: 'OK' };
        }
        case 'unlink':
          unlinkSync(this.at(op.path));
          return { code: 'OK' };
        case 'rmdir':
          rmdirSync(this.at(op.path));
          return { code: 'OK' };
        case 'rename':
          renameSync(this.at(op.from), this.at(op.to));
          return { code: 'OK' };
        case 'link':
          linkSync(this.at(op.from), this.at(op.to));
          return { code: 'OK' };
        case 'symlink':
          symlinkSync(op.target, this.at(op.path));
          return { code: 'OK' };
        case 'stat': {
          const st = op.follow ? statSync(this.at(op.path)) : lstatSync(this.at(op.path));
          return { code: 'OK', type: typeOfStats(st), inode: String(st.ino) };
        }
        case 'readdir':
          return { code: 'OK', names: readdirSync(this.at(op.path)).sort() };
      }
    } catch (err) {
      return { code: (err as NodeJS.ErrnoException).code ?? String(err) };
    }
  }

  tree(dir = ''): TreeEntry[] {
    const out: TreeEntry[] = [];
    for (const name of readdirSync(this.at(dir)).sort()) {
      const p = dir === '' ? name : `${dir}/${name}`;
      const st = lstatSync(this.at(p));
      const type = typeOfStats(st);
      const entry: TreeEntry = { path: p, type, inode: String(st.ino) };
      if (type !== 'dir') entry.nlink = st.nlink;
      if (type === 'symlink') entry.target = readlinkSync(this.at(p));
      out.push(entry);
      if (type === 'dir') out.push(...this.tree(p));
    }
    return out;
  }
}

/** The system under test: the same operation through meta's RPC, paths relative to `rootId`. */
class MetaSide {
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

/**
 * Which Linux inode each meta inode is. Meta never reuses an inode id, so the Linux inode paired
 * with one must stay the same for the whole run (a rename keeps the inode it moved, a hard link
 * names the same file). Linux does reuse inode numbers once a file is gone, so the other
 * direction holds only within one look at the tree.
 */
class Identities {
  private readonly linuxOf = new Map<string, string>();

  pair(linux: string, meta: string, where: string): void {
    const known = this.linuxOf.get(meta);
    assert.equal(known ?? linux, linux, `${where}: meta inode ${meta} was Linux inode ${known}`);
    this.linuxOf.set(meta, linux);
  }
}

function describeOp(op: Op): string {
  switch (op.kind) {
    case 'create':
      return `create${op.exclusive ? ' O_EXCL' : ''} ${op.path}`;
    case 'rename':
    case 'link':
      return `${op.kind} ${op.from} -> ${op.to}`;
    case 'symlink':
      return `symlink ${op.path} -> ${op.target}`;
    case 'stat':
      return `${op.follow ? 'stat' : 'lstat'} ${op.path}`;
    default:
      return `${op.kind} ${op.path}`;
  }
}

function compareTrees(linux: TreeEntry[], meta: TreeEntry[], ids: Identities, where: string) {
  const strip = (t: TreeEntry[]) => t.map(({ inode: _inode, ...rest }) => rest);
  assert.deepEqual(strip(meta), strip(linux), `${where}: the trees differ`);
  // Within one tree the pairing is one-to-one both ways: the same names are hard links of one file.
  const metaOf = new Map<string, string>();
  linux.forEach((entry, i) => {
    const metaInode = meta[i]!.inode;
    const paired = metaOf.get(entry.inode) ?? metaInode;
    assert.equal(metaInode, paired, `${where}: ${entry.path} is not the file its hard links are`);
    metaOf.set(entry.inode, metaInode);
    ids.pair(entry.inode, metaInode, `${where}, ${entry.path}`);
  });
  assert.equal(
    new Set(metaOf.values()).size,
    metaOf.size,
    `${where}: two files share a meta inode`,
  );
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
      const rng = new Rng(seed);
      const local = testDir(`vs-linux-${seed}`);
      const { attrs } = await meta.call('mkdirs', { at: { path: `/vs-linux-${seed}` } });
      const linux = new LinuxSide(local);
      const ours = new MetaSide(meta, attrs.id);
      const ids = new Identities();
      const done: string[] = [];
      const where = () => `seed ${seed}, after:\n  ${done.slice(-25).join('\n  ')}\n`;
      for (let step = 1; step <= OPS_PER_SEED; step++) {
        const op = randomOp(rng);
        const expected = linux.apply(op);
        const got = await ours.apply(op);
        done.push(`${step}: ${describeOp(op)} = ${expected.code}`);
        const { inode: linuxInode, ...expectedRest } = expected;
        const { inode: metaInode, ...gotRest } = got;
        assert.deepEqual(gotRest, expectedRest, `${where()}meta answered ${JSON.stringify(got)}`);
        if (linuxInode !== undefined && metaInode !== undefined)
          ids.pair(linuxInode, metaInode, where());
        if (step % COMPARE_TREES_EVERY === 0 || step === OPS_PER_SEED)
          compareTrees(linux.tree(), await ours.tree(), ids, where());
      }
    });
  }
});
