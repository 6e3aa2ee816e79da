// Space classes of the engine (brief §4.2): 11 block sizes, powers of two from 64 KiB to 64 MiB. A
// chunk lives in the smallest class its content fits, and grows into a bigger class by
// copy-on-write. Each chunk is checksummed per granule: 256 granules per block, never smaller than
// a 4 KiB page, so a small read verifies only what it reads and a chunk's checksums stay ≤ 1 KiB.
import { ThreeFsError } from '../../common/errors.js';

export const MIN_CLASS_SHIFT = 16;
export const MAX_CLASS_SHIFT = 26;
export const CLASS_COUNT = MAX_CLASS_SHIFT - MIN_CLASS_SHIFT + 1;
export const MAX_CHUNK_SIZE = 2 ** MAX_CLASS_SHIFT;
export const PAGE = 4096;
const GRANULES_PER_BLOCK = 256;

/** Block bytes of class index `cls` (0 = 64 KiB … 10 = 64 MiB). */
export function classBytes(cls: number): number {
  if (!Number.isInteger(cls) || cls < 0 || cls >= CLASS_COUNT) {
    throw new ThreeFsError('INTERNAL', `no size class ${cls}`);
  }
  return 2 ** (MIN_CLASS_SHIFT + cls);
}

/** The smallest class whose blocks hold `length` bytes. */
export function classFor(length: number): number {
  if (!Number.isInteger(length) || length < 0 || length > MAX_CHUNK_SIZE) {
    throw new ThreeFsError('INVALID_ARGUMENT', `chunk length ${length} outside [0, 64 MiB]`);
  }
  let cls = 0;
  while (classBytes(cls) < length) cls++;
  return cls;
}

/** Bytes covered by one checksum in a block of class `cls`. */
export function granuleOf(cls: number): number {
  return Math.max(PAGE, classBytes(cls) / GRANULES_PER_BLOCK);
}

/** A short name for directories and logs: 64K, 1M, 64M. */
export function className(cls: number): string {
  const bytes = classBytes(cls);
  return bytes >= 2 ** 20 ? `${bytes / 2 ** 20}M` : `${bytes / 2 ** 10}K`;
}

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

export function alignDown(value: number, alignment: number): number {
  return Math.floor(value / alignment) * alignment;
}

/** Number of granules holding `length` bytes. */
export function granuleCount(length: number, granule: number): number {
  return Math.ceil(length / granule);
}
