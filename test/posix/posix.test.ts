// POSIX behaviour through a real FUSE mount, as programs see it: rename semantics, unlink while
// open, permissions for a second uid, hard and symbolic links, truncate, sparse files, a file past
// 4 GiB, concurrent appends from two processes, and a directory of 100,000 entries.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { FuseTestCluster } from '../fuse/fuse-cluster.js';

const errno = (code: string) => (err: NodeJS.ErrnoException) => err.code === code;

describe('POSIX through the mount', () => {
  const cluster = new FuseTestCluster('posix');
  before(() => cluster.start({ allowOther: true }));
  after(() => cluster.stop());
  const p = (...parts: string[]) => cluster.path(...parts);

  it('rename: atomic replace, across directories, into its own subtree refused, non-empty target refused', async () => {
    await fs.mkdir(p('r'));
    await fs.mkdir(p('r', 'a'));
    await fs.mkdir(p('r', 'b'));
    await fs.writeFile(p('r', 'a', 'x'), 'new');
    await fs.writeFile(p('r', 'b', 'y'), 'old');
    await fs.rename(p('r', 'a', 'x'), p('r', 'b', 'y'));
    assert.equal(await fs.readFile(p('r', 'b', 'y'), 'utf8'), 'new');
    await assert.rejects(fs.stat(p('r', 'a', 'x')), errno('ENOENT'));
    await assert.rejects(fs.rename(p('r', 'a'), p('r', 'a', 'inside')), errno('EINVAL'));
    await fs.mkdir(p('r', 'c'));
    await fs.writeFile(p('r', 'c', 'z'), 'z');
    await assert.rejects(fs.rename(p('r', 'a'), p('r', 'c')), errno('ENOTEMPTY'));
    await fs.rename(p('r', 'a'), p('r', 'b', 'moved'));
    assert.deepEqual((await fs.readdir(p('r', 'b'))).sort(), ['moved', 'y']);
    await assert.rejects(fs.rename(p('r', 'b', 'y'), p('r', 'c')), errno('EISDIR'));
  });

  it('unlink while open: the name goes, the open file keeps working', async () => {
    const file = await fs.open(p('open-then-unlink'), 'w+');
    await file.write('before');
    await fs.unlink(p('open-then-unlink'));
    await assert.rejects(fs.stat(p('open-then-unlink')), errno('ENOENT'));
    await file.write(' after', 6);
    const buf = Buffer.alloc(12);
    const { bytesRead } = await file.read(buf, 0, 12, 0);
    assert.equal(buf.subarray(0, bytesRead).toString(), 'before after');
    await file.close();
  });

  it('permissions: a second uid is refused where the mode says so, allowed where it allows', async () => {
    await fs.mkdir(p('perm'), { mode: 0o755 });
    await fs.chmod(p('perm'), 0o755);
    await fs.writeFile(p('perm', 'secret'), 'root only', { mode: 0o600 });
    await fs.chmod(p('perm', 'secret'), 0o600);
    await fs.writeFile(p('perm', 'public'), 'everyone', { mode: 0o644 });
    await fs.chmod(p('perm', 'public'), 0o644);
    const as1000 = (script: string) =>
      spawnSync(process.execPath, ['-e', script], {
        uid: 1000,
        gid: 1000,
        encoding: 'utf8',
        timeout: 30_000,
      });
    const secret = as1000(`require('fs').readFileSync(${JSON.stringify(p('perm', 'secret'))})`);
    assert.match(secret.stderr, /EACCES/, 'uid 1000 cannot read a 0600 root file');
    const pub = as1000(
      `process.stdout.write(require('fs').readFileSync(${JSON.stringify(p('perm', 'public'))}, 'utf8'))`,
    );
    assert.equal(pub.stdout, 'everyone');
    const write = as1000(`require('fs').writeFileSync(${JSON.stringify(p('perm', 'mine'))}, 'x')`);
    assert.match(write.stderr, /EACCES/, 'uid 1000 cannot create in a 0755 root directory');
    await fs.mkdir(p('tmp'));
    await fs.chmod(p('tmp'), 0o1777);
    assert.equal(
      as1000(`require('fs').writeFileSync(${JSON.stringify(p('tmp', 'theirs'))}, 'x')`).status,
      0,
    );
    await fs.writeFile(p('tmp', 'roots'), 'r');
    const sticky = as1000(`require('fs').unlinkSync(${JSON.stringify(p('tmp', 'roots'))})`);
    assert.match(
      sticky.stderr,
      /EPERM|EACCES/,
      'the sticky bit protects root’s file from uid 1000',
    );
    assert.equal((await fs.stat(p('tmp', 'theirs'))).uid, 1000);
  });

  it('hard links share content and count; symlinks resolve, dangle, and loop with ELOOP', async () => {
    await fs.writeFile(p('orig'), 'shared');
    await fs.link(p('orig'), p('twin'));
    assert.equal((await fs.stat(p('orig'))).nlink, 2);
    await fs.appendFile(p('twin'), '!');
    assert.equal(await fs.readFile(p('orig'), 'utf8'), 'shared!');
    await fs.unlink(p('orig'));
    assert.equal(await fs.readFile(p('twin'), 'utf8'), 'shared!');
    assert.equal((await fs.stat(p('twin'))).nlink, 1);
    await fs.mkdir(p('ldir'));
    await assert.rejects(fs.link(p('ldir'), p('ldir2')), errno('EPERM'));

    await fs.symlink('twin', p('sym'));
    assert.equal(await fs.readlink(p('sym')), 'twin');
    assert.equal(await fs.readFile(p('sym'), 'utf8'), 'shared!');
    await fs.symlink('nowhere', p('dangling'));
    await assert.rejects(fs.readFile(p('dangling')), errno('ENOENT'));
    await fs.symlink('loop2', p('loop1'));
    await fs.symlink('loop1', p('loop2'));
    await assert.rejects(fs.readFile(p('loop1')), errno('ELOOP'));
  });

  it('truncate up reads zeros; truncate down drops the tail; sparse holes read as zeros', async () => {
    const data = randomBytes(300_000);
    await fs.writeFile(p('trunc'), data);
    await fs.truncate(p('trunc'), 100_000);
    assert.ok((await fs.readFile(p('trunc'))).equals(data.subarray(0, 100_000)));
    await fs.truncate(p('trunc'), 2_500_000);
    const grown = await fs.readFile(p('trunc'));
    assert.equal(grown.length, 2_500_000);
    assert.ok(grown.subarray(0, 100_000).equals(data.subarray(0, 100_000)));
    assert.ok(
      grown.subarray(100_000).every((b) => b === 0),
      'the grown part is zeros, not old bytes',
    );

    const sparse = await fs.open(p('sparse'), 'w+');
    await sparse.write('end', 10 * 1024 * 1024);
    await sparse.close();
    const all = await fs.readFile(p('sparse'));
    assert.equal(all.length, 10 * 1024 * 1024 + 3);
    assert.ok(all.subarray(0, 10 * 1024 * 1024).every((b) => b === 0));
    assert.equal(all.subarray(10 * 1024 * 1024).toString(), 'end');
  });

  it('a file past 4 GiB keeps its size and its bytes', async () => {
    const offset = 4 * 1024 ** 3 + 12_345;
    const chunk = randomBytes(1024 * 1024);
    const file = await fs.open(p('big'), 'w+');
    await file.write(chunk, 0, chunk.length, offset);
    await file.close();
    assert.equal((await fs.stat(p('big'))).size, offset + chunk.length);
    const back = Buffer.alloc(chunk.length);
    const reader = await fs.open(p('big'), 'r');
    await reader.read(back, 0, back.length, offset);
    const before = Buffer.alloc(4096, 1);
    await reader.read(before, 0, 4096, offset - 4096);
    await reader.close();
    assert.ok(back.equals(chunk));
    assert.ok(before.every((b) => b === 0));
  });

  it('appends from two processes interleave whole lines and lose none', async () => {
    const target = p('appends.log');
    await fs.writeFile(target, '');
    const writer = (tag: string) =>
      new Promise<number>((resolve) => {
        const script = `const fs=require('fs');const fd=fs.openSync(${JSON.stringify(target)},'a');for(let i=0;i<300;i++)fs.writeSync(fd,'${tag}-'+String(i).padStart(4,'0')+'\\n');fs.closeSync(fd);`;
        spawn(process.execPath, ['-e', script], { stdio: 'ignore' }).on('exit', (code) =>
          resolve(code ?? -1),
        );
      });
    assert.deepEqual(await Promise.all([writer('a'), writer('b')]), [0, 0]);
    const lines = (await fs.readFile(target, 'utf8')).split('\n').filter(Boolean);
    assert.equal(lines.length, 600);
    for (const tag of ['a', 'b']) {
      const mine = lines.filter((l) => l.startsWith(`${tag}-`));
      assert.deepEqual(
        mine,
        Array.from({ length: 300 }, (_, i) => `${tag}-${String(i).padStart(4, '0')}`),
      );
    }
  });

  it('readdir of 100,000 entries lists every name once', async () => {
    await fs.mkdir(p('many'));
    const meta = cluster.meta.client();
    const dirAttrs = await fs.stat(p('many'));
    const total = 100_000;
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < total) {
          const i = next++;
          await meta.call('create', {
            at: { parent: dirAttrs.ino, path: `e${i}` },
            flags: { read: true },
          });
        }
      }),
    );
    const started = Date.now();
    const names = await fs.readdir(p('many'));
    const listMs = Date.now() - started;
    assert.equal(names.length, total);
    assert.equal(new Set(names).size, total, 'no name twice');
    assert.ok(names.includes('e0') && names.includes(`e${total - 1}`));
    console.log(`# readdir of ${total} entries through the mount: ${listMs} ms`);
  });
});
