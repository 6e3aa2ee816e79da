// What `threefs mount` tells a user when it cannot mount: bad arguments, a mount point that is
// missing, not a directory, not empty or already mounted, and FUSE itself missing (fusermount3
// not on PATH for a non-root user). Each runs mountCommand in a real child process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { testDir } from '../helpers/cluster.js';

const command = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../daemons/fuse/mount-command.js',
);

function mount(args: string[], options: { uid?: number; env?: NodeJS.ProcessEnv } = {}) {
  const script = `import(${JSON.stringify(command)}).then((m) => m.mountCommand(${JSON.stringify(args)})).then((code) => process.exit(code));`;
  const out = spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8',
    timeout: 20_000,
    uid: options.uid,
    gid: options.uid,
    env: options.env ?? process.env,
  });
  return { code: out.status, stderr: out.stderr };
}

describe('threefs mount errors', () => {
  let dir: string;
  before(() => {
    dir = testDir('fuse-errors');
    chmodSync(dir, 0o755);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('bad arguments: usage and exit code 2', () => {
    const r = mount(['127.0.0.1:1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /usage: threefs mount/);
    assert.equal(mount(['127.0.0.1:1', dir, '--nope']).code, 2);
  });

  it('mount point missing, not a directory, not empty', () => {
    let r = mount(['127.0.0.1:1', path.join(dir, 'missing')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not exist/);
    writeFileSync(path.join(dir, 'file'), 'x');
    r = mount(['127.0.0.1:1', path.join(dir, 'file')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is not a directory/);
    mkdirSync(path.join(dir, 'full'));
    writeFileSync(path.join(dir, 'full', 'x'), 'x');
    r = mount(['127.0.0.1:1', path.join(dir, 'full')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is not empty/);
  });

  it('already mounted', () => {
    const target = path.join(dir, 'busy');
    mkdirSync(target);
    const bound = spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', target]);
    assert.equal(bound.status, 0, 'could not mount a tmpfs for the test');
    try {
      const r = mount(['127.0.0.1:1', target]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /already mounted/);
    } finally {
      spawnSync('umount', ['-l', target]);
    }
  });

  it('FUSE unavailable for a user without fusermount3: install fuse3', () => {
    mkdirSync(path.join(dir, 'empty'));
    const r = mount(['127.0.0.1:1', path.join(dir, 'empty')], {
      uid: 65534,
      env: { PATH: '/nonexistent' },
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /install fuse3/);
  });
});
