// CRC32C arithmetic without the bytes: crc(A ‖ B) from crc(A), crc(B) and |B| (as zlib's
// crc32_combine), and its inverse, crc(B) from crc(A ‖ B), crc(A) and |B|. The RPC layer uses them
// so a payload whose CRC32C is already known (a chunk's checksum) is not read again to checksum
// its frame, and a receiver learns a verified payload's CRC32C from the frame's.
const POLYNOMIAL = 0x82f63b78; // reflected Castagnoli

/** a·b modulo the CRC polynomial, in the reflected bit order CRCs use. */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if ((a & m) !== 0) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLYNOMIAL : b >>> 1;
  }
  return p >>> 0;
}

/** X2N[k] = x^(2^k) mod P. */
const X2N = (() => {
  const table = new Array<number>(32);
  let p = 0x40000000; // x^1
  for (let n = 0; n < 32; n++) {
    table[n] = p;
    p = multModP(p, p);
  }
  return table;
})();

/** x^(8·bytes) mod P: moves a CRC past `bytes` zero bytes. */
function shiftOperator(bytes: number): number {
  let p = 0x80000000; // x^0
  for (let k = 3; bytes > 0; k++) {
    if (bytes % 2 === 1) p = multModP(X2N[k % 32]!, p);
    bytes = Math.floor(bytes / 2);
  }
  return p;
}

function checkLength(lengthB: number): void {
  if (!Number.isSafeInteger(lengthB) || lengthB < 0) {
    throw new RangeError(`CRC combine length ${lengthB} is not a byte count`);
  }
}

/** crc32c(A ‖ B) from crc32c(A), crc32c(B) and B's length. */
export function crc32cCombine(crcA: number, crcB: number, lengthB: number): number {
  checkLength(lengthB);
  return (multModP(shiftOperator(lengthB), crcA >>> 0) ^ crcB) >>> 0;
}

/** crc32c(B) from crc32c(A ‖ B), crc32c(A) and B's length (the inverse of crc32cCombine). */
export function crc32cOfTail(crcAB: number, crcA: number, lengthB: number): number {
  checkLength(lengthB);
  return (multModP(shiftOperator(lengthB), crcA >>> 0) ^ crcAB) >>> 0;
}
