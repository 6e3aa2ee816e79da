import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CLASS_COUNT,
  classBytes,
  classFor,
  className,
  granuleOf,
} from '../../../daemons/storage/engine/size-classes.js';

describe('size classes', () => {
  it('are the 11 powers of two from 64 KiB to 64 MiB', () => {
    assert.equal(CLASS_COUNT, 11);
    assert.deepEqual(
      Array.from({ length: CLASS_COUNT }, (_, c) => className(c)),
      ['64K', '128K', '256K', '512K', '1M', '2M', '4M', '8M', '16M', '32M', '64M'],
    );
    assert.throws(() => classBytes(11), /no size class/);
  });

  const rows: Array<[number, string]> = [
    [0, '64K'],
    [1, '64K'],
    [65_536, '64K'],
    [65_537, '128K'],
    [1_048_576, '1M'],
    [1_048_577, '2M'],
    [64 * 2 ** 20, '64M'],
  ];
  for (const [length, name] of rows) {
    it(`a chunk of ${length} bytes lives in ${name}`, () => {
      assert.equal(className(classFor(length)), name);
    });
  }

  it('refuses lengths past 64 MiB', () => {
    assert.throws(() => classFor(64 * 2 ** 20 + 1), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => classFor(-1), { code: 'INVALID_ARGUMENT' });
  });

  it('granules: 4 KiB up to 1 MiB blocks, then 256 per block', () => {
    assert.equal(granuleOf(classFor(65_536)), 4096);
    assert.equal(granuleOf(classFor(2 ** 20)), 4096);
    assert.equal(granuleOf(classFor(2 ** 21)), 8192);
    assert.equal(granuleOf(classFor(2 ** 26)), 2 ** 18);
  });
});
