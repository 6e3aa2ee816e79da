import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ClusterState,
  type HeartbeatInput,
  type PersistedCluster,
} from '../../daemons/mgmtd/cluster-state.js';

const timings = {
  heartbeatFailMs: 60_000,
  bootstrapMs: 120_000,
  maxClockSkewMs: 30_000,
  allowUnregistered: true,
  clientSessionTimeoutMs: 1_200_000,
};
const self = { nodeId: 1, address: '127.0.0.1:9000', hostname: 'm1', releaseVersion: '0.1.0' };

function persisted(): PersistedCluster {
  return {
    routingVersion: 41,
    nodes: [2, 3, 4].map((nodeId) => ({
      nodeId,
      type: 'STORAGE' as const,
      address: `127.0.0.1:91${nodeId}0`,
      hostname: `s${nodeId}`,
      disabled: false,
      tags: [],
    })),
    targets: [2, 3, 4].map((nodeId) => ({
      targetId: nodeId * 100 + 1,
      nodeId,
      diskIndex: 0,
      chainId: 900,
    })),
    chains: [
      {
        chainId: 900,
        chainVersion: 6,
        targets: [201, 301, 401].map((targetId) => ({ targetId, state: 'SERVING' as const })),
      },
    ],
    preferredOrders: [],
    chainTables: [{ chainTableId: 1, version: 1, chainIds: [900], description: '' }],
    configs: [{ nodeType: 'STORAGE', version: 3, content: 'x = 1' }],
  };
}

let hbVersion = 0;
function storageHeartbeat(
  nodeId: number,
  now: number,
  localState: 'UPTODATE' | 'ONLINE' | 'OFFLINE',
  chainVersion = 6,
): HeartbeatInput {
  return {
    nodeId,
    type: 'STORAGE',
    heartbeatVersion: ++hbVersion,
    sentAtMs: now,
    address: `127.0.0.1:91${nodeId}0`,
    hostname: `s${nodeId}`,
    releaseVersion: '0.1.0',
    configVersion: 3,
    targets: [
      { targetId: nodeId * 100 + 1, localState, chainVersion, usedBytes: 4096, lowSpace: false },
    ],
  };
}

function loaded(now = 1_000_000): ClusterState {
  const state = new ClusterState(timings, self);
  state.load(persisted(), now);
  return state;
}

