// A second, independent implementation of the frozen shuffle "mt64-fy-v1" in JS BigInt, straight
// from its specification (daemons/common/shuffle.ts), so the native one can be checked against it
// on many seeds besides the frozen vectors. Slow (about 80 us per 16-chain stripe): tests only.

const MASK64 = (1n << 64n) - 1n;
const NN = 312;
const MM = 156;
const MATRIX_A = 0xb5026f5aa96619e9n;
const UPPER = 0xffffffff80000000n;
const LOWER = 0x7fffffffn;

/** MT19937-64 as in C++'s std::mt19937_64. */
export class Mt19937x64 {
  private readonly state = new Array<bigint>(NN);
  private index = NN;

  constructor(seed: bigint) {
    this.state[0] = BigInt.asUintN(64, seed);
    for (let i = 1; i < NN; i++) {
      const prev = this.state[i - 1] as bigint;
      this.state[i] = (6364136223846793005n * (prev ^ (prev >> 62n)) + BigInt(i)) & MASK64;
    }
  }

  next(): bigint {
    if (this.index >= NN) this.twist();
    let x = this.state[this.index++] as bigint;
    x ^= (x >> 29n) & 0x5555555555555555n;
    x ^= (x << 17n) & 0x71d67fffeda60000n;
    x ^= (x << 37n) & 0xfff7eee000000000n;
    x ^= x >> 43n;
    return x & MASK64;
  }

  private twist(): void {
    const s = this.state;
    for (let i = 0; i < NN; i++) {
      const x = ((s[i] as bigint) & UPPER) | ((s[(i + 1) % NN] as bigint) & LOWER);
      let xA = x >> 1n;
      if (x & 1n) xA ^= MATRIX_A;
      s[i] = (s[(i + MM) % NN] as bigint) ^ xA;
    }
    this.index = 0;
  }
}

const TWO64 = 1n << 64n;

/** A uniform integer in [0, n) by rejection. */
export function boundedDraw(rng: Mt19937x64, n: number): number {
  const bound = BigInt(n);
  const limit = TWO64 - (TWO64 % bound);
  for (;;) {
    const x = rng.next();
    if (x < limit) return Number(x % bound);
  }
}

export function referenceShuffle<T>(items: readonly T[], seed: bigint): T[] {
  const out = [...items];
  const rng = new Mt19937x64(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = boundedDraw(rng, i + 1);
    const tmp = out[i] as T;
    out[i] = out[j] as T;
    out[j] = tmp;
  }
  return out;
}
