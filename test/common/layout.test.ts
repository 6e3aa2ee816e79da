import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  chainOfChunk,
  chunkId,
  chunkIdRange,
  Layout,
  parseChunkId,
  splitIntoChunks,
  stripeChains,
} from '../../daemons/common/layout.js';
import { shuffleWithSeed } from '../../daemons/common/shuffle.js';

const table = [101, 102, 103, 104, 105, 106, 107, 108, 109, 110];
const MiB = 1024 * 1024;

describe('layout', () => {
  it('an unshuffled range takes consecutive table positions from the base, wrapping around', () => {
    const layout = Layout.parse({
      chainTableId: 1,
      chainTableVersion: 1,
      chunkSize: MiB,
      stripeSize: 4,
      chains: { kind: 'range', baseIndex: 9, shuffle: 'none', seed: 0 },
    });
    const stripe = stripeChains(layout, table);
    assert.deepEqual(stripe, [109, 110, 101, 102]);
    assert.deepEqual(
      [0, 1, 2, 3, 4, 9].map((i) => chainOfChunk(stripe, i)),
      [109, 110, 101, 102, 109, 110],
    );
  });

  it('a shuffled range permutes the same positions with the frozen shuffle', () => {
    const layout = Layout.parse({
      chainTableId: 1,
      chainTableVersion: 1,
      chunkSize: MiB,
      stripeSize: 5,
      chains: { kind: 'range', baseIndex: 1, shuffle: 'mt64-fy-v1', seed: 42 },
    });
    assert.deepEqual(stripeChains(layout, table), shuffleWithSeed([101, 102, 103, 104, 105], 42n));
    assert.deepEqual(stripeChains(layout, table), [103, 104, 105, 101, 102]);
  });

  it('validates layouts: power-of-two chunk sizes in 64 KiB..64 MiB, positive stripes', () => {
    const base = {
      chainTableId: 1,
      chainTableVersion: 1,
      stripeSize: 1,
      chains: { kind: 'empty' },
    };
    assert.ok(Layout.safeParse({ ...base, chunkSize: 64 * 1024 }).success);
    assert.ok(!Layout.safeParse({ ...base, chunkSize: 3 * MiB }).success);
    assert.ok(!Layout.safeParse({ ...base, chunkSize: 128 * MiB }).success);
    assert.ok(!Layout.safeParse({ ...base, chunkSize: MiB, stripeSize: 0 }).success);
    assert.throws(
      () => stripeChains(Layout.parse({ ...base, chunkSize: MiB }), table),
      /directory layout/,
    );
  });

  it('a chunk id of a number inode is the id of the same bigint inode', () => {
    for (const inode of [0, 1, 0x1234, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER])
      assert.deepEqual(chunkId(inode, 9, 1), chunkId(BigInt(inode), 9, 1), String(inode));
    assert.equal(chunkId(2 ** 40 + 5, 0).readBigUInt64BE(2), 2n ** 40n + 5n);
    assert.throws(() => chunkId(-1, 0));
  });

  it('chunk ids are 16 bytes and sort by inode, then track, then chunk index', () => {
    const id = chunkId(0x1234, 7);
    assert.equal(id.toString('hex'), '00000000000000001234' + '0000' + '00000007');
    assert.deepEqual(parseChunkId(id), { inodeId: 0x1234n, track: 0, chunkIndex: 7 });
    const ids = [chunkId(2, 0), chunkId(1, 300), chunkId(1, 2), chunkId(1, 0, 1)];
    const sorted = [...ids].sort(Buffer.compare);
    assert.deepEqual(sorted, [chunkId(1, 2), chunkId(1, 300), chunkId(1, 0, 1), chunkId(2, 0)]);
    const { begin, end } = chunkIdRange(1, 2);
    assert.ok(Buffer.compare(begin, chunkId(1, 2)) === 0);
    assert.ok(
      Buffer.compare(chunkId(1, 2 ** 32 - 1), end) < 0,
      'the last chunk is inside the range',
    );
    assert.ok(Buffer.compare(chunkId(2, 0), end) > 0, 'the next inode is outside');
    assert.throws(() => chunkId(1, 2 ** 32), /out of range/);
  });

  it('splits a byte range into chunk pieces', () => {
    assert.deepEqual(splitIntoChunks(MiB - 10, 30, MiB), [
      { chunkIndex: 0, offset: MiB - 10, length: 10, bufferOffset: 0 },
      { chunkIndex: 1, offset: 0, length: 20, bufferOffset: 10 },
    ]);
    assert.deepEqual(splitIntoChunks(5, 0, MiB), []);
    const pieces = splitIntoChunks(123, 5 * MiB, MiB);
    assert.equal(pieces.length, 6);
    assert.equal(
      pieces.reduce((sum, p) => sum + p.length, 0),
      5 * MiB,
    );
    assert.throws(() => splitIntoChunks(-1, 3, MiB), /bad range/);
  });
});
