import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mt19937x64Outputs, shuffleWithSeed } from '../../daemons/common/shuffle.js';
import { boundedDraw, Mt19937x64, referenceShuffle } from './shuffle-reference.js';

// FROZEN. These permutations were cross-checked against a C++ program using std::mt19937_64 and the
// same rejection draw and Fisher-Yates (see daemons/common/shuffle.ts). Files store only a seed, so
// if any row here changes, every existing file would read its chunks from the wrong chains.
// prettier-ignore
const vectors: Array<[bigint, number[]]> = [
  [0x0n, [2, 1]],
  [0x0n, [3, 1, 2, 4, 5]],
  [0x0n, [8, 9, 10, 16, 11, 13, 2, 7, 1, 14, 12, 5, 6, 4, 3, 15]],
  [0x1n, [2, 1]],
  [0x1n, [2, 5, 1, 3, 4]],
  [0x1n, [14, 7, 6, 2, 11, 3, 8, 10, 12, 15, 4, 1, 16, 5, 13, 9]],
  [0x2an, [2, 1]],
  [0x2an, [3, 4, 5, 1, 2]],
  [0x2an, [8, 11, 12, 1, 3, 2, 4, 9, 10, 14, 5, 6, 16, 13, 15, 7]],
  [0xdeadbeefcafef00dn, [2, 1]],
  [0xdeadbeefcafef00dn, [1, 5, 3, 4, 2]],
  [0xdeadbeefcafef00dn, [2, 3, 13, 7, 1, 8, 14, 5, 9, 4, 10, 15, 12, 16, 6, 11]],
  [0xffffffffffffffffn, [2, 1]],
  [0xffffffffffffffffn, [2, 4, 3, 5, 1]],
  [0xffffffffffffffffn, [2, 6, 3, 16, 4, 8, 1, 13, 15, 7, 12, 11, 10, 14, 9, 5]],
];

// For stripe 200 (3FS's production stripe): the first eight entries and sum((i+1)·a[i]).
// prettier-ignore
const wide: Array<[bigint, number[], number]> = [
  [0x0n, [185, 174, 59, 93, 2, 48, 190, 106], 1990641],
  [0x1n, [90, 40, 14, 64, 6, 23, 192, 130], 1950139],
  [0x2an, [188, 110, 132, 100, 192, 102, 50, 2], 1979113],
  [0xdeadbeefcafef00dn, [68, 135, 130, 156, 116, 64, 47, 54], 2026513],
  [0xffffffffffffffffn, [146, 58, 144, 182, 93, 158, 70, 106], 2004500],
];

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('frozen chain shuffle', () => {
  it('MT19937-64 matches the C++ standard: the 10000th output of seed 5489 is 9981545732273789042', () => {
    assert.equal(mt19937x64Outputs(5489n, 10_000)[9_999], 9981545732273789042n);
    const rng = new Mt19937x64(5489n);
    let value = 0n;
    for (let i = 0; i < 10_000; i++) value = rng.next();
    assert.equal(value, 9981545732273789042n, 'the reference model too');
  });

  it('the native shuffle equals the independent BigInt reference on 300 seeded cases', () => {
    const seeds = mt19937x64Outputs(20261201n, 300);
    for (let k = 0; k < seeds.length; k++) {
      const seed = k % 3 === 0 ? (seeds[k] as bigint) >> 11n : (seeds[k] as bigint); // safe ints too
      const n = 1 + ((k * 37) % 220);
      assert.deepEqual(
        shuffleWithSeed(range(n), seed),
        referenceShuffle(range(n), seed),
        `seed ${seed} n ${n}`,
      );
    }
  });

  it('rejects seeds and sizes outside the specification', () => {
    assert.throws(() => shuffleWithSeed([1, 2], -1n), /u64/);
    assert.throws(() => shuffleWithSeed([1, 2], 1n << 64n), /u64/);
    assert.throws(() => shuffleWithSeed(range(65_537), 1n), /0\.\.65536/);
  });

  for (const [seed, expected] of vectors) {
    it(`seed ${seed} over ${expected.length} chains`, () => {
      assert.deepEqual(shuffleWithSeed(range(expected.length), seed), expected);
    });
  }

  for (const [seed, head, fingerprint] of wide) {
    it(`seed ${seed} over 200 chains`, () => {
      const perm = shuffleWithSeed(range(200), seed);
      assert.deepEqual(perm.slice(0, 8), head);
      assert.equal(
        perm.reduce((sum, v, i) => sum + (i + 1) * v, 0),
        fingerprint,
      );
      assert.deepEqual(
        [...perm].sort((a, b) => a - b),
        range(200),
        'a permutation',
      );
    });
  }

  it('a single element and an empty list are unchanged', () => {
    assert.deepEqual(shuffleWithSeed([7], 99n), [7]);
    assert.deepEqual(shuffleWithSeed([], 99n), []);
  });

  it('reference bounded draws stay in range', () => {
    const rng = new Mt19937x64(3n);
    for (let i = 0; i < 1000; i++) {
      const x = boundedDraw(rng, 7);
      assert.ok(x >= 0 && x < 7);
    }
  });
});
