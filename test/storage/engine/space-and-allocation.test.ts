import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ThreeFsError } from '../../../daemons/common/errors.js';
import { BlockAllocator } from '../../../daemons/storage/engine/block-allocator.js';
import { BlockPins } from '../../../daemons/storage/engine/block-pins.js';
import { KeyedLock } from '../../../daemons/storage/engine/keyed-lock.js';
import { defaultThresholds, spaceInfo } from '../../../daemons/storage/engine/space.js';

describe('space thresholds', () => {
  const rows: Array<[number, number, boolean, boolean]> = [
    // available, free preallocated, lowSpace, rejectNewChunks (capacity 1000)
    [500, 0, false, false],
    [40, 0, false, false], // exactly 0.96 used: not over
    [39, 0, true, false],
    [20, 0, true, false], // 0.98 used: low, not yet rejecting
    [19, 0, true, true],
    [0, 30, true, false], // preallocated free blocks count as free
    [0, 5000, false, false], // never more free than capacity
  ];
  for (const [available, prealloc, low, reject] of rows) {
    it(`available ${available} + preallocated ${prealloc} of 1000`, () => {
      const info = spaceInfo(
        { capacityBytes: 1000, availableBytes: available },
        prealloc,
        defaultThresholds,
      );
      assert.equal(info.lowSpace, low);
      assert.equal(info.rejectNewChunks, reject);
      assert.equal(info.usedBytes + info.freeBytes, 1000);
    });
  }
});

describe('block allocator', () => {
  function allocator(
    options: { filesPerClass?: number; extendBytes?: number; failAt?: number } = {},
  ) {
    const growths: Array<[number, number, number, number]> = [];
    let grown = 0;
    const a = new BlockAllocator(
      { filesPerClass: options.filesPerClass ?? 2, extendBytes: options.extendBytes ?? 4 * 65_536 },
      (cls, file, from, count) => {
        if (options.failAt !== undefined && grown + count > options.failAt) {
          return Promise.reject(new ThreeFsError('NO_SPACE', 'full'));
        }
        grown += count;
        growths.push([cls, file, from, count]);
        return Promise.resolve();
      },
    );
    return { a, growths };
  }

  it('grows files in steps, spreading over files, and reuses freed blocks first', async () => {
    const { a, growths } = allocator();
    const got = [];
    for (let i = 0; i < 8; i++) got.push(await a.allocate(0));
    assert.deepEqual(growths, [
      [0, 0, 0, 4],
      [0, 1, 0, 4],
    ]);
    assert.equal(new Set(got.map((b) => `${b.file}/${b.block}`)).size, 8);
    a.free(got[2]!);
    assert.deepEqual(await a.allocate(0), got[2]);
    assert.equal(growths.length, 2);
    assert.equal(a.freePreallocatedBytes(), 0);
  });

  it('steps are capped at a group of 256 blocks and at least one block', async () => {
    const { a, growths } = allocator({ extendBytes: 2 ** 30 });
    await a.allocate(0);
    await a.allocate(10);
    const small = allocator({ extendBytes: 65_536 });
    await small.a.allocate(10);
    assert.deepEqual(growths, [
      [0, 0, 0, 256],
      [10, 0, 0, 16],
    ]);
    assert.deepEqual(small.growths, [[10, 0, 0, 1]]);
  });

  it('near a full disk falls back to one block, then NO_SPACE', async () => {
    const { a } = allocator({ failAt: 5, filesPerClass: 1 });
    for (let i = 0; i < 5; i++) await a.allocate(0);
    await assert.rejects(a.allocate(0), { code: 'NO_SPACE' });
  });

  it('concurrent allocations share one growth', async () => {
    const { a, growths } = allocator({ filesPerClass: 1 });
    const blocks = await Promise.all([a.allocate(0), a.allocate(0), a.allocate(0)]);
    assert.equal(growths.length, 1);
    assert.equal(new Set(blocks.map((b) => b.block)).size, 3);
  });

  it('rebuild rejects a block past the file or referenced twice; free rejects double frees', () => {
    const { a } = allocator();
    a.setExtent(0, 0, 4);
    a.markUsed({ cls: 0, file: 0, block: 3 });
    assert.throws(() => a.markUsed({ cls: 0, file: 0, block: 3 }), /referenced twice/);
    assert.throws(() => a.markUsed({ cls: 0, file: 0, block: 4 }), /holds only 4 blocks/);
    a.free({ cls: 0, file: 0, block: 3 });
    assert.throws(() => a.free({ cls: 0, file: 0, block: 3 }), /double free/);
  });
});

describe('block pins', () => {
  it('a released block is freed only when its last reader unpins', () => {
    const freed: number[] = [];
    const pins = new BlockPins((b) => freed.push(b.block));
    const b = { cls: 0, file: 0, block: 7 };
    pins.pin(b);
    pins.pin(b);
    pins.release(b);
    assert.deepEqual(freed, []);
    pins.unpin(b);
    assert.deepEqual(freed, []);
    pins.unpin(b);
    assert.deepEqual(freed, [7]);
    pins.release({ cls: 0, file: 0, block: 8 });
    assert.deepEqual(freed, [7, 8]);
    assert.throws(() => pins.unpin(b), { code: 'INTERNAL' });
  });
});

describe('keyed lock', () => {
  it('serializes one key, not different keys, and bounds the queue', async () => {
    const lock = new KeyedLock(3);
    const order: string[] = [];
    let release!: () => void;
    const first = lock.run('a', () =>
      new Promise<void>((r) => (release = r)).then(() => order.push('a1')),
    );
    const second = lock.run('a', () => Promise.resolve(order.push('a2')));
    await lock.run('b', () => Promise.resolve(order.push('b')));
    await assert.rejects(
      Promise.all([lock.run('c', () => Promise.resolve()), lock.run('d', () => Promise.resolve())]),
      { code: 'RESOURCE_EXHAUSTED' },
    );
    release();
    await Promise.all([first, second]);
    assert.deepEqual(order, ['b', 'a1', 'a2']);
  });
});
