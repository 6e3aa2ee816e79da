// Random namespace operations and their reference: the local disk's file system. A test applies
// the same seeded operations to the system under test (meta through its RPC, or a FUSE mount) and
// to a directory on the local disk, and holds every answer and the resulting tree to Linux's.
//
// Paths are made from three names and stay short so that operations collide: renames onto
// existing names, directories into their own subtrees, links of directories, creates through
// dangling symlinks. Symlink targets never climb with "..", so nothing resolves outside the two
// roots.
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
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
  truncateSync,
  unlinkSync,
} from 'node:fs';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { InodeAttrs } from '../../daemons/common/services/meta.js';
import type { Rng } from './rng.js';

const NAMES = ['a', 'b', 'c'];
/** chmod's modes: plain, setuid, setgid, sticky, and none at all. */
const MODES = [0o755, 0o700, 0o644, 0o4755, 0o2750, 0o1777, 0o000];
/** What creates ask for; the process umask (022 by default) leaves them as they are. */
const NEW_DIR_MODE = 0o755;
const NEW_FILE_MODE = 0o644;
/** chown's (uid, gid): to root, to the user, the group alone (-1 keeps the uid), mixed. */
const OWNERS: ReadonlyArray<readonly [number, number]> = [
  [0, 0],
  [1000, 1000],
  [-1, 1000],
  [-1, 0],
  [0, 1000],
];
/** truncate's lengths: empty, inside one block, across a 4 KiB boundary. */
const LENGTHS = [0, 10, 5000];
const LONG_NAME = 'n'.repeat(256);

export type Op =
  | { kind: 'mkdir' | 'unlink' | 'rmdir' | 'readdir'; path: string }
  | { kind: 'create'; path: string; exclusive: boolean }
  | { kind: 'rename' | 'link'; from: string; to: string }
  | { kind: 'symlink'; target: string; path: string }
  | { kind: 'stat'; path: string; follow: boolean }
  | { kind: 'chmod'; path: string; mode: number }
  | { kind: 'open'; path: string; write: boolean; truncate: boolean }
  | { kind: 'truncate'; path: string; length: number }
  /** -1 leaves that id as it is, as chown(2) does. */
  | { kind: 'chown'; path: string; uid: number; gid: number };

export type NodeType = InodeAttrs['type'];

/** What an operation returned: 'OK' or an errno name, and what it saw (stat, readdir). */
export interface Outcome {
  code: string;
  type?: NodeType;
  /** The inode, as a key of this side: hard links compare through the identity map. */
  inode?: string;
  names?: string[];
}

/** One entry of a tree walk (lstat semantics). */
export interface TreeEntry {
  path: string;
  type: NodeType;
  inode: string;
  /** Files and symlinks; a directory's count is not compared (Linux counts subdirectories). */
  nlink?: number;
  /** Permission bits with setuid, setgid and sticky (not for symlinks, always 0777). */
  mode?: number;
  /** "uid:gid" */
  owner: string;
  /** Files: bytes. */
  length?: number;
  target?: string;
}

/** A path of one to three of the short names, sometimes with ".", ".." or a name too long. */
export function randomPath(rng: Rng): string {
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

export function randomOp(rng: Rng): Op {
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
    ['chmod', 1],
    ['open', 2],
    ['truncate', 1],
    ['chown', 1],
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
    case 'chmod':
      return { kind, path: randomPath(rng), mode: rng.pick(MODES) };
    case 'open': {
      const write = rng.chance(0.6);
      return { kind, path: randomPath(rng), write, truncate: write && rng.chance(0.3) };
    }
    case 'truncate':
      return { kind, path: randomPath(rng), length: rng.pick(LENGTHS) };
    case 'chown': {
      const [uid, gid] = rng.pick(OWNERS);
      return { kind, path: randomPath(rng), uid, gid };
    }
    default:
      return { kind, path: randomPath(rng) };
  }
}

function typeOfStats(st: { isDirectory(): boolean; isSymbolicLink(): boolean }): NodeType {
  return st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file';
}

/**
 * Operations through node:fs on a directory: the local disk's (the reference) or a mount's (the
 * system under test, through the kernel).
 */
export class DirectorySide implements NamespaceSide {
  constructor(private readonly root: string) {}

  /** Not path.join: that would fold "x/.." away before the kernel walks it. */
  private at(p: string): string {
    return `${this.root}/${p}`;
  }

