// Three mgmtd processes over one embedded KV store on loopback. The test plays three storage nodes
// (heartbeats with target reports), sets up chains through the admin RPCs, then SIGKILLs the
// primary and checks: a secondary takes over within lease + margin, routing info stays consistent,
// and no chain changes during the new primary's bootstrap window.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MgmtdClient } from '../../daemons/client/mgmtd-client.js';
import type { RoutingInfo } from '../../daemons/common/routing.js';
import { applyRoutingDelta, emptyRoutingInfo } from '../../daemons/common/routing.js';
import type { ThreeFsError } from '../../daemons/common/errors.js';
import { createLogger } from '../../daemons/common/log.js';
import { RpcClient } from '../../daemons/common/rpc/index.js';
import { MgmtdService } from '../../daemons/common/services/mgmtd.js';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.js';

const LEASE_MS = 2_000;
const MARGIN_MS = 500;
const RENEW_MS = 250;
const BOOTSTRAP_MS = 2_000;
const FAIL_MS = 1_500;
const quiet = createLogger({ role: 'test', level: 'silent' });

const settings = (nodeId: number, kvPath: string) => [
  '--set',
  `nodeId=${nodeId}`,
  '--set',
  'clusterId=failover-test',
  '--set',
  'listen.port=0',
  '--set',
  'status.port=0',
  '--set',
  `kv.path=${kvPath}`,
  '--set',
  `lease.lengthMs=${LEASE_MS}`,
  '--set',
  `lease.renewIntervalMs=${RENEW_MS}`,
  '--set',
  `lease.suspiciousMarginMs=${MARGIN_MS}`,
  '--set',
  `bootstrapMs=${BOOTSTRAP_MS}`,
  '--set',
  `heartbeat.failAfterMs=${FAIL_MS}`,
  '--set',
  'heartbeat.checkIntervalMs=200',
  '--set',
  'chainUpdateIntervalMs=100',
  '--set',
  'routingPersistIntervalMs=500',
];

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe('mgmtd failover (three processes, one KV store)', () => {
  let dir: string;
  const mgmtds = new Map<number, DaemonProcess>();
  let client: MgmtdClient;
  let heartbeats: NodeJS.Timeout | undefined;
  const silentNodes = new Set<number>();
  let hbVersion = 0;

  const routing = async (): Promise<RoutingInfo> => {
    const { body } = await client.call(MgmtdService.methods.getRoutingInfo, { sinceVersion: 0 });
    assert.ok(body.delta, 'a full snapshot for version 0');
    return applyRoutingDelta(emptyRoutingInfo(), body.delta);
  };

  const heartbeatOnce = async () => {
    const info = await routing().catch(() => undefined);
    await Promise.all(
      [2, 3, 4]
        .filter((nodeId) => !silentNodes.has(nodeId))
        .map((nodeId) => {
          const targetId = nodeId * 100 + 1;
          const chain = info?.chains.find((c) => c.targets.some((t) => t.targetId === targetId));
          return client
            .call(
              MgmtdService.methods.heartbeat,
              {
                nodeId: 100 + nodeId,
                type: 'STORAGE',
                heartbeatVersion: ++hbVersion,
                sentAtMs: Date.now(),
                address: `127.0.0.1:${20_000 + nodeId}`,
                hostname: `storage-${nodeId}`,
                targets: info?.targets.some((t) => t.targetId === targetId)
                  ? [{ targetId, localState: 'UPTODATE', chainVersion: chain?.chainVersion ?? 0 }]
                  : [],
              },
              { totalTimeoutMs: 2_000 },
            )
            .catch(() => undefined);
        }),
    );
  };

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'threefs-failover-'));
    const kvPath = path.join(dir, 'kv');
    for (const nodeId of [1, 2, 3])
      mgmtds.set(nodeId, await startDaemon('mgmtd', settings(nodeId, kvPath)));
    client = new MgmtdClient({
      addresses: [...mgmtds.values()].map((m) => m.ready.address as string),
      clusterId: 'failover-test',
      totalTimeoutMs: 10_000,
      attemptTimeoutMs: 1_000,
      log: quiet,
    });
  });

  after(async () => {
    if (heartbeats) clearInterval(heartbeats);
    await client?.close();
    await Promise.all([...mgmtds.values()].map((m) => m.kill('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  });

  it('elects one primary; the others answer who it is and refuse writes', async () => {
    const { body } = await client.call(MgmtdService.methods.getPrimaryMgmtd, {});
    assert.ok(body.primary, 'a primary is elected');
    const primaryId = body.primary.nodeId;
    assert.ok([1, 2, 3].includes(primaryId));
    for (const [nodeId, m] of mgmtds) {
      if (nodeId === primaryId) continue;
      const direct = new RpcClient({
        address: m.ready.address as string,
        clusterId: 'failover-test',
        log: quiet,
      });
      await assert.rejects(
        direct.call(MgmtdService.methods.setChainTable, { chainTableId: 1, chainIds: [1] }),
        (err: ThreeFsError) =>
          err.code === 'NOT_PRIMARY' &&
          (err.details?.primary as { nodeId?: number } | undefined)?.nodeId === primaryId,
        'a secondary refuses writes and names the primary',
      );
      const who = await direct.call(MgmtdService.methods.getPrimaryMgmtd, {});
      assert.equal(who.body.primary?.nodeId, primaryId);
      await direct.close();
    }
  });

  it('registers storage nodes by heartbeat and accepts targets, chains and a chain table', async () => {
    await heartbeatOnce();
    await client.call(MgmtdService.methods.createTargets, {
      targets: [2, 3, 4].map((n) => ({
        targetId: n * 100 + 1,
        nodeId: 100 + n,
        diskIndex: 0,
        chainId: 900,
      })),
    });
    const { body } = await client.call(MgmtdService.methods.setChains, {
      chains: [{ chainId: 900, targetIds: [201, 301, 401] }],
    });
    assert.deepEqual(body.changed, [900]);
    await client.call(MgmtdService.methods.setChainTable, { chainTableId: 1, chainIds: [900] });
    heartbeats = setInterval(() => void heartbeatOnce(), 200);
    const deadline = Date.now() + 8_000;
    let info = await routing();
    while (Date.now() < deadline && !info.targets.every((t) => t.localState === 'UPTODATE')) {
      await sleep(100);
      info = await routing();
    }
    assert.deepEqual(
      info.targets.map((t) => t.localState),
      ['UPTODATE', 'UPTODATE', 'UPTODATE'],
    );
    assert.deepEqual(
      info.chains[0]?.targets.map((t) => t.state),
      ['SERVING', 'SERVING', 'SERVING'],
    );
    assert.deepEqual(
      info.chainTables.map((t) => t.chainIds),
      [[900]],
    );
  });

  it('after SIGKILL of the primary a secondary takes over within lease + margin; routing stays consistent', async () => {
    const before = await routing();
    const { body } = await client.call(MgmtdService.methods.getPrimaryMgmtd, {});
    const oldPrimary = body.primary!.nodeId;
    const killedAt = Date.now();
    await mgmtds.get(oldPrimary)!.kill('SIGKILL');

    let after: RoutingInfo | undefined;
    while (!after && Date.now() - killedAt < LEASE_MS + MARGIN_MS + 5_000) {
      after = await routing().catch(() => undefined);
    }
    const takeoverMs = Date.now() - killedAt;
    assert.ok(after, 'a new primary serves routing info');
    const { body: now } = await client.call(MgmtdService.methods.getPrimaryMgmtd, {});
    assert.notEqual(now.primary?.nodeId, oldPrimary);
    console.log(
      `# mgmtd failover: new primary ${now.primary?.nodeId} served routing ${takeoverMs} ms after SIGKILL (lease ${LEASE_MS} ms)`,
    );
    assert.ok(
      takeoverMs <= LEASE_MS + MARGIN_MS + 2 * RENEW_MS + 1_000,
      `takeover took ${takeoverMs} ms`,
    );

    assert.ok(
      after.routingVersion > before.routingVersion,
      'the new primary publishes above every old version',
    );
    assert.equal(after.bootstrapping, true);
    assert.deepEqual(
      after.chains.map((c) => [c.chainId, c.chainVersion, c.targets]),
      before.chains.map((c) => [c.chainId, c.chainVersion, c.targets]),
    );
    assert.deepEqual(
      after.chainTables.map((t) => t.chainIds),
      before.chainTables.map((t) => t.chainIds),
    );
    assert.deepEqual(
      after.targets.map((t) => t.targetId),
      before.targets.map((t) => t.targetId),
    );

    // During bootstrap node 4 stays silent: its target is OFFLINE, yet no chain may change.
    silentNodes.add(4);
    const bootstrapEnds = Date.now() + BOOTSTRAP_MS - takeoverMs;
    while (Date.now() < bootstrapEnds - 200) {
      const info = await routing();
      if (!info.bootstrapping) break;
      assert.equal(
        info.chains[0]?.chainVersion,
        before.chains[0]?.chainVersion,
        'chain frozen during bootstrap',
      );
      await sleep(100);
    }

    // After the window, the silent node's target is taken out of the chain.
    const deadline = Date.now() + BOOTSTRAP_MS + FAIL_MS + 5_000;
    let final = await routing();
    while (
      Date.now() < deadline &&
      final.chains[0]?.targets.find((t) => t.targetId === 401)?.state !== 'OFFLINE'
    ) {
      await sleep(100);
      final = await routing();
    }
    const chain = final.chains[0]!;
    assert.deepEqual(
      chain.targets.map((t) => [t.targetId, t.state]),
      [
        [201, 'SERVING'],
        [301, 'SERVING'],
        [401, 'OFFLINE'],
      ],
    );
    assert.equal(chain.chainVersion, before.chains[0]!.chainVersion + 1);
  });
});
