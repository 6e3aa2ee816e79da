// Storage keys: chainId (4 bytes, big-endian) ‖ chunkId (16 bytes). Big-endian ids sort by inode
// then chunk index, and each target (chain) is one key prefix, so a chain's chunks are one range.
import { ThreeFsError } from '../../common/errors.js';

export const CHUNK_ID_BYTES = 16;
export const KEY_BYTES = 4 + CHUNK_ID_BYTES;
const MAX_CHAIN_ID = 0xffff_ffff;

export function checkChainId(chainId: number): void {
  if (!Number.isInteger(chainId) || chainId < 0 || chainId > MAX_CHAIN_ID) {
    throw new ThreeFsError('INVALID_ARGUMENT', `chain id ${chainId} is not a u32`);
  }
}

export function checkChunkId(chunkId: Buffer): void {
  if (!Buffer.isBuffer(chunkId) || chunkId.length !== CHUNK_ID_BYTES) {
    throw new ThreeFsError('INVALID_ARGUMENT', `a chunk id is ${CHUNK_ID_BYTES} bytes`);
  }
}

export function chunkKey(chainId: number, chunkId: Buffer): Buffer {
  checkChainId(chainId);
  checkChunkId(chunkId);
  const key = Buffer.allocUnsafe(KEY_BYTES);
  key.writeUInt32BE(chainId, 0);
  chunkId.copy(key, 4);
  return key;
}

export function splitKey(key: Buffer): { chainId: number; chunkId: Buffer } {
  if (key.length !== KEY_BYTES) {
    throw new ThreeFsError('INTERNAL', `stored chunk key of ${key.length} bytes`);
  }
  return { chainId: key.readUInt32BE(0), chunkId: Buffer.from(key.subarray(4)) };
}

/**
 * The key range [start, end) of a chain's chunks with begin <= chunkId < end; `end` undefined
 * means to the end of the key space (only for the last chain id).
 */
export function chainRange(
  chainId: number,
  begin?: Buffer,
  end?: Buffer,
): { start: Buffer; end: Buffer | undefined } {
  checkChainId(chainId);
  if (begin !== undefined) checkChunkId(begin);
  if (end !== undefined) checkChunkId(end);
  const start = chunkKey(chainId, begin ?? Buffer.alloc(CHUNK_ID_BYTES));
  if (end !== undefined) return { start, end: chunkKey(chainId, end) };
  if (chainId === MAX_CHAIN_ID) return { start, end: undefined };
  const next = Buffer.alloc(4);
  next.writeUInt32BE(chainId + 1, 0);
  return { start, end: next };
}
