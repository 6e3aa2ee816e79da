// The README's first command as a user runs it: `threefs local up` brings up mgmtd, meta, three
// storage processes and the FUSE mount; files written there survive `down` and a second `up`;
// a second `up` after some processes died starts just those again; bad states (a running cluster,
// a non-empty mount point, a taken port) get a clear message.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
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

interface Status {
  mount: { path: string; state: string };
  processes: Array<{ name: string; pid: number; alive: boolean }>;
  chains: { healthy: number; total: number };
}

/** Whether `pid` is a live process (a zombie, whose command line is empty, is not). */
function live(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').length > 0;
  } catch {
    return false;
  }
}

/** Polls `check` every 100 ms for at most `ms`; the last result. */
async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return check();
}

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
    const parsed = JSON.parse(status.out) as Status;
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

  it('up after some processes died starts those again: storage re-syncs, the mount returns', async () => {
    const up = run('up', '--mount', mount);
    assert.equal(up.code, 0, up.err);
    const file = path.join(mount, 'dir', 'file.bin');
    const content = readFileSync(file);
    const status = () => {
      const result = run('status', '--json');
      assert.equal(result.code, 0, result.err);
      return JSON.parse(result.out) as Status;
    };
    const pidOf = (name: string) => status().processes.find((p) => p.name === name)!.pid;
    const victims = [pidOf('storage-2'), pidOf('fuse')];
    for (const pid of victims) process.kill(pid, 'SIGKILL');
    assert.ok(await eventually(() => !victims.some(live), 10_000), 'the killed processes exited');

    const broken = status();
    assert.deepEqual(
      broken.processes.filter((p) => !p.alive).map((p) => p.name),
      ['storage-2', 'fuse'],
    );
    assert.equal(broken.mount.state, 'stale');

    const again = run('up', '--mount', mount);
    assert.equal(again.code, 0, again.err);
    assert.match(again.err, /restarting storage-2, fuse/);
    const result = JSON.parse(again.out) as { restarted: string[]; chainsHealthy: boolean };
    assert.deepEqual(result.restarted, ['storage-2', 'fuse']);
    assert.equal(result.chainsHealthy, true);
    const healed = status();
    assert.ok(healed.processes.every((p) => p.alive));
    assert.equal(healed.chains.healthy, healed.chains.total);
    assert.equal(healed.mount.state, 'mounted');
    assert.ok(readFileSync(file).equals(content), 'the data reads back through the new mount');

    // Everything killed at once, mount included: the next up clears the dead mount and starts.
    for (const p of healed.processes) process.kill(p.pid, 'SIGKILL');
    assert.ok(await eventually(() => !healed.processes.some((p) => live(p.pid)), 10_000));
    const fresh = run('up', '--mount', mount);
    assert.equal(fresh.code, 0, fresh.err);
    assert.ok(readFileSync(file).equals(content));
    assert.equal(run('down').code, 0);
  });

  it('never takes an unrelated process that reuses a recorded pid for one of its daemons', async () => {
    // As after a reboot: the record names a pid that now belongs to something else.
    assert.equal(run('down').code, 0, 'nothing of ours runs when the record is rewritten');
    const stranger = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const stateFile = path.join(data, 'cluster.json');
      const state = JSON.parse(readFileSync(stateFile, 'utf8')) as {
        processes: Array<{ name: string; pid: number }>;
      };
      for (const p of state.processes) p.pid = stranger.pid!;
      writeFileSync(stateFile, JSON.stringify(state));
      const status = run('status', '--json');
      assert.equal(status.code, 0, status.err);
      assert.ok((JSON.parse(status.out) as Status).processes.every((p) => !p.alive));
      assert.equal(run('down').code, 0);
      assert.ok(live(stranger.pid!), 'down left the unrelated process alone');
      const up = run('up', '--mount', mount);
      assert.equal(up.code, 0, up.err);
      assert.ok(live(stranger.pid!));
      assert.equal(run('down').code, 0);
    } finally {
      stranger.kill('SIGKILL');
    }
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
