import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RoutingInfo } from '../../daemons/common/routing.js';
import type { PublicTargetState } from '../../daemons/common/target-states.js';
import {
  mayApplyWrites,
  mayServeReads,
  nextLocalTarget,
  startingTarget,
} from '../../daemons/storage/local-state.js';
import { targetRoles } from '../../daemons/storage/target-roles.js';

function routing(states: PublicTargetState[]): RoutingInfo {
  return {
    routingVersion: 1,
    bootstrapping: false,
    nodes: [1, 2, 3, 4].map((nodeId) => ({
      nodeId,
      type: 'STORAGE' as const,
      status: 'HEARTBEAT_CONNECTED' as const,
      address: `127.0.0.1:${9000 + nodeId}`,
      hostname: '',
      localAddress: '',
      releaseVersion: '',
      tags: [],
      lastHeartbeatMs: 0,
      changedAt: 1,
    })),
    targets: states.map((_, i) => ({
      targetId: 11 + i * 10,
      nodeId: i + 1,
      diskIndex: 0,
      chainId: 7,
      localState: 'UPTODATE' as const,
      usedBytes: 0,
      lowSpace: false,
      changedAt: 1,
    })),
    chains: [
      {
        chainId: 7,
        chainVersion: 3,
        targets: states.map((state, i) => ({ targetId: 11 + i * 10, state })),
        preferredOrder: [],
        changedAt: 1,
      },
    ],
    chainTables: [],
  };
}

describe('target roles from routing', () => {
  it('head, middle and tail of a serving chain', () => {
    const info = routing(['SERVING', 'SERVING', 'SERVING']);
    const head = targetRoles(info, 1).get(11)!;
    assert.equal(head.isHead, true);
    assert.equal(head.isTail, false);
    assert.deepEqual(head.successor, {
      targetId: 21,
      nodeId: 2,
      address: '127.0.0.1:9002',
      state: 'SERVING',
    });
    assert.equal(head.predecessor, undefined);
    const middle = targetRoles(info, 2).get(21)!;
    assert.equal(middle.isHead, false);
    assert.equal(middle.successor?.targetId, 31);
    assert.equal(middle.predecessor?.targetId, 11);
    const tail = targetRoles(info, 3).get(31)!;
    assert.equal(tail.isTail, true);
    assert.equal(tail.successor, undefined);
    assert.equal(tail.chainVersion, 3);
  });

  it('a SYNCING successor is forwarded to; WAITING and OFFLINE end the chain', () => {
    const syncing = routing(['SERVING', 'SERVING', 'SYNCING', 'WAITING']);
    assert.equal(targetRoles(syncing, 2).get(21)!.successor?.state, 'SYNCING');
    assert.equal(
      targetRoles(syncing, 2).get(21)!.isTail,
      false,
      'the tail forwards to its syncing successor',
    );
    assert.equal(
      targetRoles(syncing, 3).get(31)!.successor,
      undefined,
      'a syncing target does not forward to a waiting one',
    );
    assert.equal(targetRoles(syncing, 3).get(31)!.predecessor?.targetId, 21);
    const offline = routing(['SERVING', 'OFFLINE']);
    assert.equal(targetRoles(offline, 1).get(11)!.isTail, true);
  });

  it('other nodes’ targets are not ours', () => {
    assert.equal(targetRoles(routing(['SERVING', 'SERVING']), 4).size, 0);
  });
});

describe('local target state (storage side)', () => {
  it('restart protocol: OFFLINE until demoted, then ONLINE; then UPTODATE after sync', () => {
    let t = startingTarget;
    t = nextLocalTarget(t, { kind: 'routing', publicState: 'SERVING' });
    assert.deepEqual(
      t,
      { phase: 'restarting', local: 'OFFLINE' },
      'still SERVING in routing: keep reporting OFFLINE',
    );
    t = nextLocalTarget(t, { kind: 'routing', publicState: 'WAITING' });
    assert.equal(t.local, 'OFFLINE', 'WAITING is not demoted enough');
    t = nextLocalTarget(t, { kind: 'routing', publicState: 'OFFLINE' });
    assert.deepEqual(t, { phase: 'running', local: 'ONLINE' });
    t = nextLocalTarget(t, { kind: 'routing', publicState: 'SYNCING' });
    assert.equal(t.local, 'ONLINE');
    assert.equal(mayApplyWrites(t, 'SYNCING'), true);
    assert.equal(mayServeReads(t, 'SYNCING'), false);
    t = nextLocalTarget(t, { kind: 'sync-done' });
    assert.equal(t.local, 'UPTODATE');
    assert.equal(mayServeReads(t, 'SERVING'), true);
  });

  it('a returning LASTSRV becomes UPTODATE when mgmtd makes it SERVING', () => {
    let t = nextLocalTarget(startingTarget, { kind: 'routing', publicState: 'LASTSRV' });
    assert.deepEqual(t, { phase: 'running', local: 'ONLINE' });
    t = nextLocalTarget(t, { kind: 'routing', publicState: 'SERVING' });
    assert.deepEqual(t, { phase: 'running', local: 'UPTODATE' });
  });

  for (const demoted of ['OFFLINE', 'LASTSRV', 'WAITING'] as const) {
    it(`self-fences when an UPTODATE target is shown ${demoted}`, () => {
      const t = nextLocalTarget(
        { phase: 'running', local: 'UPTODATE' },
        { kind: 'routing', publicState: demoted },
      );
      assert.deepEqual(t, { phase: 'restarting', local: 'OFFLINE' });
      assert.equal(mayApplyWrites(t, 'SERVING'), false);
    });
  }

  it('a disk error takes the target OFFLINE for good', () => {
    const t = nextLocalTarget({ phase: 'running', local: 'UPTODATE' }, { kind: 'disk-error' });
    assert.deepEqual(t, { phase: 'failed', local: 'OFFLINE' });
    assert.equal(nextLocalTarget(t, { kind: 'routing', publicState: 'OFFLINE' }), t);
    assert.equal(nextLocalTarget(t, { kind: 'sync-done' }), t);
  });

  it('an ONLINE target does not write while merely WAITING, nor an UPTODATE one while LASTSRV', () => {
    assert.equal(mayApplyWrites({ phase: 'running', local: 'ONLINE' }, 'WAITING'), false);
    assert.equal(mayApplyWrites({ phase: 'running', local: 'ONLINE' }, 'SERVING'), false);
  });
});
