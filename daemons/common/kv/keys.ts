// Building keys that sort the way the daemons scan them. Every table starts with a short ASCII tag
// (3FS uses 4-byte tags: INOD, DENT, CHIF, ...); numeric ids follow as big-endian u64 so byte order
// equals numeric order; a variable-length part (a file name) may only come last, where no escaping
// is needed: all dentries of one directory are then the contiguous range prefixRange(tag+parent).
import { ThreeFsError } from '../errors.js';

/** One component of a key: a number or bigint becomes a big-endian u64, text its UTF-8 bytes. */
export type KeyPart = number | bigint | string | Uint8Array;

const U64_MAX = (1n << 64n) - 1n;

export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** The 8 big-endian bytes of an unsigned 64-bit id. */
export function u64be(value: number | bigint): Buffer {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new ThreeFsError('INVALID_ARGUMENT', `key id ${value} is not a safe integer`);
  }
  const big = typeof value === 'bigint' ? value : BigInt(value);
  if (big < 0n || big > U64_MAX) {
    throw new ThreeFsError('INVALID_ARGUMENT', `key id ${big} is outside the u64 range`);
  }
  const out = Buffer.allocUnsafe(8);
  out.writeBigUInt64BE(big);
  return out;
}

/** Reads a big-endian u64 written by u64be, e.g. an inode id back out of a key. */
export function readU64be(key: Uint8Array, offset: number): bigint {
  if (offset < 0 || offset + 8 > key.length) {
    throw new ThreeFsError(
      'INVALID_ARGUMENT',
      `key of ${key.length} bytes has no u64 at offset ${offset}`,
    );
  }
  return Buffer.from(key.buffer, key.byteOffset, key.length).readBigUInt64BE(offset);
}

/**
 * Concatenates parts into one key: `encodeKey('DENT', parentId, name)`. Only the last part may have
 * a variable length (text or bytes), otherwise `('a','bc')` and `('ab','c')` would collide; fixed
 * tags are fine anywhere because every key of a table uses the same tags in the same places.
 */
export function encodeKey(...parts: KeyPart[]): Buffer {
  const buffers = parts.map((part) => {
    if (typeof part === 'number' || typeof part === 'bigint') return u64be(part);
    if (typeof part === 'string') return Buffer.from(part, 'utf8');
    return Buffer.from(part.buffer, part.byteOffset, part.length);
  });
  return Buffer.concat(buffers);
}

/** The first key after `key` in byte order: key + 0x00. [key, keyAfter(key)) holds exactly key. */
export function keyAfter(key: Uint8Array): Buffer {
  const out = Buffer.alloc(key.length + 1);
  out.set(key, 0);
  return out;
}

/**
 * The first key that does not start with `prefix` and sorts after it: drop trailing 0xff bytes and
 * increment the last byte (FoundationDB's strinc). A prefix of only 0xff bytes has no such key.
 */
export function strinc(prefix: Uint8Array): Buffer {
  let end = prefix.length;
  while (end > 0 && prefix[end - 1] === 0xff) end--;
  if (end === 0) {
    throw new ThreeFsError(
      'INVALID_ARGUMENT',
      'a key prefix made only of 0xff bytes (or empty) has no end key',
    );
  }
  const out = Buffer.from(prefix.subarray(0, end));
  out[end - 1] = (out[end - 1] as number) + 1;
  return out;
}

/** [begin, end) of every key that starts with `prefix`. */
export function prefixRange(prefix: Uint8Array): { begin: Buffer; end: Buffer } {
  return { begin: Buffer.from(prefix), end: strinc(prefix) };
}
