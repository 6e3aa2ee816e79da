import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  blocksOf,
  decodeRecord,
  encodeRecord,
  releasedBlocks,
  type ChunkRecord,
} from '../../../daemons/storage/engine/chunk-record.js';
import { chainRange, chunkKey, splitKey } from '../../../daemons/storage/engine/chunk-key.js';
import { chunkId } from './helpers.js';

const committedOnly: ChunkRecord = {
  commitVer: 7,
  chainVer: 3,
  committed: {
    length: 5000,
    checksum: 0xdeadbeef,
    block: { cls: 4, file: 1, block: 99 },
    crcs: Uint32Array.from([1, 2]),
  },
  pending: null,
  lastRequestId: 0,
};

const withPending: ChunkRecord = {
  ...committedOnly,
  lastRequestId: 2 ** 40 + 5,
  pending: {
    updateVer: 8,
    chainVer: 4,
    length: 9000,
    checksum: 0xffffffff,
    block: { cls: 5, file: 0, block: 0 },
    crcs: Uint32Array.from([3, 4, 5]),
    remove: false,
  },
};

const pendingRemove: ChunkRecord = {
  ...committedOnly,
  pending: {
    updateVer: 8,
    chainVer: 3,
    length: 0,
    checksum: 0,
    block: null,
    crcs: new Uint32Array(0),
    remove: true,
  },
};

const emptyNew: ChunkRecord = {
  commitVer: 0,
  chainVer: 0,
  committed: { length: 0, checksum: 0, block: null, crcs: new Uint32Array(0) },
  pending: null,
  lastRequestId: 0,
};

describe('chunk record codec', () => {
  for (const [name, record] of Object.entries({
    committedOnly,
    withPending,
    pendingRemove,
    emptyNew,
  })) {
    it(`round-trips ${name}`, () => {
      assert.deepEqual(decodeRecord(encodeRecord(record)), record);
    });
  }

  it('rejects damaged records with INTERNAL', () => {
    const bytes = encodeRecord(withPending);
    assert.throws(() => decodeRecord(bytes.subarray(0, bytes.length - 1)), { code: 'INTERNAL' });
    assert.throws(() => decodeRecord(Buffer.concat([bytes, Buffer.from([0])])), {
      code: 'INTERNAL',
    });
    const wrongFormat = Buffer.from(bytes);
    wrongFormat[0] = 9;
    assert.throws(() => decodeRecord(wrongFormat), /unknown format/);
  });

  it('refuses to encode out-of-range fields', () => {
    assert.throws(() => encodeRecord({ ...committedOnly, commitVer: 2 ** 32 }), {
      code: 'INTERNAL',
    });
  });
});

describe('blocks a record owns', () => {
  it('lists committed and a separate pending block once each', () => {
    assert.equal(blocksOf(withPending).length, 2);
    const inPlace: ChunkRecord = {
      ...withPending,
      pending: { ...withPending.pending!, block: { cls: 4, file: 1, block: 99 } },
    };
    assert.equal(blocksOf(inPlace).length, 1);
    assert.equal(blocksOf(undefined).length, 0);
  });

  it('commit releases the old committed block; abort releases the pending one', () => {
    const committedNext: ChunkRecord = {
      ...committedOnly,
      commitVer: 8,
      committed: { ...withPending.pending!, block: withPending.pending!.block },
      pending: null,
    };
    assert.deepEqual(releasedBlocks(withPending, committedNext), [{ cls: 4, file: 1, block: 99 }]);
    assert.deepEqual(releasedBlocks(withPending, committedOnly), [{ cls: 5, file: 0, block: 0 }]);
    assert.deepEqual(releasedBlocks(committedOnly, undefined), [{ cls: 4, file: 1, block: 99 }]);
    assert.deepEqual(releasedBlocks(committedOnly, withPending), []);
  });
});

describe('chunk keys', () => {
  it('sort by chain, then inode, then index', () => {
    const keys = [
      chunkKey(2, chunkId(1, 0)),
      chunkKey(1, chunkId(2, 0)),
      chunkKey(1, chunkId(1, 1)),
      chunkKey(1, chunkId(1, 0)),
    ].sort(Buffer.compare);
    assert.deepEqual(
      keys.map((k) => [splitKey(k).chainId, splitKey(k).chunkId.readUInt32BE(12)]),
      [
        [1, 0],
        [1, 1],
        [1, 0],
        [2, 0],
      ],
    );
  });

  it('chain ranges stop at the next chain, or at the end for the last chain id', () => {
    const r = chainRange(5);
    assert.ok(Buffer.compare(r.start, chunkKey(5, Buffer.alloc(16))) === 0);
    assert.ok(r.end && Buffer.compare(chunkKey(5, Buffer.alloc(16, 0xff)), r.end) < 0);
    assert.equal(chainRange(0xffffffff).end, undefined);
  });

  it('rejects bad ids', () => {
    assert.throws(() => chunkKey(1, Buffer.alloc(15)), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => chunkKey(-1, Buffer.alloc(16)), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => chunkKey(2 ** 32, Buffer.alloc(16)), { code: 'INVALID_ARGUMENT' });
  });
});
