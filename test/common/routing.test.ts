import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  applyRoutingDelta,
  emptyRoutingInfo,
  findChainTable,
  type RoutingInfo,
  RoutingDelta,
  routingDeltaSince,
} from '../../daemons/common/routing.js';
import { routingIndex } from '../../daemons/common/routing-index.js';

function cluster(): RoutingInfo {
  return {
    routingVersion: 5,
    bootstrapping: false,
    nodes: [
      {
        nodeId: 1,
        type: 'MGMTD',
        status: 'PRIMARY_MGMTD',
        address: '127.0.0.1:9000',
        hostname: 'a',
        localAddress: '',
        releaseVersion: '0.1.0',
        tags: [],
        lastHeartbeatMs: 0,
        changedAt: 1,
      },
      {
        nodeId: 2,
        type: 'STORAGE',
        status: 'HEARTBEAT_CONNECTED',
        address: '127.0.0.1:9100',
        hostname: 'b',
        localAddress: '',
        releaseVersion: '0.1.0',
        tags: [],
        lastHeartbeatMs: 0,
        changedAt: 4,
      },
    ],
    targets: [
      {
        targetId: 11,
        nodeId: 2,
        diskIndex: 0,
        chainId: 100,
        localState: 'UPTODATE',
        usedBytes: 0,
        lowSpace: false,
        changedAt: 2,
      },
    ],
    chains: [
      {
        chainId: 100,
        chainVersion: 3,
        targets: [{ targetId: 11, state: 'SERVING' }],
        preferredOrder: [],
        changedAt: 5,
      },
    ],
    chainTables: [
      { chainTableId: 1, version: 1, chainIds: [100], description: '', changedAt: 3 },
      { chainTableId: 1, version: 2, chainIds: [100], description: 'again', changedAt: 5 },
    ],
  };
}

describe('routing info deltas', () => {
  it('a delta since an older version carries only what changed after it, and ids of everything', () => {
    const delta = routingDeltaSince(cluster(), 3);
    assert.deepEqual(
      delta.nodes.map((n) => n.nodeId),
      [2],
    );
    assert.deepEqual(delta.targets, []);
    assert.deepEqual(
      delta.chains.map((c) => c.chainId),
      [100],
    );
    assert.deepEqual(
      delta.chainTables.map((t) => t.version),
      [2],
    );
    assert.deepEqual(delta.nodeIds, [1, 2]);
    assert.ok(RoutingDelta.safeParse(delta).success, 'deltas validate against their schema');
  });

  it('the current version gets an empty delta; a future version gets everything', () => {
    const info = cluster();
    const none = routingDeltaSince(info, 5);
    assert.equal(
      none.nodes.length + none.targets.length + none.chains.length + none.chainTables.length,
      0,
    );
    assert.equal(routingDeltaSince(info, 99).sinceVersion, 0);
    assert.equal(routingDeltaSince(info, 99).nodes.length, 2);
  });

  it('applying deltas step by step equals taking the whole thing, including removals', () => {
    const v5 = cluster();
    const copy = applyRoutingDelta(emptyRoutingInfo(), routingDeltaSince(v5, 0));
    assert.deepEqual(copy, v5);

    const v6: RoutingInfo = {
      ...v5,
      routingVersion: 6,
      nodes: [v5.nodes[0]!],
      chains: [{ ...v5.chains[0]!, chainVersion: 4, changedAt: 6 }],
    };
    const updated = applyRoutingDelta(copy, routingDeltaSince(v6, 5));
    assert.deepEqual(updated, v6);
    assert.deepEqual(
      updated.nodes.map((n) => n.nodeId),
      [1],
      'the removed node is gone',
    );
  });

  it('refuses a delta that does not start at the local version', () => {
    const copy = applyRoutingDelta(emptyRoutingInfo(), routingDeltaSince(cluster(), 0));
    const stale = { ...routingDeltaSince(cluster(), 4), sinceVersion: 4 };
    assert.throws(
      () => applyRoutingDelta(copy, stale),
      (err: Error & { code?: string }) => err.code === 'ROUTING_VERSION_MISMATCH',
    );
  });

  it('finds the newest or a given chain table version', () => {
    assert.equal(findChainTable(cluster(), 1)?.version, 2);
    assert.equal(findChainTable(cluster(), 1, 1)?.version, 1);
    assert.equal(findChainTable(cluster(), 2), undefined);
  });
});

describe('routing index', () => {
  it('finds chains, targets, nodes and the node of a target by id', () => {
    const index = routingIndex(cluster());
    assert.equal(index.chain(100)?.chainVersion, 3);
    assert.equal(index.chain(101), undefined);
    assert.equal(index.target(11)?.nodeId, 2);
    assert.equal(index.node(1)?.type, 'MGMTD');
    assert.equal(index.nodeOfTarget(11)?.address, '127.0.0.1:9100');
    assert.equal(index.nodeOfTarget(12), undefined);
  });

  it("lists the nodes of a chain's SERVING targets, one array per copy", () => {
    const info = cluster();
    const chain = info.chains[0]!;
    info.chains[0] = {
      ...chain,
      targets: [
        { targetId: 12, state: 'SERVING' }, // on no known node
        { targetId: 11, state: 'SERVING' },
      ],
    };
    const index = routingIndex(info);
    assert.deepEqual(
      index.servingNodes(100).map((n) => n.nodeId),
      [2],
    );
    assert.equal(index.servingNodes(100), index.servingNodes(100));
    assert.deepEqual(index.servingNodes(101), []);
    const offline = cluster();
    offline.chains[0] = { ...chain, targets: [{ targetId: 11, state: 'OFFLINE' }] };
    assert.deepEqual(routingIndex(offline).servingNodes(100), []);
  });

  it('finds the newest chain table version, or a given one', () => {
    const index = routingIndex(cluster());
    assert.equal(index.chainTable(1)?.description, 'again');
    assert.equal(index.chainTable(1, 1)?.description, '');
    assert.equal(index.chainTable(1, 3), undefined);
    assert.equal(index.chainTable(2), undefined);
  });

  it('follows a delta: the new copy answers with what it holds', () => {
    const before = cluster();
    assert.equal(routingIndex(before).chain(100)?.chainVersion, 3);
    const chain = { ...before.chains[0]!, chainVersion: 4, changedAt: 6 };
    const after = applyRoutingDelta(before, {
      ...routingDeltaSince(before, 5),
      routingVersion: 6,
      chains: [chain],
    });
    assert.equal(routingIndex(after).chain(100)?.chainVersion, 4);
    assert.equal(routingIndex(before).chain(100)?.chainVersion, 3);
  });

  it('rebuilds for a copy whose arrays grew after it was indexed', () => {
    const info = cluster();
    assert.equal(routingIndex(info).chain(200), undefined);
    info.chains.push({ ...info.chains[0]!, chainId: 200 });
    info.chainTables.push({ ...info.chainTables[1]!, version: 3, description: 'third' });
    assert.equal(routingIndex(info).chain(200)?.chainId, 200);
    assert.equal(routingIndex(info).chainTable(1)?.description, 'third');
  });
});
