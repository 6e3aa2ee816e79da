// File layout math shared by meta (which picks a layout at create) and clients (which compute
// chunk → chain themselves so meta stays off the data path). Brief §2.3.
import { z } from 'zod';
import { ThreeFsError } from './errors.js';
import { shuffleWithSeed } from './shuffle.js';

export const MIN_CHUNK_SIZE = 64 * 1024;
export const MAX_CHUNK_SIZE = 64 * 1024 * 1024;
/** Chunk indexes are u32 in chunk ids. */
export const MAX_CHUNKS_PER_FILE = 2 ** 32;

const powerOfTwo = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;

export const ChunkSize = z
  .number()
  .int()
  .min(MIN_CHUNK_SIZE)
  .max(MAX_CHUNK_SIZE)
  .refine(powerOfTwo, 'chunk size must be a power of two');

export const ChainSelection = z.discriminatedUnion('kind', [
  /** Directories: allocate from the table when a file is created. */
  z.object({ kind: z.literal('empty') }),
  /** Files: `stripe` consecutive table positions from baseIndex (1-based), permuted by seed. */
  z.object({
    kind: z.literal('range'),
    baseIndex: z.number().int().min(1),
    shuffle: z.enum(['none', 'mt64-fy-v1']),
    seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  }),
  /** Explicit chain ids (admin and tests). */
  z.object({ kind: z.literal('list'), chainIds: z.array(z.number().int().positive()).min(1) }),
]);
export type ChainSelection = z.infer<typeof ChainSelection>;

export const Layout = z.object({
  chainTableId: z.number().int().min(0),
  chainTableVersion: z.number().int().min(0),
  chunkSize: ChunkSize,
  stripeSize: z.number().int().min(1).max(65_536),
  chains: ChainSelection,
});
export type Layout = z.infer<typeof Layout>;

/**
 * The chain ids a file's chunks rotate over, in stripe order: chunk i lives on result[i mod n].
 * `tableChainIds` is the chain table version the layout names.
 */
export function stripeChains(layout: Layout, tableChainIds: readonly number[]): number[] {
  const selection = layout.chains;
  switch (selection.kind) {
    case 'empty':
      throw new ThreeFsError(
        'INVALID_ARGUMENT',
        'a layout without chains (a directory layout) has no stripe',
      );
    case 'list':
      return [...selection.chainIds];
    case 'range': {
      if (tableChainIds.length === 0)
        throw new ThreeFsError('FAILED_PRECONDITION', 'the chain table is empty');
      const positions = Array.from(
        { length: layout.stripeSize },
        (_, i) => selection.baseIndex + i,
      );
      const order =
        selection.shuffle === 'none'
          ? positions
          : shuffleWithSeed(positions, BigInt(selection.seed));
      return order.map((index) => tableChainIds[(index - 1) % tableChainIds.length] as number);
    }
  }
}

export function chainOfChunk(stripe: readonly number[], chunkIndex: number): number {
  return stripe[chunkIndex % stripe.length] as number;
}

/**
 * Chunk id: 16 bytes, big-endian so ids sort by inode, then track, then chunk index:
 * [tenant u8 = 0][reserved u8 = 0][inode u64][track u16][chunk index u32].
 */
export function chunkId(inodeId: number | bigint, chunkIndex: number, track = 0): Buffer {
  if (!Number.isInteger(chunkIndex) || chunkIndex < 0 || chunkIndex >= MAX_CHUNKS_PER_FILE) {
    throw new ThreeFsError('INVALID_ARGUMENT', `chunk index ${chunkIndex} out of range`);
  }
  const id = Buffer.alloc(16);
  if (typeof inodeId === 'number' && Number.isSafeInteger(inodeId) && inodeId >= 0) {
    // In two 32-bit halves: every chunk read builds an id, and a BigInt per id showed up there.
    id.writeUInt32BE(Math.floor(inodeId / 2 ** 32), 2);
    id.writeUInt32BE(inodeId >>> 0, 6);
  } else id.writeBigUInt64BE(BigInt(inodeId), 2);
  id.writeUInt16BE(track, 10);
  id.writeUInt32BE(chunkIndex, 12);
  return id;
}

export function parseChunkId(id: Uint8Array): {
  inodeId: bigint;
  track: number;
  chunkIndex: number;
} {
  if (id.length !== 16)
    throw new ThreeFsError('INVALID_ARGUMENT', `chunk id must be 16 bytes, got ${id.length}`);
  const buf = Buffer.from(id.buffer, id.byteOffset, id.byteLength);
  return {
    inodeId: buf.readBigUInt64BE(2),
    track: buf.readUInt16BE(10),
    chunkIndex: buf.readUInt32BE(12),
  };
}

/** Every chunk of one inode at or after `fromChunk`: [begin, end) in chunk-id order. */
export function chunkIdRange(
  inodeId: number | bigint,
  fromChunk = 0,
): { begin: Buffer; end: Buffer } {
  const begin = chunkId(inodeId, fromChunk, 0);
  const end = chunkId(inodeId, 0, 1);
  return { begin, end };
}

export interface ChunkPiece {
  chunkIndex: number;
  /** Offset inside the chunk. */
  offset: number;
  length: number;
  /** Offset inside the caller's buffer. */
  bufferOffset: number;
}

/** Splits a byte range of a file into per-chunk pieces. */
export function splitIntoChunks(offset: number, length: number, chunkSize: number): ChunkPiece[] {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new ThreeFsError('INVALID_ARGUMENT', `bad range offset=${offset} length=${length}`);
  }
  const pieces: ChunkPiece[] = [];
  let position = offset;
  const end = offset + length;
  while (position < end) {
    const chunkIndex = Math.floor(position / chunkSize);
    const inChunk = position - chunkIndex * chunkSize;
    const take = Math.min(chunkSize - inChunk, end - position);
    pieces.push({ chunkIndex, offset: inChunk, length: take, bufferOffset: position - offset });
    position += take;
  }
  return pieces;
}
