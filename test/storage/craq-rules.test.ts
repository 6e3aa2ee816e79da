import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  absentChunk,
  afterApply,
  afterCommit,
  type ChunkVersions,
  decideSync,
  decideUpdate,
  readAllowed,
  type SyncMeta,
} from '../../daemons/storage/craq-rules.js';

const chunk = (
  commitVer: number,
  updateVer = commitVer,
  chainVer = 1,
  dirty = false,
): ChunkVersions => ({
  commitVer,
  updateVer,
  chainVer,
  dirty,
});
const client = (chainVer = 1) => ({ updateVer: 0, chainVer, syncing: false });
const forwarded = (updateVer: number, chainVer = 1) => ({ updateVer, chainVer, syncing: false });

describe('CRAQ update rules (brief §3.2 step 6)', () => {
  const rows: Array<
    [string, ChunkVersions, Parameters<typeof decideUpdate>[1], ReturnType<typeof decideUpdate>]
  > = [
    [
      'client write on a new chunk gets version 1',
      absentChunk,
      client(),
      { kind: 'apply', updateVer: 1 },
    ],
    [
      'client write gets commitVer + 1 at the head',
      chunk(4),
      client(),
      { kind: 'apply', updateVer: 5 },
    ],
    [
      'client write while a version is pending is refused',
      chunk(4, 5),
      client(),
      { kind: 'refuse', reason: 'pending-exists' },
    ],
    ['forwarded next version is applied', chunk(4), forwarded(5), { kind: 'apply', updateVer: 5 }],
    [
      'forwarded version already committed is a finished retry',
      chunk(4),
      forwarded(3),
      { kind: 'already-committed' },
    ],
    [
      'forwarded version equal to commit is a finished retry',
      chunk(4),
      forwarded(4),
      { kind: 'already-committed' },
    ],
    [
      'forwarded version already pending is a stale retry',
      chunk(4, 5),
      forwarded(5),
      { kind: 'stale' },
    ],
    [
      'forwarded version with a gap is refused',
      chunk(4),
      forwarded(6),
      { kind: 'refuse', reason: 'missing-update' },
    ],
    [
      'a dirty chunk refuses normal writes',
      chunk(4, 5, 1, true),
      forwarded(5),
      { kind: 'refuse', reason: 'dirty' },
    ],
    [
      'an old chain version never overwrites newer committed data',
      chunk(4, 4, 3),
      client(2),
      { kind: 'refuse', reason: 'old-chain-version' },
    ],
    [
      'a sync write adopts the sender version, even over a pending one',
      chunk(4, 5, 1, true),
      { updateVer: 9, chainVer: 2, syncing: true },
      { kind: 'apply', updateVer: 9 },
    ],
  ];
  for (const [name, state, request, expected] of rows) {
    it(name, () => assert.deepEqual(decideUpdate(state, request), expected));
  }

  it('a write goes pending, then commits with the chain version; an old commit changes nothing', () => {
    const pending = afterApply(chunk(4, 4, 1), 5, false);
    assert.deepEqual(pending, chunk(4, 5, 1));
    assert.equal(readAllowed(pending, false), false, 'pending chunks answer NOT_COMMITTED');
    assert.equal(readAllowed(pending, true), true, 'unless the reader relaxes');
    const committed = afterCommit(pending, 5, 2);
    assert.deepEqual(committed, chunk(5, 5, 2));
    assert.equal(readAllowed(committed, false), true);
    assert.equal(afterCommit(committed, 4, 2), committed);
  });

  it('a sync write sets commitVer = updateVer − 1 so the following commit lands on the sender version', () => {
    const synced = afterCommit(afterApply(chunk(1, 2, 1, true), 9, true), 9, 3);
    assert.deepEqual(synced, chunk(9, 9, 3));
  });

  it('broken invariants throw instead of corrupting state', () => {
    assert.throws(() => decideUpdate(chunk(4, 7), client()), /invariant/);
    assert.throws(() => afterApply(chunk(4, 5), 6, false), /invariant/);
    assert.throws(() => afterCommit(chunk(4, 4), 5, 1), /invariant/);
  });
});