describe('cluster state', () => {
  it('a new primary moves the routing version past the old one, marks targets OFFLINE and freezes chains', () => {
    const state = loaded();
    const info = state.routingInfo(1_000_000);
    assert.equal(info.routingVersion, 42);
    assert.equal(info.bootstrapping, true);
    assert.ok(info.targets.every((t) => t.localState === 'OFFLINE'));
    assert.deepEqual(
      state.planChainUpdates(1_000_000),
      [],
      'no chain changes during bootstrap even with every target OFFLINE',
    );
    assert.equal(info.nodes.find((n) => n.nodeId === 1)?.status, 'PRIMARY_MGMTD');
  });

  it('after bootstrap, heartbeats drive the state machine; a silent node fails and its target goes OFFLINE', () => {
    const state = loaded();
    let now = 1_000_000 + 121_000;
    for (const id of [2, 3, 4]) state.heartbeat(storageHeartbeat(id, now, 'UPTODATE'), now);
    assert.deepEqual(state.planChainUpdates(now), [], 'all serving: nothing to change');

    now += 30_000;
    for (const id of [3, 4]) state.heartbeat(storageHeartbeat(id, now, 'UPTODATE'), now);
    now += 31_000; // node 2 silent for 61 s
    for (const id of [3, 4]) state.heartbeat(storageHeartbeat(id, now, 'UPTODATE'), now);
    const before = state.version;
    const { failedNodes, offlineTargets } = state.checkLiveness(now);
    assert.deepEqual(failedNodes, [2]);
    assert.deepEqual(offlineTargets, [201]);
    assert.ok(state.version > before);

    const planned = state.planChainUpdates(now);
    assert.equal(planned.length, 1);
    assert.deepEqual(
      planned[0]!.targets.map((t) => [t.targetId, t.state]),
      [
        [301, 'SERVING'],
        [401, 'SERVING'],
        [201, 'OFFLINE'],
      ],
    );
    assert.equal(
      state.chain(900)?.chainVersion,
      6,
      'nothing is published before the caller persists and applies',
    );
    state.applyChains(planned);
    assert.equal(state.chain(900)?.chainVersion, 7);
    assert.throws(() => state.applyChains(planned), /version 7 after 7/);
  });

  it('target reports made against an older chain version are ignored', () => {
    const state = loaded();
    const now = 1_000_000;
    state.heartbeat(storageHeartbeat(2, now, 'UPTODATE', 5), now);
    assert.equal(state.localStates().get(201), 'OFFLINE');
    state.heartbeat(storageHeartbeat(2, now, 'UPTODATE', 6), now);
    assert.equal(state.localStates().get(201), 'UPTODATE');
  });

  it('a heartbeat reply carries a newer config; bad heartbeats change nothing', () => {
    const state = loaded();
    const now = 1_000_000;
    const hb = storageHeartbeat(2, now, 'UPTODATE');
    assert.equal(state.heartbeat({ ...hb, configVersion: 2 }, now).config?.version, 3);
    assert.equal(state.heartbeat(storageHeartbeat(2, now, 'UPTODATE'), now).config, undefined);
    const version = state.version;
    assert.throws(
      () => state.heartbeat({ ...storageHeartbeat(2, now, 'OFFLINE'), heartbeatVersion: 1 }, now),
      /stale heartbeat/,
    );
    assert.throws(
      () => state.heartbeat({ ...storageHeartbeat(2, now, 'OFFLINE'), type: 'META' }, now),
      /registered as STORAGE/,
    );
    assert.throws(
      () => state.heartbeat(storageHeartbeat(2, now + 60_000, 'OFFLINE'), now),
      /clock differs/,
    );
    assert.equal(state.version, version);
    assert.equal(state.localStates().get(201), 'UPTODATE');
  });

  it('disabled nodes are refused and their targets go OFFLINE', () => {
    const state = loaded();
    const now = 1_000_000;
    state.heartbeat(storageHeartbeat(3, now, 'UPTODATE'), now);
    state.applyNode(state.planNodeDisabled(3, true));
    assert.equal(state.localStates().get(301), 'OFFLINE');
    assert.throws(() => state.heartbeat(storageHeartbeat(3, now, 'UPTODATE'), now), /disabled/);
    assert.throws(() => state.planNodeDisabled(1, true), /cannot disable itself/);
    state.applyNode(state.planNodeDisabled(3, false));
    assert.doesNotThrow(() => state.heartbeat(storageHeartbeat(3, now, 'UPTODATE'), now));
  });

  it('validates target creation, chain uploads and chain tables; table versions are immutable', () => {
    const state = loaded();
    assert.throws(
      () => state.planTargets([{ targetId: 999, nodeId: 77, diskIndex: 0, chainId: 5 }]),
      /unknown node 77/,
    );
    assert.throws(
      () => state.planTargets([{ targetId: 201, nodeId: 3, diskIndex: 0, chainId: 900 }]),
      /different placement/,
    );
    state.applyTargets(
      state.planTargets([
        { targetId: 202, nodeId: 2, diskIndex: 1, chainId: 901 },
        { targetId: 302, nodeId: 3, diskIndex: 1, chainId: 901 },
      ]),
    );
    assert.throws(
      () => state.planChainUpload([{ chainId: 901, targetIds: [202, 201] }]),
      /target 201 is in chain 900 and chain 901/,
    );
    assert.throws(
      () => state.planChainUpload([{ chainId: 902, targetIds: [202, 302] }]),
      /created for chain 901/,
    );
    const chains = state.planChainUpload([{ chainId: 901, targetIds: [202, 302] }]);
    assert.deepEqual(chains, [
      {
        chainId: 901,
        chainVersion: 1,
        targets: [
          { targetId: 202, state: 'SERVING' },
          { targetId: 302, state: 'SERVING' },
        ],
      },
    ]);
    state.applyChains(chains);
    assert.throws(() => state.planChainTable(1, [900, 999], ''), /unknown chain 999/);
    const table = state.planChainTable(1, [900, 901], 'two chains');
    assert.equal(table.version, 2);
    state.applyChainTable(table);
    assert.deepEqual(
      state.routingInfo(0).chainTables.map((t) => [t.chainTableId, t.version, t.chainIds.length]),
      [
        [1, 1, 1],
        [1, 2, 2],
      ],
    );
  });

  it('client sessions are extended and expire', () => {
    const state = loaded();
    state.extendClientSession({ clientId: 'c1', hostname: 'h', description: 'fuse' }, 0);
    state.extendClientSession({ clientId: 'c2', hostname: 'h', description: 'fuse' }, 600_000);
    assert.deepEqual(state.expireClientSessions(1_200_000), ['c1']);
    assert.deepEqual(
      state.listClientSessions().map((s) => s.clientId),
      ['c2'],
    );
  });
});