  apply(op: Op): Outcome {
    try {
      switch (op.kind) {
        case 'mkdir':
          mkdirSync(this.at(op.path), NEW_DIR_MODE);
          return { code: 'OK' };
        case 'create': {
          const flags =
            constants.O_CREAT | constants.O_RDONLY | (op.exclusive ? constants.O_EXCL : 0);
          closeSync(openSync(this.at(op.path), flags, NEW_FILE_MODE));
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
        case 'chmod':
          chmodSync(this.at(op.path), op.mode);
          return { code: 'OK' };
        case 'open': {
          const access = op.write ? constants.O_WRONLY : constants.O_RDONLY;
          closeSync(openSync(this.at(op.path), access | (op.truncate ? constants.O_TRUNC : 0)));
          return { code: 'OK' };
        }
        case 'truncate':
          truncateSync(this.at(op.path), op.length);
          return { code: 'OK' };
        case 'chown':
          chownSync(this.at(op.path), op.uid, op.gid);
          return { code: 'OK' };
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
      const entry: TreeEntry = {
        path: p,
        type,
        inode: String(st.ino),
        owner: `${st.uid}:${st.gid}`,
      };
      if (type !== 'dir') entry.nlink = st.nlink;
      if (type === 'symlink') entry.target = readlinkSync(this.at(p));
      else entry.mode = st.mode & 0o7777;
      if (type === 'file') entry.length = st.size;
      out.push(entry);
      if (type === 'dir') out.push(...this.tree(p));
    }
    return out;
  }
}

/**
 * Which Linux inode each of ours is. Meta never reuses an inode id, so the Linux inode paired with
 * one must stay the same for the whole run (a rename keeps the inode it moved, a hard link names
 * the same file). Linux does reuse inode numbers once a file is gone, so the other direction
 * holds only within one look at the tree.
 */
export class Identities {
  private readonly linuxOf = new Map<string, string>();

  pair(linux: string, meta: string, where: string): void {
    const known = this.linuxOf.get(meta);
    assert.equal(known ?? linux, linux, `${where}: our inode ${meta} was Linux inode ${known}`);
    this.linuxOf.set(meta, linux);
  }
}

export function describeOp(op: Op): string {
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
    case 'chmod':
      return `chmod ${op.mode.toString(8)} ${op.path}`;
    case 'open':
      return `open ${op.write ? (op.truncate ? 'O_WRONLY|O_TRUNC' : 'O_WRONLY') : 'O_RDONLY'} ${op.path}`;
    case 'truncate':
      return `truncate ${op.path} to ${op.length}`;
    case 'chown':
      return `chown ${op.uid}:${op.gid} ${op.path}`;
    default:
      return `${op.kind} ${op.path}`;
  }
}

export function compareTrees(
  linux: TreeEntry[],
  meta: TreeEntry[],
  ids: Identities,
  where: string,
) {
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
    `${where}: two files share one of our inodes`,
  );
}

/** One side of a comparison: where an operation is applied. */
export interface OperationSide {
  apply(op: Op): Outcome | Promise<Outcome>;
}

/** A side whose whole tree can also be walked (as root). */
export interface NamespaceSide extends OperationSide {
  tree(): TreeEntry[] | Promise<TreeEntry[]>;
}

/** A side as root and, optionally, as an unprivileged user (trees are walked as root). */
export interface ComparedSides {
  root: NamespaceSide;
  user?: OperationSide;
}

/**
 * The local disk as another user: node:fs calls made by a child process running with that uid
 * and gid (and no supplementary groups), one JSON line per operation each way.
 */
export class OtherUserSide implements OperationSide {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting: Array<(outcome: Outcome) => void> = [];

  constructor(
    private readonly root: string,
    uid: number,
    gid: number,
  ) {
    const script = fileURLToPath(new URL('./namespace-child.js', import.meta.url));
    this.child = spawn(process.execPath, [script], { uid, gid, stdio: 'pipe' });
    let stderr = '';
    this.child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk).slice(-4_000)));
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      this.waiting.shift()?.(JSON.parse(line) as Outcome);
    });
    this.child.on('exit', (code) => {
      const gone = { code: `the uid ${uid} helper exited (${code}): ${stderr}` };
      for (const resolve of this.waiting.splice(0)) resolve(gone);
    });
  }

  apply(op: Op): Promise<Outcome> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.child.stdin.write(`${JSON.stringify({ root: this.root, op })}\n`);
    });
  }

  close(): void {
    this.child.stdin.end();
  }
}

/**
 * Applies `count` seeded operations to both sides, a share of them (`userShare`) as the user;
 * each answer, and every `compareEvery` operations the whole tree, must be Linux's. A failure
 * names the seed and the last operations.
 */
export async function compareWithLinux(
  rng: Rng,
  count: number,
  compareEvery: number,
  linux: ComparedSides,
  ours: ComparedSides,
  userShare = 0,
): Promise<void> {
  const ids = new Identities();
  const done: string[] = [];
  const where = () => `seed ${rng.seed}, after:\n  ${done.slice(-25).join('\n  ')}\n`;
  for (let step = 1; step <= count; step++) {
    const op = randomOp(rng);
    // Drawn only when users take part, so a root-only seed keeps its sequence.
    const asUser = userShare > 0 && rng.chance(userShare);
    const [reference, tested] = asUser ? [linux.user, ours.user] : [linux.root, ours.root];
    if (!reference || !tested) throw new Error('a user share needs a user side on both sides');
    const expected = await reference.apply(op);
    const got = await tested.apply(op);
    done.push(`${step}: ${describeOp(op)}${asUser ? ' (as the user)' : ''} = ${expected.code}`);
    const { inode: linuxInode, ...expectedRest } = expected;
    const { inode: ourInode, ...gotRest } = got;
    assert.deepEqual(
      gotRest,
      expectedRest,
      `${where()}the system under test answered ${JSON.stringify(got)}`,
    );
    if (linuxInode !== undefined && ourInode !== undefined) ids.pair(linuxInode, ourInode, where());
    if (step % compareEvery === 0 || step === count)
      compareTrees(await linux.root.tree(), await ours.root.tree(), ids, where());
  }
}
