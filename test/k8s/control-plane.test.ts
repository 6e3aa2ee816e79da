// The harness itself: it stops exactly the processes it started and removes its directory, and a
// missing binary fails loudly with the command that builds it.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { startControlPlane } from './control-plane.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('test control plane harness', () => {
  it('stops every process it recorded and removes its directory', async () => {
    const cp = await startControlPlane({ tier: 1, keepDir: true });
    const pids = readFileSync(path.join(cp.dir, 'pids'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => Number(line.split(' ')[0]));
    assert.equal(pids.length, 2, 'tier 1 is etcd and kube-apiserver');
    assert.ok(pids.every(alive));
    const version = await cp.kubectlOk(['version', '-o', 'json']);
    assert.match(version, /"gitVersion": "v1\.36\.1"/);
    await cp.stop();
    assert.deepEqual(pids.filter(alive), []);
    rmSync(cp.dir, { recursive: true, force: true });

    const again = await startControlPlane({ tier: 1 });
    await again.stop();
    assert.equal(existsSync(again.dir), false);
  });

  it('fails with the build command when the binaries are missing', async () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'threefs-no-testbin-'));
    const saved = process.env.THREEFS_TESTBIN_DIR;
    process.env.THREEFS_TESTBIN_DIR = empty;
    try {
      await assert.rejects(
        startControlPlane({ tier: 1 }),
        /binaries missing .*etcd, kube-apiserver.*bash test\/k8s\/testbin\.sh/s,
      );
    } finally {
      if (saved === undefined) delete process.env.THREEFS_TESTBIN_DIR;
      else process.env.THREEFS_TESTBIN_DIR = saved;
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
