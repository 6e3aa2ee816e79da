// The chain shuffle of file layouts. FROZEN: files store only a seed, and every client and meta
// server must derive the same chain order from it forever. 3FS used std::shuffle, whose output
// changed between libstdc++ releases (brief §2.3); ours is fully specified here and pinned by the
// test vectors in test/common/shuffle.test.ts. Never change this algorithm.
//
// Algorithm "mt64-fy-v1":
//   - generator: MT19937-64 exactly as in C++ std::mt19937_64 (seeded with the 64-bit seed);
//   - bounded draw in [0, n): draw x; accept if x < 2^64 - (2^64 mod n), answer x mod n; else redraw;
//   - Fisher-Yates from the end: for i = len-1 down to 1, j = draw(i+1), swap(a[i], a[j]).
//
// It runs natively (native/src/shuffle_addon.cc, with the standard library's std::mt19937_64):
// meta and clients derive a stripe at every exact-length query, GC and first access, and 64-bit
// arithmetic in BigInt took about 80 us for 16 chains. test/common/shuffle-reference.ts is an
// independent BigInt implementation the native one is checked against.
import { loadAddon } from './native.js';

interface ShuffleAddon {
  shuffledIndexes(n: number, seed: bigint): Uint32Array;
  mt19937x64Outputs(seed: bigint, count: number): BigUint64Array;
}

const addon = loadAddon<ShuffleAddon>('threefs_shuffle');

/** Returns a new array: `items` permuted by the frozen algorithm for this seed (a u64). */
export function shuffleWithSeed<T>(items: readonly T[], seed: bigint): T[] {
  const order = addon.shuffledIndexes(items.length, seed);
  const out = new Array<T>(items.length);
  for (let i = 0; i < order.length; i++) out[i] = items[order[i] as number] as T;
  return out;
}

/** The first `count` outputs of std::mt19937_64 for `seed` (for tests of the generator). */
export function mt19937x64Outputs(seed: bigint, count: number): BigUint64Array {
  return addon.mt19937x64Outputs(seed, count);
}
