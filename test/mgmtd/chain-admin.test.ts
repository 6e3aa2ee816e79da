import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LocalTargetState, PublicTargetState } from '../../daemons/common/target-states.js';
import {
  addTarget,
  newChain,
  offlineTarget,
  removeTarget,
  rotateLastServing,
  rotateTowardsPreferredOrder,
  shutdownChain,
  validateChainTable,
  validateChainUpload,
} from '../../daemons/mgmtd/chain-admin.js';
import { type Chain, updateChain } from '../../daemons/mgmtd/chain-state-machine.js';

const chain = (version: number, ...targets: Array<[number, PublicTargetState]>): Chain => ({
  chainId: 5,
  chainVersion: version,
  targets: targets.map(([targetId, state]) => ({ targetId, state })),
});
const states = (c: Chain) => c.targets.map((t) => [t.targetId, t.state]);
const nodeOf = (targetId: number) => Math.floor(targetId / 10); // target 11 lives on node 1, 21 on node 2
const known = new Map(
  [11, 12, 21, 31, 41].map((targetId) => [targetId, { targetId, nodeId: nodeOf(targetId) }]),
);

describe('chain admin: uploads and tables', () => {
  it('accepts a valid upload', () => {
    assert.doesNotThrow(() =>
      validateChainUpload([{ chainId: 1, targetIds: [11, 21, 31] }], known, []),
    );
  });

  const bad: Array<[string, Array<{ chainId: number; targetIds: number[] }>, Chain[], RegExp]> = [
    ['unknown target', [{ chainId: 1, targetIds: [11, 99] }], [], /unknown target 99/],
    [
      'one target in two uploaded chains',
      [
        { chainId: 1, targetIds: [11, 21] },
        { chainId: 2, targetIds: [21, 31] },
      ],
      [],
      /target 21 is in chain 1 and chain 2/,
    ],
    [
      'a target already in a stored chain',
      [{ chainId: 2, targetIds: [21, 31] }],
      [chain(1, [21, 'SERVING'])],
      /target 21 is in chain 5 and chain 2/,
    ],
    [
      'two targets of one node in a chain',
      [{ chainId: 1, targetIds: [11, 12] }],
      [],
      /two targets on node 1/,
    ],
    ['an empty chain', [{ chainId: 1, targetIds: [] }], [], /no targets/],
    [
      'a chain id twice',
      [
        { chainId: 1, targetIds: [11] },
        { chainId: 1, targetIds: [21] },
      ],
      [],
      /chain id twice/,
    ],
    ['a bad chain id', [{ chainId: -3, targetIds: [11] }], [], /not a positive integer/],
  ];
  for (const [name, upload, existing, message] of bad) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => validateChainUpload(upload, known, existing),
        (err: Error & { code?: string }) =>
          err.code === 'INVALID_ARGUMENT' && message.test(err.message),
      );
    });
  }

  it('re-uploading a stored chain replaces it rather than conflicting with it', () => {
    assert.doesNotThrow(() =>
      validateChainUpload([{ chainId: 5, targetIds: [21, 31] }], known, [
        chain(1, [21, 'SERVING']),
      ]),
    );
  });

  it('chain tables name known chains once', () => {
    assert.doesNotThrow(() => validateChainTable([1, 2], new Set([1, 2, 3])));
    assert.throws(() => validateChainTable([1, 4], new Set([1, 2])), /unknown chain 4/);
    assert.throws(() => validateChainTable([1, 1], new Set([1])), /chain 1 twice/);
    assert.throws(() => validateChainTable([], new Set([1])), /at least one chain/);
  });

  it('a new chain starts at version 1 with every target SERVING', () => {
    assert.deepEqual(newChain(7, [11, 21]), {
      chainId: 7,
      chainVersion: 1,
      targets: [
        { targetId: 11, state: 'SERVING' },
        { targetId: 21, state: 'SERVING' },
      ],
    });
  });
});

