// The mgmtd store on a real embedded KV store: lease rounds, fencing of a deposed primary,
// round trips through loadCluster, and refusal of chain versions that go backwards.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { kvConfig, type KvStore, openKvStore } from '../../daemons/common/kv/index.js';
import { MgmtdStore } from '../../daemons/mgmtd/store.js';

const timings = { leaseLengthMs: 60_000, suspiciousMarginMs: 20_000, checkReleaseVersion: true };
const candidate = (nodeId: number, releaseVersion = '0.1.0') => ({
  nodeId,
  address: `127.0.0.1:900${nodeId}`,
  releaseVersion,
  disabled: false,
});

describe('mgmtd store', () => {
  let dir: string;
  let kv: KvStore;
  let store: MgmtdStore;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'threefs-mgmtd-store-'));
    kv = await openKvStore(kvConfig({ path: dir }));
    store = new MgmtdStore(kv);
  });
  after(async () => {
    await kv.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the lease protocol through the KV store and fences a deposed primary', async () => {
    let now = 1_000_000;
    const clock = () => now;
    assert.equal(
      (await store.extendLease(candidate(1), timings, clock)).decision.action,
      'acquire',
    );
    assert.equal((await store.extendLease(candidate(2), timings, clock)).decision.action, 'none');
    now += 30_000;
    assert.equal((await store.extendLease(candidate(1), timings, clock)).decision.action, 'extend');
    assert.equal((await store.readLease())?.leaseStartMs, 1_000_000, 'renewal keeps the start');

    await store.persist(
      1,
      {
        routingVersion: 5,
        nodes: [
          { nodeId: 3, type: 'STORAGE', address: 'a', hostname: 'h', disabled: false, tags: [] },
        ],
      },
      clock,
    );

    now += 61_000; // node 1 stops renewing; its lease runs out
    await assert.rejects(
      store.persist(1, { routingVersion: 6 }, clock),
      (err: Error & { code?: string }) => err.code === 'NOT_PRIMARY',
    );
    assert.equal(
      (await store.extendLease(candidate(2, '0.0.9'), timings, clock)).decision.action,
      'none',
      'older release may not take over',
    );
    const takeover = await store.extendLease(candidate(2), timings, clock);
    assert.equal(takeover.decision.action, 'acquire');
    await assert.rejects(
      store.persist(1, { routingVersion: 7 }, clock),
      /no longer holds the mgmtd lease/,
    );
    await store.persist(2, { routingVersion: 7 }, clock);
    assert.equal((await store.loadCluster()).routingVersion, 7);
  });

  it('round-trips targets, chains with preferred orders, tables and configs', async () => {
    const clock = () => 1_200_000;
    await store.extendLease(candidate(2), timings, clock);
    const chain = {
      chainId: 900,
      chainVersion: 1,
      targets: [{ targetId: 301, state: 'SERVING' as const }],
    };
    await store.persist(
      2,
      {
        targets: [{ targetId: 301, nodeId: 3, diskIndex: 0, chainId: 900 }],
        chains: [chain],
        preferredOrders: [{ chainId: 900, order: [301] }],
        chainTables: [{ chainTableId: 1, version: 1, chainIds: [900], description: 'first' }],
        configs: [
          { nodeType: 'STORAGE', version: 1, content: 'a = 1' },
          { nodeType: 'STORAGE', version: 2, content: 'a = 2' },
        ],
      },
      clock,
    );
    const loaded = await store.loadCluster();
    assert.deepEqual(loaded.chains, [chain]);
    assert.deepEqual(loaded.preferredOrders, [{ chainId: 900, order: [301] }]);
    assert.deepEqual(loaded.targets, [{ targetId: 301, nodeId: 3, diskIndex: 0, chainId: 900 }]);
    assert.deepEqual(loaded.configs, [{ nodeType: 'STORAGE', version: 2, content: 'a = 2' }]);
    assert.equal(loaded.nodes.length, 1);

    await assert.rejects(
      store.persist(2, { chains: [chain] }, clock),
      /stored version 1 is not older than 1/,
    );
    await assert.rejects(
      store.persist(
        2,
        { chainTables: [{ chainTableId: 1, version: 1, chainIds: [900], description: '' }] },
        clock,
      ),
      /version 1 exists/,
    );
    await store.persist(2, { chains: [{ ...chain, chainVersion: 2 }] }, clock);
    assert.deepEqual(
      (await store.loadCluster()).preferredOrders,
      [{ chainId: 900, order: [301] }],
      'order survives a chain update',
    );
  });

  it('refuses rows that fail validation instead of loading them', async () => {
    await assert.rejects(
      store.persist(
        2,
        { targets: [{ targetId: -1, nodeId: 3, diskIndex: 0, chainId: 900 }] },
        () => 1_200_000,
      ),
      /targetId/,
    );
  });
});
