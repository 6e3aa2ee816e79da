// Pure rules of the metadata service, row by row: chain allocation (frozen vectors: a file's
// layout and chain order must never change for a given counter and seed), dynamic stripe growth,
// inode id blocks, quota checks, name limits, dead-session detection and the marks a create leaves
// for its retries (frozen too: a retry may reach a meta server of the next release), and the byte
// layout of the hot keys (frozen: a store written by one release is read by the next).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stripeChains } from '../../daemons/common/layout.js';
import {
  baseIndexFor,
  ChainAllocator,
  effectiveStripe,
  grownDynStripe,
  initialDynStripe,
} from '../../daemons/meta/chain-allocator.js';
import { blockStart, blockValue, IDS_PER_BLOCK } from '../../daemons/meta/inode-id-allocator.js';
import { requestMarks } from '../../daemons/meta/idempotency.js';
import { dentryKey, dentryRange, dirTimesKey, inodeKey } from '../../daemons/meta/keys.js';
import { checkName, nameTooLong, splitPath } from '../../daemons/meta/names.js';
import { checkQuota } from '../../daemons/meta/quota-rules.js';
import { isDeadSession } from '../../daemons/meta/session-pruner.js';

const table = {
  chainTableId: 1,
  version: 3,
  chainIds: [11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
  description: '',
  changedAt: 1,
};
const dirLayout = {
  chainTableId: 1,
  chainTableVersion: 0,
  chunkSize: 1 << 20,
  stripeSize: 4,
  chains: { kind: 'empty' as const },
};

describe('chain allocation', () => {
  it('round-robin base index from a random multiple of the stripe, frozen chain order per seed', () => {
    const seeds = [0, 1, 9_007_199_254_740_991];
    const allocator = new ChainAllocator(
      () => 1,
      () => seeds.shift() ?? 42,
    );
    const layouts = [0, 1, 2, 3].map(() => allocator.allocate(dirLayout, table));
    assert.deepEqual(
      layouts.map((l) => (l.chains.kind === 'range' ? l.chains.baseIndex : 0)),
      [5, 9, 3, 7],
    );
    assert.ok(layouts.every((l) => l.chainTableVersion === 3 && l.stripeSize === 4));
    // Frozen vectors (mt64-fy-v1): changing any of these breaks every existing file.
    assert.deepEqual(
      layouts.map((l) => stripeChains(l, table.chainIds)),
      [
        [15, 16, 18, 17],
        [20, 11, 12, 19],
        [13, 15, 14, 16],
        [18, 17, 20, 19],
      ],
    );
  });

  it('rows: effective stripe, base index, dynamic stripe', () => {
    assert.equal(effectiveStripe(200, 10), 10);
    assert.equal(effectiveStripe(4, 10), 4);
    assert.throws(() => effectiveStripe(4, 0), /empty/);
    assert.equal(baseIndexFor(0, 10), 1);
    assert.equal(baseIndexFor(19, 10), 10);
    assert.equal(initialDynStripe(200), 16);
    assert.equal(initialDynStripe(4), 4);
    assert.equal(grownDynStripe(16, 17, 200), 32);
    assert.equal(grownDynStripe(16, 100, 200), 128);
    assert.equal(grownDynStripe(128, 199, 200), 200);
    assert.equal(grownDynStripe(32, 8, 200), 32, 'never shrinks');
  });
});

describe('inode id blocks', () => {
  it('shards never overlap; ids start at 0x1000 and stay safe integers', () => {
    assert.equal(blockStart(blockValue(0, 0)), 0x1000);
    assert.equal(blockStart(blockValue(1, 0)), 0x2000);
    assert.equal(blockStart(blockValue(0, 1)), 33 * IDS_PER_BLOCK);
    const starts = new Set<number>();
    for (let shard = 0; shard < 32; shard++)
      for (let n = 0; n < 8; n++) starts.add(blockStart(blockValue(shard, n)));
    assert.equal(starts.size, 256);
    assert.ok(Number.isSafeInteger(blockStart(2 ** 41 - 2) + IDS_PER_BLOCK - 1));
    assert.throws(() => blockStart(2 ** 41 - 1), { code: 'RESOURCE_EXHAUSTED' });
  });
});

describe('quota, name and session rules', () => {
  const limits = { maxBytes: 100, maxInodes: 2 };
  const rows: Array<[number, number, number, number, string | undefined]> = [
    // used bytes, used inodes, add bytes, add inodes, error
    [0, 0, 100, 1, undefined],
    [0, 2, 0, 1, 'EDQUOT'],
    [100, 0, 1, 0, 'EDQUOT'],
    [150, 5, -10, -1, undefined], // shrinking is always allowed, even over the limit
    [99, 1, 1, 1, undefined],
  ];
  for (const [bytes, inodes, addBytes, addInodes, error] of rows) {
    it(`usage ${bytes} B/${inodes} inodes + ${addBytes} B/${addInodes} → ${error ?? 'ok'}`, () => {
      const run = () => checkQuota(7, limits, { bytes, inodes }, addBytes, addInodes);
      if (error) assert.throws(run, { code: error });
      else run();
    });
  }
  it('no limit when 0', () =>
    checkQuota(7, { maxBytes: 0, maxInodes: 0 }, { bytes: 1e15, inodes: 1e9 }, 1e9, 1));

  it('names and paths', () => {
    checkName('a'.repeat(255));
    assert.throws(() => checkName('a'.repeat(256)), { code: 'ENAMETOOLONG' });
    assert.throws(
      () => checkName('é'.repeat(128)),
      { code: 'ENAMETOOLONG' },
      'bytes, not characters',
    );
    assert.throws(() => checkName('a/b'), { code: 'EINVAL' });
    // NAME_MAX counts UTF-8 bytes: 1 (a), 2 (é), 3 (日) and 4 (😀, two UTF-16 units) per character.
    for (const [name, tooLong] of [
      ['a'.repeat(255), false],
      ['a'.repeat(256), true],
      ['é'.repeat(127), false],
      ['é'.repeat(128), true],
      ['日'.repeat(85), false],
      ['日'.repeat(86), true],
      ['😀'.repeat(63), false],
      ['😀'.repeat(64), true],
    ] as const) {
      assert.equal(nameTooLong(name), tooLong, `${Buffer.byteLength(name)} bytes`);
    }
    assert.throws(() => splitPath('/x'.repeat(2049)), { code: 'ENAMETOOLONG' });
    assert.deepEqual(splitPath('/a/./b//c/'), { absolute: true, parts: ['a', 'b', 'c'] });
    assert.deepEqual(splitPath('../x'), { absolute: false, parts: ['..', 'x'] });
  });

  it('dead sessions: unknown client and past the grace period', () => {
    const live = new Set(['alive']);
    assert.equal(isDeadSession(live, 'alive', 0, 10_000, 1_000), false);
    assert.equal(isDeadSession(live, 'gone', 9_500, 10_000, 1_000), false);
    assert.equal(isDeadSession(live, 'gone', 8_000, 10_000, 1_000), true);
  });
});

describe('request marks', () => {
  // SHA-256("client-a\0" + request id) = 09384dbc380b41fe 0016470a8196f8aa1ee7ed32dc004d75 …
  // (sha256sum): the tag is the first 8 bytes, the session id the next 16 with the UUID version
  // nibble set to 8 (f8 → 88) and the variant bits to 10 (1e → 9e).
  const rid = '0000018c1a2b3c4d-00000000-0badf00d';
  const rows: Array<[string, string, string, string]> = [
    ['client-a', rid, '09384dbc380b41fe', '0016470a-8196-88aa-9ee7-ed32dc004d75'],
    [
      'client-a',
      '0000018c1a2b3c4d-00000001-0badf00d',
      '2ba01087eeef785c',
      '54a15945-bcf6-8157-af7f-e3cf76f30b5f',
    ],
    ['client-b', rid, '4b997989efc84cc0', 'e88d5cd0-2af1-800f-a3d0-5a97b7fc7342'],
  ];
  for (const [clientId, requestId, tag, sessionId] of rows) {
    it(`${clientId} ${requestId}`, () => {
      assert.deepEqual(requestMarks(clientId, requestId), { tag, sessionId });
      assert.match(
        sessionId,
        /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
    });
  }

  it('the separator keeps (client, request) pairs apart', () => {
    assert.notEqual(requestMarks('ab', 'c').tag, requestMarks('a', 'bc').tag);
  });
});

describe('key layout', () => {
  // tag (4 ASCII bytes), the id as a little-endian u64, then the name's UTF-8 bytes.
  const rows: Array<[string, () => Buffer, string]> = [
    ['root inode', () => inodeKey(1), '494e4f44' + '0100000000000000'],
    ['inode past 2^32', () => inodeKey(2 ** 32 + 258), '494e4f44' + '0201000001000000'],
    ['largest safe id', () => inodeKey(Number.MAX_SAFE_INTEGER), '494e4f44' + 'ffffffffffff1f00'],
    ['dentry', () => dentryKey(7, 'a'), '44454e54' + '0700000000000000' + '61'],
    [
      'dentry, UTF-8 name',
      () => dentryKey(7, 'é日'),
      '44454e54' + '0700000000000000' + 'c3a9e697a5',
    ],
    ['dentry, empty name', () => dentryKey(7, ''), '44454e54' + '0700000000000000'],
    ['directory times', () => dirTimesKey(2 ** 40), '4454494d' + '0000000000010000'],
  ];
  for (const [what, key, hex] of rows) {
    it(what, () => assert.equal(key().toString('hex'), hex));
  }

  it("a directory's range holds its dentries and no other directory's", () => {
    const { begin, end } = dentryRange(7);
    const inside = (k: Buffer) => Buffer.compare(begin, k) <= 0 && Buffer.compare(k, end) < 0;
    assert.ok(inside(dentryKey(7, '')) && inside(dentryKey(7, '\u{10ffff}'.repeat(60))));
    assert.ok(!inside(dentryKey(6, 'z')) && !inside(dentryKey(8, '')));
  });

  it('ids that are not non-negative safe integers are refused', () => {
    for (const id of [-1, 1.5, 2 ** 53, Number.NaN]) {
      assert.throws(() => inodeKey(id), { code: 'INVALID_ARGUMENT' });
      assert.throws(() => dentryKey(id, 'a'), { code: 'INVALID_ARGUMENT' });
    }
  });
});