describe('chain admin: edits', () => {
  it('adds a target as OFFLINE at the end; the state machine then syncs it', () => {
    const added = addTarget(
      chain(3, [11, 'SERVING'], [21, 'SERVING']),
      { targetId: 31, nodeId: 3 },
      nodeOf,
    );
    assert.equal(added.chainVersion, 4);
    assert.deepEqual(states(added), [
      [11, 'SERVING'],
      [21, 'SERVING'],
      [31, 'OFFLINE'],
    ]);
    const local = new Map<number, LocalTargetState>([
      [11, 'UPTODATE'],
      [21, 'UPTODATE'],
      [31, 'ONLINE'],
    ]);
    assert.deepEqual(states(updateChain(added, local)), [
      [11, 'SERVING'],
      [21, 'SERVING'],
      [31, 'SYNCING'],
    ]);
    assert.throws(() => addTarget(added, { targetId: 31, nodeId: 3 }, nodeOf), /already in chain/);
    assert.throws(
      () => addTarget(added, { targetId: 12, nodeId: 1 }, nodeOf),
      /already has a target on node 1/,
    );
  });

  it('removes only OFFLINE targets and never the last one', () => {
    const c = chain(2, [11, 'SERVING'], [21, 'OFFLINE']);
    assert.deepEqual(states(removeTarget(c, 21)), [[11, 'SERVING']]);
    assert.throws(() => removeTarget(c, 11), /only an OFFLINE target can be removed/);
    assert.throws(() => removeTarget(c, 99), /not in chain/);
    assert.throws(() => removeTarget(chain(1, [21, 'OFFLINE']), 21), /last target/);
  });

  it('offlines a target but never the last SERVING one', () => {
    const c = chain(2, [11, 'SERVING'], [21, 'SERVING']);
    const off = offlineTarget(c, 11);
    assert.deepEqual(states(off), [
      [21, 'SERVING'],
      [11, 'OFFLINE'],
    ]);
    assert.throws(() => offlineTarget(off, 21), /last SERVING target/);
    assert.equal(offlineTarget(off, 11), off, 'already offline: unchanged');
  });

  it('rotate-lastsrv promotes the next target and sends the old LASTSRV to the end', () => {
    const c = chain(9, [11, 'LASTSRV'], [21, 'WAITING'], [31, 'OFFLINE']);
    const rotated = rotateLastServing(c);
    assert.equal(rotated.chainVersion, 10);
    assert.deepEqual(states(rotated), [
      [21, 'LASTSRV'],
      [31, 'OFFLINE'],
      [11, 'OFFLINE'],
    ]);
    const back = updateChain(rotated, new Map<number, LocalTargetState>([[21, 'ONLINE']]));
    assert.deepEqual(states(back), [
      [21, 'SERVING'],
      [31, 'OFFLINE'],
      [11, 'OFFLINE'],
    ]);
    assert.throws(
      () => rotateLastServing(chain(1, [11, 'SERVING'], [21, 'OFFLINE'])),
      /has a SERVING target/,
    );
    assert.throws(() => rotateLastServing(chain(1, [11, 'WAITING'])), /no LASTSRV/);
    assert.throws(() => rotateLastServing(chain(1, [11, 'LASTSRV'])), /no other target/);
  });

  it('a planned shutdown makes every serving replica LASTSRV; the first back serves, the rest re-sync', () => {
    const down = shutdownChain(chain(4, [11, 'SERVING'], [21, 'SERVING'], [31, 'SYNCING']));
    assert.deepEqual(states(down), [
      [11, 'LASTSRV'],
      [21, 'LASTSRV'],
      [31, 'OFFLINE'],
    ]);
    const oneBack = updateChain(down, new Map<number, LocalTargetState>([[21, 'ONLINE']]));
    assert.deepEqual(states(oneBack), [
      [21, 'SERVING'],
      [11, 'OFFLINE'],
      [31, 'OFFLINE'],
    ]);
    const allBack = updateChain(
      oneBack,
      new Map<number, LocalTargetState>([
        [21, 'UPTODATE'],
        [11, 'ONLINE'],
        [31, 'ONLINE'],
      ]),
    );
    assert.deepEqual(states(allBack), [
      [21, 'SERVING'],
      [11, 'SYNCING'],
      [31, 'WAITING'],
    ]);
  });

  it('rotates towards a preferred order one target at a time', () => {
    const c = chain(1, [21, 'SERVING'], [11, 'SERVING'], [31, 'SERVING']);
    const step = rotateTowardsPreferredOrder(c, [11, 21, 31]);
    assert.deepEqual(states(step), [
      [11, 'SERVING'],
      [31, 'SERVING'],
      [21, 'OFFLINE'],
    ]);
    assert.throws(() => rotateTowardsPreferredOrder(step, [11, 21, 31]), /not fully SERVING/);
    const ordered = chain(1, [11, 'SERVING'], [21, 'SERVING']);
    assert.equal(rotateTowardsPreferredOrder(ordered, [11, 21]), ordered);
  });
});
