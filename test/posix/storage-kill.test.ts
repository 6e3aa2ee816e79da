// Kill a storage process in the middle of a large write through the mount (chains of three): the
// writer never sees an error, the file is byte-exact, and the node comes back and re-syncs.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FuseTestCluster } from '../fuse/fuse-cluster.js';
import { testDir } from '../helpers/cluster.js';

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('a storage node dies during a large write through the mount', () => {
  const nodes = [101, 102, 103];
  const cluster = new FuseTestCluster('killwrite', {
    storageNodes: nodes,
    chains: [1, 2, 3, 4].map((chainId) => ({
      chainId,
      nodes: [0, 1, 2].map((i) => nodes[(chainId + i) % 3]!),
    })),
  });
  const local = testDir('killwrite-src');
  before(() => cluster.start());
  after(async () => {
    await cluster.stop();
    await fs.rm(local, { recursive: true, force: true });
  });

  it('the write completes and the file is byte-exact', async () => {
    const source = path.join(local, 'source.bin');
    const content = randomBytes(96 * 1024 * 1024);
    await fs.writeFile(source, content);
    const target = cluster.path('big.bin');
    const started = Date.now();
    const dd = spawn('dd', [`if=${source}`, `of=${target}`, 'bs=1M', 'conv=fsync'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let ddErr = '';
    dd.stderr.on('data', (c: Buffer) => (ddErr += c.toString()));
    const exited = new Promise<number>((resolve) => dd.on('exit', (code) => resolve(code ?? -1)));

    // Kill a node once the write is under way (bounded wait for the file to grow).
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const size = await fs
        .stat(target)
        .then((s) => s.size)
        .catch(() => 0);
      if (size >= 8 * 1024 * 1024) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const victim = cluster.meta.base.storage.get(102)!;
    await victim.kill('SIGKILL');
    const killedAt = Date.now() - started;

    const code = await exited;
    assert.equal(code, 0, `dd failed: ${ddErr}`);
    const written = await fs.readFile(target);
    assert.equal(written.length, content.length);
    assert.equal(sha(written), sha(content), 'the file through the mount is byte-exact');

    await cluster.meta.base.startStorage(102);
    await cluster.meta.base.waitHealthy(60_000);
    const again = await fs.readFile(target);
    assert.equal(sha(again), sha(content), 'still byte-exact after the node re-synced');
    console.log(
      `# killed storage 102 at ${killedAt} ms into a 96 MiB write; dd took ${Date.now() - started} ms in all`,
    );
  });
});
