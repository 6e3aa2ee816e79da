// The FUSE mount as a user sees it: a real cluster (mgmtd, storage, meta processes), the FUSE
// daemon as its own process, and files handled with node:fs and child processes. Every listed
// operation with its errno, data byte-exact across chunks and holes, lengths at meta after
// fsync/close, a 5,000-entry readdir, then a clean SIGTERM unmount and EIO (not a hang) once meta
// is gone past the operation timeout.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { constants } from 'node:os';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MetaClient } from '../../daemons/client/meta-client.js';
import { metricValue, testDir } from '../helpers/cluster.js';
import { compareWithLinux, DirectorySide } from '../helpers/namespace-ops.js';
import { mulberry32, Rng } from '../helpers/rng.js';
import { FuseTestCluster } from './fuse-cluster.js';

const MiB = 1024 * 1024;
const errCode = (expected: string) => (err: NodeJS.ErrnoException) => {
  assert.equal(err.code, expected, `expected ${expected}, got ${err.code}: ${err.message}`);
  return true;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a short node script as another user; returns its stdout (the script prints a code). */
function runAs(uid: number, script: string): string {
  const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    uid,
    gid: uid,
    encoding: 'utf8',
    timeout: 20_000,
  });
  if (out.status !== 0) throw new Error(`child failed: ${out.stderr}`);
  return out.stdout.trim();
}

function isMounted(dir: string): boolean {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === dir);
}

