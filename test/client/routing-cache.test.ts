// The client-side routing cache and heartbeater against a real mgmtd process: deltas applied in
// order, change notifications, on-demand refresh, and a config pushed in a heartbeat reply.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Heartbeater } from '../../daemons/client/heartbeater.js';
import { MgmtdClient } from '../../daemons/client/mgmtd-client.js';
import { RoutingCache } from '../../daemons/client/routing-cache.js';
import { createLogger } from '../../daemons/common/log.js';
import { MgmtdService } from '../../daemons/common/services/mgmtd.js';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.js';

const log = createLogger({ role: 'test', level: 'silent' });

describe('routing cache and heartbeater', () => {
  let dir: string;
  let mgmtd: DaemonProcess;
  let client: MgmtdClient;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'threefs-routing-'));
    mgmtd = await startDaemon('mgmtd', [
      '--set',
      'clusterId=routing-test',
      '--set',
      'listen.port=0',
      '--set',
      'status.port=0',
      '--set',
      `kv.path=${path.join(dir, 'kv')}`,
      '--set',
      'bootstrapMs=100',
    ]);
    client = new MgmtdClient({
      addresses: [mgmtd.ready.address as string],
      clusterId: 'routing-test',
      log,
    });
  });

  after(async () => {
    await client?.close();
    await mgmtd?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('follows changes as deltas, notifies listeners, and coalesces concurrent refreshes', async () => {
    const cache = new RoutingCache(client, { log });
    const first = await cache.refresh();
    assert.ok(first.routingVersion > 0);
    assert.deepEqual(
      first.nodes.map((n) => n.status),
      ['PRIMARY_MGMTD'],
    );

    const seen: number[] = [];
    cache.onChange((info) => seen.push(info.routingVersion));
    const beats = new Heartbeater({
      mgmtd: client,
      nodeId: 50,
      type: 'STORAGE',
      address: '127.0.0.1:5050',
      hostname: 'h',
      releaseVersion: '0.1.0',
      intervalMs: 60_000,
      log,
    });
    await beats.beat();
    const [a, b] = await Promise.all([cache.refresh(), cache.refresh()]);
    assert.equal(a, b, 'two concurrent refreshes share one request');
    assert.deepEqual(
      a.nodes.map((n) => [n.nodeId, n.status]),
      [
        [1, 'PRIMARY_MGMTD'],
        [50, 'HEARTBEAT_CONNECTED'],
      ],
    );
    assert.deepEqual(seen, [a.routingVersion]);

    await client.call(MgmtdService.methods.createTargets, {
      targets: [{ targetId: 501, nodeId: 50, diskIndex: 0, chainId: 7 }],
    });
    await client.call(MgmtdService.methods.setChains, {
      chains: [{ chainId: 7, targetIds: [501] }],
    });
    const { body } = await client.call(MgmtdService.methods.getRoutingInfo, { sinceVersion: 0 });
    const latest = await cache.waitForVersion(body.routingVersion, 5_000);
    assert.deepEqual(
      latest.chains.map((c) => [c.chainId, c.targets.map((t) => t.targetId)]),
      [[7, [501]]],
    );
    assert.equal(latest.targets[0]?.chainId, 7);
    assert.ok(
      seen.length >= 2 && seen.every((v, i) => i === 0 || v > seen[i - 1]!),
      'versions only grow',
    );
    beats.stop();
  });

  it('delivers a newer config in the heartbeat reply', async () => {
    await client.call(MgmtdService.methods.setConfig, {
      nodeType: 'META',
      content: 'answer = 42\n',
    });
    const configs: string[] = [];
    const beats = new Heartbeater({
      mgmtd: client,
      nodeId: 60,
      type: 'META',
      address: '127.0.0.1:6060',
      hostname: 'h',
      releaseVersion: '0.1.0',
      intervalMs: 60_000,
      log,
      onConfig: (config) => configs.push(`${config.version}:${config.content}`),
    });
    await beats.beat();
    await beats.beat();
    assert.deepEqual(configs, ['1:answer = 42\n'], 'delivered once, then the node is current');
    beats.stop();
  });
});