describe('re-sync decisions (brief §2.5 step 3)', () => {
  const meta = (commitVer: number, chainVer: number, over: Partial<SyncMeta> = {}): SyncMeta => ({
    commitVer,
    updateVer: commitVer,
    chainVer,
    dirty: false,
    checksum: 0xabc,
    length: 4096,
    ...over,
  });
  const pendingOf = (updateVer: number, chainVer: number) => ({
    updateVer,
    chainVer,
    checksum: 0xdef,
    length: 4096,
  });
  const rows: Array<[string, SyncMeta | undefined, SyncMeta | undefined, boolean, string]> = [
    ['only on the successor: remove it', undefined, meta(3, 1), false, 'remove'],
    ['only here: send it', meta(3, 1), undefined, false, 'send'],
    ['newer chain version here: send', meta(3, 2), meta(3, 1), false, 'send'],
    ['successor not committed: send', meta(3, 1), meta(2, 1, { updateVer: 3 }), false, 'send'],
    ['successor dirty: send', meta(3, 1), meta(3, 1, { dirty: true }), false, 'send'],
    ['identical: skip', meta(3, 1), meta(3, 1), false, 'skip'],
    [
      'same versions, different checksum: send',
      meta(3, 1),
      meta(3, 1, { checksum: 1 }),
      false,
      'send',
    ],
    [
      'same chain version, write in flight: send (after it, under the chunk lock)',
      meta(3, 1, { updateVer: 4 }),
      meta(3, 1),
      true,
      'send',
    ],
    ['same chain version, successor behind: send', meta(4, 1), meta(3, 1), false, 'send'],
    [
      'same chain version, successor ahead of its source: fatal',
      meta(3, 1),
      meta(4, 1),
      false,
      'fatal',
    ],
    [
      'successor on a newer chain version than ours: fatal',
      meta(3, 1),
      meta(3, 2, { checksum: 1 }),
      false,
      'fatal',
    ],
    [
      'the same committed version and content, recorded at a newer chain version there: skip',
      meta(4, 8, { updateVer: 5, pending: pendingOf(5, 9) }),
      meta(4, 9),
      false,
      'skip',
    ],
    ['neither side has it: skip', undefined, undefined, false, 'skip'],
    // The last replica commits first: a successor ahead by exactly our pending version is our
    // write on its way back (seen in a faults run as a false "inconsistency" at chain version 11
    // against our committed 10), and the locked transfer settles it.
    [
      'successor committed our pending version, newer chain version: send',
      meta(6, 10, { updateVer: 7, pending: pendingOf(7, 11) }),
      meta(7, 11, { checksum: 0xdef }),
      false,
      'send',
    ],
    [
      'successor committed our pending version, same chain version: send',
      meta(6, 11, { updateVer: 7, pending: pendingOf(7, 11) }),
      meta(7, 11, { checksum: 0xdef }),
      false,
      'send',
    ],
    [
      'same committed version, ours with a pending one the successor never got: skip',
      meta(5, 3, { updateVer: 6, pending: pendingOf(6, 3) }),
      meta(5, 3),
      false,
      'skip',
    ],
    [
      'successor ahead with other content than our pending version: fatal',
      meta(6, 10, { updateVer: 7, pending: pendingOf(7, 11) }),
      meta(7, 11, { checksum: 0x123 }),
      false,
      'fatal',
    ],
    [
      'successor ahead of our pending version: fatal',
      meta(6, 10, { updateVer: 7, pending: pendingOf(7, 11) }),
      meta(8, 11, { checksum: 0xdef }),
      false,
      'fatal',
    ],
    [
      'successor committed our pending version when a later write drove it on: send',
      meta(6, 10, { updateVer: 7, pending: pendingOf(7, 11) }),
      meta(7, 12, { checksum: 0xdef }),
      true,
      'send',
    ],
    [
      'successor has a version 7 from before ours was made: send ours (under the lock)',
      meta(6, 10, { updateVer: 7, pending: pendingOf(7, 11) }),
      meta(7, 10, { checksum: 0xdef }),
      false,
      'send',
    ],
  ];
  for (const [name, local, remote, inFlight, expected] of rows) {
    it(name, () => assert.equal(decideSync(local, remote, inFlight), expected));
  }
});
