// `threefs admin` as a user runs it: a real mgmtd process, the CLI as a child process, exit codes
// and output checked. The test registers three storage nodes by heartbeat first.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../daemons/common/log.js';
import { RpcClient } from '../../daemons/common/rpc/index.js';
import { MgmtdService } from '../../daemons/common/services/mgmtd.js';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.js';

const cli = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'daemons',
  'cli',
  'main.js',
);

describe('threefs admin', () => {
  let dir: string;
  let mgmtd: DaemonProcess;
  let address: string;

  const run = (...args: string[]) => {
    const result = spawnSync(process.execPath, [cli, 'admin', ...args], {
      encoding: 'utf8',
      env: { ...process.env, THREEFS_MGMTD: address, THREEFS_CLUSTER_ID: 'cli-test' },
      timeout: 30_000,
    });
    return { code: result.status, out: result.stdout, err: result.stderr };
  };

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'threefs-cli-'));
    mgmtd = await startDaemon('mgmtd', [
      '--set',
      'clusterId=cli-test',
      '--set',
      'listen.port=0',
      '--set',
      'status.port=0',
      '--set',
      `kv.path=${path.join(dir, 'kv')}`,
      '--set',
      'bootstrapMs=100',
      '--set',
      'chainUpdateIntervalMs=100',
    ]);
    address = mgmtd.ready.address as string;
    const rpc = new RpcClient({
      address,
      clusterId: 'cli-test',
      log: createLogger({ role: 'test', level: 'silent' }),
    });
    for (const nodeId of [10001, 10002, 10003]) {
      await rpc.call(MgmtdService.methods.heartbeat, {
        nodeId,
        type: 'STORAGE',
        heartbeatVersion: 1,
        sentAtMs: Date.now(),
        address: `127.0.0.1:${nodeId}`,
      });
    }
    await rpc.close();
  });

  after(async () => {
    await mgmtd?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('generates a placement and uploads targets, chains and the chain table from it', () => {
    const file = path.join(dir, 'placement.json');
    const placement = run(
      'placement',
      '--nodes',
      '10001,10002,10003',
      '--disks',
      '2',
      '--targets-per-disk',
      '2',
      '--replication',
      '3',
      '--out',
      file,
      '--json',
    );
    assert.equal(placement.code, 0, placement.err);
    assert.equal(JSON.parse(placement.out)[0].chains, 4);
    for (const step of ['create-targets', 'upload-chains', 'upload-chain-table']) {
      const result = run(step, '--file', file);
      assert.equal(result.code, 0, `${step}: ${result.err}`);
    }
    const chains = run('list-chains', '--json');
    assert.equal(chains.code, 0, chains.err);
    const rows = JSON.parse(chains.out) as Array<{
      chain: number;
      version: number;
      targets: string;
    }>;
    assert.deepEqual(
      rows.map((r) => r.chain),
      [100001, 100002, 200001, 200002],
    );
    assert.ok(rows.every((r) => r.targets.split(' ').length === 3));

    const table = run('list-chains');
    assert.match(table.out.split('\n')[0]!, /^CHAIN\s+VERSION\s+HEALTH\s+TARGETS$/);
    const tables = JSON.parse(run('list-chain-tables', '--json').out);
    assert.deepEqual(tables, [{ table: 1, version: 1, chains: 4, description: '' }]);
    const targets = JSON.parse(run('list-targets', '--json').out) as unknown[];
    assert.equal(targets.length, 12);
  });

  it('status shows the primary and counts; nodes list the registered storage nodes', () => {
    const status = run('status', '--json');
    assert.equal(status.code, 0, status.err);
    const value = JSON.parse(status.out);
    assert.match(value.primary, /^1 127\.0\.0\.1:\d+$/);
    assert.equal(value.nodes['STORAGE/HEARTBEAT_CONNECTED'], 3);
    const nodes = JSON.parse(run('list-nodes', '--json').out) as Array<{ node: number }>;
    assert.deepEqual(
      nodes.map((n) => n.node),
      [1, 10001, 10002, 10003],
    );
  });

  it('sets and gets configs; refuses malformed TOML without storing it', () => {
    const good = path.join(dir, 'good.toml');
    writeFileSync(good, 'bootstrapMs = 5000\n');
    assert.equal(run('set-config', '--node-type', 'MGMTD', '--file', good).code, 0);
    const bad = path.join(dir, 'bad.toml');
    writeFileSync(bad, 'this is = = not toml');
    const refused = run('set-config', '--node-type', 'MGMTD', '--file', bad);
    assert.equal(refused.code, 2);
    assert.match(refused.err, /not valid TOML/);
    const invalid = path.join(dir, 'invalid.toml');
    writeFileSync(invalid, 'bootstrapMs = -1\n');
    assert.match(run('set-config', '--node-type', 'MGMTD', '--file', invalid).err, /bootstrapMs/);
    const got = run('get-config', '--node-type', 'MGMTD');
    assert.equal(got.code, 0);
    assert.match(got.out, /version 1\nbootstrapMs = 5000/);
  });

  it('bad flags exit 2 with one line; a refused operation exits 1; an unreachable cluster exits 3', () => {
    const unknown = run('list-chains', '--bogus');
    assert.equal(unknown.code, 2);
    assert.equal(unknown.err.trim().split('\n').length, 1);
    assert.match(unknown.err, /Unknown option '--bogus'/);
    assert.equal(run('rotate-lastsrv', '--chain-id', 'abc').code, 2);
    assert.equal(run('nope').code, 2);
    const refused = run('offline-target', '--chain-id', '999', '--target-id', '1');
    assert.equal(refused.code, 1);
    assert.match(refused.err, /no chain 999/);
    const unreachable = spawnSync(
      process.execPath,
      [cli, 'admin', 'status', '--mgmtd', '127.0.0.1:1', '--timeout-ms', '1000'],
      { encoding: 'utf8' },
    );
    assert.equal(unreachable.status, 3, unreachable.stderr);
    assert.match(unreachable.stderr, /no mgmtd|no primary/);
  });
});
