// FoundationDB's ADD mutation with an 8-byte operand, as a pure function so both the embedded
// engine and tests use the same rule: the stored value is a little-endian integer; a missing value
// counts as 0, a shorter one is zero-extended, a longer one is truncated to 8 bytes; the sum wraps
// at 2^64. Counters therefore read back as int64 (decodeInt64LE) whatever the sign of the deltas.
import { ThreeFsError } from '../errors.js';

export const ADD_OPERAND_BYTES = 8;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const U64_MASK = (1n << 64n) - 1n;

/** The 8-byte little-endian two's-complement form of an int64 delta. */
export function encodeInt64LE(value: bigint): Buffer {
  if (value < INT64_MIN || value > INT64_MAX) {
    throw new ThreeFsError('INVALID_ARGUMENT', `atomic add delta ${value} is outside int64`);
  }
  const out = Buffer.allocUnsafe(ADD_OPERAND_BYTES);
  out.writeBigInt64LE(value);
  return out;
}

/** Reads a counter written by add(): up to 8 little-endian bytes, signed. */
export function decodeInt64LE(value: Uint8Array | undefined): bigint {
  if (value === undefined) return 0n;
  const padded = Buffer.alloc(ADD_OPERAND_BYTES);
  padded.set(value.subarray(0, ADD_OPERAND_BYTES));
  return padded.readBigInt64LE(0);
}

/** The value after ADD(delta) on `existing` (undefined when the key is absent). */
export function applyAdd(existing: Uint8Array | undefined, delta: bigint): Buffer {
  const base = Buffer.alloc(ADD_OPERAND_BYTES);
  if (existing !== undefined) base.set(existing.subarray(0, ADD_OPERAND_BYTES));
  const sum = (base.readBigUInt64LE(0) + BigInt.asUintN(64, delta)) & U64_MASK;
  const out = Buffer.allocUnsafe(ADD_OPERAND_BYTES);
  out.writeBigUInt64LE(sum);
  return out;
}
