// The README's first command as a user runs it: `threefs local up` brings up mgmtd, meta, three
// storage processes and the FUSE mount; files written there survive `down` and a second `up`;
// bad states (a running cluster, a non-empty mount point, a taken port) get a clear message.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { testDir } from '../helpers/cluster.js';

const cli = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'daemons',
  'cli',
  'main.js',
);
const PORT_BASE = 23_000;

describe('threefs local', () => {
  const dir = testDir('local-cluster');
  const data = path.join(dir, 'data');
  const mount = path.join(dir, 'mnt');
  const run = (...args: string[]) => {
    const result = spawnSync(
      process.execPath,
      [cli, 'local', ...args, '--data', data, '--port-base', String(PORT_BASE)],
      { encoding: 'utf8', timeout: 180_000 },
    );
    return { code: result.status, out: result.stdout, err: result.stderr };
  };

  after(() => {
    run('down');
    spawnSync('fusermount3', ['-u', '-q', mount]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('up mounts a working replicated file system; a second up is refused while it runs', () => {
    const up = run('up', '--mount', mount);
    assert.equal(up.code, 0, up.err);
    const info = JSON.parse(up.out) as {
      mount: string;
      processes: Array<{ name: string; pid: number }>;
    };
    assert.equal(info.mount, mount);
    assert.deepEqual(info.processes.map((p) => p.name).sort(), [
      'fuse',
      'meta',
      'mgmtd',
      'storage-1',
      'storage-2',
      'storage-3',
    ]);

    const content = randomBytes(3 * 1024 * 1024 + 17);
    mkdirSync(path.join(mount, 'dir'));
    writeFileSync(path.join(mount, 'dir', 'file.bin'), content);
    assert.ok(readFileSync(path.join(mount, 'dir', 'file.bin')).equals(content));

    const status = run('status', '--json');
    assert.equal(status.code, 0, status.err);
    const parsed = JSON.parse(status.out) as {
      processes: Array<{ alive: boolean }>;
      chains: { healthy: number; total: number };
    };
    assert.ok(parsed.processes.every((p) => p.alive));
    assert.equal(parsed.chains.healthy, parsed.chains.total);

    const again = run('up', '--mount', mount);
    assert.equal(again.code, 2);
    assert.match(again.err, /still running .* run: threefs local down/);
  });

  it('down stops everything and unmounts; the next up brings the same data back', () => {
    const down = run('down');
    assert.equal(down.code, 0, down.err);
    assert.notEqual(spawnSync('mountpoint', ['-q', mount]).status, 0, 'no longer mounted');
    const up = run('up', '--mount', mount);
    assert.equal(up.code, 0, up.err);
    assert.equal(readFileSync(path.join(mount, 'dir', 'file.bin')).length, 3 * 1024 * 1024 + 17);
    assert.equal(run('down').code, 0);
  });

  it('refuses a non-empty mount point and a taken port with a clear message', async () => {
    const full = path.join(dir, 'full');
    mkdirSync(full, { recursive: true });
    writeFileSync(path.join(full, 'x'), 'x');
    const notEmpty = run('up', '--mount', full);
    assert.equal(notEmpty.code, 2);
    assert.match(notEmpty.err, /mount point .* is not empty/);

    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(PORT_BASE, '127.0.0.1', resolve));
    try {
      const taken = run('up', '--mount', mount);
      assert.equal(taken.code, 2);
      assert.match(taken.err, new RegExp(`port ${PORT_BASE} on 127.0.0.1 is taken`));
    } finally {
      blocker.close();
    }
  });
});
