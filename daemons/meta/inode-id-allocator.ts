// Inode ids from a sharded counter (brief §1.3 InodeIdAllocator): one KV transaction hands a
// server a block of 4,096 ids. Shard s's n-th block is value v = n * 32 + s, so blocks of
// different shards never overlap and no two servers contend unless they pick the same shard.
// Ids are (v + 1) * 4096 + low, low in 0..4095: the first is 0x1000 (ids below are reserved for
// the root and the GC root), and v < 2^41 keeps every id a safe integer (< 2^53).
import { randomInt } from 'node:crypto';
import { ThreeFsError } from '../common/errors.js';
import { decodeInt64LE, encodeInt64LE, type KvStore } from '../common/kv/index.js';
import { ALLOCATOR_SHARDS, allocatorShardKey } from './keys.js';

export const IDS_PER_BLOCK = 4096;
const MAX_BLOCK_VALUE = 2 ** 41;

/** The first id of block value v. */
export function blockStart(value: number): number {
  if (!Number.isSafeInteger(value) || value < 0 || value >= MAX_BLOCK_VALUE - 1) {
    throw new ThreeFsError('RESOURCE_EXHAUSTED', `inode id block ${value} is past the id space`);
  }
  return (value + 1) * IDS_PER_BLOCK;
}

/** Block value of the n-th block of shard s. */
export function blockValue(shard: number, n: number): number {
  return n * ALLOCATOR_SHARDS + shard;
}

export class InodeIdAllocator {
  private next = 0;
  private end = 0;
  private refill: Promise<void> | undefined;

  constructor(private readonly kv: KvStore) {}

  async allocate(): Promise<number> {
    for (let round = 0; round < 16; round++) {
      if (this.next < this.end) return this.next++;
      this.refill ??= this.fetchBlock().finally(() => (this.refill = undefined));
      await this.refill;
    }
    throw new ThreeFsError('UNAVAILABLE', 'inode id allocation starved by concurrent callers');
  }

  private async fetchBlock(): Promise<void> {
    const shard = randomInt(ALLOCATOR_SHARDS);
    const key = allocatorShardKey(shard);
    const n = await this.kv.run(async (tx) => {
      const used = Number(decodeInt64LE(await tx.get(key)));
      tx.set(key, encodeInt64LE(BigInt(used + 1)));
      return used;
    });
    const start = blockStart(blockValue(shard, n));
    this.next = start;
    this.end = start + IDS_PER_BLOCK;
  }
}