describe('FUSE mount', () => {
  const cluster = new FuseTestCluster('fuse-mount');
  let meta: MetaClient;
  const p = (...parts: string[]) => cluster.path(...parts);

  before(async () => {
    await cluster.start({ allowOther: true, lengthHintMs: 300, flushDelayMs: 200 });
    meta = cluster.meta.client();
  });
  after(() => cluster.stop());

  it('mkdir, create, stat, readdir, and their errors', () => {
    fs.mkdirSync(p('d'));
    assert.ok(fs.statSync(p('d')).isDirectory());
    assert.throws(() => fs.mkdirSync(p('d')), errCode('EEXIST'));
    fs.writeFileSync(p('d', 'f'), 'x');
    assert.deepEqual(fs.readdirSync(p('d')), ['f']);
    assert.throws(() => fs.statSync(p('d', 'missing')), errCode('ENOENT'));
    assert.throws(() => fs.readdirSync(p('d', 'f')), errCode('ENOTDIR'));
    assert.throws(() => fs.writeFileSync(p('d'), 'x'), errCode('EISDIR'));
    assert.throws(() => fs.rmdirSync(p('d')), errCode('ENOTEMPTY'));
    assert.throws(() => fs.mkdirSync(p('d', 'f', 'sub')), errCode('ENOTDIR'));
    assert.throws(() => fs.writeFileSync(p('d', 'n'.repeat(256)), 'x'), errCode('ENAMETOOLONG'));
    assert.throws(() => fs.openSync(p('d', 'f'), 'wx'), errCode('EEXIST'));
    fs.unlinkSync(p('d', 'f'));
    assert.throws(() => fs.unlinkSync(p('d', 'f')), errCode('ENOENT'));
    assert.throws(
      () => fs.unlinkSync(p('d')),
      (err: NodeJS.ErrnoException) => ['EISDIR', 'EPERM'].includes(err.code ?? ''),
    );
    fs.rmdirSync(p('d'));
    assert.throws(() => fs.statSync(p('d')), errCode('ENOENT'));
  });

  it('mknod makes regular files only', () => {
    const py = (code: string) =>
      spawnSync('python3', ['-c', code], { encoding: 'utf8' }).stdout.trim();
    assert.equal(
      py(
        `import os,stat\nos.mknod(${JSON.stringify(p('node'))}, 0o640 | stat.S_IFREG)\nprint('ok')`,
      ),
      'ok',
    );
    const st = fs.statSync(p('node'));
    assert.ok(st.isFile());
    assert.equal(st.mode & 0o777, 0o640);
    assert.equal(
      py(
        `import os,stat\ntry:\n  os.mkfifo(${JSON.stringify(p('fifo'))})\n  print('made')\nexcept OSError as e:\n  print(e.errno)`,
      ),
      String(constants.errno.EPERM),
    );
  });

  it('symlinks, readlink and hard links', () => {
    fs.writeFileSync(p('target'), 'linked data');
    fs.symlinkSync('target', p('sym'));
    assert.equal(fs.readlinkSync(p('sym')), 'target');
    assert.ok(fs.lstatSync(p('sym')).isSymbolicLink());
    assert.equal(fs.readFileSync(p('sym'), 'utf8'), 'linked data');
    assert.throws(() => fs.readlinkSync(p('target')), errCode('EINVAL'));
    fs.linkSync(p('target'), p('hard'));
    assert.equal(fs.statSync(p('target')).nlink, 2);
    assert.equal(fs.statSync(p('hard')).ino, fs.statSync(p('target')).ino);
    fs.appendFileSync(p('hard'), '+more');
    assert.equal(fs.readFileSync(p('target'), 'utf8'), 'linked data+more');
    fs.unlinkSync(p('target'));
    assert.equal(fs.readFileSync(p('hard'), 'utf8'), 'linked data+more');
    assert.throws(
      () => fs.linkSync(p('.'), p('dirlink')),
      (err: NodeJS.ErrnoException) => ['EPERM', 'EISDIR'].includes(err.code ?? ''),
    );
  });

  it('rename, over an existing file and across directories', () => {
    fs.mkdirSync(p('r'));
    fs.writeFileSync(p('r', 'a'), 'AAA');
    fs.writeFileSync(p('r', 'b'), 'BBBBBB');
    fs.renameSync(p('r', 'a'), p('r', 'b'));
    assert.deepEqual(fs.readdirSync(p('r')), ['b']);
    assert.equal(fs.readFileSync(p('r', 'b'), 'utf8'), 'AAA');
    fs.mkdirSync(p('r', 'sub'));
    fs.renameSync(p('r', 'b'), p('r', 'sub', 'c'));
    assert.equal(fs.readFileSync(p('r', 'sub', 'c'), 'utf8'), 'AAA');
    assert.throws(() => fs.renameSync(p('r'), p('r', 'sub', 'inside')), errCode('EINVAL'));
    fs.mkdirSync(p('r', 'full'));
    fs.writeFileSync(p('r', 'full', 'x'), '');
    assert.throws(() => fs.renameSync(p('r', 'sub'), p('r', 'full')), errCode('ENOTEMPTY'));
    assert.throws(() => fs.renameSync(p('r', 'nope'), p('r', 'x')), errCode('ENOENT'));
  });

  it('a file over several chunks with holes reads back byte-exact, zeros in the holes', async () => {
    const head = randomBytes(MiB + 12_345);
    const tail = randomBytes(200_000);
    const fd = fs.openSync(p('holes'), 'w');
    fs.writeSync(fd, head, 0, head.length, 0);
    fs.writeSync(fd, tail, 0, tail.length, 3.5 * MiB);
    fs.closeSync(fd);
    const expected = Buffer.alloc(3.5 * MiB + tail.length);
    head.copy(expected, 0);
    tail.copy(expected, 3.5 * MiB);
    assert.equal(fs.statSync(p('holes')).size, expected.length);
    const got = await readFile(p('holes'));
    assert.ok(got.equals(expected), 'content differs');
    // The storage process on this host read those bytes straight into the daemon's reply slots.
    const status = [...cluster.meta.base.storage.values()][0]!.ready.status;
    const mapped = await metricValue(status, 'threefs_storage_shared_regions');
    assert.ok(mapped >= 1, `regions mapped on storage: ${mapped}`);
    // meta has the exact length after close
    const { attrs } = await meta.call('stat', { at: { path: '/holes' } });
    assert.equal(attrs.length, expected.length);
  });

  it('sequential small writes and random writes read back byte-exact', () => {
    const size = 3 * MiB + 777;
    const mirror = Buffer.alloc(size);
    const fd = fs.openSync(p('seq'), 'w+');
    for (let at = 0; at < size; at += 4096) {
      const piece = randomBytes(Math.min(4096, size - at));
      piece.copy(mirror, at);
      fs.writeSync(fd, piece, 0, piece.length, at);
    }
    const next = mulberry32(7);
    for (let i = 0; i < 200; i++) {
      const len = 1 + Math.floor(next() * 70_000);
      const at = Math.floor(next() * (size - len));
      const piece = randomBytes(len);
      piece.copy(mirror, at);
      fs.writeSync(fd, piece, 0, len, at);
      if (i % 50 === 0) {
        // a read of the same inode sees every write before it
        const check = Buffer.alloc(len);
        fs.readSync(fd, check, 0, len, at);
        assert.ok(check.equals(piece), `read-after-write at ${at}`);
      }
    }
    fs.closeSync(fd);
    assert.ok(fs.readFileSync(p('seq')).equals(mirror), 'content differs after close');
  });

  it('unlink while open: the open descriptor keeps working', () => {
    const data = randomBytes(300_000);
    fs.writeFileSync(p('doomed'), data);
    const fd = fs.openSync(p('doomed'), 'r+');
    fs.unlinkSync(p('doomed'));
    assert.throws(() => fs.statSync(p('doomed')), errCode('ENOENT'));
    const back = Buffer.alloc(data.length);
    assert.equal(fs.readSync(fd, back, 0, back.length, 0), data.length);
    assert.ok(back.equals(data));
    fs.writeSync(fd, Buffer.from('tail'), 0, 4, data.length);
    assert.equal(fs.fstatSync(fd).size, data.length + 4);
    fs.closeSync(fd);
  });

  it('truncate down and up: the cut bytes come back as zeros', () => {
    const data = randomBytes(2 * MiB + 5000);
    fs.writeFileSync(p('trunc'), data);
    fs.truncateSync(p('trunc'), MiB + 100);
    assert.equal(fs.statSync(p('trunc')).size, MiB + 100);
    assert.ok(fs.readFileSync(p('trunc')).equals(data.subarray(0, MiB + 100)));
    fs.truncateSync(p('trunc'), 3 * MiB);
    const grown = fs.readFileSync(p('trunc'));
    assert.equal(grown.length, 3 * MiB);
    assert.ok(grown.subarray(0, MiB + 100).equals(data.subarray(0, MiB + 100)));
    assert.ok(grown.subarray(MiB + 100).equals(Buffer.alloc(3 * MiB - MiB - 100)), 'not zeros');
    const fd = fs.openSync(p('trunc'), 'r+');
    fs.ftruncateSync(fd, 10);
    assert.equal(fs.fstatSync(fd).size, 10);
    fs.closeSync(fd);
    fs.writeFileSync(p('trunc'), 'short'); // O_TRUNC
    assert.equal(fs.readFileSync(p('trunc'), 'utf8'), 'short');
  });

  it('fsync gives meta the exact length; open writers send length hints', async () => {
    const fd = fs.openSync(p('hinted'), 'w');
    fs.writeSync(fd, randomBytes(MiB + 10), 0, MiB + 10, 0);
    let length = 0;
    for (let i = 0; i < 50 && length !== MiB + 10; i++) {
      await sleep(100);
      length = (await meta.call('stat', { at: { path: '/hinted' } })).attrs.length;
    }
    assert.equal(length, MiB + 10, 'no length hint reached meta while the file was open');
    fs.writeSync(fd, Buffer.from('abc'), 0, 3, 2 * MiB);
    fs.fsyncSync(fd);
    assert.equal((await meta.call('stat', { at: { path: '/hinted' } })).attrs.length, 2 * MiB + 3);
    fs.closeSync(fd);
  });

  it('close(2) reaches JS only when the file was written since its last flush', async () => {
    const status = cluster.fuse!.ready.status;
    const counts = async () => ({
      flushes: await metricValue(status, 'threefs_fuse_flushes_total'),
      native: await metricValue(status, 'threefs_fuse_flushes_answered_natively_total'),
    });
    /** FLUSHes the kernel sent since `from`, and how many of them went to JS. */
    const since = async (from: { flushes: number; native: number }) => {
      const now = await counts();
      const flushes = now.flushes - from.flushes;
      return { flushes, toJs: flushes - (now.native - from.native) };
    };
    let start = await counts();
    for (let i = 0; i < 5; i++) fs.closeSync(fs.openSync(p(`untouched${i}`), 'w'));
    assert.deepEqual(await since(start), { flushes: 5, toJs: 0 }, 'created, never written');
    start = await counts();
    fs.closeSync(fs.openSync(p('untouched0'), 'r'));
    assert.deepEqual(await since(start), { flushes: 0, toJs: 0 }, 'read only: no FLUSH at all');
    // The daemon buffers writes per file: the close of the writer sends them; a reader's close
    // has nothing to do with them (it can never write) and is not even sent by the kernel.
    start = await counts();
    const writer = fs.openSync(p('two-fds'), 'w');
    const reader = fs.openSync(p('two-fds'), 'r');
    fs.writeSync(writer, Buffer.from('0123456789'), 0, 10, 0);
    fs.closeSync(reader);
    assert.deepEqual(await since(start), { flushes: 0, toJs: 0 }, 'the reader closed');
    fs.closeSync(writer);
    assert.deepEqual(await since(start), { flushes: 1, toJs: 1 }, 'the writer sent its bytes');
    assert.equal(fs.readFileSync(p('two-fds'), 'utf8'), '0123456789');
    start = await counts();
    const clean = fs.openSync(p('two-fds'), 'r+');
    fs.closeSync(clean);
    assert.deepEqual(await since(start), { flushes: 1, toJs: 0 }, 'flushed before: nothing left');
    const again = fs.openSync(p('two-fds'), 'r+');
    fs.writeSync(again, Buffer.from('ab'), 0, 2, 10);
    fs.closeSync(again);
    assert.deepEqual(await since(start), { flushes: 2, toJs: 1 }, 'a new write: its close to JS');
    assert.equal(fs.readFileSync(p('two-fds'), 'utf8'), '0123456789ab');
  });

  it('O_APPEND writes land at the end', () => {
    fs.writeFileSync(p('log'), 'one\n');
    fs.appendFileSync(p('log'), 'two\n');
    const fd = fs.openSync(p('log'), 'a');
    fs.writeSync(fd, 'three\n');
    fs.closeSync(fd);
    assert.equal(fs.readFileSync(p('log'), 'utf8'), 'one\ntwo\nthree\n');
  });

  it('chmod, chown, utimes; meta enforces permissions for other users', () => {
    fs.mkdirSync(p('perm'), { mode: 0o755 });
    fs.writeFileSync(p('perm', 'secret'), 'top', { mode: 0o600 });
    fs.writeFileSync(p('perm', 'public'), 'open', { mode: 0o644 });
    fs.chmodSync(p('perm', 'secret'), 0o600);
    assert.equal(fs.statSync(p('perm', 'secret')).mode & 0o777, 0o600);
    fs.utimesSync(p('perm', 'public'), new Date(1_000_000), new Date(2_000_000));
    assert.equal(fs.statSync(p('perm', 'public')).mtimeMs, 2_000_000);
    const probe = (what: string) => `
      import fs from 'node:fs';
import { constants } from 'node:os';
      try { ${what}; console.log('ok'); } catch (e) { console.log(e.code); }`;
    assert.equal(
      runAs(1000, probe(`fs.readFileSync(${JSON.stringify(p('perm', 'public'))})`)),
      'ok',
    );
    assert.equal(
      runAs(1000, probe(`fs.readFileSync(${JSON.stringify(p('perm', 'secret'))})`)),
      'EACCES',
    );
    assert.equal(
      runAs(1000, probe(`fs.writeFileSync(${JSON.stringify(p('perm', 'new'))}, 'x')`)),
      'EACCES',
    );
    fs.chownSync(p('perm'), 1000, 1000);
    assert.equal(fs.statSync(p('perm')).uid, 1000);
    assert.equal(
      runAs(1000, probe(`fs.writeFileSync(${JSON.stringify(p('perm', 'new'))}, 'x')`)),
      'ok',
    );
    assert.equal(fs.statSync(p('perm', 'new')).uid, 1000);
    assert.equal(
      runAs(1000, probe(`fs.chownSync(${JSON.stringify(p('perm', 'new'))}, 0, 0)`)),
      'EPERM',
    );
  });

  it('statfs reports the cluster', () => {
    const st = fs.statfsSync(cluster.mountpoint);
    assert.ok(st.blocks > 0, 'no blocks');
    assert.ok(st.bfree <= st.blocks);
  });

  it('readdir of 5,000 entries lists every name once (and readdirplus attributes)', async () => {
    await meta.call('mkdirs', { at: { path: '/big' } });
    const names = Array.from({ length: 5000 }, (_, i) => `entry-${String(i).padStart(5, '0')}`);
    for (let i = 0; i < names.length; i += 100) {
      await Promise.all(
        names
          .slice(i, i + 100)
          .map((name) => meta.call('create', { at: { path: `/big/${name}` } })),
      );
    }
    const listed = fs.readdirSync(p('big'));
    assert.equal(listed.length, names.length);
    assert.equal(new Set(listed).size, names.length, 'a name was listed twice');
    assert.deepEqual([...listed].sort(), names);
    const withTypes = fs.readdirSync(p('big'), { withFileTypes: true });
    assert.ok(withTypes.every((d) => d.isFile()));
    // `ls -l`-style: lstat after readdirplus
    assert.equal(fs.lstatSync(p('big', names[4999]!)).size, 0);
  });

  it("the daemon's /metrics counts requests by operation and answer, and its RPC calls", async () => {
    const sample = async (series: string) => {
      const text = await (await fetch(`${String(cluster.fuse!.ready.status)}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? 0 : Number(line.slice(series.length + 1));
    };
    // ENOTEMPTY only the daemon can know (the kernel answers a cached EEXIST itself).
    const notEmpty = 'threefs_fuse_requests_total{op="rmdir",result="ENOTEMPTY",role="fuse"}';
    const made = 'threefs_fuse_requests_total{op="mkdir",result="ok",role="fuse"}';
    const before = { notEmpty: await sample(notEmpty), made: await sample(made) };
    fs.mkdirSync(p('counted'));
    fs.writeFileSync(p('counted', 'f'), 'x');
    assert.throws(() => fs.rmdirSync(p('counted')), errCode('ENOTEMPTY'));
    assert.equal(await sample(made), before.made + 1);
    assert.equal(await sample(notEmpty), before.notEmpty + 1);
    assert.ok(
      (await sample('threefs_fuse_request_duration_seconds_count{role="fuse",op="mkdir"}')) >= 1,
    );
    const calls = await sample(
      'threefs_rpc_calls_total{side="client",service="Meta",method="remove",code="ENOTEMPTY",role="fuse"}',
    );
    assert.ok(calls >= 1, 'the meta client counts its calls by outcome');
  });

  // The kernel resolves paths, follows symlinks and caches entries and attributes: the same
  // seeded operations as meta's comparison (test/meta/against-linux.test.ts), through the mount.
  // As root only: for another user the kernel itself answers some requests on a FUSE mount
  // differently from ext4 (docs/fuse.md), and meta's comparison covers the permission rules.
  for (const seed of [1, 2]) {
    it(`namespace operations give Linux's answers and tree through the mount (seed ${seed})`, async () => {
      fs.mkdirSync(p(`vs-linux-${seed}`));
      await compareWithLinux(
        new Rng(seed),
        300,
        20,
        { root: new DirectorySide(testDir(`fuse-vs-linux-${seed}`)) },
        { root: new DirectorySide(p(`vs-linux-${seed}`)) },
      );
    });
  }

  it('a file closed just before the daemon is killed keeps its length and bytes', async () => {
    const content = randomBytes(3 * MiB + 17);
    const fd = fs.openSync(p('closed-then-killed'), 'w');
    fs.writeSync(fd, content, 0, content.length, 0);
    fs.closeSync(fd);
    // At once: the kernel sends RELEASE (the session's close) after close(2) has returned.
    cluster.fuse!.proc.kill('SIGKILL');
    try {
      const { attrs } = await meta.call('stat', { at: { path: '/closed-then-killed' } });
      assert.equal(attrs.length, content.length, "meta's length once close(2) returned");
    } finally {
      cluster.forceUnmount();
      await cluster.mount();
    }
    assert.ok(fs.readFileSync(p('closed-then-killed')).equals(content));
  });

  it('SIGTERM unmounts cleanly and exits 0', async () => {
    const proc = cluster.fuse!.proc;
    const fd = fs.openSync(p('open-at-exit'), 'w');
    fs.writeSync(fd, 'kept');
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
    proc.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(isMounted(cluster.mountpoint), false, 'still mounted');
    try {
      fs.closeSync(fd);
    } catch {
      // the mount is gone: closing the stale descriptor may fail, which is fine
    }
  });

  it('an unmount from outside stops the daemon cleanly', async () => {
    const fuse = await cluster.mount();
    const exited = new Promise<number | null>((resolve) =>
      fuse.proc.once('exit', (c) => resolve(c)),
    );
    const umount = spawnSync('umount', [cluster.mountpoint], { encoding: 'utf8' });
    assert.equal(umount.status, 0, umount.stderr);
    assert.equal(await exited, 0);
    assert.equal(isMounted(cluster.mountpoint), false);
  });

  it('with meta gone, operations fail with EIO after the operation timeout, not hang', async () => {
    await cluster.mount({ opTimeoutMs: 2_000, attemptTimeoutMs: 500, negativeTimeoutS: 0 });
    assert.ok(fs.statSync(cluster.mountpoint).isDirectory());
    await cluster.meta.processes.get(21)!.kill('SIGKILL');
    // A caller killed mid-wait interrupts its request; the daemon must survive the late reply.
    const victim = spawn('stat', [p('interrupted-name')], { stdio: 'ignore' });
    await sleep(300);
    victim.kill('SIGKILL');
    const started = Date.now();
    const outcome = await fs.promises.stat(p('never-seen-name')).then(
      () => 'ok',
      (err: NodeJS.ErrnoException) => err.code,
    );
    const elapsed = Date.now() - started;
    assert.equal(outcome, 'EIO');
    assert.ok(elapsed >= 1_000 && elapsed < 15_000, `failed after ${elapsed} ms`);
    assert.equal(cluster.fuse!.proc.exitCode, null, 'the FUSE daemon died');
    const exited = new Promise<number | null>((resolve) =>
      cluster.fuse!.proc.once('exit', (c) => resolve(c)),
    );
    cluster.fuse!.proc.kill('SIGINT');
    assert.equal(await exited, 0);
    assert.equal(isMounted(cluster.mountpoint), false);
    assert.ok(path.isAbsolute(cluster.mountpoint));
  });
});
